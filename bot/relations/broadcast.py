"""Newsletters: plan who gets one and why not, send it under the channels' limits, exactly once.

A broadcast goes through three steps (docs/relationships.md, "Newsletters"):

1. **plan** — one pass over the persona's fans in the audience (:mod:`bot.relations.audience`):
   each either *will receive* it or is skipped with a reason, in this order: ``blocked`` (or
   forgotten), ``unsubscribed`` (no consent), ``in handoff`` (a human holds the conversation),
   ``no channel able to send`` (the terminal cannot push; a platform not configured),
   WeChat's ``48-hour window`` or ``quota``. ``--dry-run`` stops here.
2. **record** — the broadcast row and one ``deliveries`` row per fan in the audience, ``queued``
   or ``skipped`` (with the reason in ``error``), in one transaction. The table is unique per
   (broadcast, fan): a fan is accounted for exactly once.
3. **deliver** — batches of queued rows are marked ``sending`` and committed *before* anything
   goes out, sent through the channel's outlet, then marked ``sent`` or ``failed`` (with why).
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
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot import i18n
from bot.persona.model import Persona
from bot.persona.voice import Voice
from bot.relations.audience import Audience, parse
from bot.relations.store import Store, dumps, iso

log = logging.getLogger("brandbot.broadcast")

FOOTER_KEY = "newsletter_footer"
WECHAT_WINDOW = timedelta(hours=48)
WECHAT_QUOTA = 5  # customer-service messages per fan message (bot/channels/wechat_api.py)

R_BLOCKED = "blocked"
R_UNSUBSCRIBED = "unsubscribed"
R_HANDOFF = "in handoff"
R_WINDOW = "outside WeChat's 48-hour window"
R_QUOTA = "WeChat customer-service quota used up"
NO_CHANNEL = "no channel able to send"

# Channels that can never push: the terminal answers only the person typing. The web chat
# cannot push either, but its newsletters wait in the log's outbox (WebOutboxOutlet) and reach
# the fan's page when it is next open: the outlet stands in for the push.
CANNOT_PUSH = {"console": "terminal chat cannot push"}
WEB_OFF = "web chat is off: set web.enabled: true"


class BroadcastError(ValueError):
    """A broadcast that cannot be made as asked; the message says what to change."""


class Outlet(Protocol):
    """Sends newsletters on one channel. ``deliver`` returns ``(status, error)`` per item id."""

    name: str

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


def _rows(store: Store, persona: str, audience: Audience, now: datetime) -> Iterator[tuple]:
    """(id, channel, subscribed, blocked, handoff, wechat last message, wechat sends since)."""
    since = iso(now - WECHAT_WINDOW)
    sql = (
        "SELECT id, channel, subscribed, blocked, handoff, "
        "CASE WHEN channel = 'wechat' THEN (SELECT max(created_at) FROM messages m "
        "  WHERE m.fan_id = fans.id AND m.direction = 'in' AND m.kind = 'message') END AS last_in "
        f"FROM fans WHERE persona = ? AND ({audience.where}) ORDER BY id"
    )
    with store.lock:
        cursor = store.conn.execute(sql, (persona, *audience.params))
        while True:
            chunk = cursor.fetchmany(5000)
            if not chunk:
                return
            for row in chunk:
                sends = 0
                if row[1] == "wechat" and row[5] and row[5] >= since:
                    sends = _wechat_sends(store, row[0], row[5])
                yield (*row, sends)


def _wechat_sends(store: Store, fan_id: int, since: str) -> int:
    """Customer-service messages already spent on the fan's last message (newsletters, desk)."""
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
    _, channel, subscribed, blocked, handoff, last_in, sends = row
    why = _why_not(channel, subscribed, blocked, handoff, able)
    if why is not None:
        return why
    if channel == "wechat":
        if not last_in or last_in < iso(now - WECHAT_WINDOW):
            return R_WINDOW
        if sends >= WECHAT_QUOTA:
            return R_QUOTA
    return None


