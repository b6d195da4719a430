"""The WeChat channel end to end: real HTTP (uvicorn on loopback), real wechatpy crypto, the real
engine with real personas and a temporary SQLite file, and a fake WeChat API server over HTTP.

Each test is one ``asyncio.run``: the channel's routes are served by uvicorn on a free port in
the test's loop; the fake WeChat API runs in its own thread (the channel calls it from worker
threads, as in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import pytest
from starlette.applications import Starlette

from bot.channels.wechat import WeChatChannel, WeChatChannelSettings, read_push
from bot.channels.wechat_crypto import PushRejected
from bot.engine import Engine
from tests.conftest import run_async as run
from tests.conftest import serve_asgi as serve
from tests.fakes.wechat_api import (
    ACCOUNT,
    AES_KEY,
    APP_ID,
    APP_SECRET,
    OLD_AES_KEY,
    TOKEN,
    FakeWeChat,
    Pusher,
    event_push,
    text_push,
    xml_push,
)

OPENID = "oUser_0123456789abcdefABCDEF"


class Harness:
    """A served channel plus an HTTP client posting to it."""

    def __init__(self, channel: WeChatChannel, client: httpx.AsyncClient, pusher: Pusher):
        self.channel, self.client, self.pusher = channel, client, pusher

    async def post(self, params, body: bytes, **kwargs) -> httpx.Response:
        return await self.client.post("/wechat", params=params, content=body, **kwargs)

    async def text(self, content: str, msg_id: int, openid: str = OPENID,
                   encrypted: bool | None = None) -> httpx.Response:
        return await self.send(text_push(openid, content, msg_id), encrypted)

    async def send(self, xml: str, encrypted: bool | None = None) -> httpx.Response:
        if encrypted is None:
            encrypted = self.channel.settings.encryption == "safe"
        params, body = self.pusher.encrypted(xml) if encrypted else self.pusher.plain(xml)
        return await self.post(params, body)

    def reply(self, response: httpx.Response) -> dict[str, str]:
        assert response.status_code == 200, response.text
        assert response.content, "expected a passive reply, got an empty body"
        return self.pusher.open_reply(response.content)


@contextlib.asynccontextmanager
async def channel(turns, persona: str = "tiny", *, fake: FakeWeChat | None = None,
                  clock=time.time, **settings):
    settings.setdefault("token", TOKEN)
    settings.setdefault("app_id", APP_ID)
    if fake is not None:
        settings.setdefault("app_secret", APP_SECRET)
        settings.setdefault("api_url", fake.api_url)
    wechat = WeChatChannel(turns, persona, WeChatChannelSettings(**settings), clock=clock)
    app = Starlette(routes=wechat.routes())
    async with serve(app) as port:
        await wechat.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            try:
                yield Harness(wechat, client, Pusher(aes_key=settings.get("aes_key"),
                                                     clock=clock))
            finally:
                await wechat.stop()


def rows(store, sql: str, *args):
    return [dict(r) for r in store.conn.execute(sql, args).fetchall()]


def inbound_count(store, openid: str = OPENID) -> int:
    return store.conn.execute(
        "SELECT count(*) FROM messages m JOIN fans f ON f.id = m.fan_id "
        "WHERE f.external_id = ? AND m.direction = 'in'", (openid,)).fetchone()[0]


async def until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# -- verification --------------------------------------------------------------------------------


def test_get_verification_with_tencents_published_example(tiny_engine):
    """Token AAAAA, timestamp 1714036504, nonce 1514711492 → f464b24f… (protocol notes W2)."""
    async def scenario():
        async with channel(tiny_engine, token="AAAAA", clock=lambda: 1714036504 + 30) as h:
            ok = await h.client.get("/wechat", params={
                "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
                "timestamp": "1714036504", "nonce": "1514711492", "echostr": "echo-42"})
            assert (ok.status_code, ok.text) == (200, "echo-42")
            forged = await h.client.get("/wechat", params={
                "signature": "f464b24fc39322e44b38aa78f5edd27bd1441697",
                "timestamp": "1714036504", "nonce": "1514711492", "echostr": "echo-42"})
            assert forged.status_code == 403 and "echo-42" not in forged.text
    run(scenario())


def test_get_verification_refuses_a_stale_timestamp(tiny_engine):
    async def scenario():
        async with channel(tiny_engine, token="AAAAA") as h:  # real clock: 2024 is stale
            r = await h.client.get("/wechat", params={
                "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
                "timestamp": "1714036504", "nonce": "1514711492", "echostr": "x"})
            assert r.status_code == 403
    run(scenario())


# -- round trips ---------------------------------------------------------------------------------


def test_plain_mode_round_trip(tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine) as h:
            reply = h.reply(await h.text("几点开门", 1001))
            assert reply["MsgType"] == "text"
            assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, ACCOUNT)
            assert "欢迎来到小店" in reply["Content"] and "营业时间" in reply["Content"]
            assert abs(int(reply["CreateTime"]) - time.time()) < 5
    run(scenario())
    assert inbound_count(fresh_db) == 1


def test_safe_mode_round_trip_with_wechatpy_crypto(tiny_engine):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            r = await h.text("有停车位吗", 1002)
            assert b"<Encrypt>" in r.content and "停车" not in r.text  # nothing in clear
            assert "停车：门口有5个车位" in h.reply(r)["Content"]
            # A plaintext push to a channel in safe mode is refused.
            plain = await h.text("有停车位吗", 1003, encrypted=False)
            assert plain.status_code == 403
    run(scenario())


def test_compatible_mode_accepts_both_and_answers_in_kind(tiny_engine):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY, encryption="compatible") as h:
            xml = text_push(OPENID, "有停车位吗", 1004)
            params, body = h.pusher.encrypted(xml, compatible=True)
            r = await h.post(params, body)
            assert b"<Encrypt>" in r.content and "停车" in h.reply(r)["Content"]
            r = await h.text("几点开门", 1005, encrypted=False)
            assert b"<Encrypt>" not in r.content and "营业时间" in h.reply(r)["Content"]
    run(scenario())


def test_key_rotation_decrypts_with_the_previous_key_and_answers_with_it(tiny_engine):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY, previous_aes_key=OLD_AES_KEY) as h:
            params, body = h.pusher.encrypted(text_push(OPENID, "几点开门", 1006),
                                              aes_key=OLD_AES_KEY)
            r = await h.post(params, body)
            assert "营业时间" in h.pusher.open_reply(r.content, aes_key=OLD_AES_KEY)["Content"]
            with pytest.raises(Exception):  # noqa: B017 - it is not readable with the new key
                h.pusher.open_reply(r.content, aes_key=AES_KEY)
            params, body = h.pusher.encrypted(text_push(OPENID, "有停车位吗", 1007))
            r = await h.post(params, body)
            assert "停车" in h.pusher.open_reply(r.content, aes_key=AES_KEY)["Content"]
        # Without the previous key, a push under the old key cannot be read.
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            params, body = h.pusher.encrypted(text_push(OPENID, "几点开门", 1008),
                                              aes_key=OLD_AES_KEY)
            assert (await h.post(params, body)).status_code == 400
    run(scenario())


# -- refusals ------------------------------------------------------------------------------------


def test_forged_stale_and_foreign_pushes_are_refused_and_nothing_is_processed(
        tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            xml = text_push(OPENID, "几点开门", 2001)
            # Forged signature (signed with another token).
            params, body = h.pusher.encrypted(xml)
            params["signature"] = Pusher.signature("notOurToken", params["timestamp"],
                                                   params["nonce"])
            assert (await h.post(params, body)).status_code == 403
            # Missing query parameters.
            assert (await h.post({}, body)).status_code == 403
            # Stale timestamp (10 minutes old), correctly signed.
            params, body = h.pusher.encrypted(xml, timestamp=str(int(time.time()) - 600))
            assert (await h.post(params, body)).status_code == 403
            # Forged msg_signature.
            params, body = h.pusher.encrypted(xml)
            params["msg_signature"] = "0" * 40
            assert (await h.post(params, body)).status_code == 403
            # Encrypted for another AppID.
            params, body = h.pusher.encrypted(xml, app_id="wxSomebodyElse00000")
            assert (await h.post(params, body)).status_code == 403
            # Corrupt ciphertexts, correctly signed: not base64, wrong length, flipped bytes.
            good = h.pusher.encrypted(xml)[1].decode()
            encrypt = good.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
            flipped = encrypt[:20] + ("A" if encrypt[20] != "A" else "B") + encrypt[21:]
            for bad in ("!!not base64!!", "QUJD", flipped[:-8] + "AAAAAAA=", flipped):
                params, body = h.pusher.sign_encrypt(bad)
                assert (await h.post(params, body)).status_code in (400, 403), bad
            params, body = h.pusher.sign_encrypt("!!not base64!!")
            assert (await h.post(params, body)).status_code == 400
            # An encrypted push without <Encrypt>.
            params = {**h.pusher.query(), "encrypt_type": "aes", "msg_signature": "0" * 40}
            assert (await h.post(params, xml.encode())).status_code == 400
    run(scenario())
    assert inbound_count(fresh_db) == 0


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>2</MsgId></xml>"""


