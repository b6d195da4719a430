"""The Telegram operator group: one forum topic per handed-off fan, from any channel.

When ``telegram.operator_group_id`` is set (a supergroup with topics on, the persona's bot an
admin allowed to manage topics), the daemon holds a :class:`TelegramDesk`:

* a turn that starts a handoff (``TurnOutcome.handoff``) opens a topic named after the fan and
  posts who they are and the recent transcript;
* what the fan writes while the handoff lasts is mirrored into the topic;
* what an operator writes in the topic goes to the fan through the fan's channel (web fans: the
  outbox) and is logged like ``brandbot handoff reply`` (:func:`bot.relations.desk.
  log_operator_reply`: reply_key ``operator``, an ``operator_reply`` event with ``via`` =
  ``telegram:<operator>``);
* ``/done`` in the topic ends the handoff through the engine (the ``handoff_end`` trigger, as
  ``brandbot handoff end``): the fan gets the persona's in-voice reply, and the topic is closed.
  A handoff ended any other way (timeout, ``brandbot handoff end``, the dialog) closes its topic
  at the next housekeeping round (:meth:`TelegramDesk.reconcile`, once a minute).

The mapping fan ↔ topic is the ``desk_topics`` table (one open topic per fan). Work happens in
one background queue, in order, so a fan's messages never overtake the topic being opened and
the fan's turn never waits for Telegram. Failures are logged; the desk never stops a turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from telegram.error import TelegramError

from bot.channels.telegram import OperatorMessage
from bot.channels.telegram_sender import split_text
from bot.messages import FanRef, Inbound, Reply
from bot.relations import desk_topics
from bot.relations.desk import OPERATOR_KEY, log_operator_reply, transcript

log = logging.getLogger("brandbot.desk")

# (fan, persona, replies) -> None when delivered (or queued), else why not.
Deliver = Callable[[FanRef, str, list[Reply]], Awaitable[str | None]]

TRANSCRIPT_LINES = 20
_WHO = {"fan": "👤", "bot": "🤖", "operator": "🧑‍💼"}


def _now() -> datetime:
    return datetime.now(UTC)


class TelegramDesk:
    """Operators answer handoffs in forum topics of one Telegram group (see the module doc)."""

    def __init__(self, engine: Any, group_id: int, deliver: Deliver, *,
                 transcript_lines: int = TRANSCRIPT_LINES):
        self.engine = engine
        self.store = engine.store
        self.group_id = group_id
        self.deliver = deliver
        self.transcript_lines = transcript_lines
        self.bot: Any = None
        # (persona, channel, external_id) -> fan id, for fans with an open topic; thread -> fan id.
        self._fans: dict[tuple[str, str, str], int] = {}
        self._threads: dict[int, int] = {}
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, bot: Any) -> None:
        """Start with the persona bot (``TelegramChannel.app.bot``); reload the open topics."""
        self.bot = bot
        rows = await asyncio.to_thread(self._open_rows)
        for fan_id, persona, channel, external_id, thread_id in rows:
            self._fans[(persona, channel, external_id)] = fan_id
            self._threads[thread_id] = fan_id
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._worker is None:
            return
        await self.join()
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None

    async def join(self) -> None:
        """Wait until everything queued was done (tests)."""
        if self._queue is not None:
            await self._queue.join()

    # -- what the daemon and the channel call --------------------------------------------------

    def after_turn(self, inbound: Inbound, persona: str, turn: Any) -> None:
        """After every engine turn: open a topic on a new handoff, mirror a held fan's words.

        Costs one dict lookup for fans not in handoff; never waits for Telegram.
        """
        if self._queue is None or turn.outcome is None:  # None: a retry answered from the log
            return
        if turn.outcome.handoff:
            self._queue.put_nowait(("open", inbound, persona))
        elif (persona, inbound.fan.channel, inbound.fan.external_id) in self._fans:
            # The turn already says whether the handoff goes on: no need to read the fan again.
            self._queue.put_nowait(("mirror", (inbound, turn.outcome.in_handoff), persona))

    async def on_operator(self, message: OperatorMessage) -> None:
        """An operator wrote in a topic (from :class:`~bot.channels.telegram.TelegramChannel`)."""
        if self._queue is not None:
            self._queue.put_nowait(("operator", message, None))

    async def reconcile(self) -> None:
        """Close the topics of fans no longer in handoff (ended by timeout, CLI or dialog)."""
        if self._queue is not None:
            self._queue.put_nowait(("reconcile", None, None))

    # -- the worker ----------------------------------------------------------------------------

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            kind, item, persona = await self._queue.get()
            try:
                if kind == "open":
                    await self._open(item, persona)
                elif kind == "mirror":
                    await self._mirror(*item, persona)
                elif kind == "operator":
                    await self._operator(item)
                elif kind == "reconcile":
                    await self._reconcile()
            except Exception:  # noqa: BLE001 - one failure must not stop the desk
                log.exception("desk: %s failed", kind)
            finally:
                self._queue.task_done()

    async def _post(self, thread_id: int, text: str) -> bool:
        for part in split_text(text):
            try:
                await self.bot.send_message(self.group_id, part, message_thread_id=thread_id)
            except TelegramError as exc:
                log.warning("desk: posting in topic %s failed: %s", thread_id, exc.message)
                return False
        return True

    async def _open(self, inbound: Inbound, persona: str) -> None:
        key = (persona, inbound.fan.channel, inbound.fan.external_id)
        fan = await asyncio.to_thread(self.store.find_fan, *key)
        if fan is None or not fan["handoff"]:
            return
        if key in self._fans:  # a topic is open already (a handoff restarted quickly)
            return
        who = fan["display_name"] or fan["external_id"]
        name = f"{who} · {fan['channel']} · #{fan['id']}"[:128]
        try:
            topic = await self.bot.create_forum_topic(self.group_id, name)
        except TelegramError as exc:
            log.error("desk: cannot open a topic in the operator group %s for fan %s: %s "
                      "(is it a forum, and the bot an admin who may manage topics?)",
                      self.group_id, fan["id"], exc.message)
            return
        thread_id = topic.message_thread_id
        await asyncio.to_thread(self._remember, fan["id"], thread_id)
        self._fans[key] = fan["id"]
        self._threads[thread_id] = fan["id"]
        lines = await asyncio.to_thread(transcript, self.store, fan["id"], self.transcript_lines)
        head = (f"Handoff: fan #{fan['id']} {who} on {fan['channel']} (persona {persona}, "
                f"stage {fan['stage']}). Write here to answer them; /done hands them back to "
                "the bot.")
        body = "\n".join(f"{_WHO.get(line['who'], line['who'])} {line['text']}"
                         for line in lines if line["text"])
        await self._post(thread_id, head + ("\n\n" + body if body else ""))

    async def _mirror(self, inbound: Inbound, in_handoff: bool, persona: str) -> None:
        key = (persona, inbound.fan.channel, inbound.fan.external_id)
        fan_id = self._fans.get(key)
        if fan_id is None:
            return
        thread_id = self._thread_of(fan_id)
        if thread_id is None:
            return
        text = inbound.text if inbound.kind == "message" else f"[{inbound.event}]"
        if text:
            await self._post(thread_id, f"{_WHO['fan']} {text}")
        if not in_handoff:
            await self._close(fan_id, "The conversation went back to the bot.")

    async def _operator(self, message: OperatorMessage) -> None:
        fan_id = self._threads.get(message.thread_id)
        if fan_id is None:
            await self._post(message.thread_id, "This topic is not an open handoff; nothing "
                                                "was sent.")
            return
        fan = await asyncio.to_thread(self._fan, fan_id)
        if fan is None:
            await self._close(fan_id, "The fan was forgotten.")
            return
        ref = FanRef(fan["channel"], fan["external_id"])
        if message.command == "done":
            turn = await asyncio.to_thread(
                self.engine.handle_turn, Inbound(ref, kind="event", event="handoff_end"),
                fan["persona"])
            why = await self.deliver(ref, fan["persona"], turn.replies) if turn.replies else None
            note = f" (not told: {why})" if why else ""
            await self._close(fan_id, f"Handed back to the bot by {message.author}.{note}")
            return
        if message.command is not None:
            await self._post(message.thread_id, "Commands here: /done hands the fan back to "
                                                "the bot. Anything else is sent to the fan.")
            return
        if not message.text:
            await self._post(message.thread_id, "Only text reaches the fan; nothing was sent.")
            return
        if not fan["handoff"]:
            await self._close(fan_id, "The conversation is back with the bot; not sent.")
            return
        why = await self.deliver(ref, fan["persona"], [Reply(message.text, OPERATOR_KEY)])
        if why is not None:
            await self._post(message.thread_id, f"Not delivered: {why}")
            return
        await asyncio.to_thread(log_operator_reply, self.store, fan, message.text, _now(),
                                f"telegram:{message.author}")

    async def _reconcile(self) -> None:
        for fan_id in list(self._threads.values()):
            fan = await asyncio.to_thread(self._fan, fan_id)
            if fan is None or not fan["handoff"]:
                await self._close(fan_id, "The conversation went back to the bot.")

    async def _close(self, fan_id: int, note: str) -> None:
        thread_id = self._thread_of(fan_id)
        if thread_id is None:
            return
        await self._post(thread_id, note)
        try:
            await self.bot.close_forum_topic(self.group_id, thread_id)
        except TelegramError as exc:
            log.warning("desk: closing topic %s failed: %s", thread_id, exc.message)
        await asyncio.to_thread(self._forget, fan_id)
        self._threads.pop(thread_id, None)
        for key, value in list(self._fans.items()):
            if value == fan_id:
                del self._fans[key]

    def _thread_of(self, fan_id: int) -> int | None:
        return next((t for t, f in self._threads.items() if f == fan_id), None)

    # -- the table -----------------------------------------------------------------------------

    def _open_rows(self) -> list[tuple]:
        return desk_topics.open_topics(self.store, self.group_id)

    def _fan(self, fan_id: int) -> dict[str, Any] | None:
        return desk_topics.fan_row(self.store, fan_id)

    def _remember(self, fan_id: int, thread_id: int) -> None:
        desk_topics.open_topic(self.store, fan_id, self.group_id, thread_id, _now())

    def _forget(self, fan_id: int) -> None:
        desk_topics.close_topics(self.store, fan_id, _now())
