"""Forged pushes in plain and compatible mode, where the signature covers token, timestamp and
nonce but not the body: a signed URL replayed with another body is refused (403), WeChat's retry
of the same push is still a retry, the pairs outlive a restart, and an unsubscribe nobody signed
never forgets a fan at once. Real HTTP, real engine, real SQLite (tests/test_wechat.py's harness).
"""

from __future__ import annotations

import re
import time

from bot.channels.wechat import WeChatChannel, WeChatChannelSettings
from tests.fakes.wechat_api import AES_KEY, APP_ID, TOKEN, event_push, text_push
from tests.test_wechat import OPENID, channel, inbound_count, rows, run

OTHER = "oVictim_9876543210fedcbaFEDCBA"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_signed_url_replayed_with_another_body_is_refused(tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine) as h:
            query, body = h.pusher.plain(text_push(OPENID, "几点开门", 8001))
            first = await h.post(query, body)
            assert first.status_code == 200
            forged = text_push(OTHER, "我要投诉", 8002)  # another fan, another message
            replay = await h.post(query, forged.encode())
            assert replay.status_code == 403
            unsubscribe = await h.post(query, event_push(OPENID, "unsubscribe").encode())
            assert unsubscribe.status_code == 403
            # WeChat re-sending the same push with the same URL is a retry: the same answer.
            retry = await h.post(query, body)
            assert retry.status_code == 200
            return h.reply(first)["Content"], h.reply(retry)["Content"]

    answer, again = run(scenario())
    assert answer == again and answer
    assert inbound_count(fresh_db) == 1
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OTHER) == []


def test_a_retry_may_differ_in_xml_formatting_only(tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine) as h:
            xml = text_push(OPENID, "几点开门", 8101)
            query, body = h.pusher.plain(xml)
            assert (await h.post(query, body)).status_code == 200
            spaced = re.sub(r"(</\w+>)", r"\1\n  ", xml).encode()  # whitespace between fields
            return (await h.post(query, spaced)).status_code

    assert run(scenario()) == 200
    assert inbound_count(fresh_db) == 1


def test_compatible_mode_refuses_a_plaintext_replay_of_an_encrypted_pushs_url(tiny_engine,
                                                                                fresh_db):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY, encryption="compatible") as h:
            query, body = h.pusher.encrypted(text_push(OPENID, "几点开门", 8201),
                                             compatible=True)
            assert (await h.post(query, body)).status_code == 200
            stripped = {k: query[k] for k in ("signature", "timestamp", "nonce")}
            forged = await h.post(stripped, text_push(OTHER, "hello", 8202).encode())
            again = await h.post(query, body)  # WeChat's retry, encrypted as before
            return forged.status_code, again.status_code

    assert run(scenario()) == (403, 200)
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OTHER) == []


def test_the_consoles_verification_url_cannot_sign_a_push(tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine) as h:
            query = h.pusher.query()
            ok = await h.client.get("/wechat", params={**query, "echostr": "hello42"})
            again = await h.client.get("/wechat", params={**query, "echostr": "hello42"})
            forged = await h.post(query, text_push(OTHER, "hi", 8301).encode())
            return ok.status_code, again.status_code, forged.status_code

    assert run(scenario()) == (200, 200, 403)


def test_signed_urls_are_remembered_across_a_restart(tiny_engine, fresh_db):
    async def first_run():
        async with channel(tiny_engine) as h:
            query, body = h.pusher.plain(text_push(OPENID, "几点开门", 8401))
            assert (await h.post(query, body)).status_code == 200
            return query

    query = run(first_run())  # stop() wrote the pairs to the store

    async def second_run():
        async with channel(tiny_engine) as h:
            return (await h.post(query, text_push(OTHER, "hi", 8402).encode())).status_code

    assert run(second_run()) == 403
    stored = rows(fresh_db, "SELECT * FROM wechat_nonces")
    assert [(r["timestamp"], r["nonce"]) for r in stored] == [(query["timestamp"],
                                                              query["nonce"])]


def test_safe_mode_keeps_no_nonces(tiny_engine, fresh_db):
    async def scenario():
        async with channel(tiny_engine, aes_key=AES_KEY) as h:
            assert h.channel.replay is None
            r = await h.text("几点开门", 8501)
            return r.status_code

    assert run(scenario()) == 200
    assert rows(fresh_db, "SELECT * FROM wechat_nonces") == []


# -- unsubscribes nobody signed --------------------------------------------------------------------


def test_a_forged_unsubscribe_in_plain_mode_never_forgets_the_fan(tiny_engine, fresh_db):
    clock = Clock()

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            await h.text("我叫王小明，几点开门", 9001)
            forged = await h.send(event_push(OPENID, "unsubscribe"))  # a fresh signed URL
            assert (forged.status_code, forged.content) == (200, b"")
            assert rows(fresh_db, "SELECT openid FROM wechat_unfollows") == [{"openid": OPENID}]
            fan = rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID)[0]
            assert fan["blocked"] == 0  # nothing carried out yet
            # The real fan writes again (a second later: a push of the same second as the
            # unsubscribe may have been made before it): undone.
            reply = await h.send(text_push(OPENID, "有停车位吗", 9002,
                                           create_time=int(time.time()) + 1))
            assert reply.status_code == 200 and h.reply(reply)["Content"]
            clock.now += h.channel.settings.unfollow_grace + 1
            return await h.channel.run_due_unfollows()

    assert run(scenario()) == 0
    fan = rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID)[0]
    assert fan["blocked"] == 0
    assert inbound_count(fresh_db) == 2
    assert rows(fresh_db, "SELECT * FROM wechat_unfollows") == []
    assert rows(fresh_db, "SELECT * FROM events WHERE kind = 'unfollow'") == []


def test_a_plain_mode_unsubscribe_is_carried_out_when_due(tiny_engine, fresh_db):
    clock = Clock()

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            await h.text("我叫王小明，几点开门", 9101)
            await h.send(event_push(OPENID, "unsubscribe"))
            assert await h.channel.run_due_unfollows() == 0  # not yet due
            clock.now += h.channel.settings.unfollow_grace + 1
            return await h.channel.run_due_unfollows()

    assert run(scenario()) == 1
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID) == []
    fan = rows(fresh_db, "SELECT * FROM fans")[0]
    assert fan["external_id"] == f"forgotten-{fan['id']}" and fan["blocked"] == 1
    assert rows(fresh_db, "SELECT count(*) AS n FROM events WHERE kind = 'unfollow'")[0]["n"] == 1
    assert rows(fresh_db, "SELECT * FROM wechat_unfollows") == []


def test_a_pending_unfollow_survives_a_restart(tiny_engine, fresh_db):
    clock = Clock()

    async def first_run():
        async with channel(tiny_engine, clock=clock) as h:
            await h.text("几点开门", 9201)
            await h.send(event_push(OPENID, "unsubscribe"))

    run(first_run())
    clock.now += 86_400 + 1

    async def second_run():
        wechat = WeChatChannel(tiny_engine, "tiny",
                               WeChatChannelSettings(token=TOKEN, app_id=APP_ID), clock=clock)
        await wechat.start()
        try:
            assert wechat._unfollows == {OPENID}
            return await wechat.run_due_unfollows()
        finally:
            await wechat.stop()

    assert run(second_run()) == 1
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID) == []