def test_hostile_and_malformed_bodies_get_400_or_413_and_nothing_crashes(tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY, encryption="compatible") as h:
            bodies = {
                "xxe": XXE,
                "billion laughs": LAUGHS,
                "invalid utf-8": b"<xml><ToUserName>gh</ToUserName><FromUserName>o\xff\xfe"
                                 b"</FromUserName></xml>",
                "not xml": b"hello",
                "empty": b"",
                "other root": b"<html><body/></html>",
                "missing MsgType": xml_push({"ToUserName": ACCOUNT, "FromUserName": OPENID,
                                             "CreateTime": 1}).encode(),
                "missing FromUserName": xml_push({"ToUserName": ACCOUNT, "CreateTime": 1,
                                                  "MsgType": "text", "Content": "hi"}).encode(),
                "bad CreateTime": xml_push({"ToUserName": ACCOUNT, "FromUserName": OPENID,
                                            "CreateTime": "yesterday", "MsgType": "text",
                                            "Content": "hi"}).encode(),
                "bad OpenID": xml_push({"ToUserName": ACCOUNT, "FromUserName": "o<script>",
                                        "CreateTime": 1, "MsgType": "text",
                                        "Content": "hi"}).encode(),
            }
            for name, body in bodies.items():
                r = await h.post(h.pusher.query(), body)
                assert r.status_code == 400, name
                # The same inside an encrypted envelope (the decrypted XML is parsed safely too).
                if body:
                    params, wrapped = h.pusher.encrypted(body.decode("utf-8", "replace"))
                    if name != "invalid utf-8":
                        r = await h.post(params, wrapped)
                        assert r.status_code == 400, f"encrypted {name}"
            big = b"<xml>" + b"x" * 1_048_576 + b"</xml>"
            r = await h.post(h.pusher.query(), big)
            assert r.status_code == 413
            # A chunked body (no Content-Length) over the cap is cut off too.

            async def chunks():
                for _ in range(20):
                    yield b"x" * 65_536

            r = await h.client.post("/wechat", params=h.pusher.query(), content=chunks())
            assert r.status_code == 413
            # Still serving afterwards.
            assert "营业时间" in h.reply(await h.text("几点开门", 3001, encrypted=False))["Content"]
    run(scenario())
    assert inbound_count(fresh_db) == 1


