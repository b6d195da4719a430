"""`brandbot report`'s "not understood" list counts only real misses: turns answered with a
fallback, not turns a dialog state handled (a bare yes to a confirmation has no intent)."""

from __future__ import annotations

from datetime import timedelta

from bot.messages import FanRef, Inbound
from bot.relations.reports import build


def say(engine, who, text):
    return engine.handle(Inbound(FanRef("web", who), text=text))


def test_a_yes_to_a_confirmation_is_not_a_miss(tiny_engine, fresh_db, clock):
    say(tiny_engine, "a", "你好")
    say(tiny_engine, "a", "我要订阅")
    replies = say(tiny_engine, "a", "yes")  # the dialog's confirmation step takes it
    assert [r.key for r in replies] == ["subscribed"]
    say(tiny_engine, "b", "你好")
    say(tiny_engine, "b", "blorp zzz")  # a real miss: answered by the fallback
    data = build(fresh_db, clock.now, clock.now - timedelta(days=1), "tiny")
    assert data["not_understood"] == [["blorp zzz", 1]]
