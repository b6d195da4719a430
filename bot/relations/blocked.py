"""Fans who blocked a channel's bot: read here so that channels never name the ``fans`` table.

(Marking a fan blocked is ``Store.mark_blocked``; the Telegram channel reads the list at start so
that fans refused by an earlier run stay skipped until they write again.)
"""

from __future__ import annotations

from bot.relations.store import Store


def blocked_external_ids(store: Store, persona: str, channel: str) -> list[str]:
    """The platform ids of ``persona``'s fans on ``channel`` who are marked blocked."""
    rows = store.read(
        "SELECT external_id FROM fans WHERE persona = ? AND channel = ? AND blocked = 1",
        (persona, channel),
    )
    return [r[0] for r in rows]