def test_a_json_push_gets_a_clear_log_line(tiny_engine, caplog):
    async def scenario():
        async with channel(tiny_engine) as h:
            body = b'{"ToUserName": "gh_x", "FromUserName": "oUser", "MsgType": "text"}'
            r = await h.post(h.pusher.query(), body)
            assert r.status_code == 400
    with caplog.at_level(logging.INFO):
        run(scenario())
    assert any("data format" in r.getMessage() and "XML" in r.getMessage()
               for r in caplog.records)


# -- what each push does -------------------------------------------------------------------------


def test_every_message_and_event_type_is_answered_in_voice_or_ignored(tiny_engine, fresh_db):
    now = int(time.time())

    def push(msg_type: str, msg_id: int, **fields) -> str:
        return xml_push({"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": now,
                         "MsgType": msg_type, **fields, "MsgId": msg_id})

    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            replies = {}
            for name, xml in {
                "follow": event_push(OPENID, "subscribe", create_time=now),
                "text": text_push(OPENID, "几点开门", 4001),
                "voice+recognition": push("voice", 4002, MediaId="m", Format="amr",
                                          Recognition="有停车位吗"),
                "voice": push("voice", 4003, MediaId="m", Format="amr", Recognition=""),
                "image": push("image", 4004, PicUrl="http://x/p.jpg", MediaId="m"),
                "location": push("location", 4005, Location_X="23.1", Location_Y="113.3",
                                 Scale="20", Label="somewhere"),
                "link": push("link", 4006, Title="t", Description="d", Url="http://x"),
                "video": push("video", 4007, MediaId="m", ThumbMediaId="t"),
                "shortvideo": push("shortvideo", 4008, MediaId="m", ThumbMediaId="t"),
                "unknown type": push("miniprogrampage", 4009, Title="t"),
                "click": event_push(OPENID, "CLICK", "MENU_HOURS", create_time=now + 1),
                "view": event_push(OPENID, "VIEW", "http://x", create_time=now + 2),
                "auto location": event_push(OPENID, "LOCATION", create_time=now + 3,
                                            Latitude="23.1", Longitude="113.3", Precision="1"),
                "job finished": event_push(OPENID, "TEMPLATESENDJOBFINISH",
                                           create_time=now + 4, Status="success"),
                "unknown event": event_push(OPENID, "user_authorization_revoke",
                                            create_time=now + 5),
            }.items():
                r = await h.send(xml)
                assert r.status_code == 200, name
                replies[name] = h.pusher.open_reply(r.content)["Content"] if r.content else ""
            return replies

    replies = run(scenario())
    assert "欢迎" in replies["follow"]
    assert "营业时间" in replies["text"]
    assert "停车" in replies["voice+recognition"]
    assert replies["voice"] == "我还听不了语音，请打字"
    for name in ("image", "location", "link", "video", "shortvideo", "unknown type"):
        assert replies[name] == "收到图片啦", name
    for name in ("view", "auto location", "job finished", "unknown event"):
        assert replies[name] == "", name
    assert replies["click"]  # the tiny persona maps no menu keys: an in-voice fallback
    kinds = [r["text"] for r in rows(fresh_db, "SELECT text FROM messages WHERE direction = "
                                               "'in' ORDER BY id")]
    assert "23.1" not in " ".join(kinds) and "http://x" not in " ".join(kinds)


