"""The Telegram channel end to end: real PTB, real HTTP, real engine and SQLite, fake Bot API.

python-telegram-bot talks to ``tests/fakes/telegram_api.py`` over HTTP on 127.0.0.1 (its
``base_url``), so the library and our adapter run unmodified. Webhook tests serve the channel's
route with uvicorn, as the daemon does, and the fake delivers updates to it.
"""

from __future__ import annotations

import contextlib
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette

from bot.channels.telegram import (
    ALLOWED_UPDATES,
    SECRET_HEADER,
    TelegramChannel,
    TelegramConfigError,
)
from bot.messages import FanRef, Reply
from tests.conftest import run_async as run
from tests.conftest import serve_asgi as serve
from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, FakeTelegram

SECRET = "s3cret_webhook-Token"


@contextlib.asynccontextmanager
async def polling(engine, persona: str = "tiny", **options):
    options.setdefault("per_chat_rate", None)  # pacing has its own tests
    async with FakeTelegram() as fake:
        channel = TelegramChannel(engine, persona, fake.token, base_url=fake.base_url, **options)
        await channel.start()
        try:
            yield fake, channel
        finally:
            await channel.stop()


@contextlib.asynccontextmanager
async def webhook(engine, persona: str = "tiny", **options):
    options.setdefault("per_chat_rate", None)
    async with FakeTelegram() as fake:
        holder: dict[str, TelegramChannel] = {}
        app = Starlette()
        async with serve(app) as port:
            channel = TelegramChannel(
                engine, persona, fake.token, base_url=fake.base_url,
                webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
                webhook_secret=SECRET, **options,
            )
            app.router.routes.append(channel.route())
            holder["channel"] = channel
            await channel.start()
            try:
                yield fake, channel, port
            finally:
                await channel.stop()


def rows(store, sql: str, *args):
    return [dict(r) for r in store.conn.execute(sql, args).fetchall()]


def fan(store, chat_id: int):
    found = store.find_fan("tiny", "telegram", str(chat_id))
    assert found is not None, f"no fan for chat {chat_id}"
    return found


def inbound_count(store, chat_id: int) -> int:
    return store.conn.execute(
        "SELECT count(*) FROM messages m JOIN fans f ON f.id = m.fan_id "
        "WHERE f.external_id = ? AND m.direction = 'in'", (str(chat_id),)
    ).fetchone()[0]


# -- conversations ------------------------------------------------------------------------------


