"""Hostile networks: the WeChat (and Telegram) API unreachable by DNS failure, refused
connection or silence. Real sockets on loopback (a closed port, a server that accepts and never
answers) and a name that never resolves (``nonexistent.invalid``). Whatever fails, the AppSecret
and the bot token appear in no output, exception text or log record, and a CLI says what went
wrong in one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator

import pytest

from bot.channels.wechat_api import Quota, TokenOwner, WeChatAPIError, send_texts
from bot.messages import FanRef, Inbound
from tests.fakes.telegram_api import TOKEN as BOT_TOKEN
from tests.fakes.wechat_api import APP_ID, APP_SECRET, TOKEN
from tests.test_broadcast import PERSONA, add_fans

OPENID = "oUser_unreachable_0123456789"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def api_urls() -> dict[str, str]:
    return {"refused": f"http://127.0.0.1:{closed_port()}/cgi-bin/",
            "dns": "http://nonexistent.invalid/cgi-bin/"}


REASONS = {"refused": "connection refused", "dns": "DNS lookup failed",
           "silent": "no answer in time"}


def assert_secret_free(*texts: str, secrets: tuple[str, ...] = (APP_SECRET,)) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:400]}"


def exception_text(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` would print, chained exceptions included."""
    parts = []
    seen: BaseException | None = exc
    while seen is not None:
        parts.append("".join(traceback.format_exception(seen)) + repr(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


# -- the token owner, in this process --------------------------------------------------------------


@pytest.mark.parametrize("failure", ["refused", "dns", "silent"])
def test_an_unreachable_token_endpoint_is_a_clean_error_without_the_secret(failure, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs request URLs at DEBUG
    with contextlib.ExitStack() as stack:
        if failure == "silent":
            url = f"http://127.0.0.1:{stack.enter_context(silent_server())}/cgi-bin/"
        else:
            url = api_urls()[failure]
        owner = TokenOwner(APP_ID, APP_SECRET, url, timeout=0.5)
        with pytest.raises(WeChatAPIError) as caught:
            owner.token()
        quota = Quota()
        quota.opened_by(OPENID, "message")
        result = send_texts(owner, quota, OPENID, ["hello"])
    exc = caught.value
    assert exc.errcode is None
    assert REASONS[failure] in str(exc), str(exc)
    assert exc.__context__ is None and exc.__cause__ is None  # no original carrying the URL
    assert (result.sent, result.skipped) == (0, 1) and REASONS[failure] in result.reason
    records = "\n".join(
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        + (r.exc_text or "") for r in caplog.records)
    assert_secret_free(exception_text(exc), result.reason, records, caplog.text)


# -- the CLI, as an operator runs it -------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRANDBOT_")}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def wechat_env(api_url: str) -> dict[str, str]:
    return {"BRANDBOT_WECHAT_TOKEN": TOKEN, "BRANDBOT_WECHAT_APPID": APP_ID,
            "BRANDBOT_WECHAT_SECRET": APP_SECRET, "BRANDBOT_WECHAT_VERIFIED": "true",
            "BRANDBOT_WECHAT_API_URL": api_url}


@pytest.mark.parametrize("failure", ["refused", "dns"])
def test_wechat_qrcode_says_the_api_is_unreachable_without_the_secret(failure, tmp_path):
    out = run_cli("wechat", "qrcode", "--scene", "spring26",
                  env=wechat_env(api_urls()[failure]), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "cannot reach the WeChat API" in out.stderr and REASONS[failure] in out.stderr
    assert_secret_free(out.stdout, out.stderr)


@pytest.mark.parametrize("failure", ["refused", "dns"])
def test_handoff_reply_to_a_wechat_fan_reports_not_delivered_without_the_secret(
        failure, tiny_engine, fresh_db, tmp_path):
    fan = FanRef("wechat", OPENID)
    for text in ("你好", "我要投诉"):
        tiny_engine.handle(Inbound(fan, text=text))
    row = fresh_db.find_fan("tiny", "wechat", OPENID)
    assert row["handoff"] == 1
    out = run_cli("handoff", "reply", OPENID, "您好，我是店长", "--db", fresh_db.path,
                  env=wechat_env(api_urls()[failure]), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert f"not delivered to fan {row['id']} on wechat" in out.stderr
    assert REASONS[failure] in out.stderr
    assert_secret_free(out.stdout, out.stderr)
    operator = fresh_db.fetch_one("SELECT count(*) FROM messages WHERE fan_id = ? AND "
                                  "reply_key = 'operator'", (row["id"],))[0]
    assert operator == 0  # nothing logged as said to the fan


@pytest.mark.parametrize("failure", ["refused", "dns"])
def test_broadcast_with_telegram_unreachable_is_one_clear_line_and_resumable(
        failure, fresh_db, tmp_path):
    add_fans(fresh_db, 3, start=1)
    host = f"127.0.0.1:{closed_port()}" if failure == "refused" else "nonexistent.invalid"
    env = {"BRANDBOT_TELEGRAM_TOKEN": BOT_TOKEN, "BRANDBOT_TELEGRAM_API_URL": f"http://{host}/bot"}
    out = run_cli("broadcast", "-p", PERSONA, "-t", "新菜上线", "--db", fresh_db.path,
                  env=env, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert "cannot reach the Telegram API" in errors[0]
    assert "brandbot broadcast resume 1" in errors[0]
    assert_secret_free(out.stdout, out.stderr, secrets=(BOT_TOKEN, BOT_TOKEN.split(":")[1]))
    queued = fresh_db.fetch_one("SELECT count(*) FROM deliveries WHERE status = 'queued'")[0]
    assert queued == 3  # nothing lost: resume sends them once the API is back


# -- the channel's proactive send, in this process ------------------------------------------------


@pytest.mark.parametrize("failure", ["refused", "dns"])
def test_a_proactive_send_with_the_api_unreachable_is_not_sent_and_recorded(
        failure, tiny_engine, fresh_db, caplog):
    from bot.channels.base import NotSent
    from bot.messages import Reply
    from tests.test_wechat import channel, run

    caplog.set_level(logging.DEBUG)

    async def scenario():
        async with channel(tiny_engine, app_secret=APP_SECRET, verified=True,
                           api_url=api_urls()[failure]) as h:
            assert h.reply(await h.text("几点开门", 7101, openid=OPENID))["Content"]
            return await h.channel.send(FanRef("wechat", OPENID), [Reply("店长：已为您安排")])

    result = run(scenario())
    assert isinstance(result, NotSent) and result.skipped == 1
    assert REASONS[failure] in result.reason
    event = fresh_db.fetch_one(
        "SELECT e.payload FROM events e JOIN fans f ON f.id = e.fan_id "
        "WHERE f.external_id = ? AND e.kind = 'not_delivered'", (OPENID,))
    assert event is not None and REASONS[failure] in event[0]
    assert_secret_free(result.reason, event[0], caplog.text)


def test_handoff_reply_to_a_telegram_fan_with_the_api_unreachable(tiny_engine, fresh_db,
                                                                   tmp_path):
    fan = FanRef("telegram", "4242")
    for text in ("你好", "我要投诉"):
        tiny_engine.handle(Inbound(fan, text=text))
    row = fresh_db.find_fan("tiny", "telegram", "4242")
    assert row["handoff"] == 1
    env = {"BRANDBOT_TELEGRAM_TOKEN": BOT_TOKEN,
           "BRANDBOT_TELEGRAM_API_URL": f"http://127.0.0.1:{closed_port()}/bot"}
    out = run_cli("handoff", "reply", "4242", "您好，我是店长", "--db", fresh_db.path,
                  env=env, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert f"not delivered to fan {row['id']} on telegram" in out.stderr
    assert "cannot reach the Telegram API" in out.stderr
    assert_secret_free(out.stdout, out.stderr, secrets=(BOT_TOKEN, BOT_TOKEN.split(":")[1]))
