"""Outbound Telegram messages: split, paced, retried, and stopped for fans who blocked the bot.

Telegram's limits (Bot FAQ; approximate by design, see docs/channels/protocol-notes.md T3):
about 1 message/s in one chat (short bursts tolerated) and about 30 messages/s overall, text of
at most 4,096 characters. PTB enforces none of this for us (its AIORateLimiter has no per-chat
limit and, in 22.8, a pause bug — §2.7), so this module does:

* **splitting** — a reply over 4,096 characters (counted in UTF-16 units, as Telegram does)
  becomes several messages, cut at a paragraph, line or sentence end (。！？.!?…), else at a
  space, and only as a last resort mid-word;
* **pacing** — one token bucket per chat (``per_chat_rate``/s, bursts of ``per_chat_burst``) and
  one overall (``overall_rate``/s); each chat has its own queue and worker, so one slow chat
  never holds up another and a chat's messages stay in order;
* **429** — ``RetryAfter`` pauses only the chat that got it, for ``retry_after`` seconds, then
  the same message is retried;
* **403** — ``Forbidden`` (the fan blocked the bot, or removed it from the group): the chat's
  queue is dropped, later sends to it are skipped, and ``on_forbidden`` records it
  (``Store.mark_blocked``). A message or ``/start`` from the fan lifts it (:meth:`unblock`);
* **network errors and timeouts** — retried with exponential backoff (``backoff`` × 2ⁿ, at most
  30 s) up to ``max_attempts``; a timed-out send may have arrived, so a retry can duplicate it
  (at-least-once);
* **400** — logged and dropped: retrying a rejected message cannot help.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import warnings
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from telegram import Bot, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels import textsplit
from bot.channels.textsplit import UTF16_UNITS

log = logging.getLogger("brandbot.telegram")

MAX_TEXT = 4096  # telegram.constants.MessageLimit.MAX_TEXT_LENGTH
_MAX_BACKOFF = 30.0
_MAX_RETRY_AFTERS = 10  # 429s tolerated for one message before it is dropped

# A sentence ends at 。！？ (no space needed) or at .!?… followed by a space; closing quotes and
# brackets stay with their sentence.
_SENTENCE_END = re.compile(r"(?:[。！？；]|[.!?…](?=\s))[\"'”’」』）)\]]*")


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` UTF-16 units, at natural boundaries."""
    return textsplit.split_text(text, limit, UTF16_UNITS, _boundary)


def _boundary(window: str) -> int:
    """Where to cut a too-long text, given the part of it that fits."""
    half = len(window) // 2
    paragraph = window.rfind("\n\n")
    line = window.rfind("\n")
    sentence = max((m.end() for m in _SENTENCE_END.finditer(window)), default=-1)
    # A paragraph or line break in the second half reads best; else the last sentence end.
    for candidate in (paragraph + 2 if paragraph >= 0 else -1, line + 1 if line >= 0 else -1):
        if candidate > half:
            return candidate
    if sentence > 0:
        return sentence
    if max(paragraph, line) > 0:
        return max(paragraph, line) + 1
    space = max(window.rfind(" "), window.rfind("\t"))
    if space > 0:
        return space + 1
    return len(window) or 1


