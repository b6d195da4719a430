"""Newsletters: plan who gets one and why not, send it under the channels' limits, exactly once.

A broadcast goes through three steps (docs/relationships.md, "Newsletters"):

1. **plan** — one pass over the persona's fans in the audience (:mod:`bot.relations.audience`):
   each either *will receive* it or is skipped with a reason, in this order: ``blocked`` (or
   forgotten), ``unsubscribed`` (no consent), ``in handoff`` (a human holds the conversation),
   ``no channel able to send`` (the terminal cannot push; a platform not configured), then the
   channel's own reach rules (:class:`ReachRules`: WeChat's 48-hour window and its quota).
   ``--dry-run`` stops here.
2. **record** — the broadcast row and one ``deliveries`` row per fan in the audience, ``queued``
   or ``skipped`` (with the reason in ``error``), in one transaction. The table is unique per
   (broadcast, fan): a fan is accounted for exactly once.
3. **deliver** — batches of queued rows are marked ``sending`` and committed *before* anything
   goes out, sent through the channel's outlet, then marked ``sent`` or ``failed`` (with why).
   The outlets and their reach rules come from the channels (``Settings.channel_sections``:
   each channel kind in bot/channels/ makes its outlet); this module names no channel.
   Fans who became blocked, unsubscribed or handed off since planning are ``skipped`` then.

After a crash, :func:`deliver` (``brandbot broadcast resume ID``) first turns every ``sending``
row into ``unknown`` — the message may or may not have left — and never sends those again, then
continues with the ``queued`` rows. So nobody gets a second copy; the price is that the one
batch in flight at the crash (about one second of sending) is not retried (at-most-once).

Every newsletter ends with the persona's ``newsletter_footer`` reply (the unsubscribe hint), in
the fan's language.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot import i18n
from bot.persona.model import Persona
from bot.persona.voice import Voice
from bot.relations.audience import Audience, parse
from bot.relations.store import Store, dumps, iso

log = logging.getLogger("brandbot.broadcast")

FOOTER_KEY = "newsletter_footer"

R_BLOCKED = "blocked"
R_UNSUBSCRIBED = "unsubscribed"
R_HANDOFF = "in handoff"
NO_CHANNEL = "no channel able to send"

# The terminal answers only the person typing: it is no channel kind of the daemon's and has no
# outlet. (Every channel the daemon runs says itself whether it can send: its kind's outlet.)
CANNOT_PUSH = {"console": "terminal chat cannot push"}


class ReachRules(Protocol):
    """When a channel may message a fan who did not just write: a channel kind's ``reach``
    (bot/channels/contract.py ``Reach``). ``window``: only within this long after the fan's
    last message; ``quota``: at most this many per fan message. None: no such limit."""

    window: timedelta | None
    window_reason: str
    quota: int | None
    quota_reason: str


class Able(dict):
    """Per channel: None if an outlet can send on it, else why not; ``reach`` holds the reach
    rules that limit anything (a window or a quota) of the channels that can send."""

    def __init__(self, reasons: dict[str, str | None], reach: dict[str, ReachRules]):
        super().__init__(reasons)
        self.reach = {name: r for name, r in reach.items()
                      if r is not None and (r.window is not None or r.quota is not None)}


class BroadcastError(ValueError):
    """A broadcast that cannot be made as asked; the message says what to change."""


class Outlet(Protocol):
    """Sends newsletters on one channel. ``deliver`` returns ``(status, error)`` per item id;
    ``reach`` says when the channel may message a fan (:class:`ReachRules`)."""

    name: str
    reach: ReachRules

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]: ...


@dataclass(frozen=True, slots=True)
class Item:
    delivery_id: int
    fan_id: int
    external_id: str
    text: str


@dataclass
class Plan:
    persona: str
    audience: Audience
    recipients: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    def count(self, channel: str, why: str | None) -> None:
        """One fan of the audience: a recipient on ``channel``, or skipped because ``why``."""
        if why is None:
            self.recipients += 1
            self.by_channel[channel] += 1
        else:
            self.reasons[why] += 1

    @property
    def total(self) -> int:
        return self.recipients + self.skipped


def _rows(store: Store, persona: str, audience: Audience, now: datetime,
          able: dict[str, str | None]) -> Iterator[tuple]:
    """(id, channel, subscribed, blocked, handoff, last message in, sends since it).

    The last two only for channels whose reach rules need them (a window or a quota): the
    fan's last message, and the proactive messages already spent on it.
    """
    limited: dict[str, ReachRules] = getattr(able, "reach", {})
    if limited:
        marks = ", ".join("?" * len(limited))
        last_in = (f"CASE WHEN channel IN ({marks}) THEN (SELECT max(created_at) FROM messages m "
                   "  WHERE m.fan_id = fans.id AND m.direction = 'in' AND m.kind = 'message') "
                   "END AS last_in ")
    else:
        last_in = "NULL AS last_in "
    sql = (
        f"SELECT id, channel, subscribed, blocked, handoff, {last_in}"
        f"FROM fans WHERE persona = ? AND ({audience.where}) ORDER BY id"
    )
    since = {name: iso(now - r.window) if r.window is not None else "" for name, r in
             limited.items()}
    with store.lock:
        cursor = store.conn.execute(sql, (*limited, persona, *audience.params))
        while True:
            chunk = cursor.fetchmany(5000)
            if not chunk:
                return
            for row in chunk:
                sends = 0
                # last_in is NULL but for the limited channels (the CASE above).
                if row[5] and row[5] >= since[row[1]] and limited[row[1]].quota is not None:
                    sends = _sends_since(store, row[0], row[5])
                yield (*row, sends)


def _sends_since(store: Store, fan_id: int, since: str) -> int:
    """Proactive messages already spent on the fan's last message (newsletters, desk)."""
    return store.conn.execute(
        "SELECT (SELECT count(*) FROM deliveries WHERE fan_id = ? AND status = 'sent' "
        "AND sent_at >= ?) + (SELECT count(*) FROM messages WHERE fan_id = ? AND "
        "direction = 'out' AND reply_key = 'operator' AND created_at >= ?)",
        (fan_id, since, fan_id, since),
    ).fetchone()[0]


