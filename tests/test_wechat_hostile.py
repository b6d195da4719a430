"""A reviewer's attacks on the WeChat fixes (signed URLs used once, deferred unfollows, secrets
kept out of outputs), each one a defect the fixes still had. Real HTTP to the channel's Starlette
app and to the fake WeChat API, real engine, real SQLite (tests/test_wechat.py's harness).
"""

from __future__ import annotations

import time

import pytest

from bot.channels import wechat_replay
from bot.channels.base import NotSent
from bot.messages import FanRef, Reply
from bot.relations.privacy import export_fan, forget_fan
from tests.fakes.wechat_api import (
    APP_SECRET,
    NOT_JSON,
    FakeWeChat,
    event_push,
    text_push,
)
from tests.test_wechat import OPENID, channel, rows, run
from tests.test_wechat_unreachable import assert_secret_free, run_cli, wechat_env

OTHER = "oVictim_9876543210fedcbaFEDCBA"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def pending_unfollows(store) -> list[str]:
    return [r["openid"] for r in rows(store, "SELECT openid FROM wechat_unfollows")]


# -- a pending unfollow is undone only by a push made after it -------------------------------------


def test_an_older_push_resent_after_an_unsubscribe_does_not_undo_it(tiny_engine, fresh_db):
    """WeChat re-sending (or someone replaying, URL and body) a push the fan made *before*
    unsubscribing is no sign they still follow; before the fix any push from the OpenID
    cancelled the forget for good."""
    clock = Clock()
    made = int(clock.now) - 20

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            query, body = h.pusher.plain(text_push(OPENID, "几点开门", 9301, create_time=made))
            assert (await h.post(query, body)).status_code == 200
            await h.send(event_push(OPENID, "unsubscribe", create_time=made + 10))
            assert pending_unfollows(fresh_db) == [OPENID]
            retry = await h.post(query, body)  # the same signed URL, the same body
            assert retry.status_code == 200
            late = await h.send(text_push(OPENID, "有停车位吗", 9302, create_time=made + 5))
            assert late.status_code == 200  # delivered late, but made before the unsubscribe
            assert pending_unfollows(fresh_db) == [OPENID]
            clock.now += h.channel.settings.unfollow_grace + 1
            return await h.channel.run_due_unfollows()

    assert run(scenario()) == 1
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID) == []


def test_a_push_made_after_the_unsubscribe_still_undoes_it(tiny_engine, fresh_db):
    clock = Clock()
    made = int(clock.now) - 20

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            await h.send(text_push(OPENID, "几点开门", 9401, create_time=made))
            await h.send(event_push(OPENID, "unsubscribe", create_time=made))
            await h.send(event_push(OPENID, "subscribe", create_time=made + 3))  # re-follows
            assert pending_unfollows(fresh_db) == []
            clock.now += h.channel.settings.unfollow_grace + 1
            return await h.channel.run_due_unfollows()

    assert run(scenario()) == 0
    assert len(rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID)) == 1


def test_an_unsubscribe_claiming_a_future_time_can_still_be_undone(tiny_engine, fresh_db):
    """A plaintext body can claim any CreateTime; an unsubscribe 'made' in 2100 must not
    outlast every real push of the fan (its time counts as no later than its arrival)."""
    clock = Clock()

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            await h.send(text_push(OPENID, "几点开门", 9501))
            await h.send(event_push(OPENID, "unsubscribe", create_time=4_102_444_800))
            await h.send(text_push(OPENID, "有停车位吗", 9502, create_time=int(time.time()) + 2))
            return pending_unfollows(fresh_db)

    assert run(scenario()) == []


def test_a_pending_unfollow_is_exported_and_forgotten_with_the_fan(tiny_engine, fresh_db):
    """`brandbot fan export` shows it (it holds the OpenID); `brandbot fan forget` must not
    leave the OpenID behind in wechat_unfollows."""
    async def scenario():
        async with channel(tiny_engine) as h:
            await h.text("几点开门", 9601)
            await h.send(event_push(OPENID, "unsubscribe"))

    run(scenario())
    assert pending_unfollows(fresh_db) == [OPENID]
    fan = fresh_db.find_fan("tiny", "wechat", OPENID)
    held = export_fan(fresh_db, fan["id"])  # a subject-access request shows it too
    assert len(held["pending_unfollow"]) == 1 and held["pending_unfollow"][0]["due_at"] > 0
    forget_fan(fresh_db, fan["id"])
    assert pending_unfollows(fresh_db) == []
    assert rows(fresh_db, "SELECT * FROM wechat_unfollows WHERE openid = ?", OPENID) == []