def retry_after_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` is an int (with a deprecation warning) or a timedelta (§2.3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Bucket:
    """A token bucket that hands out reservations: ``reserve()`` says how long to wait."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def reserve(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def idle(self) -> bool:
        return self.tokens + (time.monotonic() - self.stamp) * self.rate >= self.burst


class _Gate:
    """Limits requests in flight to what Little's law says the send rate needs.

    ``limit = 2 × rate × latency`` (at least 2, at most ``most``), with latency a moving average of
    recent sends: far from Telegram (200 ms) 30 messages/s need ~8 in flight; next to it, or to a
    local server, 2 — and more would only cost CPU in httpx's connection pool (bench/README.md).
    """

    def __init__(self, rate: float, most: int):
        self.rate, self.most = rate, max(1, most)
        self.latency = 0.05
        self.busy = 0
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def limit(self) -> int:
        return max(min(2, self.most), min(self.most, math.ceil(2 * self.rate * self.latency)))

    async def __aenter__(self) -> float:
        while self.busy >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                self._wake()
                raise
        self.busy += 1
        return time.monotonic()

    async def __aexit__(self, *exc: object) -> None:
        self.busy -= 1
        self._wake()

    def observe(self, started: float) -> None:
        self.latency = 0.8 * self.latency + 0.2 * (time.monotonic() - started)

    def _wake(self) -> None:
        while self._waiters and self.busy < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


@dataclass
class _Out:
    text: str
    reply_to: int | None = None


@dataclass
class _Chat:
    queue: deque[_Out] = field(default_factory=deque)
    task: asyncio.Task | None = None
    bucket: _Bucket | None = None
    paused_until: float = 0.0


OnForbidden = Callable[[int, str], Awaitable[None]]


class Sender:
    """Delivers text to chats through ``bot`` under Telegram's limits (see the module doc).

    ``per_chat_rate`` or ``overall_rate`` set to ``None`` switches that limit off (benchmarks
    against a local fake; never against Telegram).
    """

    def __init__(
        self,
        bot: Bot,
        *,
        per_chat_rate: float | None = 1.0,
        per_chat_burst: int = 3,
        overall_rate: float | None = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_in_flight: int = 8,
        on_forbidden: OnForbidden | None = None,
        retry_timeouts: bool = True,
    ):
        # A timed-out sendMessage may still have been delivered. Replies retry (a lost answer is
        # worse than a rare double); newsletters must not (they promise one copy per fan).
        self.retry_timeouts = retry_timeouts
        self.bot = bot
        self.per_chat_rate, self.per_chat_burst = per_chat_rate, per_chat_burst
        self.overall = _Bucket(overall_rate, overall_rate) if overall_rate else None
        self.max_attempts, self.backoff = max_attempts, backoff
        self.on_forbidden = on_forbidden
        # Requests in flight over all chats: sized from the measured latency (see _Gate);
        # without an overall limit it is sized for 100 messages/s.
        self._gate = _Gate(overall_rate or 100.0, max_in_flight)
        self.blocked: set[int] = set()
        self.stats: Counter[str] = Counter()
        self._chats: dict[int, _Chat] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    # -- API -----------------------------------------------------------------------------------

    def enqueue(self, chat_id: int, texts: list[str], *, reply_to: int | None = None) -> None:
        """Queue ``texts`` for ``chat_id`` (split as needed); returns at once."""
        if self._closed:
            log.warning("telegram: not sending to chat %s: the channel is stopping", chat_id)
            return
        if chat_id in self.blocked:
            self.stats["skipped_blocked"] += len(texts)
            log.info("telegram: chat %s blocked the bot; %d message(s) not sent", chat_id,
                     len(texts))
            return
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat()
        for text in texts:
            for index, part in enumerate(split_text(text)):
                chat.queue.append(_Out(part, reply_to if index == 0 else None))
        if chat.queue and (chat.task is None or chat.task.done()):
            self._idle.clear()
            chat.task = asyncio.get_running_loop().create_task(
                self._work(chat_id, chat), name=f"telegram-send-{chat_id}"
            )

    def unblock(self, chat_id: int) -> bool:
        """The fan is reachable again (wrote to us, or unblocked the bot); True if they were not."""
        if chat_id in self.blocked:
            self.blocked.discard(chat_id)
            return True
        return False

    def block(self, chat_id: int) -> None:
        """Stop sending to ``chat_id`` (they blocked the bot): drop what is queued."""
        self.blocked.add(chat_id)
        chat = self._chats.get(chat_id)
        if chat is not None and chat.queue:
            self.stats["dropped_blocked"] += len(chat.queue)
            chat.queue.clear()

    def pending(self) -> int:
        return sum(len(c.queue) for c in self._chats.values())

    async def join(self) -> None:
        """Wait until every queued message was sent or given up."""
        while True:
            await self._idle.wait()
            if not self._busy():
                return
            self._idle.clear()

    async def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then cancel the rest."""
        self._closed = True
        try:
            await asyncio.wait_for(self.join(), timeout)
        except TimeoutError:
            left = self.pending()
            log.warning("telegram: stopping with %d message(s) unsent after %.1f s", left, timeout)
            self.stats["unsent_at_stop"] += left
        tasks = [c.task for c in self._chats.values() if c.task and not c.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- workers -------------------------------------------------------------------------------

    def _busy(self) -> bool:
        return any(c.task is not None and not c.task.done() for c in self._chats.values())

    async def _work(self, chat_id: int, chat: _Chat) -> None:
        key = chat_id
        try:
            while chat.queue:
                out = chat.queue[0]
                chat_id = await self._deliver(chat_id, chat, out)
                if chat.queue and chat.queue[0] is out:
                    chat.queue.popleft()
        finally:
            chat.task = None
            # Forget idle chats so the table does not grow with every fan ever answered.
            if not chat.queue and (chat.bucket is None or chat.bucket.idle()):
                self._chats.pop(key, None)
            if not self._busy():
                self._idle.set()

    async def _pace(self, chat: _Chat) -> None:
        wait = chat.paused_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self.per_chat_rate:
            if chat.bucket is None:
                chat.bucket = _Bucket(self.per_chat_rate, self.per_chat_burst)
            wait = chat.bucket.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
        if self.overall is not None:
            wait = self.overall.reserve()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _deliver(self, chat_id: int, chat: _Chat, out: _Out) -> int:
        """Send one message with retries; returns the chat id (which a migration can change)."""
        failures = retry_afters = 0
        while True:
            await self._pace(chat)
            try:
                async with self._gate as started:
                    await self.bot.send_message(
                        chat_id,
                        out.text,
                        reply_parameters=ReplyParameters(out.reply_to,
                                                         allow_sending_without_reply=True)
                        if out.reply_to else None,
                    )
                    self._gate.observe(started)
                self.stats["sent"] += 1
                return chat_id
            except RetryAfter as exc:
                retry_afters += 1
                seconds = retry_after_seconds(exc)
                self.stats["retry_after"] += 1
                if retry_afters > _MAX_RETRY_AFTERS:
                    self.stats["failed"] += 1
                    log.error("telegram: chat %s still flood-limited after %d waits; message "
                              "dropped", chat_id, retry_afters - 1)
                    return chat_id
                log.warning("telegram: 429 for chat %s: pausing that chat for %.1f s", chat_id,
                            seconds)
                chat.paused_until = time.monotonic() + seconds
            except Forbidden as exc:
                self.stats["forbidden"] += 1
                log.info("telegram: chat %s refused delivery (%s); marking the fan blocked",
                         chat_id, exc.message)
                self.block(chat_id)
                if self.on_forbidden is not None:
                    try:
                        await self.on_forbidden(chat_id, exc.message)
                    except Exception:
                        log.exception("telegram: recording the block of chat %s failed", chat_id)
                return chat_id
            except ChatMigrated as exc:
                log.info("telegram: group %s became supergroup %s", chat_id, exc.new_chat_id)
                chat_id = exc.new_chat_id
            except BadRequest as exc:  # before NetworkError: BadRequest is a subclass of it
                self.stats["failed"] += 1
                log.warning("telegram: message to chat %s rejected (%s); dropped", chat_id,
                            exc.message)
                return chat_id
            except NetworkError as exc:  # includes TimedOut
                if isinstance(exc, TimedOut) and not self.retry_timeouts:
                    self.stats["timed_out"] += 1
                    log.warning("telegram: sending to chat %s timed out; not retried (it may "
                                "have arrived)", chat_id)
                    return chat_id
                failures += 1
                if failures >= self.max_attempts:
                    self.stats["failed"] += 1
                    log.error("telegram: giving up on a message to chat %s after %d attempts: "
                              "%s", chat_id, failures, exc.message)
                    return chat_id
                delay = min(_MAX_BACKOFF, self.backoff * 2 ** (failures - 1))
                self.stats["network_retry"] += 1
                log.warning("telegram: sending to chat %s failed (%s); retry %d in %.1f s",
                            chat_id, exc.message, failures, delay)
                await asyncio.sleep(delay)
            except TelegramError as exc:  # InvalidToken, Conflict, ...
                self.stats["failed"] += 1
                log.error("telegram: message to chat %s failed: %s: %s", chat_id,
                          type(exc).__name__, exc.message)
                return chat_id