def channel_reasons(outlets: dict[str, Any], configured: dict[str, str] | None = None
                    ) -> dict[str, str | None]:
    """Per channel: None if an outlet can send on it, else why not."""
    able: dict[str, str | None] = dict(CANNOT_PUSH)
    able.update(configured or {})
    for name in outlets:
        able[name] = None
    return able


def plan(store: Store, persona: str, audience: str | Audience | None, now: datetime,
         able: dict[str, str | None]) -> Plan:
    """Count who will receive it and why the others will not (nothing is written)."""
    aud = audience if isinstance(audience, Audience) else parse(audience)
    result = Plan(persona, aud)
    for row in _rows(store, persona, aud, now):
        result.count(row[1], reason_for(row, able, now))
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
        for row in _rows(store, persona.id, aud, now):
            why = reason_for(row, able, now)
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


class _Recorder:
    """Stands in for ``telegram.Bot`` inside the channel's Sender: remembers each chat's outcome."""

    def __init__(self, bot: Any):
        self.bot = bot
        self.ok: Counter[int] = Counter()
        self.errors: dict[int, str] = {}

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
        try:
            result = await self.bot.send_message(chat_id, text, **kwargs)
        except Exception as exc:
            self.errors[chat_id] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            raise
        self.ok[chat_id] += 1
        return result


class WebOutboxOutlet:
    """Newsletters for web chat fans: queued in the log's outbox (:mod:`bot.relations.outbox`).

    A page cannot be pushed to; the fan's page shows the newsletter when it is next open (it
    polls at once when it opens, then every few seconds) and acknowledges it, so "sent" here
    means "waiting for the fan's page", possibly for a long time or for a visit that never
    comes. Nothing leaves the machine, so there is no pacing and nothing to fail but the write.
    """

    name = "web"

    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]:
        from bot.messages import Reply
        from bot.relations import outbox

        def queue() -> None:
            now = self.clock()
            for item in items:
                outbox.enqueue(self.store, item.fan_id, [Reply(item.text, "newsletter")], now)

        await asyncio.to_thread(queue)
        return {item.delivery_id: ("sent", None) for item in items}


class TelegramOutlet:
    """Newsletters through the Telegram channel's own Sender (pacing, 429, 403, retries).

    ``overall_rate`` is Telegram's ~30 messages/s; ``None`` is for a local fake only.
    A 403 marks the fan blocked (and unsubscribed) in the log, like the daemon does.
    """

    name = "telegram"

    def __init__(self, store: Store, persona: str, token: str, api_url: str | None = None, *,
                 overall_rate: float | None = 30.0, backoff: float = 0.5,
                 clock: Callable[[], datetime] | None = None):
        self.store, self.persona, self.token = store, persona, token
        self.api_url = api_url
        self.overall_rate, self.backoff = overall_rate, backoff
        self.clock = clock
        self.bot: Any = None
        self.sender: Any = None
        self.recorder: _Recorder | None = None
        self.forbidden: set[int] = set()

    async def start(self) -> None:
        if self.bot is not None:
            return
        from telegram import Bot
        from telegram.request import HTTPXRequest

        from bot.channels.telegram import DEFAULT_API_URL
        from bot.channels.telegram_sender import Sender

        self.bot = Bot(self.token, base_url=self.api_url or DEFAULT_API_URL,
                       request=HTTPXRequest(connection_pool_size=64))
        await self.bot.initialize()
        self.recorder = _Recorder(self.bot)
        self.sender = Sender(self.recorder, overall_rate=self.overall_rate, per_chat_rate=None,
                             backoff=self.backoff, max_in_flight=32,
                             on_forbidden=self._forbidden, retry_timeouts=False)

    async def _forbidden(self, chat_id: int, description: str) -> None:
        self.forbidden.add(chat_id)
        from bot.clock import utc_now

        now = (self.clock or utc_now)()
        self.store.mark_blocked(self.persona, "telegram", str(chat_id), True,
                                f"telegram 403: {description}", iso(now))

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]:
        from bot.channels.telegram_sender import split_text

        assert self.sender is not None and self.recorder is not None
        out: dict[int, tuple[str, str | None]] = {}
        expected: dict[int, tuple[int, int]] = {}
        for item in items:
            try:
                chat = int(item.external_id)
            except ValueError:
                out[item.delivery_id] = ("failed", f"not a Telegram chat id: {item.external_id}")
                continue
            self.recorder.ok.pop(chat, None)
            self.recorder.errors.pop(chat, None)
            expected[item.delivery_id] = (chat, len(split_text(item.text)))
            self.sender.enqueue(chat, [item.text])
        await self.sender.join()
        for delivery_id, (chat, parts) in expected.items():
            if self.recorder.ok[chat] >= parts:
                out[delivery_id] = ("sent", None)
            elif chat in self.forbidden or chat in self.sender.blocked:
                out[delivery_id] = ("failed", "blocked the bot (403); fan marked blocked")
            elif self.recorder.errors.get(chat, "").startswith("TimedOut"):
                out[delivery_id] = ("unknown", "timed out: it may have arrived, so it is not "
                                    "sent again")
            else:
                out[delivery_id] = ("failed", self.recorder.errors.get(chat, "not sent"))
        return out

    async def close(self) -> None:
        if self.sender is not None:
            await self.sender.close()
        if self.bot is not None:
            await self.bot.shutdown()
        self.bot = self.sender = None


