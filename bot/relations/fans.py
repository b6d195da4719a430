"""The ``fans`` rows a turn writes: creation, first-touch referral credit, score, the turn's update.

The engine decides; these functions only write, in the caller's transaction (``conn`` is the
turn's connection, so a turn still commits as one). They live here so that bot/relations/ is
the one place naming tables (docs/architecture.md). The statements are plain prepared SQL, as
the rest of the hot path (bot/relations/store.py says why not sqlite-utils' table helpers).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.relations.store import Store

_CREATE = (
    "INSERT INTO fans (channel, external_id, persona, display_name, language, first_seen, "
    "last_seen, dialog_state, referral_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_BY_ID = "SELECT * FROM fans WHERE id = ?"
_REFERRAL = (
    "INSERT INTO referrals (referrer_id, referred_id, code, channel, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_REFERRED = "UPDATE fans SET referred_by = ?, source_code = ? WHERE id = ?"
_SCORE = "UPDATE fans SET score = ?, score_at = ?, stage = ? WHERE id = ?"
_TURN = (
    "UPDATE fans SET last_seen = ?, language = ?, dialog_state = ?, stage = ?, score = ?, "
    "score_at = ?, subscribed = ?, subscribed_at = ?, blocked = ?, handoff = ?, "
    "misses = ?, tags = ?, voice_memory = ?, display_name = coalesce(?, display_name) "
    "WHERE id = ?"
)


def create_fan(conn: sqlite3.Connection, *, channel: str, external_id: str, persona: str,
               display_name: str | None, language: str | None, dialog_state: str,
               referral_code: str, at: str) -> int:
    """Insert a fan seen for the first time (``at``: first and last seen); returns its id."""
    cur = conn.execute(_CREATE, (channel, external_id, persona, display_name, language, at, at,
                                 dialog_state, referral_code))
    return cur.lastrowid


def fan_row(conn: sqlite3.Connection, fan_id: int) -> dict[str, Any]:
    """The fan's whole row, as the caller's transaction sees it."""
    return dict(conn.execute(_BY_ID, (fan_id,)).fetchone())


def credit_referral(conn: sqlite3.Connection, fan_id: int, referrer_id: int | None, code: str,
                    channel: str, at: str) -> None:
    """First touch: the code that brought ``fan_id`` (and the fan it belongs to, if any)."""
    conn.execute(_REFERRAL, (referrer_id, fan_id, code, channel, at))
    conn.execute(_REFERRED, (referrer_id, code, fan_id))


def set_score(conn: sqlite3.Connection, fan_id: int, score: float, stage: str, at: str) -> None:
    """Another fan's new score and stage (a referrer credited for someone they brought in)."""
    conn.execute(_SCORE, (score, at, stage, fan_id))


def save_turn(conn: sqlite3.Connection, fan_id: int, *, at: str, language: str,
              dialog_state: str, stage: str, score: float, subscribed: bool,
              subscribed_at: str | None, blocked: int, handoff: bool, misses: int, tags: str,
              voice_memory: str, display_name: str | None) -> None:
    """Everything a turn changed about the speaker (``display_name`` None keeps the old one)."""
    conn.execute(_TURN, (at, language, dialog_state, stage, score, at, int(subscribed),
                         subscribed_at, blocked, int(handoff), misses, tags, voice_memory,
                         display_name, fan_id))


def fan_by_id(store: Store, fan_id: int) -> dict[str, Any] | None:
    """The fan with row id ``fan_id``, or None (outside a turn: the operator's commands)."""
    row = store.fetch_one(_BY_ID, (fan_id,))
    return dict(row) if row else None


def code_known(store: Store, code: str) -> bool:
    """Whether ``code`` is a campaign's code or a fan's personal referral code."""
    if store.fetch_one("SELECT 1 FROM campaigns WHERE code = ?", (code,)) is not None:
        return True
    return store.fan_by_referral_code(code) is not None


def last_inbound(store: Store, fan_id: int) -> sqlite3.Row | None:
    """The intent and language logged for the fan's last inbound message (conversation tests)."""
    return store.fetch_one(
        "SELECT intent, language FROM messages WHERE fan_id = ? AND direction = 'in' "
        "ORDER BY id DESC LIMIT 1",
        (fan_id,),
    )
