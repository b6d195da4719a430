"""The operator desk: transcripts, operator replies, and handoffs nobody picked up.

A conversation is in handoff when the dialog started one (complaint, "human", two misses); the
bot then only acknowledges. Operators read the transcript (:func:`transcript`), answer through
the fan's channel (:func:`log_operator_reply` records it as an outbound message with
``reply_key = 'operator'``), and hand back (``brandbot handoff end``).

A handoff with no operator reply for the persona's ``desk.handoff_timeout_minutes`` (counted
from the handoff or the last operator reply, whichever is later) is *abandoned*:
:func:`abandoned_handoffs` finds it; the caller (``expire_handoffs`` in bot/scheduled.py) gives
it back to the bot through the engine's ``handoff_end`` trigger, so the fan gets the persona's
in-voice ``handoff_end`` reply and the dialog leaves its handoff state, and
:func:`record_timeout` logs a ``handoff_timeout`` event. The caller delivers the replies (the
daemon through its channels; ``brandbot handoff expire`` through the channels its settings
allow).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.messages import FanRef, Reply
from bot.relations.scoring import parse_iso
from bot.relations.store import Store, insert_message, iso, log_event

OPERATOR_KEY = "operator"


def transcript(store: Store, fan_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The fan's last ``limit`` messages, oldest first, each with who wrote it."""
    rows = store.fetch_all(
        "SELECT direction, text, reply_key, intent, created_at, kind FROM messages "
        "WHERE fan_id = ? ORDER BY id DESC LIMIT ?",
        (fan_id, limit),
    )
    out = []
    for r in reversed(rows):
        who = "fan" if r[0] == "in" else ("operator" if r[2] == OPERATOR_KEY else "bot")
        out.append({"who": who, "text": r[1], "intent": r[3], "at": r[4], "kind": r[5]})
    return out


def handoff_started(store: Store, fan_id: int) -> str | None:
    return store.fetch_one(
        "SELECT max(created_at) FROM events WHERE fan_id = ? AND kind = 'handoff'", (fan_id,)
    )[0]


def log_operator_reply(store: Store, fan: dict[str, Any], text: str, now: datetime,
                       operator: str | None = None) -> int:
    """Record a delivered operator message as the fan's outbound message (and an event)."""
    with store.transaction() as conn:
        message_id = insert_message(
            conn, fan_id=fan["id"], direction="out", text=text, created_at=iso(now),
            channel=fan["channel"], language=fan["language"], reply_key=OPERATOR_KEY,
            state_before=fan["dialog_state"], state_after=fan["dialog_state"],
        )
        log_event(conn, fan["id"], "operator_reply", {"via": operator or "cli"}, iso(now))
        return message_id


@dataclass(frozen=True, slots=True)
class Expired:
    fan: FanRef
    persona: str
    fan_id: int
    replies: list[Reply]


def abandoned(store: Store, persona: str, timeout_minutes: float, now: datetime
              ) -> list[dict[str, Any]]:
    """Fans of ``persona`` in handoff with no operator activity for ``timeout_minutes``."""
    cutoff = iso(now - timedelta(minutes=timeout_minutes))
    rows = store.fetch_all(
        "SELECT * FROM (SELECT f.*, max("
        "  coalesce((SELECT max(created_at) FROM events e WHERE e.fan_id = f.id "
        "            AND e.kind = 'handoff'), f.last_seen),"
        "  coalesce((SELECT max(created_at) FROM messages m WHERE m.fan_id = f.id "
        "            AND m.direction = 'out' AND m.reply_key = ?), '')) AS active_at "
        " FROM fans f WHERE f.persona = ? AND f.handoff = 1) WHERE active_at < ?",
        (OPERATOR_KEY, persona, cutoff),
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A handoff past its persona's timeout: the fan to hand back, and what the timeout was."""

    fan: FanRef
    persona: str
    fan_id: int
    minutes: float
    active_at: str


def abandoned_handoffs(store: Store, timeouts: Mapping[str, float | None], now: datetime
                       ) -> list[Abandoned]:
    """Every abandoned handoff of the personas in ``timeouts`` (persona id → its
    ``desk.handoff_timeout_minutes``; None: that persona's handoffs never time out).

    Only finds them: the caller runs each fan's ``handoff_end`` turn through the engine and,
    when the turn answered, calls :func:`record_timeout` (bot/scheduled.py ``expire_handoffs``).
    """
    out: list[Abandoned] = []
    for persona_id, minutes in timeouts.items():
        if minutes is None:
            continue
        for fan in abandoned(store, persona_id, minutes, now):
            out.append(Abandoned(FanRef(fan["channel"], fan["external_id"]), persona_id,
                                 fan["id"], minutes, fan["active_at"]))
    return out


def record_timeout(store: Store, item: Abandoned, now: datetime) -> None:
    """Log the ``handoff_timeout`` event of a handoff the bot took back."""
    with store.transaction() as conn:
        log_event(conn, item.fan_id, "handoff_timeout",
                  {"minutes": item.minutes, "from": item.active_at}, iso(now))


def time_to_first_reply(store: Store, since: str | None = None,
                        persona: str | None = None) -> list[float]:
    """Minutes from each handoff to the first operator reply after it (answered handoffs only),
    of one persona's fans or of all."""
    rows = store.fetch_all(
        "SELECT e.created_at, (SELECT min(m.created_at) FROM messages m WHERE "
        "m.fan_id = e.fan_id AND m.reply_key = ? AND m.direction = 'out' AND "
        "m.created_at >= e.created_at) FROM events e JOIN fans f ON f.id = e.fan_id "
        "WHERE e.kind = 'handoff' AND e.created_at >= ? AND (? IS NULL OR f.persona = ?)",
        (OPERATOR_KEY, since or "", persona, persona),
    )
    out = []
    for start, first in rows:
        if first:
            out.append((parse_iso(first) - parse_iso(start)).total_seconds() / 60)
    return out
