"""The topic calendar: newsletters a persona declares in advance, sent on their date.

A persona lists topics (``calendar:`` — id, date, time in the persona's ``timezone``, text per
language, audience). A topic
is *due* from its time until a day later (a daemon that was down longer does not send stale
greetings); it is sent once per persona — ``broadcasts.topic`` is unique — and logged like a
manual broadcast (one delivery row per fan, the unsubscribe footer, resumable).

The daemon runs each topic as a durable job at its time (bot/scheduled.py, no cron);
``brandbot calendar send`` does the same by hand.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from bot.persona.model import Persona, Topic
from bot.relations.broadcast import Outlet, channel_reasons, create, deliver
from bot.relations.store import Store, iso

GRACE = timedelta(days=1)


def sent_topics(store: Store, persona: str) -> dict[str, int]:
    """Topic id → broadcast id, for the topics of ``persona`` already recorded.

    On the lock-free read connection: the daemon asks every minute from its event loop, which
    must not wait for a turn thread that is itself waiting for another process's write.
    """
    rows = store.read(
        "SELECT topic, id FROM broadcasts WHERE persona = ? AND topic IS NOT NULL", (persona,)
    )
    return {r[0]: r[1] for r in rows}


def due_topics(store: Store, persona: Persona, now: datetime) -> list[Topic]:
    """Topics whose time has come (within a day) and that were not sent yet."""
    done = sent_topics(store, persona.id)
    zone = persona.zone
    return [t for t in persona.calendar
            if t.id not in done and t.at(zone) <= now < t.at(zone) + GRACE]


def interrupted_topics(store: Store, persona: str, now: datetime) -> list[int]:
    """Topic broadcasts of ``persona`` still marked sending, recorded within the grace period."""
    since = iso(now - GRACE)
    return [r[0] for r in store.read(
        "SELECT id FROM broadcasts WHERE persona = ? AND topic IS NOT NULL AND status = 'sending' "
        "AND created_at >= ? ORDER BY id", (persona, since))]


def has_calendar_work(store: Store, persona: Persona, now: datetime) -> bool:
    """Whether :func:`send_due_topics` has anything to do: a due topic or an interrupted send."""
    return bool(due_topics(store, persona, now) or interrupted_topics(store, persona.id, now))


async def send_due_topics(store: Store, persona: Persona, outlets: dict[str, Outlet],
                          now: datetime, *, missing: dict[str, str] | None = None,
                          clock: Any = None) -> list[int]:
    """Record and deliver every due topic; returns the broadcast ids (also resumed ones).

    A topic send interrupted by a stop or a crash is resumed first (within the grace period):
    its queued deliveries go out, the ones in flight at the crash are never resent.
    """
    ids = []
    for broadcast_id in interrupted_topics(store, persona.id, now):
        await deliver(store, broadcast_id, persona, outlets, clock=clock or (lambda: now))
        ids.append(broadcast_id)
    for topic in due_topics(store, persona, now):
        texts = ({persona.default_language: topic.text} if isinstance(topic.text, str)
                 else dict(topic.text))
        default = persona.text(topic.text, persona.default_language)
        try:
            broadcast_id, _ = await asyncio.to_thread(
                create, store, persona, default, topic.audience, now,
                channel_reasons(outlets, missing), texts=texts, topic=topic.id,
            )
        except sqlite3.IntegrityError:  # another process recorded it first
            continue
        await deliver(store, broadcast_id, persona, outlets, clock=clock or (lambda: now))
        ids.append(broadcast_id)
    return ids
