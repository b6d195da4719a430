"""The daemon's own scheduled work, as durable jobs (bot/relations/jobs.py): no cron needed.

- ``handoff_expire`` (one recurring row, key ``handoff_expire``): every minute, abandoned
  handoffs go back to the bot and the fans are told through their channels.
- ``prune_jobs`` (daily, key ``prune_jobs``): finished job rows older than 30 days go.
- ``calendar_topic`` (one row per topic occurrence, key ``calendar:<persona>:<topic>:<UTC>``):
  at the topic's time in the persona's time zone, the topic goes out once. Planned when the
  daemon starts and again after each reload; a topic whose date or time was edited gets a new
  row and the old one finds its topic gone and does nothing.

Handlers run on the daemon's loop and hand blocking database work to threads.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.messages import Inbound
from bot.relations.desk import Expired, abandoned_handoffs, record_timeout
from bot.relations.jobs import Job, Scheduler, schedule
from bot.relations.store import Store, iso

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger("brandbot.jobs")

HANDOFF_EXPIRE = "handoff_expire"
CALENDAR_TOPIC = "calendar_topic"
PRUNE_JOBS = "prune_jobs"
HANDOFF_EVERY = timedelta(minutes=1)
PRUNE_EVERY = timedelta(days=1)


def topic_key(persona_id: str, topic_id: str, at: datetime) -> str:
    return f"calendar:{persona_id}:{topic_id}:{iso(at)}"


def plan_calendar(store: Store, persona: Any, now: datetime) -> list[Job]:
    """Schedule each of the persona's topics not yet sent and not stale (idempotent)."""
    from bot.relations.calendar import GRACE, sent_topics

    sent = sent_topics(store, persona.id)
    planned = []
    for topic in persona.calendar:
        at = topic.at(persona.zone)
        if topic.id in sent or at + GRACE <= now:
            continue
        planned.append(schedule(
            store, CALENDAR_TOPIC, at, {"persona": persona.id, "topic": topic.id, "at": iso(at)},
            key=topic_key(persona.id, topic.id, at), now=now,
        ))
    return planned


def plan_recurring(store: Store, now: datetime) -> list[Job]:
    """The recurring series: one row each for ever (scheduling them again is a no-op)."""
    return [schedule(store, kind, now, key=kind, now=now) for kind in (HANDOFF_EXPIRE, PRUNE_JOBS)]


def expire_handoffs(engine: Engine, now: datetime) -> list[Expired]:
    """Give every abandoned handoff back to the bot; returns the replies to deliver.

    The daemon's ``handoff_expire`` job runs this every minute and delivers each
    ``Expired.replies`` through the channel named by ``Expired.fan.channel``; ``brandbot handoff
    expire`` runs it by hand. bot/relations/desk.py finds the handoffs; the engine, above it,
    runs each fan's ``handoff_end`` turn here.
    """
    timeouts = {persona_id: brand.persona.desk.handoff_timeout_minutes
                for persona_id, brand in list(engine.brands.items())}
    out: list[Expired] = []
    for item in abandoned_handoffs(engine.store, timeouts, now):
        replies = engine.handle(
            Inbound(item.fan, kind="event", event="handoff_end", received_at=now), item.persona
        )
        if not replies:  # someone else (an operator, another expirer) ended it meanwhile
            continue
        record_timeout(engine.store, item, now)
        out.append(Expired(item.fan, item.persona, item.fan_id, replies))
    return out


def register(scheduler: Scheduler, daemon: Any) -> None:
    """Bind the handlers to a running daemon (its engine, channels and settings)."""

    async def handoff_expire(job: Job, now: datetime) -> datetime:
        await daemon._relations_once(now)
        return now + HANDOFF_EVERY

    async def calendar_topic(job: Job, now: datetime) -> None:
        from bot.relations.broadcast import outlets_from_settings
        from bot.relations.calendar import send_due_topics

        persona_id, topic_id = job.payload["persona"], job.payload["topic"]
        brand = daemon.engine.brands.get(persona_id)
        if brand is None:
            raise LookupError(f"persona {persona_id!r} is not served by this daemon; add it to "
                              "the settings' personas, or the topic is not sent")
        persona = brand.persona
        topic = next((t for t in persona.calendar if t.id == topic_id), None)
        if topic is None or iso(topic.at(persona.zone)) != job.payload["at"]:
            log.info("calendar topic %s of %s was removed or moved; this occurrence is skipped",
                     topic_id, persona_id)
            return None
        outlets, missing = await asyncio.to_thread(
            outlets_from_settings, daemon.settings, daemon.store, persona_id)
        ids = await send_due_topics(daemon.store, persona, outlets, now, missing=missing)
        log.info("calendar topic %s of %s: broadcast(s) %s", topic_id, persona_id, ids or "none")
        return None

    async def prune_jobs(job: Job, now: datetime) -> datetime:
        from bot.relations.jobs import prune

        removed = await asyncio.to_thread(prune, daemon.store, now)
        if removed:
            log.info("pruned %d finished job(s) older than 30 days", removed)
        return now + PRUNE_EVERY

    scheduler.register(HANDOFF_EXPIRE, handoff_expire)
    scheduler.register(PRUNE_JOBS, prune_jobs)
    scheduler.register(CALENDAR_TOPIC, calendar_topic)
