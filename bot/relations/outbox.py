"""The web chat's outbox: messages waiting for a web fan's page to fetch them.

A web page cannot be pushed to, so what the bot or an operator sends a web fan unasked
(operator replies, the in-voice message when a handoff times out) waits in the ``outbox`` table
until the fan's page asks: with the reply to the fan's next message (``POST /api/chat``) or by
polling (``GET /api/chat/pending``). The table lives in the relationship log, so any process
can queue (``brandbot handoff reply`` for a web fan) and the daemon serves it.

Each waiting message is handed out exactly once: :func:`take` reads and marks it delivered in
one transaction. "Delivered" means "given to the fan's page", the most a web chat can know.
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


_PENDING = (
    "SELECT o.id, o.text, o.reply_key, o.language FROM outbox o JOIN fans f ON f.id = o.fan_id "
    "WHERE f.persona = ? AND f.channel = ? AND f.external_id = ? AND o.delivered_at IS NULL "
    "ORDER BY o.id"
)


def glance(store: Store, persona: str, external_id: str,
           msg_id: str | None = None) -> tuple[list[Reply], bool]:
    """One lock-free read beside the writer, for every web request: the messages an earlier
    request with this ``msg_id`` took (a retry gets them again), and whether new ones wait."""
    rows = store.read(
        "SELECT o.text, o.reply_key, o.language, o.delivered_at FROM outbox o "
        "JOIN fans f ON f.id = o.fan_id WHERE f.persona = ? AND f.channel = ? "
        "AND f.external_id = ? AND (o.delivered_at IS NULL OR o.taken_by = ?) ORDER BY o.id",
        (persona, CHANNEL, external_id, msg_id),
    )
    taken = [Reply(r["text"], r["reply_key"], r["language"]) for r in rows if r["delivered_at"]]
    return taken, len(taken) < len(rows)


def take(store: Store, persona: str, external_id: str, now: datetime,
         msg_id: str | None = None) -> list[Reply]:
    """The web fan's waiting messages, oldest first, marked delivered in the same transaction
    (and, with ``msg_id``, remembered as taken by that request)."""
    with store.transaction() as conn:
        rows = conn.execute(_PENDING, (persona, CHANNEL, external_id)).fetchall()
        conn.executemany(
            "UPDATE outbox SET delivered_at = ?, taken_by = ? WHERE id = ?",
            [(iso(now), msg_id, r["id"]) for r in rows],
        )
    return [Reply(r["text"], r["reply_key"], r["language"]) for r in rows]


def pending(store: Store, fan_id: int) -> list[dict[str, Any]]:
    """What still waits for a fan (for operators and tests)."""
    rows = store.fetch_all(
        "SELECT id, text, reply_key, language, created_at FROM outbox "
        "WHERE fan_id = ? AND delivered_at IS NULL ORDER BY id",
        (fan_id,),
    )
    return [dict(r) for r in rows]
