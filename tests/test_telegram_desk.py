"""The Telegram operator group, in process: the real daemon (web chat + Telegram channel + desk),
real PTB over HTTP to the fake Bot API, real engine and SQLite.

A handed-off fan (web chat or Telegram) gets a forum topic with the transcript; their later
messages are mirrored there; what an operator writes in the topic reaches the fan and is logged
as an operator reply; ``/done`` hands the fan back to the bot and closes the topic.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from telegram import Update

from bot.channels.telegram import Incoming, OperatorMessage, read_update
from bot.config import load_settings
from bot.daemon import Daemon
from bot.messages import FanRef, Inbound
from tests.conftest import API_HEADERS, TEST_API_KEY, TINY, clear_brandbot_env
from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, FakeTelegram

GROUP = -1001234567890


def run(coro, timeout: float = 30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def env(monkeypatch, tmp_path):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@contextlib.asynccontextmanager
async def daemon_with_desk(env, tmp_path):
    async with FakeTelegram() as fake:
        env.setenv("BRANDBOT_TELEGRAM_TOKEN", fake.token)
        env.setenv("BRANDBOT_TELEGRAM_API_URL", fake.base_url)
        env.setenv("BRANDBOT_TELEGRAM_OPERATOR_GROUP", str(GROUP))
        env.setenv("BRANDBOT_WEB__API_KEY", TEST_API_KEY)
        settings = load_settings(None, personas=[str(TINY)], db=str(tmp_path / "desk.db"))
        assert settings.telegram.operator_group_id == GROUP
        d = Daemon(settings)
        d.open()
        app = d._build_app()
        telegram = d.channels["telegram"]
        await telegram.start()
        await d.desk.start(telegram.app.bot)
        web = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://web",
                                headers=API_HEADERS)
        try:
            yield d, fake, web
        finally:
            await web.aclose()
            await d.desk.stop()
            await telegram.stop()
            d.close()
            if d.executor:
                d.executor.shutdown()


async def settle(d, fake, condition=lambda: True, what="the desk"):
    """Let updates reach the channel and the desk finish its queue."""
    await fake.wait_for(condition, what=what)
    await d.desk.join()


def topic_of(fake) -> int:
    assert len(fake.topics) == 1, fake.topics
    return next(iter(fake.topics))[1]


def operator_rows(store, channel: str, external_id: str):
    return [dict(r) for r in store.conn.execute(
        "SELECT m.text, m.reply_key, m.channel FROM messages m JOIN fans f ON f.id = m.fan_id "
        "WHERE f.channel = ? AND f.external_id = ? AND m.reply_key = 'operator'",
        (channel, external_id))]


async def pending(web, fan: str) -> list[str]:
    """What the fan's page shows on its next poll (and acknowledges, as the page does)."""
    r = await web.get(f"/api/chat/pending?fan={fan}")
    assert r.status_code == 200
    ids = [x["id"] for x in r.json()["replies"]]
    if ids:
        acked = await web.post("/api/chat/ack", json={"ids": ids, "fan": fan})
        assert acked.json() == {"acknowledged": len(ids)}
    return [x["text"] for x in r.json()["replies"]]


def test_a_web_fans_handoff_is_answered_from_a_topic_and_ended_with_done(env, tmp_path):
    async def scenario():
        async with daemon_with_desk(env, tmp_path) as (d, fake, web):
            await web.post("/api/chat", json={"text": "你好", "fan": "ann", "name": "Ann"})
            await web.post("/api/chat", json={"text": "我要投诉", "fan": "ann"})
            await settle(d, fake, lambda: fake.topics, "a topic")
            thread = topic_of(fake)
            assert fake.topics[(GROUP, thread)]["name"].startswith("Ann · web · #")
            opening = fake.in_topic(GROUP, thread)[0]
            assert "/done" in opening and "👤 你好" in opening and "👤 我要投诉" in opening

            await web.post("/api/chat", json={"text": "还在吗？", "fan": "ann"})
            await settle(d, fake)
            assert fake.in_topic(GROUP, thread)[-1] == "👤 还在吗？"

            fake.topic_message(GROUP, thread, "您好，我是店长，马上为您处理。", first_name="Lee")
            await settle(d, fake, lambda: d.channels["telegram"].stats["operator_messages"] == 1)
            assert await pending(web, "ann") == ["您好，我是店长，马上为您处理。"]
            assert await pending(web, "ann") == []
            assert operator_rows(d.store, "web", "ann") == [
                {"text": "您好，我是店长，马上为您处理。", "reply_key": "operator",
                 "channel": "web"}]
            via = d.store.conn.execute(
                "SELECT payload FROM events WHERE kind = 'operator_reply'").fetchone()[0]
            assert "telegram:Lee" in via

            fake.topic_message(GROUP, thread, "/done", first_name="Lee")
            await settle(d, fake, lambda: d.channels["telegram"].stats["operator_messages"] == 2)
            assert await pending(web, "ann") == ["我回来啦，有问题随时问"]
            assert d.store.find_fan("tiny", "web", "ann")["handoff"] == 0
            assert fake.topics[(GROUP, thread)]["closed"] is True
            assert "Handed back to the bot by Lee." in fake.in_topic(GROUP, thread)[-1]
            # The group is never a fan, and the bot said nothing in it outside the topic.
            assert d.store.find_fan("tiny", "telegram", str(GROUP)) is None
            assert all(c.params.get("message_thread_id") for c in fake.sent(GROUP))

            # Later words of the fan go to the bot again, not to the closed topic.
            before = len(fake.sent(GROUP))
            await web.post("/api/chat", json={"text": "几点开门", "fan": "ann"})
            await settle(d, fake)
            assert len(fake.sent(GROUP)) == before

    run(scenario())


