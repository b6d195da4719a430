"""`brandbot serve` with WeChat enabled by the environment alone, end to end over real HTTP.

The daemon is a real subprocess; pushes are signed and encrypted with wechatpy as WeChat does
(tests/fakes/wechat_api.py `Pusher`); the WeChat API is the local fake (BRANDBOT_WECHAT_API_URL).
"""

from __future__ import annotations

import json
import socket
import sqlite3

from tests.fakes.wechat_api import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChat,
    Pusher,
    event_push,
    text_push,
)
from tests.test_daemon import edit, poll, serve, tiny_args, workdir  # noqa: F401 - fixtures


def wechat_env(api_url: str) -> dict[str, str]:
    return {"BRANDBOT_WECHAT_TOKEN": TOKEN, "BRANDBOT_WECHAT_APPID": APP_ID,
            "BRANDBOT_WECHAT_SECRET": APP_SECRET, "BRANDBOT_WECHAT_AES_KEY": AES_KEY,
            "BRANDBOT_WECHAT_VERIFIED": "true", "BRANDBOT_WECHAT_API_URL": api_url}


def post(daemon, pusher: Pusher, xml: str):
    query, body = pusher.encrypted(xml)
    path = "/wechat?" + "&".join(f"{k}={v}" for k, v in query.items())
    return daemon.request("POST", path, body, {"Content-Type": "text/xml"})


def test_safe_mode_conversation_referral_and_unfollow(serve, workdir):  # noqa: F811
    pusher = Pusher(aes_key=AES_KEY)
    with FakeWeChat() as fake:
        daemon = serve(*tiny_args(workdir), env=wechat_env(fake.api_url)).wait_ready()
        daemon.wait_for_log(r"channel wechat: on, .*/wechat \(safe mode, verified account\)")

        status, body, _ = post(daemon, pusher, event_push("o-ann", "subscribe", "qrscene_SPRING"))
        assert status == 200
        assert pusher.open_reply(body)["Content"].startswith("欢迎来到小店")

        status, body, _ = post(daemon, pusher, text_push("o-ann", "几点开门", 7001))
        assert status == 200 and pusher.open_reply(body)["Content"] == "营业时间：每天9点到21点"
        again = post(daemon, pusher, text_push("o-ann", "几点开门", 7001))  # WeChat's retry
        assert again[0] == 200
        assert pusher.open_reply(again[1])["Content"] == "营业时间：每天9点到21点"

        forged = daemon.request("POST", "/wechat?signature=x&timestamp=1&nonce=2", b"<xml/>")
        assert forged[0] == 403

        with sqlite3.connect(workdir / "brandbot.db") as conn:
            fan = conn.execute(
                "SELECT id, source_code FROM fans WHERE channel = 'wechat'").fetchone()
            assert fan[1] == "SPRING"
            inbound = conn.execute("SELECT count(*) FROM messages WHERE fan_id = ? AND "
                                   "direction = 'in' AND text = '几点开门'", (fan[0],)).fetchone()
            assert inbound == (1,)

        status, _, _ = post(daemon, pusher, event_push("o-ann", "unsubscribe"))
        assert status == 200
        with sqlite3.connect(workdir / "brandbot.db") as conn:
            assert conn.execute("SELECT count(*) FROM fans WHERE external_id = 'o-ann'"
                                ).fetchone() == (0,)  # personal data forgotten (WeChat rules)
        daemon.signal(15)
        assert daemon.wait() == 0
    for secret in (APP_SECRET, AES_KEY, TOKEN):
        assert secret not in daemon.output


def test_customer_service_sends_with_the_api_unreachable_are_recorded_not_delivered(
        serve, workdir):  # noqa: F811
    """The token request fails (connection refused): the rest of a long welcome is recorded as
    not delivered, with the reason; no task dies unseen and no secret reaches the log."""
    long_welcome = "欢迎来到{brand}，{fan}！" + "这是一段很长的欢迎词。" * 200
    edit(workdir / "personas" / "tiny.yaml", '"欢迎来到{brand}，{fan}！"', f'"{long_welcome}"')
    with socket.socket() as sock:  # a loopback port nobody listens on: connections refused
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    pusher = Pusher(aes_key=AES_KEY)
    daemon = serve(*tiny_args(workdir), env={
        **wechat_env(f"http://127.0.0.1:{closed}/cgi-bin/"), "BRANDBOT_LOG_LEVEL": "debug",
    }).wait_ready()
    status, body, _ = post(daemon, pusher, event_push("o-bob", "subscribe"))
    assert status == 200
    assert pusher.open_reply(body)["Content"].startswith("欢迎来到小店")  # the first piece
    line = daemon.wait_for_log(r"not delivered", timeout=20)
    assert "connection refused" in line
    db = workdir / "brandbot.db"
    payload = poll(lambda: sqlite3.connect(db).execute(
        "SELECT e.payload FROM events e JOIN fans f ON f.id = e.fan_id "
        "WHERE f.external_id = 'o-bob' AND e.kind = 'not_delivered'").fetchone(), 10)
    assert payload is not None
    recorded = json.loads(payload[0])
    assert recorded["channel"] == "wechat" and recorded["messages"] >= 1
    assert "cannot reach the WeChat API: connection refused" in recorded["reason"]
    daemon.signal(15)
    assert daemon.wait() == 0
    assert "Task exception was never retrieved" not in daemon.output
    assert "Traceback" not in daemon.output
    for secret in (APP_SECRET, AES_KEY, TOKEN):
        assert secret not in daemon.output