def test_a_conversation_over_polling(tiny_engine):
    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            fake.push_message(42, "/start")
            await fake.wait_for(lambda: len(fake.sent(42)) == 1, what="the welcome")
            fake.push_message(42, "几点开门")
            await fake.wait_for(lambda: len(fake.sent(42)) == 2, what="the hours")
            fake.push_message(42, "有停车位吗")
            await fake.wait_for(lambda: len(fake.sent(42)) == 3, what="the parking")
        return fake, channel

    fake, channel = run(scenario())
    # /start has no words to detect a language from: the fan's Telegram language (en) is used.
    assert fake.texts(42) == ["Welcome to Tiny Shop, Fan!", "营业时间：每天9点到21点",
                              "停车：门口有5个车位"]
    # The lifecycle PTB documents for manual runs, and allowed_updates on every poll.
    assert fake.methods()[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    polls = [c for c in fake.calls if c.method == "getUpdates"]
    assert all(c.params.get("allowed_updates") == list(ALLOWED_UPDATES) for c in polls)
    assert polls[-1].params["timeout"] == "0"  # the last poll confirms what was fetched
    assert not channel.running and channel.stats["errors"] == 0
    store = tiny_engine.store
    assert fan(store, 42)["display_name"] == "Fan"
    assert inbound_count(store, 42) == 3


def test_chats_are_handled_side_by_side_and_each_chat_in_order(tiny_engine):
    """Turns of different chats overlap (and share commits in the daemon); one chat's never."""
    import asyncio
    import random

    seen: dict[int, list[str]] = {}
    running: set[int] = set()
    overlap = {"chats": 0}
    rng = random.Random(5)

    async def slow_turn(inbound, persona):
        chat = int(inbound.fan.external_id)
        assert chat not in running, "two updates of one chat ran at once"
        running.add(chat)
        overlap["chats"] = max(overlap["chats"], len(running))
        await asyncio.sleep(rng.random() * 0.02)  # later messages may finish first elsewhere
        seen.setdefault(chat, []).append(inbound.text)
        running.discard(chat)
        return tiny_engine.handle(inbound, persona)

    async def scenario():
        async with polling(tiny_engine, run_turn=slow_turn) as (fake, channel):
            for n in range(10):
                for chat in (1, 2, 3):
                    fake.push_message(chat, f"msg {n}")
            await fake.wait_for(lambda: channel.stats["turns"] == 30, what="thirty turns")

    run(scenario())
    assert seen == {c: [f"msg {n}" for n in range(10)] for c in (1, 2, 3)}
    assert overlap["chats"] > 1


def test_the_demo_persona_answers_in_voice_over_polling(fresh_db, demo_brand):
    from bot.engine import Engine

    engine = Engine(fresh_db, demo_brand, seed=3)

    async def scenario():
        async with polling(engine, "laowang-kitchen") as (fake, _):
            for text in ("你好", "有停车位吗", "what time do you open?"):
                fake.push_message(7, text)
            await fake.wait_for(lambda: len(fake.sent(7)) >= 3, what="three replies")
        return fake

    fake = run(scenario())
    assert all(text.strip() for text in fake.texts(7))
    intents = [r["intent"] for r in rows(
        fresh_db, "SELECT intent FROM messages WHERE direction = 'in' ORDER BY id")]
    assert intents[1:] == ["parking", "hours"]


def test_webhook_with_the_right_secret_answers(tiny_engine):
    async def scenario():
        async with webhook(tiny_engine) as (fake, channel, port):
            assert fake.webhook == {"url": f"http://127.0.0.1:{port}/telegram/webhook",
                                    "secret_token": SECRET}
            fake.push_message(42, "几点开门")
            await fake.wait_for(lambda: len(fake.sent(42)) == 2, what="welcome and hours")
        return fake, channel

    fake, channel = run(scenario())
    assert fake.texts(42) == ["欢迎来到小店，Fan！", "营业时间：每天9点到21点"]
    assert [d.status for d in fake.deliveries] == [200]
    assert "getUpdates" not in fake.methods()
    set_webhook = next(c for c in fake.calls if c.method == "setWebhook")
    assert set_webhook.params["allowed_updates"] == list(ALLOWED_UPDATES)


def test_webhook_refuses_a_wrong_or_missing_secret(tiny_engine):
    async def scenario():
        async with webhook(tiny_engine) as (fake, channel, port):
            update = {"update_id": 9, "message": fake.message(42, "几点开门")}
            url = f"http://127.0.0.1:{port}/telegram/webhook"
            async with httpx.AsyncClient() as client:
                statuses = [
                    (await client.post(url, json=update, headers=headers)).status_code
                    for headers in (
                        {SECRET_HEADER: "wrong"},
                        {SECRET_HEADER: SECRET + "x"},
                        {SECRET_HEADER: SECRET[:-1]},
                        {},
                    )
                ]
                bad_json = await client.post(url, content=b"{not json",
                                             headers={SECRET_HEADER: SECRET})
                good = await client.post(url, json=update, headers={SECRET_HEADER: SECRET})
            await fake.wait_for(lambda: len(fake.sent(42)) == 2, what="the good one answered")
            return statuses, bad_json.status_code, good.status_code, fake

    statuses, bad_json, good, fake = run(scenario())
    assert statuses == [403, 403, 403, 403]
    assert (bad_json, good) == (400, 200)
    assert inbound_count(tiny_engine.store, 42) == 1


def test_webhook_answers_400_to_json_nested_too_deep(tiny_engine):
    # json.loads raises RecursionError (not ValueError) past ~1000 levels: it was a 500.
    async def scenario():
        async with webhook(tiny_engine) as (fake, channel, port):
            url = f"http://127.0.0.1:{port}/telegram/webhook"
            deep = b'{"update_id": 5, "message": ' + b"[" * 5000 + b"]" * 5000 + b"}"
            async with httpx.AsyncClient() as client:
                nested = await client.post(url, content=deep, headers={SECRET_HEADER: SECRET})
                bare = await client.post(url, content=b"[" * 5000 + b"]" * 5000,
                                         headers={SECRET_HEADER: SECRET})
            fake.push_message(42, "几点开门")  # the channel still answers afterwards
            await fake.wait_for(lambda: len(fake.sent(42)) >= 1, what="a later update answered")
            return nested.status_code, bare.status_code, channel.stats

    nested, bare, stats = run(scenario())
    assert (nested, bare) == (400, 400)
    assert stats["webhook_bad_request"] == 2 and stats["errors"] == 0


def test_webhook_mode_needs_a_valid_secret(tiny_engine):
    with pytest.raises(TelegramConfigError, match="webhook_secret"):
        TelegramChannel(tiny_engine, "tiny", "1:x", webhook_url="https://example.org/tg")
    with pytest.raises(TelegramConfigError, match="A-Z a-z 0-9"):
        TelegramChannel(tiny_engine, "tiny", "1:x", webhook_url="https://example.org/tg",
                        webhook_secret="has spaces!")
    with pytest.raises(TelegramConfigError, match="BRANDBOT_TELEGRAM_TOKEN"):
        TelegramChannel(tiny_engine, "tiny", "")


def test_a_refused_token_says_what_to_do(tiny_engine):
    async def scenario():
        async with FakeTelegram() as fake:
            channel = TelegramChannel(tiny_engine, "tiny", "999:wrong", base_url=fake.base_url)
            with pytest.raises(TelegramConfigError, match="BotFather"):
                await channel.start()

    run(scenario())


# -- deep links, blocking ------------------------------------------------------------------------


def test_deep_link_start_records_the_referral_on_first_contact(tiny_engine):
    store = tiny_engine.store

    async def scenario():
        async with polling(tiny_engine) as (fake, _):
            fake.push_message(1, "/start")
            await fake.wait_for(lambda: len(fake.sent(1)) == 1)
            code = fan(store, 1)["referral_code"]
            fake.push_message(2, f"/start {code}")  # a friend's personal link
            fake.push_message(3, "/start spring_campaign-2026")  # a campaign link
            fake.push_message(4, "/start bad$code!")  # not a valid payload: no referral
            await fake.wait_for(lambda: all(fake.sent(c) for c in (2, 3, 4)))
            fake.push_message(2, "/start another_code")  # later codes are touches
            await fake.wait_for(lambda: len(fake.sent(2)) == 2)
        return fake, code

    fake, code = run(scenario())
    referrer = fan(store, 1)
    assert fan(store, 2)["referred_by"] == referrer["id"]
    assert fan(store, 2)["source_code"] == code
    assert fan(store, 3)["referred_by"] is None
    assert fan(store, 3)["source_code"] == "spring_campaign-2026"
    assert fan(store, 4)["source_code"] is None
    referrals = rows(store, "SELECT code FROM referrals ORDER BY id")
    assert [r["code"] for r in referrals] == [code, "spring_campaign-2026"]
    touch = rows(store, "SELECT payload FROM events WHERE kind = 'touch' AND fan_id = ?",
                 fan(store, 2)["id"])
    assert [json.loads(t["payload"]) for t in touch] == [{"code": "another_code"}]
    # /start alone: a welcome to a new fan, a greeting to a known one.
    assert fake.texts(3) == ["Welcome to Tiny Shop, Fan!"]
    assert fake.texts(2)[1] in ("hi again", "hello again")


def test_blocking_marks_the_fan_and_unblocking_restores_them(tiny_engine):
    store = tiny_engine.store

    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            for text in ("订阅", "是"):
                fake.push_message(5, text)
            await fake.wait_for(lambda: len(fake.sent(5)) == 3, what="subscribed")
            assert fan(store, 5)["subscribed"] == 1
            fake.member_update(5, "member", "kicked")
            await fake.wait_for(lambda: fan(store, 5)["blocked"] == 1, what="blocked")
            after_block = len(fake.calls)
            skipped = await channel.send(FanRef("telegram", "5"), [Reply("news!")])
            assert skipped is not None and "blocked" in skipped.reason  # the desk shows why
            assert skipped.skipped == 1
            blocked_state = dict(fan(store, 5))
            fake.member_update(5, "kicked", "member")
            await fake.wait_for(lambda: fan(store, 5)["blocked"] == 0, what="unblocked")
            await channel.idle()
            sends_after = [c for c in fake.calls[after_block:] if c.method == "sendMessage"]
            return fake, blocked_state, sends_after

    fake, blocked_state, sends_after = run(scenario())
    assert blocked_state["subscribed"] == 0
    assert sends_after == []  # no reply to the block, no news, no greeting on unblock
    final = fan(store, 5)
    assert final["blocked"] == 0 and final["subscribed"] == 0  # consent must be given again
    kinds = [r["kind"] for r in rows(store, "SELECT kind FROM events WHERE fan_id = ? ORDER BY id",
                                     final["id"])]
    assert "unfollow" in kinds and "unsubscribe" in kinds and kinds[-1] == "follow"


def test_a_403_marks_the_fan_blocked_and_stops_sending_to_them(tiny_engine):
    store = tiny_engine.store

    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            fake.push_message(6, "你好")
            await fake.wait_for(lambda: len(fake.sent(6)) == 1)
            fake.blocked.add(6)  # the fan blocked the bot; Telegram now answers 403
            fake.push_message(8, "你好")
            await channel.send(FanRef("telegram", "6"), [Reply("one"), Reply("two"),
                                                         Reply("three")])
            await fake.wait_for(lambda: fan(store, 6)["blocked"] == 1, what="403 recorded")
            await channel.send(FanRef("telegram", "6"), [Reply("four")])
            await channel.idle()
            attempts = [c for c in fake.calls
                        if c.method == "sendMessage" and c.params["chat_id"] == "6"]
            # Writing again means they unblocked: the fan is restored and answered.
            fake.blocked.discard(6)
            fake.push_message(6, "几点开门")
            await fake.wait_for(lambda: len(fake.sent(6)) == 2, what="answered again")
            return fake, channel, attempts

    fake, channel, attempts = run(scenario())
    assert [c.status for c in attempts] == [200, 403]  # one refusal, then nothing more
    assert fake.texts(8) == ["欢迎来到小店，Fan！"]  # other fans are unaffected
    f = fan(store, 6)
    assert f["blocked"] == 0
    events = rows(store, "SELECT kind, payload FROM events WHERE fan_id = ? ORDER BY id", f["id"])
    block = next(e for e in events if e["kind"] == "block")
    assert json.loads(block["payload"]) == {"reason": "telegram_403"}
    kinds = [e["kind"] for e in events]
    assert kinds.index("unblock") > kinds.index("block")
    assert channel.sender.stats["forbidden"] == 1


# -- odd updates, groups, duplicates --------------------------------------------------------------


def test_every_odd_update_is_answered_in_voice_or_ignored(tiny_engine):
    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            fake.push_message(9, "/start")
            await fake.wait_for(lambda: len(fake.sent(9)) == 1)
            m = fake.message
            media = {
                "sticker": {"file_id": "s", "file_unique_id": "s", "type": "regular",
                            "width": 512, "height": 512, "is_animated": False,
                            "is_video": False, "emoji": "😀"},
                "photo": [{"file_id": "p", "file_unique_id": "p", "width": 90, "height": 90}],
                "location": {"latitude": 31.23, "longitude": 121.47},
                "contact": {"phone_number": "+8613800000000", "first_name": "A"},
                "dice": {"emoji": "🎲", "value": 3},
            }
            for kind, value in media.items():
                fake.push({"message": m(9, **{kind: value})})
            fake.push({"message": m(9, caption="看看这个", photo=media["photo"])})
            fake.push({"message": m(9, voice={"file_id": "v", "file_unique_id": "v",
                                             "duration": 3})})
            fake.push({"message": m(9, video_note={"file_id": "n", "file_unique_id": "n",
                                                  "length": 240, "duration": 2})})
            ignored = [
                {"edited_message": m(9, "几点开门", edit_date=1)},
                {"channel_post": m(-1001, "brand news", chat_type="channel")},
                {"edited_channel_post": m(-1001, "brand news!", chat_type="channel",
                                          edit_date=1)},
                {"message": m(9, pinned_message=m(9, "old"))},
                {"message": m(-100, chat_type="supergroup", new_chat_members=[
                    {"id": 77, "is_bot": False, "first_name": "New"}])},
                {"message": m(9, "hi", **{"from": {"id": 555, "is_bot": True,
                                                   "first_name": "OtherBot"}})},
                {"message": m(9, "/help@some_other_bot")},
                {"message": m(9, "   ")},
                {"inline_query": {"id": "q", "from": {"id": 9, "is_bot": False,
                                  "first_name": "Fan"}, "query": "x", "offset": ""}},
                {"message_reaction": {"chat": {"id": 9, "type": "private"}, "message_id": 1,
                                      "date": 1, "old_reaction": [], "new_reaction": []}},
                # Missing a field PTB 22.8 requires: it cannot parse this one at all.
                {"poll_answer": {"poll_id": "p", "option_ids": [0],
                                 "user": {"id": 9, "is_bot": False, "first_name": "Fan"}}},
                {"a_future_update_type": {"anything": [1, {"nested": True}]}},
                {"callback_query": {"id": "cq0", "chat_instance": "c", "game_short_name": "g",
                                    "from": {"id": 9, "is_bot": False, "first_name": "Fan"}}},
            ]
            for update in ignored:
                fake.push(update, force=True)  # as if allowed_updates had been set elsewhere
            fake.push({"callback_query": {
                "id": "cq1", "chat_instance": "c", "data": "MENU_HOURS",
                "from": {"id": 9, "is_bot": False, "first_name": "Fan"},
                "message": m(9, "menu", **{"from": {"id": BOT_ID, "is_bot": True,
                                                    "first_name": "Brand"}})}})
            fake.push_message(9, "有停车位吗")  # still alive and answering
            await fake.wait_for(lambda: fake.texts(9)[-1:] == ["停车：门口有5个车位"],
                                what="the last answer")
            await channel.idle()
        return fake, channel

    fake, channel = run(scenario())
    texts = fake.texts(9)
    assert texts[1:7] == ["Thanks for the picture"] * 6
    # tiny.yaml's English voice reply is two variants (a comma in a YAML flow list).
    assert set(texts[7:9]) <= {"I can't listen to voice yet", "please type"}
    assert texts[9:] == ["Hours: 9am to 9pm daily", "停车：门口有5个车位"]
    assert "answerCallbackQuery" in fake.methods()
    assert channel.stats["errors"] == 0
    assert channel.stats["ignored"] == 13
    assert fake.sent(-1001) == [] and fake.sent(-100) == []


def test_unparseable_webhook_updates_are_skipped_with_200(tiny_engine):
    async def scenario():
        async with webhook(tiny_engine) as (fake, channel, port):
            url = f"http://127.0.0.1:{port}/telegram/webhook"
            async with httpx.AsyncClient() as client:
                broken = await client.post(
                    url, json={"update_id": 3, "message": {"chat": "not a chat"}},
                    headers={SECRET_HEADER: SECRET})
                not_update = await client.post(url, json=[1, 2],
                                               headers={SECRET_HEADER: SECRET})
            fake.push_message(42, "几点开门")
            await fake.wait_for(lambda: len(fake.sent(42)) == 2)
            return broken.status_code, not_update.status_code, channel.stats

    broken, not_update, stats = run(scenario())
    assert (broken, not_update) == (200, 400)
    # Skipped, not handled: counted as unparseable, never an error or a turn of its own.
    assert stats["unparseable"] == 1 and stats["errors"] == 0 and stats["turns"] == 1


def test_in_groups_the_bot_answers_only_when_addressed(tiny_engine):
    group = -1002

    def mention(text: str) -> dict:
        at = "@" + BOT_USERNAME
        return {"entities": [{"type": "mention", "offset": text.index(at), "length": len(at)}]}

    async def scenario():
        async with polling(tiny_engine) as (fake, _):
            push = fake.push_message
            push(group, "几点开门", chat_type="supergroup", user_id=11)  # not addressed
            text = f"@{BOT_USERNAME} 几点开门"
            addressed = push(group, text, chat_type="supergroup", user_id=11, **mention(text))
            await fake.wait_for(lambda: len(fake.sent(group)) == 2, what="welcome + hours")
            bot_msg = fake.message(group, "营业时间", chat_type="supergroup",
                                   **{"from": {"id": BOT_ID, "is_bot": True,
                                               "first_name": "Brand"}})
            push(group, "有停车位吗", chat_type="supergroup", user_id=12,
                 reply_to_message=bot_msg)
            await fake.wait_for(lambda: len(fake.sent(group)) == 3, what="the reply")
            push(group, "/hours@some_other_bot", chat_type="supergroup", user_id=12)
            push(group, f"/hours@{BOT_USERNAME}", chat_type="supergroup", user_id=12)
            await fake.wait_for(lambda: len(fake.sent(group)) == 4, what="the command")
        return fake, addressed

    fake, addressed = run(scenario())
    # A command is read as its words: "hours" is English.
    assert fake.texts(group)[1:] == ["营业时间：每天9点到21点", "停车：门口有5个车位",
                                     "Hours: 9am to 9pm daily"]
    first = fake.sent(group)[0]
    assert first.params["reply_parameters"]["message_id"] == addressed["message"]["message_id"]
    assert inbound_count(tiny_engine.store, group) == 3  # the unaddressed one was never a turn
    assert fan(tiny_engine.store, group)["display_name"] == "A group"


def test_a_duplicate_update_id_runs_one_turn(tiny_engine):
    store = tiny_engine.store

    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            update = fake.push_message(13, "几点开门")
            fake.push(update)  # the same delivery again in the same batch
            await fake.wait_for(lambda: channel.stats["updates"] == 2)
            await channel.idle()
        first = fake.texts(13)
        # A webhook retry, and a redelivery to a new process: still one turn.
        async with webhook(tiny_engine) as (fake2, channel2, _):
            fake2.push(update)
            fake2.push(update)
            await fake2.wait_for(lambda: channel2.stats["updates"] == 2)
            await channel2.idle()
        return first, fake2.texts(13), channel.stats, channel2.stats

    first, again, stats, stats2 = run(scenario())
    assert first == ["欢迎来到小店，Fan！", "营业时间：每天9点到21点"]
    assert stats["duplicates"] == 1 and stats["turns"] == 1
    assert stats2["duplicates"] == 1
    assert inbound_count(store, 13) == 1
    # After a restart the engine answers from the log (replies at least once, never a new turn).
    assert again == first


def test_stop_finishes_fetched_updates_and_queued_replies(tiny_engine):
    async def scenario():
        async with FakeTelegram() as fake:
            channel = TelegramChannel(tiny_engine, "tiny", fake.token, base_url=fake.base_url,
                                      per_chat_rate=5)
            await channel.start()
            await channel.start()  # harmless
            for chat in range(20, 26):
                fake.push_message(chat, "几点开门")
            await fake.wait_for(lambda: channel.stats["updates"] >= 1)
            await channel.stop()
            await channel.stop()  # harmless
            return fake

    fake = run(scenario())
    assert all(len(fake.sent(chat)) == 2 for chat in range(20, 26))


def test_the_token_and_secret_never_appear_in_logs(tiny_engine, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram", "telegram.ext", "brandbot"):
        caplog.set_level(logging.DEBUG, logger=name)

    async def scenario():
        async with polling(tiny_engine, send_backoff=0.01) as (fake, channel):
            fake.fail(status=502, times=1)
            fake.fail(status=400, description="Bad Request: chat not found", chat_id=31)
            fake.push_message(30, "你好")
            fake.push_message(31, "你好")
            fake.blocked.add(32)
            fake.push_message(32, "你好")
            await fake.wait_for(lambda: fake.sent(30) and channel.sender.stats["forbidden"])
            await channel.idle()
            token = fake.token
        async with webhook(tiny_engine) as (fake2, _, port):
            fake2.push_message(33, "你好")
            await fake2.wait_for(lambda: fake2.sent(33))
        # A wrong token fails at start and is logged as such, without the token.
        bad = "42:not-the-right-token-at-all"
        async with FakeTelegram() as fake3:
            with pytest.raises(TelegramConfigError):
                await TelegramChannel(tiny_engine, "tiny", bad, base_url=fake3.base_url).start()
        return token, repr(channel), bad

    token, shown, bad = run(scenario())
    logged = caplog.text + "".join(
        (r.exc_text or "") + str(r.msg) for r in caplog.records
    )
    assert "HTTP Request: POST" in logged and "/bot***/sendMessage" in logged  # httpx did log
    for secret in (token, SECRET, bad):
        assert secret not in logged
        assert secret not in shown


def test_the_channel_reads_updates_without_the_network():
    """read_update is pure: the table in the module doc, case by case."""
    from telegram import Update

    from bot.channels.telegram import read_update

    fake = FakeTelegram()

    def read(update: dict):
        update.setdefault("update_id", 1)
        return read_update(Update.de_json(update, None), bot_id=BOT_ID, bot_username=BOT_USERNAME)

    start = read({"message": fake.message(5, "/start promo_1")})
    assert (start.inbound.kind, start.inbound.event, start.inbound.payload) == (
        "event", "follow", {"ref": "promo_1"})
    command = read({"message": fake.message(5, "/hours please")})
    assert command.inbound.text == "hours please"
    assert read({"edited_message": fake.message(5, "x", edit_date=1)}) == "edited_message"
    assert read({"totally_new": {}}) == "update type not handled"