def test_read_push_maps_scenes_clicks_and_unfollows():
    def fields(**extra):
        return {"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1700000000",
                **extra}

    sub = read_push(fields(MsgType="event", Event="subscribe", EventKey="qrscene_camp42"))
    assert sub.inbound.event == "follow" and sub.inbound.payload["ref"] == "camp42"
    assert sub.inbound.platform_msg_id == f"{OPENID}:1700000000:subscribe:qrscene_camp42"
    scan = read_push(fields(MsgType="event", Event="SCAN", EventKey="camp43"))
    assert scan.inbound.event == "follow" and scan.inbound.payload["ref"] == "camp43"
    assert scan.window == "event"
    gone = read_push(fields(MsgType="event", Event="unsubscribe"))
    assert gone.inbound.event == "unfollow" and not gone.answer and gone.window is None
    click = read_push(fields(MsgType="event", Event="CLICK", EventKey="MENU_HOURS"))
    assert click.inbound.event == "click" and click.inbound.payload == {"key": "MENU_HOURS"}
    other = read_push(fields(MsgType="event", Event="CLICK", EventKey="MENU_LOCATION"))
    assert other.inbound.platform_msg_id != click.inbound.platform_msg_id  # same second
    assert isinstance(read_push(fields(MsgType="event", Event="VIEW")), str)
    text = read_push(fields(MsgType="text", Content="hi", MsgId="9"))
    assert text.inbound.platform_msg_id == "9" and text.window == "message"
    assert read_push(fields(MsgType="text", Content="  ")) == "empty text"
    with pytest.raises(PushRejected):
        read_push({"MsgType": "text"})
    with pytest.raises(PushRejected):
        read_push(fields(MsgType="text", FromUserName="../../etc"))


