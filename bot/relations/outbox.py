"""The web chat's outbox: messages waiting for a web fan's page to fetch them.

A web page cannot be pushed to, so what the bot or an operator sends a web fan unasked
(operator replies, the in-voice message when a handoff times out) waits in the ``outbox`` table
until the fan's page asks: with the reply to the fan's next message (``POST /api/chat``) or by
polling (``GET /api/chat/pending``). The table lives in the relationship log, so any process
can queue (``brandbot handoff reply`` for a web fan) and the daemon serves it.

Delivery is at least once, with acknowledgement: every request hands out what still waits
(:func:`waiting`, with each message's id) and changes nothing; the page acknowledges the ids it
showed (``POST /api/chat/ack``, :func:`acknowledge`), which marks them delivered. A response
lost on the way (a dropped connection, a closed tab) leaves its messages waiting, so they come
again; the page shows each id once. "Delivered" means "the fan's page said it showed it".
(The ``taken_by`` column of m006 is no longer written: acknowledgement replaced it.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.messages import Reply
from bot.relations.store import Store, iso

CHANNEL = "web"


def enqueue(store: Store, fan_id: int, replies: list[Reply], now: datetime) -> int:
    """Queue ``replies`` for fan ``fan_id``'s page; returns how many were queued."""
    rows = [(fan_id, r.text, r.key, r.language, iso(now)) for r in replies if r.text]
    if rows:
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO outbox (fan_id, text, reply_key, language, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
    return len(rows)


_WAITING = (
    "SELECT o.id, o.text, o.reply_key, o.language FROM outbox o JOIN fans f ON f.id = o.fan_id "
    "WHERE f.persona = ? AND f.channel = ? AND f.external_id = ? AND o.delivered_at IS NULL "
    "ORDER BY o.id LIMIT ?"
)


def waiting(store: Store, persona: str, external_id: str,
            limit: int = 50) -> list[tuple[int, Reply]]:
    """The web fan's unacknowledged messages, oldest first, with their ids: one lock-free read
    beside the writer (every web request makes it; it changes nothing)."""
    rows = store.read(_WAITING, (persona, CHANNEL, external_id, limit))
    return [(r["id"], Reply(r["text"], r["reply_key"], r["language"])) for r in rows]


def acknowledge(store: Store, persona: str, external_id: str, ids: list[int],
                now: datetime) -> int:
    """Mark the messages ``ids`` of this web fan delivered (their page showed them); ids of
    another fan, unknown or already acknowledged are ignored. Returns how many were marked."""
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    with store.transaction() as conn:
        cursor = conn.execute(
            f"UPDATE outbox SET delivered_at = ? WHERE delivered_at IS NULL AND id IN ({marks}) "
            "AND fan_id = (SELECT id FROM fans WHERE persona = ? AND channel = ? "
            "AND external_id = ?)",
            (iso(now), *ids, persona, CHANNEL, external_id),
        )
        return cursor.rowcount


def pending(store: Store, fan_id: int) -> list[dict[str, Any]]:
    """What still waits for a fan (for operators and tests)."""
    rows = store.fetch_all(
        "SELECT id, text, reply_key, language, created_at FROM outbox "
        "WHERE fan_id = ? AND delivered_at IS NULL ORDER BY id",
        (fan_id,),
    )
    return [dict(r) for r in rows]
