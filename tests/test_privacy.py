"""Exporting and forgetting a fan's personal data (bot/relations/privacy.py), on a real log
written by real engine turns."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.errors import UnknownFanError as UnknownFan
from bot.messages import FanRef, Inbound, Reply
from bot.relations import outbox
from bot.relations.privacy import export_fan, forget_fan


def talk(engine, who: str, *texts: str, ref: str | None = None, name: str | None = None):
    fan = FanRef("wechat", who)
    for i, text in enumerate(texts):
        engine.handle(Inbound(fan, text=text, platform_msg_id=f"{who}-{i}", display_name=name,
                              payload={"ref": ref} if ref and i == 0 else {}))
    return engine.store.find_fan("tiny", "wechat", who)


def rows(store, sql: str, *args):
    return [dict(r) for r in store.conn.execute(sql, args).fetchall()]


@pytest.fixture
def two_fans(tiny_engine):
    """Alice came from a campaign and invited Bob; both talked, Alice subscribed."""
    alice = talk(tiny_engine, "oAlice", "你好，我叫爱丽丝", "订阅", "是", "几点开门",
                 ref="spring26", name="爱丽丝")
    bob = talk(tiny_engine, "oBob", "有停车位吗", ref=alice["referral_code"], name="Bob")
    store = tiny_engine.store
    with store.transaction() as conn:
        conn.execute("INSERT INTO broadcasts (id, persona, text, created_at) "
                     "VALUES (1, 'tiny', 'spring menu', '2026-01-05T10:00:00Z')")
        conn.execute("INSERT INTO deliveries (broadcast_id, fan_id, status) VALUES (1, ?, 'sent')",
                     (alice["id"],))
    return store, alice, bob


def test_export_holds_everything_about_the_fan(two_fans):
    store, alice, _ = two_fans
    data = export_fan(store, alice["id"])
    json.dumps(data, ensure_ascii=False)  # JSON-ready
    assert data["fan"]["external_id"] == "oAlice" and data["fan"]["display_name"] == "爱丽丝"
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == [
        "你好，我叫爱丽丝", "订阅", "是", "几点开门"]
    assert any(m["direction"] == "out" for m in data["messages"])
    assert {e["kind"] for e in data["events"]} >= {"referral", "subscribe"}
    assert data["referred_by"][0]["code"] == "spring26"
    assert len(data["referred"]) == 1  # Bob
    assert data["deliveries"][0]["text"] == "spring menu"
    assert data["outbox"] == []
    outbox.enqueue(store, alice["id"], [Reply("an operator note", "operator", "zh")],
                   datetime(2026, 1, 5, 10, tzinfo=UTC))
    assert export_fan(store, alice["id"])["outbox"][0]["text"] == "an operator note"
    with pytest.raises(UnknownFan):
        export_fan(store, 999)


def test_forget_keeping_aggregates_anonymises_and_keeps_counts(two_fans):
    store, alice, bob = two_fans
    before = rows(store, "SELECT direction, intent, created_at FROM messages WHERE fan_id = ? "
                         "ORDER BY id", alice["id"])
    store.conn.execute("INSERT INTO desk_topics (fan_id, chat_id, thread_id, created_at) "
                       "VALUES (?, -1001, 55, '2026-01-05T10:00:00Z')", (alice["id"],))
    changed = forget_fan(store, alice["id"])
    assert changed["fans"] == 1 and changed["messages"] == len(before)
    assert rows(store, "SELECT * FROM desk_topics WHERE fan_id = ?", alice["id"]) == []
    fan = rows(store, "SELECT * FROM fans WHERE id = ?", alice["id"])[0]
    assert fan["external_id"] == f"forgotten-{alice['id']}"
    assert fan["display_name"] is None and fan["referral_code"] is None
    assert fan["tags"] == "[]" and fan["voice_memory"] == "{}" and fan["language"] is None
    assert (fan["subscribed"], fan["blocked"]) == (0, 1)
    assert fan["source_code"] == "spring26"  # the campaign still counts
    assert rows(store, "SELECT status FROM deliveries")[0]["status"] == "sent"
    after = rows(store, "SELECT direction, intent, created_at, text, platform_msg_id "
                        "FROM messages WHERE fan_id = ? ORDER BY id", alice["id"])
    assert [(m["direction"], m["intent"], m["created_at"]) for m in after] == [
        (m["direction"], m["intent"], m["created_at"]) for m in before]
    assert all(m["text"] == "" and m["platform_msg_id"] is None for m in after)
    assert store.find_fan("tiny", "wechat", "oAlice") is None
    # Bob is untouched and still counted as Alice's referral.
    assert rows(store, "SELECT referred_by FROM fans WHERE id = ?", bob["id"])[0][
        "referred_by"] == alice["id"]
    assert rows(store, "SELECT count(*) AS n FROM messages WHERE fan_id = ? AND text != ''",
                bob["id"])[0]["n"] > 0
    forget_fan(store, alice["id"])  # again: harmless


def test_forget_without_aggregates_deletes_every_row(two_fans):
    store, alice, bob = two_fans
    changed = forget_fan(store, alice["id"], keep_aggregates=False)
    assert changed["fans"] == 1 and changed["messages"] > 0 and changed["events"] > 0
    for table, column in (("fans", "id"), ("messages", "fan_id"), ("events", "fan_id"),
                          ("referrals", "referred_id"), ("deliveries", "fan_id")):
        assert rows(store, f"SELECT * FROM {table} WHERE {column} = ?", alice["id"]) == []
    bob_row = rows(store, "SELECT * FROM fans WHERE id = ?", bob["id"])[0]
    assert bob_row["referred_by"] is None
    assert rows(store, "SELECT referrer_id FROM referrals WHERE referred_id = ?",
                bob["id"])[0]["referrer_id"] is None
    with pytest.raises(UnknownFan):
        forget_fan(store, alice["id"])


def test_a_forgotten_fan_who_comes_back_starts_fresh(two_fans, tiny_engine):
    store, alice, _ = two_fans
    forget_fan(store, alice["id"])
    again = talk(tiny_engine, "oAlice", "你好")
    assert again["id"] != alice["id"] and again["display_name"] is None
    assert again["source_code"] is None


def test_a_fan_whose_id_looks_forgotten_cannot_block_forgetting_another(tiny_engine):
    """External ids are chosen by others (a web site's own user ids, through the API key):
    one that reads ``forgotten-<id>`` of a real fan must not make forgetting that fan fail
    on the unique (persona, channel, external id) index."""
    alice = talk(tiny_engine, "oAlice", "你好", name="Alice")
    tiny_engine.handle(Inbound(FanRef("wechat", f"forgotten-{alice['id']}"), text="hi"))
    squatter = tiny_engine.store.find_fan("tiny", "wechat", f"forgotten-{alice['id']}")

    forget_fan(tiny_engine.store, alice["id"])

    row = rows(tiny_engine.store, "SELECT * FROM fans WHERE id = ?", alice["id"])[0]
    assert row["external_id"].startswith(f"forgotten-{alice['id']}")
    assert row["external_id"] != squatter["external_id"] and row["display_name"] is None
    assert rows(tiny_engine.store, "SELECT text FROM messages WHERE fan_id = ?",
                alice["id"]) == [{"text": ""}] * 2
    assert tiny_engine.store.find_fan("tiny", "wechat", squatter["external_id"])["id"] == \
        squatter["id"]  # the other fan is left as it was