def _why_not(channel: str, subscribed: int, blocked: int, handoff: int,
             able: dict[str, str | None]) -> str | None:
    """The reasons checked when planning and again when sending, in their documented order."""
    if blocked:
        return R_BLOCKED
    if not subscribed:
        return R_UNSUBSCRIBED
    if handoff:
        return R_HANDOFF
    why = able.get(channel, f"no {channel} sender")
    return None if why is None else f"{NO_CHANNEL} ({why})"


def reason_for(row: tuple, able: dict[str, str | None], now: datetime) -> str | None:
    """Why the fan in ``row`` (see :func:`_rows`) will not receive it; None if they will."""
    return _reason(row, able, getattr(able, "reach", {}), now)


def _reason(row: tuple, able: dict[str, str | None], limited: dict[str, ReachRules],
            now: datetime) -> str | None:
    # reason_for with the limiting reach rules looked up once per plan, not once per fan.
    _, channel, subscribed, blocked, handoff, last_in, sends = row
    why = _why_not(channel, subscribed, blocked, handoff, able)
    if why is not None or not limited:
        return why
    rule = limited.get(channel)
    if rule is None:
        return None
    if rule.window is not None and (not last_in or last_in < _cutoff(now, rule.window)):
        return rule.window_reason
    if rule.quota is not None and sends >= rule.quota:
        return rule.quota_reason
    return None


@functools.lru_cache(maxsize=8)
def _cutoff(now: datetime, window: timedelta) -> str:
    """The oldest last message ``window`` lets through, as stored (once per plan, not per fan)."""
    return iso(now - window)


def channel_reasons(outlets: dict[str, Any], configured: dict[str, str] | None = None,
                    reach: dict[str, ReachRules] | None = None) -> Able:
    """Per channel: None if an outlet can send on it, else why not (with each outlet's reach
    rules, or those given in ``reach``, for :func:`plan` and :func:`create`)."""
    able: dict[str, str | None] = dict(CANNOT_PUSH)
    able.update(configured or {})
    rules: dict[str, ReachRules] = {}
    for name, outlet in outlets.items():
        able[name] = None
        rule = getattr(outlet, "reach", None)
        if rule is not None:
            rules[name] = rule
    rules.update(reach or {})
    return Able(able, rules)