def test_menu_clicks_use_the_personas_map(fresh_db, demo_brand):
    engine = Engine(fresh_db, demo_brand, seed=1)

    async def scenario():
        async with channel(engine, "laowang-kitchen") as h:
            await h.send(event_push(OPENID, "subscribe"))
            r = await h.send(event_push(OPENID, "CLICK", "MENU_HOURS",
                                        create_time=int(time.time()) + 1))
            return h.reply(r)["Content"]

    text = run(scenario())
    last = rows(fresh_db, "SELECT text, reply_key FROM messages WHERE direction = 'out' "
                          "ORDER BY id DESC LIMIT 1")[0]
    assert last["reply_key"] == "hours" and last["text"] == text


def test_a_qr_scene_is_recorded_as_the_fans_campaign_and_a_later_scan_as_a_touch(
        tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine) as h:
            now = int(time.time())
            first = h.reply(await h.send(event_push(OPENID, "subscribe", "qrscene_spring26",
                                                    create_time=now, Ticket="T")))
            later = h.reply(await h.send(event_push(OPENID, "SCAN", "autumn26",
                                                    create_time=now + 5, Ticket="T2")))
            return first["Content"], later["Content"]

    welcome, greeting = run(scenario())
    assert "欢迎" in welcome and greeting
    fan = rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID)[0]
    assert fan["source_code"] == "spring26"
    touches = rows(fresh_db, "SELECT payload FROM events WHERE kind = 'touch'")
    assert [t["payload"] for t in touches] == ['{"code":"autumn26"}']


def test_unfollow_marks_the_fan_and_forgets_their_personal_data(tiny_engine, fresh_db):
    async def scenario():  # safe mode: the unsubscribe's body is signed, so it is acted on at once
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            now = int(time.time())
            await h.send(event_push(OPENID, "subscribe", "qrscene_spring26", create_time=now))
            await h.text("我叫王小明，几点开门", 5001)
            r = await h.send(event_push(OPENID, "unsubscribe", create_time=now + 9))
            assert (r.status_code, r.content) == (200, b"")
            # WeChat re-sends it: no second turn, no new fan row.
            r = await h.send(event_push(OPENID, "unsubscribe", create_time=now + 9))
            assert (r.status_code, r.content) == (200, b"")

    run(scenario())
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID) == []
    fans = rows(fresh_db, "SELECT * FROM fans")
    assert len(fans) == 1
    fan = fans[0]
    assert fan["external_id"] == f"forgotten-{fan['id']}"
    assert fan["blocked"] == 1 and fan["subscribed"] == 0
    assert fan["source_code"] == "spring26"  # the campaign still counts
    texts = rows(fresh_db, "SELECT text, platform_msg_id FROM messages")
    assert texts and all(t["text"] == "" and t["platform_msg_id"] is None for t in texts)
    assert rows(fresh_db, "SELECT count(*) AS n FROM events WHERE kind = 'unfollow'")[0]["n"] == 1


# -- retries and the 5-second rule ---------------------------------------------------------------


