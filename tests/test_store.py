"""The relationship log itself: schema contract, WAL, blocking."""

from __future__ import annotations

from bot.messages import FanRef, Inbound
from bot.relations import Store

CONTRACT = {
    "fans": {"id", "channel", "external_id", "persona", "display_name", "language", "first_seen",
             "last_seen", "dialog_state", "stage", "score", "subscribed", "blocked", "referred_by",
             "referral_code"},
    "messages": {"id", "fan_id", "direction", "text", "intent", "confidence", "state_before",
                 "state_after", "platform_msg_id", "created_at"},
    "events": {"id", "fan_id", "kind", "payload", "created_at"},
    "referrals": {"referrer_id", "referred_id", "code", "channel", "created_at"},
    "broadcasts": {"id", "persona", "text", "audience", "created_at"},
    "deliveries": {"broadcast_id", "fan_id", "status", "error", "sent_at"},
}


def test_tables_and_columns_operators_rely_on(fresh_db):
    for table, columns in CONTRACT.items():
        have = {c.name for c in fresh_db.db[table].columns}
        assert columns <= have, f"{table} lacks {columns - have}"


def test_wal_mode_and_migrations_are_idempotent(tmp_path):
    path = tmp_path / "x.db"
    Store(path).close()
    store = Store(path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [m.name for m in __import__("bot.relations.store", fromlist=["m"]).migrations.pending(
        store.db)] == []
    store.close()


def test_blocking_unsubscribes_and_is_logged_once(tiny_engine, fresh_db):
    fan = FanRef("test", "ann")
    tiny_engine.handle(Inbound(fan, text="subscribe"))
    tiny_engine.handle(Inbound(fan, text="yes"))
    now = "2026-01-05T11:00:00.000000Z"
    assert fresh_db.mark_blocked("tiny", "test", "ann", True, "telegram_403", now)
    assert fresh_db.mark_blocked("tiny", "test", "ann", True, "telegram_403", now)
    row = fresh_db.find_fan("tiny", "test", "ann")
    assert (row["blocked"], row["subscribed"]) == (1, 0)
    kinds = [r[0] for r in fresh_db.conn.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("block") == 1 and kinds[-1] == "unsubscribe"
    assert not fresh_db.mark_blocked("tiny", "test", "nobody", True, "x", now)


def test_reads_beside_the_writer_see_committed_rows_only(fresh_db):
    fresh_db.conn.execute("INSERT INTO fans (channel, external_id, persona, first_seen, last_seen)"
                          " VALUES ('web', 'a', 'p', 'now', 'now')")
    with fresh_db.transaction() as conn:
        conn.execute("INSERT INTO fans (channel, external_id, persona, first_seen, last_seen)"
                     " VALUES ('web', 'b', 'p', 'now', 'now')")
        # the read connection does not wait for this transaction and does not see it yet
        assert [r["external_id"] for r in fresh_db.read("SELECT external_id FROM fans")] == ["a"]
    assert len(fresh_db.read("SELECT external_id FROM fans")) == 2