# -- a signed URL stays used across a kill -----------------------------------------------------


def test_a_signed_url_acted_on_is_stored_before_the_answer(tiny_engine, fresh_db, monkeypatch):
    """The daemon killed (SIGKILL, OOM) right after answering a push: the background flush
    never ran, and the restarted daemon must still refuse the URL with another body."""
    monkeypatch.setattr(wechat_replay, "FLUSH_EVERY", 3600.0)  # the kill comes before it

    async def scenario():
        async with channel(tiny_engine) as h:
            query, body = h.pusher.plain(text_push(OPENID, "几点开门", 9701))
            assert (await h.post(query, body)).status_code == 200
            # A second daemon on the same database, as after a restart; the first never
            # stopped (a stop would flush).
            async with channel(tiny_engine) as restarted:
                forged = text_push(OTHER, "我要投诉", 9702).encode()
                return (await restarted.post(query, forged)).status_code

    assert run(scenario()) == 403
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OTHER) == []


# -- an answer that is not WeChat's ------------------------------------------------------------


def test_a_send_answered_by_a_gateway_page_is_not_counted_as_sent(tiny_engine, fresh_db):
    """wechatpy returns the raw response when it is not JSON; a 200 HTML page (a proxy in the
    way) was counted as a delivered message, so no not_delivered record was made."""
    with FakeWeChat() as fake:
        fake.fail("message/custom/send", NOT_JSON, times=None)

        async def scenario():
            async with channel(tiny_engine, fake=fake, verified=True) as h:
                assert h.reply(await h.text("几点开门", 9801))["Content"]
                return await h.channel.send(FanRef("wechat", OPENID), [Reply("店长：已为您安排")])

        result = run(scenario())
    assert isinstance(result, NotSent) and result.skipped == 1
    assert "not JSON" in result.reason
    event = fresh_db.fetch_one(
        "SELECT e.payload FROM events e JOIN fans f ON f.id = e.fan_id "
        "WHERE f.external_id = ? AND e.kind = 'not_delivered'", (OPENID,))
    assert event is not None and "not JSON" in event[0]
    assert_secret_free(result.reason, event[0], secrets=(APP_SECRET, "FAKE-ACCESS-TOKEN"))


def test_wechat_qrcode_answered_by_a_gateway_page_is_one_line(tmp_path):
    with FakeWeChat() as fake:
        fake.fail("qrcode/create", NOT_JSON, times=None)
        out = run_cli("wechat", "qrcode", "--scene", "spring26", env=wechat_env(fake.api_url),
                      cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "not JSON" in out.stderr
    assert_secret_free(out.stdout, out.stderr, secrets=(APP_SECRET, "FAKE-ACCESS-TOKEN"))


def test_a_resent_unsubscribe_does_not_re_arm_an_undone_unfollow(tiny_engine, fresh_db):
    """The fan came back (re-subscribed) and WeChat then re-sends the old unsubscribe (or
    someone replays its URL and body): the fan must not be forgotten 24 h later."""
    clock = Clock()
    made = int(clock.now) - 20

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            await h.send(text_push(OPENID, "几点开门", 9901, create_time=made))
            query, body = h.pusher.plain(event_push(OPENID, "unsubscribe", create_time=made + 1))
            assert (await h.post(query, body)).status_code == 200
            await h.send(event_push(OPENID, "subscribe", create_time=made + 3))
            assert pending_unfollows(fresh_db) == []
            again = await h.post(query, body)
            assert (again.status_code, again.content) == (200, b"")
            assert pending_unfollows(fresh_db) == []
            clock.now += h.channel.settings.unfollow_grace + 1
            return await h.channel.run_due_unfollows()

    assert run(scenario()) == 0
    fan = rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OPENID)[0]
    assert fan["blocked"] == 0


