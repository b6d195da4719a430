"""What past broadcasts did, for ``brandbot broadcast list|show``: read-only summaries of the
``broadcasts`` and ``deliveries`` tables (bot/relations/broadcast.py plans and sends them)."""

from __future__ import annotations

import sqlite3

from bot.relations.store import Store


def broadcast_summaries(store: Store) -> list[sqlite3.Row]:
    """One row per broadcast, oldest first: id, persona, audience, status, created_at, then
    deliveries sent, failed, skipped, left (queued or sending), unknown, and the text's first
    30 characters."""
    return store.fetch_all(
        "SELECT b.id, b.persona, b.audience, b.status, b.created_at, "
        "sum(d.status = 'sent'), sum(d.status = 'failed'), sum(d.status = 'skipped'), "
        "sum(d.status IN ('queued', 'sending')), sum(d.status = 'unknown'), substr(b.text, 1, 30) "
        "FROM broadcasts b LEFT JOIN deliveries d ON d.broadcast_id = b.id "
        "GROUP BY b.id ORDER BY b.id"
    )


def delivery_breakdown(store: Store, broadcast_id: int) -> list[sqlite3.Row]:
    """(status, why or '', fans) for one broadcast's deliveries, the largest group first."""
    return store.fetch_all(
        "SELECT status, coalesce(error, ''), count(*) FROM deliveries WHERE broadcast_id = ? "
        "GROUP BY status, error ORDER BY count(*) DESC", (broadcast_id,)
    )