def plan(store: Store, persona: str, audience: str | Audience | None, now: datetime,
         able: dict[str, str | None]) -> Plan:
    """Count who will receive it and why the others will not (nothing is written)."""
    aud = audience if isinstance(audience, Audience) else parse(audience)
    result = Plan(persona, aud)
    limited = getattr(able, "reach", {})
    for row in _rows(store, persona, aud, now, able):
        result.count(row[1], _reason(row, able, limited, now))
    return result


def create(store: Store, persona: Persona, text: str, audience: str | None, now: datetime,
           able: dict[str, str | None], *, texts: dict[str, str] | None = None,
           topic: str | None = None) -> tuple[int, Plan]:
    """Record the broadcast and one delivery row per fan in the audience; returns (id, plan).

    ``texts`` gives the newsletter per language (a fan gets theirs, else ``text``); ``topic``
    marks a calendar topic, recorded once per persona (sqlite3.IntegrityError the second time).
    """
    if not text.strip():
        raise BroadcastError(i18n.gettext("the newsletter text is empty"))
    if not persona.replies.get(FOOTER_KEY):
        raise BroadcastError(i18n.gettext("persona {persona!r} has no {key!r} reply: every "
            "newsletter must say how to unsubscribe; add `{key}:` to its replies").format(
            persona=persona.id, key=FOOTER_KEY))
    aud = parse(audience)
    result = Plan(persona.id, aud)
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO broadcasts (persona, text, audience, created_at, status, topic, texts) "
            "VALUES (?, ?, ?, ?, 'sending', ?, ?)",
            (persona.id, text, aud.text, iso(now), topic, dumps(texts) if texts else None),
        )
        broadcast_id = cur.lastrowid
        batch: list[tuple] = []
        limited = getattr(able, "reach", {})
        for row in _rows(store, persona.id, aud, now, able):
            why = _reason(row, able, limited, now)
            result.count(row[1], why)
            batch.append((broadcast_id, row[0], "skipped" if why else "queued", why, row[1]))
            if len(batch) >= 10_000:
                _insert(conn, batch)
                batch.clear()
        _insert(conn, batch)
    return broadcast_id, result


def _insert(conn, batch: list[tuple]) -> None:
    conn.executemany(
        "INSERT INTO deliveries (broadcast_id, fan_id, status, error, channel) "
        "VALUES (?, ?, ?, ?, ?)",
        batch,
    )


@dataclass
class Progress:
    total: int
    done: int = 0
    counts: Counter[str] = field(default_factory=Counter)


def counts(store: Store, broadcast_id: int) -> Counter[str]:
    rows = store.fetch_all(
        "SELECT status, count(*) FROM deliveries WHERE broadcast_id = ? GROUP BY status",
        (broadcast_id,),
    )
    return Counter({r[0]: r[1] for r in rows})


def broadcast_row(store: Store, broadcast_id: int) -> dict[str, Any]:
    row = store.fetch_one("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}; see `brandbot broadcast list`")
    return dict(row)


async def deliver(
    store: Store,
    broadcast_id: int,
    persona: Persona,
    outlets: dict[str, Outlet],
    *,
    clock: Callable[[], datetime],
    batch: int = 200,
    on_progress: Callable[[Progress], None] | None = None,
    stop_after: int | None = None,
) -> Counter[str]:
    """Send every queued delivery of ``broadcast_id`` (also after a crash: see module doc).

    ``stop_after`` stops after that many deliveries (tests of the crash path). Returns the final
    count per status.
    """
    # Every database step runs in a thread (one per batch of deliveries): in the daemon this
    # runs on the event loop, which must never wait for the log's write lock.
    row = await asyncio.to_thread(broadcast_row, store, broadcast_id)
    if row["persona"] != persona.id:
        raise BroadcastError(f"broadcast {broadcast_id} is for persona {row['persona']!r}, "
                             f"not {persona.id!r}")
    lost = await asyncio.to_thread(_mark_lost, store, broadcast_id)
    if lost:
        log.warning("broadcast %s: %d delivery(ies) were in flight at a crash; not resent",
                    broadcast_id, lost)
    voice, rng = Voice(persona), random.Random(broadcast_id)
    able = channel_reasons(outlets)
    texts = {"": row["text"], **json.loads(row.get("texts") or "{}")}
    footers: dict[str, str] = {}
    queued = (await asyncio.to_thread(counts, store, broadcast_id))["queued"]
    progress = Progress(queued)
    sent_so_far = 0
    for outlet in outlets.values():
        await outlet.start()
    try:
        while stop_after is None or sent_so_far < stop_after:
            size = batch if stop_after is None else min(batch, stop_after - sent_so_far)
            items, skipped = await asyncio.to_thread(
                _claim, store, broadcast_id, size, clock(), persona, voice, rng, footers, texts,
                able,
            )
            if not items and not skipped:
                break
            progress.counts["skipped"] += skipped
            progress.done += skipped
            results: dict[int, tuple[str, str | None]] = {}
            sends = [outlets[ch].deliver(group) for ch, group in items.items()]
            for part in await asyncio.gather(*sends):
                results.update(part)
            await asyncio.to_thread(_record_results, store, results, iso(clock()))
            for status, _ in results.values():
                progress.counts[status] += 1
            progress.done += len(results)
            sent_so_far += len(results) + skipped
            if on_progress is not None:
                on_progress(progress)
    finally:
        for outlet in outlets.values():
            await outlet.close()
    return await asyncio.to_thread(_finish, store, broadcast_id, iso(clock()))