def test_a_percent_encoded_copy_of_a_signed_url_is_the_same_url(tiny_engine, fresh_db):
    """The guard keys the decoded nonce, so spelling the URL differently is no way around it."""
    async def scenario():
        async with channel(tiny_engine) as h:
            query, body = h.pusher.plain(text_push(OPENID, "几点开门", 9911))
            assert (await h.post(query, body)).status_code == 200
            encoded = "&".join(f"{k}={''.join(f'%{b:02X}' for b in v.encode())}"
                               for k, v in query.items())
            forged = text_push(OTHER, "我要投诉", 9912).encode()
            return (await h.client.post(f"/wechat?{encoded}", content=forged)).status_code

    assert run(scenario()) == 403
    assert rows(fresh_db, "SELECT * FROM fans WHERE external_id = ?", OTHER) == []


def test_the_remembered_pairs_are_bounded_by_the_freshness_window(tiny_engine, fresh_db):
    """A flood of validly signed pushes (WeChat's own rate, or a leaked token) leaves only the
    pairs of the last window in memory and in the store."""
    clock = Clock()

    async def scenario():
        async with channel(tiny_engine, clock=clock) as h:
            guard = h.channel.replay
            for i in range(300):
                guard.admit(str(int(clock.now)), f"n{i}", f"d{i}", authenticated=False)
            await guard.flush()
            clock.now += h.channel.settings.max_clock_skew + 2
            await h.text("几点开门", 9921)  # a push now: only its own pair is left
            return len(guard._seen), rows(fresh_db, "SELECT count(*) AS n FROM wechat_nonces")

    seen, stored = run(scenario())
    assert seen == 1 and stored == [{"n": 1}]


def test_broadcast_to_wechat_fans_with_the_api_unreachable_stops_resumable(fresh_db, tmp_path):
    """Every WeChat fan was marked 'failed' for good (each send found the API unreachable);
    like Telegram, the broadcast must stop before claiming anyone, in one line, resumable."""
    from datetime import UTC, datetime, timedelta

    from bot.relations.store import iso
    from tests.test_broadcast import PERSONA, add_fans
    from tests.test_wechat_unreachable import api_urls

    add_fans(fresh_db, 3, channel="wechat", start=1)
    with fresh_db.transaction() as conn:
        for (fan_id,) in conn.execute("SELECT id FROM fans").fetchall():
            conn.execute("INSERT INTO messages (fan_id, direction, text, created_at, kind) "
                         "VALUES (?, 'in', 'hi', ?, 'message')",
                         (fan_id, iso(datetime.now(UTC) - timedelta(hours=1))))
    out = run_cli("broadcast", "-p", PERSONA, "-t", "新菜上线", "--db", fresh_db.path,
                  env=wechat_env(api_urls()["refused"]), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert "cannot reach the WeChat API" in errors[0] and "broadcast resume" in errors[0]
    assert_secret_free(out.stdout, out.stderr)
    statuses = fresh_db.fetch_all("SELECT status, count(*) FROM deliveries GROUP BY status")
    assert [tuple(s) for s in statuses] == [("queued", 3)]  # resume sends them


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_daemons_log_masks_an_access_token_quoted_by_any_logger(fmt):
    """The access_token is fetched at run time, so it is in no settings list the daemon's log
    masks; only the WeChat and HTTP client loggers had a filter for it. A URL quoted by any
    other logger (an unexpected traceback, asyncio's "exception was never retrieved") leaked it.
    """
    import io
    import logging

    from bot.logsetup import MaskingFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter(fmt, [APP_SECRET]))
    logger = logging.getLogger("asyncio.r-wechat-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        url = ("https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token="
               "86_FreshTokenNobodyConfigured-x9")
        try:
            raise ConnectionError(f"Max retries exceeded with url: {url}")
        except ConnectionError:
            logger.exception("Task exception was never retrieved (%s)", url)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "access_token=***" in text
    assert "FreshTokenNobodyConfigured" not in text
