"""Unsubscribes nobody signed: forgetting a fan deferred, and undone when the fan shows up.

WeChat requires deleting a fan's data when they unfollow, and brandbot does so at once for an
``unsubscribe`` it can authenticate (safe mode, or an encrypted push in compatible mode: its
``msg_signature`` covers the body). A plaintext push cannot be authenticated — its signature
does not cover the body — so a forged ``unsubscribe`` would erase a real fan. For those, the
unfollow (the turn that blocks and unsubscribes the fan, then the forgetting) is *deferred*:
recorded in ``wechat_unfollows`` with a due time (``WeChatChannelSettings.unfollow_grace``,
24 h), carried out by the channel once due, and cancelled if any push from the same OpenID
made after the unsubscribe arrives first (someone who unfollowed cannot write: a later message
proves the unsubscribe was not theirs; an older one, re-sent or replayed, proves nothing).

Every function here is blocking (the channel calls them in a thread).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def defer(store: Any, persona: str, openid: str, push_id: str, received_at: str,
          due_at: float) -> bool:
    """Record an unfollow to carry out at ``due_at``; False if one is already pending."""
    with store.transaction() as conn:
        return conn.execute(
            "INSERT OR IGNORE INTO wechat_unfollows (persona, openid, push_id, received_at, "
            "due_at) VALUES (?, ?, ?, ?, ?)", (persona, openid, push_id, received_at, due_at),
        ).rowcount == 1


def cancel(store: Any, persona: str, openid: str, created: int | None = None) -> bool:
    """Drop the fan's pending unfollow; True if there was one.

    With ``created`` (the ``CreateTime`` of a push from the fan) only if that push was made
    after the unsubscribe: an older push arriving now (WeChat re-sending it, or its signed URL
    and body replayed) proves nothing about the fan still following. The same second counts
    as before (which came first cannot be told; forgetting is the safe side)."""
    with store.transaction() as conn:
        if created is not None:
            row = conn.execute(
                "SELECT push_id, received_at FROM wechat_unfollows WHERE persona = ? AND "
                "openid = ?", (persona, openid)).fetchone()
            if row is None or created <= unsubscribed_at(row[0], row[1]):
                return False
        return conn.execute(
            "DELETE FROM wechat_unfollows WHERE persona = ? AND openid = ?", (persona, openid),
        ).rowcount == 1


def unsubscribed_at(push_id: str, received_at: str) -> float:
    """When the unsubscribe was made: the ``CreateTime`` in its push id
    (``openid:CreateTime:Event:EventKey``, see ``read_push``), but never later than when it
    arrived (an unsigned body could claim the year 2100, and no real push could then undo it).
    """
    parts = push_id.split(":")
    claimed = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    try:
        arrived = datetime.fromisoformat(received_at).timestamp()
    except ValueError:
        return claimed
    return min(claimed, arrived)


def pending(store: Any, persona: str) -> set[str]:
    """The OpenIDs with an unfollow pending (the channel keeps them in memory: one set lookup
    per push decides whether a push undoes one)."""
    return {r[0] for r in store.fetch_all(
        "SELECT openid FROM wechat_unfollows WHERE persona = ?", (persona,))}


def due(store: Any, persona: str, now: float) -> list[tuple[str, str]]:
    """(OpenID, push id) of the unfollows due at ``now``, oldest first."""
    return [(r[0], r[1]) for r in store.fetch_all(
        "SELECT openid, push_id FROM wechat_unfollows WHERE persona = ? AND due_at <= ? "
        "ORDER BY due_at", (persona, now))]