def _mark_lost(store: Store, broadcast_id: int) -> int:
    with store.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET status = 'unknown', error = 'interrupted while sending: it "
            "may have arrived, so it is not sent again' WHERE broadcast_id = ? "
            "AND status = 'sending'",
            (broadcast_id,),
        ).rowcount


def _record_results(store: Store, results: dict[int, tuple[str, str | None]], now: str) -> None:
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE deliveries SET status = ?, error = ?, sent_at = ? WHERE id = ?",
            [(s, e, now if s == "sent" else None, i) for i, (s, e) in results.items()],
        )


def _finish(store: Store, broadcast_id: int, now: str) -> Counter[str]:
    final = counts(store, broadcast_id)
    if not final["queued"]:
        with store.transaction() as conn:
            conn.execute("UPDATE broadcasts SET status = 'done', finished_at = ? WHERE id = ?",
                         (now, broadcast_id))
    return final


def _claim(store, broadcast_id, size, now, persona, voice, rng, footers, texts, able):
    """Take the next queued rows: re-check each fan, mark the rest ``sending``, commit."""
    items: dict[str, list[Item]] = {}
    skipped = 0
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT d.id, d.fan_id, f.channel, f.external_id, f.language, f.subscribed, "
            "f.blocked, f.handoff FROM deliveries d JOIN fans f ON f.id = d.fan_id "
            "WHERE d.broadcast_id = ? AND d.status = 'queued' ORDER BY d.id LIMIT ?",
            (broadcast_id, size),
        ).fetchall()
        sending, skips = [], []
        for r in rows:
            why = _why_not(r[2], r[5], r[6], r[7], able)
            if why is not None:
                skips.append((why, r[0]))
                continue
            language = r[4] or persona.default_language
            footer = footers.get(language)
            if footer is None:
                footer, _ = voice.render(FOOTER_KEY, language, fan_name=None, memory={}, rng=rng)
                footers[language] = footer
            text = texts.get(language) or texts[""]
            items.setdefault(r[2], []).append(Item(r[0], r[1], r[3], f"{text}\n\n{footer}"))
            sending.append((r[0],))
        conn.executemany(
            "UPDATE deliveries SET status = 'skipped', error = ? WHERE id = ?", skips
        )
        conn.executemany("UPDATE deliveries SET status = 'sending' WHERE id = ?", sending)
        skipped = len(skips)
    return items, skipped


# -- outlets ---------------------------------------------------------------------------------------


def outlets_from_settings(settings: Any, store: Store, persona: str, *,
                          rate: float | None = 30.0) -> tuple[dict[str, Outlet], dict[str, str]]:
    """The outlets ``brandbot serve``'s settings make possible, and why the others are missing.

    Each channel makes its own (``Settings.channel_sections``: a channel kind's ``outlet``,
    next to the channel in bot/channels/); this module names none.
    """
    outlets: dict[str, Outlet] = {}
    missing: dict[str, str] = {}
    for kind, section in settings.channel_sections():
        made = kind.outlet(section, store, persona, rate=rate)
        if isinstance(made, str):
            missing[kind.name] = made
        else:
            outlets[kind.name] = made
    return outlets, missing