def test_a_push_resent_three_times_runs_one_turn_and_gets_three_identical_replies(
        tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            xml = text_push(OPENID, "几点开门", 6001)
            sequential = [h.reply(await h.send(xml))["Content"] for _ in range(3)]
            concurrent = await asyncio.gather(*(h.send(text_push(OPENID, "有停车位吗", 6002))
                                                for _ in range(3)))
            return sequential, [h.reply(r)["Content"] for r in concurrent]

    sequential, concurrent = run(scenario())
    assert len(set(sequential)) == 1 and "营业时间" in sequential[0]
    assert len(set(concurrent)) == 1 and "停车" in concurrent[0]
    assert inbound_count(fresh_db) == 2


def slow(engine: Engine, release: asyncio.Event):
    """A turn runner that is slow (like a slow LLM): it runs the real engine's turn only once
    the test sets ``release``, so "while the turn runs" is a state, not a race."""
    async def run_turn(inbound, persona):
        await release.wait()
        return (await asyncio.to_thread(engine.handle_turn, inbound, persona)).replies
    return run_turn


def test_a_slow_turn_answers_empty_then_sends_through_customer_service(tiny_engine, fresh_db):
    with FakeWeChat() as fake:
        async def scenario():
            release = asyncio.Event()
            async with channel(slow(tiny_engine, release), fake=fake, aes_key=AES_KEY,
                               verified=True, reply_budget=0.05) as h:
                # Answered (empty) while the turn still waits: the budget, not the turn.
                r = await h.text("几点开门", 7001)
                assert (r.status_code, r.content) == (200, b"")
                assert fake.sent() == []
                # WeChat re-sends while the turn runs, and after: no second turn or send.
                r2 = await h.text("几点开门", 7001)
                assert r2.content == b""
                release.set()
                await until(lambda: fake.sent())
                r3 = await h.text("几点开门", 7001)
                assert r3.content == b""
            # Leaving the block stops the channel, which finishes every turn and send in flight.
            return fake.sent()

        sent = run(scenario())
    assert len(sent) == 1
    assert sent[0].body["touser"] == OPENID and sent[0].body["msgtype"] == "text"
    assert "营业时间" in sent[0].body["text"]["content"]
    assert inbound_count(fresh_db) == 1


def test_a_slow_turn_on_an_unverified_account_is_logged_not_sent(tiny_engine, caplog):
    with FakeWeChat() as fake:
        async def scenario():
            release = asyncio.Event()
            async with channel(slow(tiny_engine, release), fake=fake, reply_budget=0.05) as h:
                r = await h.text("几点开门", 7101)
                assert r.content == b""
                release.set()
                await until(lambda: any("not verified" in m.getMessage()
                                        for m in caplog.records))
        with caplog.at_level(logging.INFO):
            run(scenario())
        assert fake.calls == []


def test_long_replies_are_split_passive_first_then_customer_service(fresh_db, tiny_brand):
    engine = Engine(fresh_db, tiny_brand, seed=1)
    long_text = ("这是一句很长的话。" * 150).strip()

    async def echo_long(inbound, persona):
        replies = (await asyncio.to_thread(engine.handle_turn, inbound, persona)).replies
        return [*replies, type(replies[0])(long_text + "]]> end")]

    with FakeWeChat() as fake:
        async def scenario():
            async with channel(echo_long, fake=fake, verified=True) as h:
                r = await h.text("几点开门", 8001)
                first = h.reply(r)["Content"]
                await until(lambda: len(fake.sent()) >= 1)
            # Leaving the block stops the channel, which finishes the sends in flight.
            return first, [c.body["text"]["content"] for c in fake.sent()]

        first, rest = run(scenario())
    assert len(first.encode()) <= 1800 and "营业时间" in first
    assert all(len(p.encode()) <= 1800 for p in rest)
    assert (first + "".join(rest)).replace("\n", "").count("这是一句很长的话。") == 150
    assert rest[-1].endswith("]]> end")


def test_cdata_terminator_in_a_reply_never_breaks_the_xml(fresh_db, tiny_brand):
    engine = Engine(fresh_db, tiny_brand, seed=1)
    tricky = "a]]><b>x</b>]]]]>&amp;<![CDATA[ \x01\x0b ok"

    async def tricky_turn(inbound, persona):
        await asyncio.to_thread(engine.handle_turn, inbound, persona)
        from bot.messages import Reply
        return [Reply(tricky)]

    async def scenario():
        results = []
        for aes in (None, AES_KEY):
            async with channel(tricky_turn, aes_key=aes) as h:
                r = await h.text("hi", 8101 + (aes is not None))
                results.append(h.reply(r)["Content"])
        return results

    for content in run(scenario()):
        assert content == "a]]><b>x</b>]]]]>&amp;<![CDATA[  ok"
