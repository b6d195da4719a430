"""Sending to Telegram: splitting, pacing, 429/403/400/5xx, through real PTB against the fake."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_sender import MAX_TEXT, split_text
from bot.channels.textsplit import utf16_units as _units
from bot.messages import FanRef, Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram import fan, polling, run

# PTB 22.8's RetryAfter constructor reads its own deprecated int ``retry_after``
# (docs/channels/protocol-notes.md T3), so every 429 warns inside the library; our code reads
# it either way (see below).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

# -- splitting (pure) ------------------------------------------------------------------------------


def sentences_en(n: int) -> str:
    return " ".join(f"Sentence number {i} tells you about our kitchen." for i in range(n))


def test_a_short_reply_is_one_message():
    assert split_text("  hello there  ") == ["hello there"]
    assert split_text("x" * MAX_TEXT) == ["x" * MAX_TEXT]


def test_a_long_english_reply_splits_at_sentence_ends():
    text = sentences_en(400)  # ~19,000 characters
    parts = split_text(text)
    assert len(parts) == 5
    assert all(_units(p) <= MAX_TEXT for p in parts)
    assert all(p.endswith("kitchen.") for p in parts)
    assert " ".join(parts) == text


def test_a_long_chinese_reply_splits_after_a_full_stop():
    text = "".join(f"第{i}句介绍我们的招牌菜，欢迎来尝尝。" for i in range(600))
    parts = split_text(text)
    assert all(_units(p) <= MAX_TEXT and p.endswith("。") for p in parts)
    assert "".join(parts) == text


def test_a_paragraph_break_is_preferred_in_the_second_half():
    text = "a. " * 1000 + "\n\n" + "b" * 3000
    parts = split_text(text)
    assert parts[0] == ("a. " * 1000).strip() and parts[1] == "b" * 3000


def test_emoji_count_double_and_no_boundary_means_a_hard_cut():
    emoji = "😀" * 3000  # 6,000 UTF-16 units
    parts = split_text(emoji)
    assert [_units(p) for p in parts] == [4096, 6000 - 4096]
    assert "".join(parts) == emoji
    word = "x" * 5000
    assert [len(p) for p in split_text(word)] == [4096, 904]


def test_words_are_kept_whole_when_there_is_no_sentence_end():
    text = " ".join(["word"] * 2000)
    parts = split_text(text)
    assert all(re.fullmatch(r"(word ?)+", p) for p in parts)
    assert " ".join(parts) == text


def test_a_long_reply_goes_out_as_several_messages(tiny_engine):
    text = sentences_en(200)

    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            await channel.send(FanRef("telegram", "40"), [Reply(text)])
            await channel.idle()
        return fake

    fake = run(scenario())
    sent = fake.texts(40)
    assert len(sent) == 3 and " ".join(sent) == text
    assert all(_units(t) <= MAX_TEXT for t in sent)


# -- 429, 403, 400, network errors -----------------------------------------------------------------


@pytest.mark.slow  # waits of 2 s or more, so that none is asserted under 2 s
def test_a_429_pauses_only_the_chat_that_got_it(tiny_engine):
    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            fake.fail(status=429, retry_after=2, chat_id=50)
            await channel.send(FanRef("telegram", "50"), [Reply("first"), Reply("second")])
            await channel.send(FanRef("telegram", "51"), [Reply("other fan")])
            await fake.wait_for(lambda: fake.sent(51), what="the other chat")
            await fake.wait_for(lambda: len(fake.sent(50)) == 2, timeout=20, what="the retry")
            return fake, channel

    fake, channel = run(scenario(), timeout=60)
    calls = [c for c in fake.calls if c.method == "sendMessage"]
    refused = next(c for c in calls if c.status == 429)
    other = fake.sent(51)[0]
    first, second = fake.sent(50)
    # Not held up by chat 50's pause: the other fan's message went out while chat 50 waited.
    assert calls.index(refused) < calls.index(other) < calls.index(first)
    assert first.at - refused.at >= 2  # chat 50 waited retry_after (2 s)
    assert [first.params["text"], second.params["text"]] == ["first", "second"]  # order kept
    assert channel.sender.stats["retry_after"] == 1


@pytest.mark.slow  # waits of 2 s or more, so that none is asserted under 2 s
def test_network_errors_are_retried_with_backoff_and_a_400_is_not(tiny_engine):
    async def scenario():
        async with polling(tiny_engine, send_backoff=0.3) as (fake, channel):
            fake.fail(status=502, chat_id=60, times=2)
            fake.fail(status=500, chat_id=60, times=1)
            fake.fail(status=400, description="Bad Request: chat not found", chat_id=61)
            await channel.send(FanRef("telegram", "60"), [Reply("hello")])
            await channel.send(FanRef("telegram", "61"), [Reply("hello")])
            await channel.idle()
            return fake, channel

    fake, channel = run(scenario(), timeout=60)
    to60 = [c for c in fake.calls if c.method == "sendMessage" and c.params["chat_id"] == "60"]
    assert [c.status for c in to60] == [502, 502, 500, 200]
    # Waits of 0.3 × 2ⁿ: 0.3 + 0.6 + 1.2 = 2.1 s in all (a fixed 0.3 s would be 0.9 s).
    assert to60[-1].at - to60[0].at >= 2
    to61 = [c for c in fake.calls if c.method == "sendMessage" and c.params["chat_id"] == "61"]
    assert [c.status for c in to61] == [400]
    assert channel.sender.stats["failed"] == 1


def test_a_403_on_a_proactive_send_is_recorded_for_a_known_fan(tiny_engine):
    store = tiny_engine.store

    async def scenario():
        async with polling(tiny_engine) as (fake, channel):
            fake.push_message(70, "订阅")
            fake.push_message(70, "是")
            await fake.wait_for(lambda: len(fake.sent(70)) == 3)
            fake.fail(status=403, chat_id=70)
            await channel.send(FanRef("telegram", "70"), [Reply("news 1"), Reply("news 2")])
            await channel.idle()
            return fake

    fake = run(scenario())
    f = fan(store, 70)
    assert (f["blocked"], f["subscribed"]) == (1, 0)
    assert len([c for c in fake.calls if c.params.get("chat_id") == "70"
                and c.method == "sendMessage"]) == 4  # 3 replies, 1 refused, news 2 never tried


def test_blocked_fans_from_an_earlier_run_are_not_sent_to(tiny_engine):
    store = tiny_engine.store

    async def scenario():
        async with polling(tiny_engine) as (fake, _):
            fake.push_message(80, "你好")
            await fake.wait_for(lambda: fake.sent(80))
        store.mark_blocked("tiny", "telegram", "80", True, "telegram_403", "2026-01-05T10:00:00Z")
        async with polling(tiny_engine) as (fake, channel):
            await channel.send(FanRef("telegram", "80"), [Reply("news")])
            await channel.idle()
            return fake, channel

    fake, channel = run(scenario())
    assert fake.sent(80) == [] and 80 in channel.sender.blocked


# -- pacing ----------------------------------------------------------------------------------------


@pytest.mark.slow  # waits of 2 s or more, so that none is asserted under 2 s
def test_one_chat_gets_about_one_message_per_second_after_a_short_burst(tiny_engine):
    async def scenario():
        async with polling(tiny_engine, per_chat_rate=1.5, per_chat_burst=2) as (fake, channel):
            await channel.send(FanRef("telegram", "90"), [Reply(f"m{i}") for i in range(6)])
            await channel.send(FanRef("telegram", "91"), [Reply("other")])
            await channel.idle()
            return fake

    fake = run(scenario(), timeout=60)
    sent = fake.sent(90)
    times = [c.at for c in sent]
    assert [c.params["text"] for c in sent] == [f"m{i}" for i in range(6)]
    # After the burst: one per 1/rate seconds (1.5/s here; 1/s by default): the four paced
    # sends take 4 × 0.67 s. Lower bounds only: a busy machine makes them later, never earlier.
    assert times[5] - times[1] >= 2
    # The burst: the second message did not wait a pacing interval, as the third did.
    assert times[1] - times[0] < times[2] - times[1]
    calls = fake.calls
    assert calls.index(fake.sent(91)[0]) < calls.index(sent[2])  # another chat is not held up


@pytest.mark.slow  # waits of 2 s or more, so that none is asserted under 2 s
def test_the_overall_rate_caps_sends_across_chats(tiny_engine):
    async def scenario():
        async with polling(tiny_engine, overall_rate=20) as (fake, channel):
            for chat in range(100, 165):
                await channel.send(FanRef("telegram", str(chat)), [Reply("news")])
            await channel.idle()
            return fake

    fake = run(scenario(), timeout=60)
    times = sorted(c.at for c in fake.sent())
    assert len(times) == 65
    assert times[-1] - times[0] >= 2  # 20 at once, then 45 more at 20/s: 2.25 s


def test_retry_after_is_read_as_an_int_or_a_timedelta():
    from datetime import timedelta

    from telegram.error import RetryAfter

    from bot.channels.telegram_sender import retry_after_seconds

    assert retry_after_seconds(RetryAfter(3)) == 3.0
    assert retry_after_seconds(RetryAfter(timedelta(seconds=1.5))) == 1.5


def test_defaults_follow_telegrams_limits(tiny_engine):
    channel = TelegramChannel(tiny_engine, "tiny", "1:x")
    assert channel._sender_args["per_chat_rate"] == 1.0
    assert channel._sender_args["overall_rate"] == 30.0


@pytest.mark.parametrize("retry_after", [1])
def test_polling_survives_a_429_on_get_updates(tiny_engine, retry_after):
    async def scenario():
        async with FakeTelegram() as fake:
            channel = TelegramChannel(tiny_engine, "tiny", fake.token, base_url=fake.base_url,
                                      per_chat_rate=None)
            fake.fail("getUpdates", status=429, retry_after=retry_after)
            await channel.start()
            fake.push_message(95, "几点开门")
            await fake.wait_for(lambda: fake.sent(95), timeout=6, what="an answer after the 429")
            await channel.stop()
            return channel

    channel = run(scenario())
    assert channel.stats["errors"] == 0


def test_stop_gives_up_on_unsendable_replies_after_the_timeout(tiny_engine):
    async def scenario():
        async with polling(tiny_engine, stop_timeout=0.3) as (fake, channel):
            fake.fail(status=429, retry_after=30, chat_id=99)
            await channel.send(FanRef("telegram", "99"), [Reply("never")])
            await asyncio.sleep(0)
            started = asyncio.get_running_loop().time()
        return asyncio.get_running_loop().time() - started, channel

    took, channel = run(scenario())
    assert took < 10  # the 0.3 s stop timeout, not the 30 s retry_after
    assert channel.sender.stats["unsent_at_stop"] == 1


def test_requests_in_flight_follow_the_measured_latency():
    from bot.channels.telegram_sender import _Gate

    gate = _Gate(30, 8)
    gate.latency = 0.2  # far from Telegram: 30/s × 0.2 s × 2 → capped at 8
    assert gate.limit == 8
    gate.latency = 0.05
    assert gate.limit == 3
    gate.latency = 0.001  # next door: 2 are plenty
    assert gate.limit == 2
    assert _Gate(30, 1).limit == 1
