"""Campaign links ready to print: public_url and the bot's username from the settings (or getMe),
and `brandbot campaign qr CODE -o poster.png|svg` whose image decodes back to the link."""

from __future__ import annotations

import asyncio
import threading
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image

from bot.cli import main
from bot.relations import Store
from bot.relations.campaigns import create_campaign
from tests.conftest import clear_brandbot_env
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegram


@pytest.fixture
def env(tmp_path, monkeypatch, clock):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "brandbot.db"
    store = Store(db)
    create_campaign(store, "tiny", "spring poster", clock.now, code="spring26")
    store.close()
    return str(db), monkeypatch


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def decode(path) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(Image.open(path))]


def test_links_use_public_url_and_bot_username_from_the_settings(env, tmp_path):
    db, monkeypatch = env
    (tmp_path / "brandbot.yaml").write_text(
        "public_url: https://chat.laowang.example/\ntelegram: {bot_username: '@laowang_bot'}\n",
        encoding="utf-8")
    out = invoke("campaign", "create", "Expo", "--code", "expo26", "--db", db).output
    assert "https://t.me/laowang_bot?start=expo26" in out
    assert "https://chat.laowang.example/?ref=expo26" in out
    assert "`brandbot wechat qrcode --scene expo26`" in out
    assert "<bot_username>" not in out and "WeChatChannel.qrcode" not in out


def test_without_a_username_the_telegram_line_says_what_to_set(env):
    db, _ = env
    result = invoke("campaign", "create", "Expo", "--code", "expo27", "--db", db)
    assert result.exit_code == 0, result.output
    assert "<bot_username>" not in result.output
    assert "set telegram.bot_username or BRANDBOT_TELEGRAM_TOKEN" in result.output
    assert "public_url is not set" in result.output


def test_the_username_is_asked_with_getme_when_only_the_token_is_set(env):
    db, monkeypatch = env
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = asyncio.run_coroutine_threadsafe(FakeTelegram().start(), loop).result(10)
    try:
        monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", fake.token)
        monkeypatch.setenv("BRANDBOT_TELEGRAM_API_URL", fake.base_url)
        monkeypatch.setenv("BRANDBOT_PUBLIC_URL", "https://chat.example/")
        result = invoke("campaign", "qr", "spring26", "-o", "tg.png", "--channel", "telegram",
                        "--db", db)
        assert result.exit_code == 0, result.output
        assert decode("tg.png") == [f"https://t.me/{BOT_USERNAME}?start=spring26"]
        assert [c.method for c in fake.calls] == ["getMe"]
        assert fake.token not in result.output
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_a_png_poster_decodes_to_the_web_link(env):
    db, monkeypatch = env
    monkeypatch.setenv("BRANDBOT_PUBLIC_URL", "https://chat.laowang.example/")
    result = invoke("campaign", "qr", "spring26", "-o", "poster.png", "--db", db)
    assert result.exit_code == 0, result.output
    assert decode("poster.png") == ["https://chat.laowang.example/?ref=spring26"]
    assert "wrote poster.png: https://chat.laowang.example/?ref=spring26" in result.output


def test_an_svg_poster_is_an_svg_document_of_the_same_code(env):
    db, monkeypatch = env
    monkeypatch.setenv("BRANDBOT_PUBLIC_URL", "https://chat.laowang.example/")
    assert invoke("campaign", "qr", "spring26", "-o", "poster.svg", "--db", db).exit_code == 0
    assert invoke("campaign", "qr", "spring26", "-o", "same.png", "--db", db,
                  "--scale", "1").exit_code == 0
    root = ET.parse("poster.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # Same symbol: the SVG at scale 10 is ten times the size of the 1-pixel-per-module PNG.
    assert int(root.get("width")) == 10 * Image.open("same.png").width
    assert decode("same.png") == ["https://chat.laowang.example/?ref=spring26"]


def test_a_fans_referral_code_can_be_printed_too(env, tiny_engine, fresh_db):
    from bot.messages import FanRef, Inbound

    db, monkeypatch = env
    tiny_engine.handle(Inbound(FanRef("console", "alice"), text="你好"))
    code = fresh_db.find_fan("tiny", "console", "alice")["referral_code"]
    monkeypatch.setenv("BRANDBOT_PUBLIC_URL", "https://chat.example/")
    result = invoke("campaign", "qr", code, "-o", "alice.png", "--db", db)
    assert result.exit_code == 0, result.output
    assert decode("alice.png") == [f"https://chat.example/?ref={code}"]


@pytest.mark.parametrize("args, message", [
    (["nope26", "-o", "p.png"], "no campaign or fan with code 'nope26'"),
    (["spring26", "-o", "p.jpg"], "write the image as .png or .svg"),
    (["bad code", "-o", "p.png"], "cannot travel in a link"),
])
def test_bad_requests_are_refused_with_the_fix(env, args, message):
    db, monkeypatch = env
    monkeypatch.setenv("BRANDBOT_PUBLIC_URL", "https://chat.example/")
    result = invoke("campaign", "qr", *args, "--db", db)
    assert result.exit_code == 1 and message in result.output


def test_a_web_qr_code_without_public_url_is_refused(env):
    db, _ = env
    result = invoke("campaign", "qr", "spring26", "-o", "p.png", "--db", db)
    assert result.exit_code == 1
    assert "set public_url" in result.output and "127.0.0.1 opens nothing" in result.output
