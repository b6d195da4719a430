"""The ``desk_topics`` table: which operator-group topic holds which fan's handoff.

One open topic per fan (``closed_at IS NULL``). The Telegram operator desk
(bot/channels/telegram_desk.py) keeps its mapping here; every function takes the store and
runs its own short transaction (the desk calls them in a thread, never on the event loop).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.relations.store import Store, iso


def open_topics(store: Store, chat_id: int) -> list[tuple]:
    """(fan id, persona, channel, external id, thread id) of every open topic in ``chat_id``."""
    return [tuple(r) for r in store.fetch_all(
        "SELECT f.id, f.persona, f.channel, f.external_id, t.thread_id FROM desk_topics t "
        "JOIN fans f ON f.id = t.fan_id WHERE t.chat_id = ? AND t.closed_at IS NULL",
        (chat_id,))]


def open_topic(store: Store, fan_id: int, chat_id: int, thread_id: int, now: datetime) -> None:
    """Record ``thread_id`` as the fan's open topic, closing any earlier one."""
    with store.transaction() as conn:
        conn.execute("UPDATE desk_topics SET closed_at = ? WHERE fan_id = ? AND closed_at "
                     "IS NULL", (iso(now), fan_id))
        conn.execute("INSERT INTO desk_topics (fan_id, chat_id, thread_id, created_at) "
                     "VALUES (?, ?, ?, ?)", (fan_id, chat_id, thread_id, iso(now)))


def close_topics(store: Store, fan_id: int, now: datetime) -> None:
    """Mark the fan's open topic closed."""
    with store.transaction() as conn:
        conn.execute("UPDATE desk_topics SET closed_at = ? WHERE fan_id = ? AND closed_at "
                     "IS NULL", (iso(now), fan_id))


def fan_row(store: Store, fan_id: int) -> dict[str, Any] | None:
    """The fan's row as a dict, or None when the fan was forgotten."""
    row = store.fetch_one("SELECT * FROM fans WHERE id = ?", (fan_id,))
    return dict(row) if row else None
