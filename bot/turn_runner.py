"""Running the daemon's turns: on the event loop in commit groups, in a thread when they must wait.

A turn is ~0.2 ms of CPU under the GIL: handing it to a thread costs more than it saves
(bench/README.md). But it must not block the loop waiting for the database: then ``StoreBusy``
comes back before anything was done. A thread of ours holding the connection (briefly) is waited
for here, asynchronously, and the turn retried on the loop; another process holding the write
lock (perhaps for long), or a wait beyond ``BUSY_RETRY_SECONDS``, sends the turn to a turn thread
that may wait. ``engine_threads: 0`` keeps every turn on the loop, waiting there if it must.

Commit groups: the turns of one loop iteration share one COMMIT (``Store.open_group``); each
turn's replies go out only once its group is committed, so nothing is said that was not logged.

A full disk (SQLITE_FULL) is not an internal error: the turn is refused with an apology in the
persona's voice (``StoreFull``), counted, logged once per interval, and reported by
``write_fault`` (``/healthz``) until a turn is logged again.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from bot.clock import utc_stamp
from bot.logthrottle import limiter
from bot.relations.store import StoreBusy, StoreFull, storage_full

log = logging.getLogger("brandbot.daemon")


class TurnRunner:
    """Runs ``engine.handle_turn`` for the channels the daemon hosts."""

    BUSY_RETRY_SECONDS = 0.05

    def __init__(self, engine, store, metrics, executor: ThreadPoolExecutor | None, db: str):
        self.engine, self.store, self.metrics, self.executor = engine, store, metrics, executor
        self.db = db  # the database's path, for the operator's log line
        self._group_waiters: list[asyncio.Future] | None = None
        self._write_fault: str | None = None  # why the log cannot be written (disk full)
        self._refused_while_full = 0

    async def run(self, inbound, persona: str):
        """One turn, logged (or ``StoreFull`` with an apology); returns the engine's Turn."""
        start = time.perf_counter()
        try:
            if self.executor is None:
                turn = self.engine.handle_turn(inbound, persona)
            else:
                turn = await self._turn_on_loop(inbound, persona)
                if turn is None:
                    self.metrics.turns_waited.inc()
                    loop = asyncio.get_running_loop()
                    turn = await loop.run_in_executor(
                        self.executor, self.engine.handle_turn, inbound, persona
                    )
        except Exception as exc:
            if not storage_full(exc):
                raise
            raise self._not_logged(inbound, persona, exc) from exc
        if self._write_fault is not None and turn.outcome is not None:  # None: read, not written
            self._writes_work_again()
        self.metrics.observe_turn(inbound.fan.channel, persona, time.perf_counter() - start, turn)
        return turn

    async def _turn_on_loop(self, inbound, persona: str):
        """The turn, run on the loop in a commit group; None if it has to wait in a thread."""
        delay, waited = 0.0005, 0.0
        while True:
            try:
                self._join_group()
                turn = self.engine.handle_turn(inbound, persona, wait=False)
            except StoreBusy as busy:
                if busy.process or waited >= self.BUSY_RETRY_SECONDS:
                    return None
                await asyncio.sleep(delay)
                waited, delay = waited + delay, min(delay * 2, 0.01)
                continue
            await self._group_committed()
            return turn

    # -- commit groups ---------------------------------------------------------------------

    def _join_group(self) -> None:
        """Open the commit group this loop iteration's turns join, if it is not open yet.

        The group (``Store.open_group``) is opened by the first turn of an iteration and
        committed by a callback that runs after every turn already scheduled in it, so a burst
        of requests shares one COMMIT. StoreBusy if the group cannot open.
        """
        if self._group_waiters is None:
            self.store.open_group()
            self._group_waiters = []
            asyncio.get_running_loop().call_soon(self._flush_group)

    def _group_committed(self) -> asyncio.Future:
        """Resolved once the group is committed; each turn awaits its own (cancelling one
        request cancels nobody else's) before its replies go out. Called right after the turn,
        in the same step as :meth:`_join_group`: the group is still open."""
        committed = asyncio.get_running_loop().create_future()
        self._group_waiters.append(committed)
        return committed

    def _flush_group(self) -> None:
        waiters, self._group_waiters = self._group_waiters or [], None
        try:
            self.store.commit_group()
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error: every turn fails
            if not storage_full(exc):  # a full disk: each turn's run reports it
                limiter.log(log, logging.ERROR, "group_commit",
                            "could not commit the turns of this moment: %s", exc)
            for committed in waiters:
                if not committed.done():
                    committed.set_exception(exc)
        else:
            for committed in waiters:
                if not committed.done():
                    committed.set_result(None)

    # -- a log that cannot be written (disk full) ---------------------------------------------

    def write_fault(self) -> str | None:
        """Why turns cannot be logged right now (the disk is full), or None: /healthz shows
        it. Set by a turn that hit SQLITE_FULL, cleared by the next turn that was logged."""
        return self._write_fault

    def _not_logged(self, inbound, persona: str, exc: BaseException) -> StoreFull:
        """A turn could not be logged: count it, log it (once per interval), and say so with
        an apology in the persona's voice (``unavailable``, else ``error``)."""
        from bot.messages import Reply

        self.metrics.errors.labels("storage_full").inc()
        self._refused_while_full += 1
        cause = next((e for e in _chain(exc) if isinstance(e, sqlite3.Error)), exc)
        if self._write_fault is None:
            self._write_fault = f"{utc_stamp()}: cannot write the database: {cause}"
        limiter.log(
            log, logging.ERROR, "storage_full",
            "cannot write the database %s (%s): turns are refused with 503 so that platforms "
            "retry them; free disk space, nothing else is needed", self.db, cause,
        )
        brand = self.engine.brand(persona)
        key = "unavailable" if "unavailable" in brand.persona.replies else "error"
        text, language = brand.voice.render(
            key, inbound.language or brand.persona.default_language,
            fan_name=inbound.display_name, memory={}, rng=self.engine.rng,
        )
        return StoreFull(str(cause), [Reply(text, key, language)])

    def _writes_work_again(self) -> None:
        limiter.reset("storage_full")
        log.warning("the database can be written again; %d turn(s) were refused while it "
                    "was full", self._refused_while_full)
        self._write_fault, self._refused_while_full = None, 0


def _chain(exc: BaseException | None):
    """``exc`` and what caused it, outermost first."""
    seen = 0
    while exc is not None and seen < 10:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
