"""`brandbot doctor` against the local fake Telegram and WeChat APIs and a real daemon's /healthz.

Each bad deployment (wrong AppSecret, IP not whitelisted, a clock 10 minutes off, a refused bot
token, an unreachable public URL) is found, the fix is named, nothing is sent, and no secret is
printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import TINY, clear_brandbot_env, serve_asgi
from tests.fakes import wechat_api
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegram
from tests.fakes.wechat_api import FakeWeChat


class Background:
    """An event loop in a thread running the fake Bot API and the daemon's web app."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = contextlib.AsyncExitStack()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def enter(self, manager):
        return self.run(self.stack.enter_async_context(manager))

    def close(self) -> None:
        self.run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """A deployment whose every part answers: Telegram, WeChat and the web chat on /healthz."""
    from bot.config import load_settings
    from bot.daemon import Daemon

    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, personas=[str(TINY)], db=str(tmp_path / "web.db"))
    daemon = Daemon(settings)
    daemon.open()
    background = Background()
    telegram = background.enter(FakeTelegram())
    port = background.enter(serve_asgi(daemon._build_app()))
    wechat = FakeWeChat()
    env = {
        "BRANDBOT_PERSONAS": f'["{TINY}"]',
        "BRANDBOT_DB": str(tmp_path / "doctor.db"),
        "BRANDBOT_PUBLIC_URL": f"http://127.0.0.1:{port}/",
        "BRANDBOT_TELEGRAM_TOKEN": telegram.token,
        "BRANDBOT_TELEGRAM_API_URL": telegram.base_url,
        "BRANDBOT_WECHAT_APPID": wechat_api.APP_ID,
        "BRANDBOT_WECHAT_TOKEN": wechat_api.TOKEN,
        "BRANDBOT_WECHAT_SECRET": wechat_api.APP_SECRET,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield telegram, wechat, monkeypatch
    background.close()
    daemon.close()
    if daemon.executor:
        daemon.executor.shutdown()


def doctor(wechat: FakeWeChat, monkeypatch, lang: str = "en"):
    with wechat:
        monkeypatch.setenv("BRANDBOT_WECHAT_API_URL", wechat.api_url)
        result = CliRunner().invoke(main, ["doctor", "--lang", lang, "--timeout", "5"])
    return result


def assert_no_secret(output: str) -> None:
    from tests.fakes.telegram_api import TOKEN

    for secret in (TOKEN, TOKEN.split(":")[1], wechat_api.APP_SECRET, wechat_api.TOKEN):
        assert secret not in output


def assert_nothing_sent(telegram: FakeTelegram, wechat: FakeWeChat) -> None:
    assert {c.method for c in telegram.calls} <= {"getMe", "getWebhookInfo"}
    assert {c.endpoint for c in wechat.calls} == {"token"}


def test_a_healthy_deployment_passes_and_sends_nothing(deployment):
    telegram, wechat, monkeypatch = deployment
    result = doctor(wechat, monkeypatch)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"[ok  ] Telegram getMe: @{BOT_USERNAME}" in out
    assert "[ok  ] WeChat access_token: fetched" in out
    assert "/healthz answers" in out
    assert f"[ok  ] persona {TINY}" in out
    assert "[ok  ] clock: within" in out
    assert "FAIL" not in out and out.rstrip().endswith("all checks passed")
    assert_nothing_sent(telegram, wechat)
    assert_no_secret(out)


def test_a_wrong_appsecret_is_named_with_its_fix_in_chinese(deployment):
    telegram, wechat, monkeypatch = deployment
    monkeypatch.setenv("BRANDBOT_WECHAT_SECRET", "ffffffffffffffffffffffffffffffff")
    result = doctor(wechat, monkeypatch, lang="zh")
    assert result.exit_code == 1
    assert "[失败] 微信 access_token：AppSecret 不对（错误 40125）" in result.output
    assert "重新复制「开发者密码 AppSecret」，填到 BRANDBOT_WECHAT_SECRET" in result.output
    assert "ffffffffffffffffffffffffffffffff" not in result.output
    assert_nothing_sent(telegram, wechat)


def test_an_ip_not_on_the_whitelist_names_the_ip_to_add(deployment):
    telegram, wechat, monkeypatch = deployment
    wechat.fail("token", 40164, times=None)
    result = doctor(wechat, monkeypatch)
    assert result.exit_code == 1
    assert ("this server's IP 203.0.113.7 is not on the account's IP whitelist (error 40164)"
            in result.output)
    assert "add 203.0.113.7 in mp.weixin.qq.com → 设置与开发 → 基本配置 → IP白名单" in result.output
    assert_nothing_sent(telegram, wechat)
    assert_no_secret(result.output)


def test_a_clock_ten_minutes_off_is_found(deployment):
    telegram, wechat, monkeypatch = deployment
    wechat.date_offset = -600  # WeChat's clock says 10 minutes earlier: ours runs ahead
    result = doctor(wechat, monkeypatch)
    assert result.exit_code == 1
    assert "[FAIL] clock: this machine's clock is 10 min" in result.output
    assert "ahead of WeChat" in result.output
    assert "sudo timedatectl set-ntp true" in result.output
    zh = doctor(wechat, monkeypatch, lang="zh").output
    assert "本机时钟比 WeChat 快了 10 分" in zh and "打开自动对时" in zh


def test_a_refused_bot_token_is_explained_without_showing_it(deployment):
    telegram, wechat, monkeypatch = deployment
    monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", "999999:WrongTokenValue_abcdefghijkl")
    result = doctor(wechat, monkeypatch)
    assert result.exit_code == 1
    assert "[FAIL] Telegram getMe: Telegram refused the bot token" in result.output
    assert "@BotFather" in result.output
    assert "WrongTokenValue" not in result.output


def test_an_unreachable_public_url_and_a_webhook_telegram_cannot_reach(deployment):
    telegram, wechat, monkeypatch = deployment
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("BRANDBOT_PUBLIC_URL", f"http://127.0.0.1:{port}/")
    result = doctor(wechat, monkeypatch)
    assert result.exit_code == 1
    assert f"[FAIL] public URL: http://127.0.0.1:{port}/healthz cannot be reached" in result.output
    assert "nginx" in result.output


def test_invalid_settings_exit_2_and_name_the_key(deployment, tmp_path):
    telegram, wechat, monkeypatch = deployment
    (tmp_path / "brandbot.yaml").write_text("prot: 8080\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["doctor", "--lang", "en"])
    assert result.exit_code == 2
    assert "unknown key 'prot'" in result.output and "(did you mean 'port'?)" in result.output
    assert "the settings are invalid" in result.output
    assert telegram.calls == []


def test_a_broken_persona_and_a_webhook_telegram_does_not_know(deployment, tmp_path):
    telegram, wechat, monkeypatch = deployment
    broken = tmp_path / "shop.yaml"
    broken.write_text(TINY.read_text(encoding="utf-8").replace("  emoji: none", "   emoji: none"),
                      encoding="utf-8")
    monkeypatch.setenv("BRANDBOT_PERSONAS", f'["{broken}"]')
    monkeypatch.setenv("BRANDBOT_TELEGRAM_WEBHOOK_URL", "https://bot.example/telegram/webhook")
    monkeypatch.setenv("BRANDBOT_TELEGRAM_WEBHOOK_SECRET", "webhook-secret-value")
    result = doctor(wechat, monkeypatch)
    assert result.exit_code == 1
    assert f"[FAIL] persona {broken}: {broken}:" in result.output
    assert "is indented 3 spaces; the lines around it use 2" in result.output
    assert f"`brandbot check {broken}` lists them all" in result.output
    assert ("[WARN] Telegram webhook: Telegram has none, settings say "
            "https://bot.example/telegram/webhook") in result.output
    assert "webhook-secret-value" not in result.output
    assert_nothing_sent(telegram, wechat)


def test_what_a_server_says_is_shown_escaped(deployment):
    # A Bot API server's error text (or a custom Bot API server's) reaches the operator's
    # terminal: an OSC sequence or a bidi override in it must not act on the terminal.
    telegram, wechat, monkeypatch = deployment
    telegram.fail("getMe", status=400, description="Bad Request: \x1b]0;PWN\x07\u202e!")
    result = doctor(wechat, monkeypatch)
    assert "\\x1b]0;pwn\\x07\\u202e!" in result.output.lower(), result.output
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in result.output