class WeChatOutlet:
    """Newsletters as WeChat customer-service messages (verified accounts), within the quota."""

    name = "wechat"

    def __init__(self, app_id: str, secret: str, api_url: str | None = None):
        self.app_id, self.secret, self.api_url = app_id, secret, api_url
        self.owner: Any = None

    async def start(self) -> None:
        if self.owner is None:
            from bot.channels.wechat_api import DEFAULT_API_URL, TokenOwner

            self.owner = TokenOwner(self.app_id, self.secret, self.api_url or DEFAULT_API_URL)
        # The token now, before any delivery is claimed: an unreachable API or a refused
        # AppSecret stops the broadcast resumable (like Telegram's getMe), instead of marking
        # every WeChat fan 'failed' for good.
        await asyncio.to_thread(self.owner.token)

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]:
        from bot.channels.wechat_api import Quota, send_texts

        def one(item: Item) -> tuple[str, str | None]:
            quota = Quota()  # the plan checked the 48 h window and the sends spent from the log
            quota.opened_by(item.external_id, "message")
            result = send_texts(self.owner, quota, item.external_id, [item.text])
            return ("sent", None) if result.sent else ("failed", result.reason or "not sent")

        out = {}
        for item in items:
            out[item.delivery_id] = await asyncio.to_thread(one, item)
        return out

    async def close(self) -> None:
        self.owner = None


def outlets_from_settings(settings: Any, store: Store, persona: str, *,
                          rate: float | None = 30.0) -> tuple[dict[str, Outlet], dict[str, str]]:
    """The outlets ``brandbot serve``'s settings make possible, and why the others are missing."""
    outlets: dict[str, Outlet] = {}
    missing: dict[str, str] = {}
    if settings.web.enabled:
        outlets["web"] = WebOutboxOutlet(store)
    else:
        missing["web"] = WEB_OFF
    t = settings.telegram
    if t.enabled:
        outlets["telegram"] = TelegramOutlet(store, persona, t.token.get_secret_value(),
                                             t.api_url, overall_rate=rate)
    else:
        missing["telegram"] = "telegram is not configured: set BRANDBOT_TELEGRAM_TOKEN"
    w = settings.wechat
    if w.enabled and w.app_secret is not None:
        outlets["wechat"] = WeChatOutlet(w.app_id, w.app_secret.get_secret_value(), w.api_url)
    else:
        missing["wechat"] = "wechat is not configured: set BRANDBOT_WECHAT_APPID and _SECRET"
    return outlets, missing