def test_a_telegram_fan_gets_the_operators_words_and_the_topic_survives_a_restart(
        env, tmp_path):
    async def scenario():
        async with daemon_with_desk(env, tmp_path) as (d, fake, web):
            fake.push_message(4242, "我要投诉", first_name="Bo")
            await settle(d, fake, lambda: fake.topics, "a topic")
            thread = topic_of(fake)
            # A reopened desk (daemon restart) knows the open topic from the log.
            await d.desk.stop()
            await d.desk.start(d.channels["telegram"].app.bot)
            fake.topic_message(GROUP, thread, "Hello Bo, a human here.")
            await settle(d, fake, lambda: "Hello Bo, a human here." in fake.texts(4242),
                         "the operator's words in the fan's chat")
            assert operator_rows(d.store, "telegram", "4242")[0]["text"] == \
                "Hello Bo, a human here."
            # Outside a topic, media, other commands: nothing reaches the fan.
            fake.topic_message(GROUP, thread, None, photo=[{"file_id": "p", "file_unique_id":
                                                            "u", "width": 1, "height": 1}])
            fake.topic_message(GROUP, thread, "/help")
            fake.push_message(GROUP, "general chatter", chat_type="supergroup", title="Ops",
                              user_id=778)
            await settle(d, fake,
                         lambda: d.channels["telegram"].stats["operator_messages"] == 3)
            await d.channels["telegram"].idle()
            assert fake.texts(4242).count("Hello Bo, a human here.") == 1
            notes = fake.in_topic(GROUP, thread)[-2:]
            assert "Only text reaches the fan" in notes[0] and "/done" in notes[1]

    run(scenario())


def test_a_handoff_ended_elsewhere_closes_its_topic(env, tmp_path):
    async def scenario():
        async with daemon_with_desk(env, tmp_path) as (d, fake, web):
            await web.post("/api/chat", json={"text": "我要投诉", "fan": "cy"})
            await settle(d, fake, lambda: fake.topics, "a topic")
            thread = topic_of(fake)
            # `brandbot handoff end` from another process: the engine's handoff_end trigger.
            d.engine.handle(Inbound(FanRef("web", "cy"), kind="event", event="handoff_end"))
            await d._relations_once()
            await settle(d, fake)
            assert fake.topics[(GROUP, thread)]["closed"] is True
            assert "went back to the bot" in fake.in_topic(GROUP, thread)[-1]
            # A new handoff of the same fan opens a new topic.
            await web.post("/api/chat", json={"text": "我要投诉", "fan": "cy"})
            await settle(d, fake, lambda: len(fake.topics) == 2, "a second topic")
            rows = d.store.conn.execute(
                "SELECT closed_at IS NULL FROM desk_topics ORDER BY id").fetchall()
            assert [r[0] for r in rows] == [0, 1]

    run(scenario())


def _update(fake, raw) -> Update:
    return Update.de_json(raw, None)


def test_read_update_routes_only_topic_messages_of_the_operator_group():
    fake = FakeTelegram()
    kw = dict(bot_id=BOT_ID, bot_username=BOT_USERNAME, operator_group=GROUP)
    in_topic = {"update_id": 1, "message": fake.message(
        GROUP, "/done@brand_test_bot", chat_type="supergroup", user_id=5, first_name="Ops",
        is_topic_message=True, message_thread_id=77)}
    got = read_update(_update(fake, in_topic), **kw)
    assert isinstance(got, OperatorMessage)
    assert (got.thread_id, got.command, got.author) == (77, "done", "Ops")
    general = {"update_id": 2, "message": fake.message(
        GROUP, f"@{BOT_USERNAME} hi", chat_type="supergroup", user_id=5,
        entities=[{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}])}
    assert read_update(_update(fake, general), **kw) == "operator group: message outside a topic"
    # Without the setting the same group is an ordinary group (a fan when it addresses the bot).
    assert isinstance(read_update(_update(fake, general), bot_id=BOT_ID,
                                  bot_username=BOT_USERNAME), Incoming)
