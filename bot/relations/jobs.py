"""Durable scheduled work: one ``jobs`` table the daemon's loop runs by itself (no cron).

A job is a row: a ``kind`` (which handler runs it), a ``payload`` (JSON), ``run_at`` (UTC) and an
optional unique ``key`` that makes scheduling idempotent — scheduling the same key twice (a
restart, two daemons, a retried command) returns the row already there. Because the row is in
the relationship log, a job survives restarts and runs once, not once per restart.

Running: :func:`claim_due` takes the earliest due job inside ``BEGIN IMMEDIATE`` (SQLite's
write lock), marks it ``running`` with a lease and the claimer's name, and returns it. Two
daemons, or two connections of one, can therefore never claim the same job. A claimer that
dies mid-job leaves a ``running`` row whose lease runs out; then it is due again (handlers are
written to be safe to repeat: a topic is sent once per persona, a handoff ends once).

Outcomes: :func:`finish` marks it ``done`` — or, for recurring work, puts the same row back to
``pending`` at its next occurrence (the handler returns that moment); :func:`fail` records the
error text (secrets masked) and retries with exponential back-off, ``max_attempts`` times in
all, then marks it ``failed``. :class:`Scheduler` wires handlers to these for the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.redact import SecretFilter
from bot.relations.store import Store, iso

log = logging.getLogger("brandbot.jobs")

DEFAULT_MAX_ATTEMPTS = 5
# A running job's claim lasts this long; the scheduler renews it while the handler works.
LEASE = timedelta(minutes=5)
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
ERROR_CHARS = 500
# Tokens in URLs quoted by an error message (access_token=..., secret=...) are masked too.
_QUERY_SECRET = re.compile(r"(?i)((?:access_token|secret|token|key)=)[^&\s'\"]+")
STATUSES = ("pending", "running", "done", "failed", "cancelled")
# Finished rows are kept this long for `brandbot jobs list`, then pruned by the daemon.
KEEP_FINISHED = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    key: str | None
    payload: dict[str, Any]
    run_at: str
    status: str
    attempts: int
    max_attempts: int
    runs: int
    last_error: str | None

    @classmethod
    def from_row(cls, row) -> Job:
        return cls(row["id"], row["kind"], row["key"], json.loads(row["payload"] or "{}"),
                   row["run_at"], row["status"], row["attempts"], row["max_attempts"],
                   row["runs"], row["last_error"])


def worker_name() -> str:
    """Who claims: host and process id, shown by ``brandbot jobs list`` for a running job."""
    return f"{socket.gethostname()}:{os.getpid()}"


def schedule(store: Store, kind: str, run_at: datetime, payload: dict[str, Any] | None = None,
             *, key: str | None = None, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
             now: datetime | None = None) -> Job:
    """Add a job (or return the one already scheduled under ``key``: idempotent)."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    created = iso(now or datetime.now(UTC))
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO jobs (kind, key, payload, run_at, max_attempts, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
            (kind, key, json.dumps(payload or {}, ensure_ascii=False), iso(run_at),
             max_attempts, created),
        )
        if key is None:
            row = conn.execute("SELECT * FROM jobs WHERE id = last_insert_rowid()").fetchone()
        else:
            row = conn.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
    return Job.from_row(row)


def claim_due(store: Store, now: datetime, worker: str, kinds: tuple[str, ...] | None = None,
              lease: timedelta = LEASE) -> Job | None:
    """Claim the earliest due job (pending, or running with a lapsed lease); None if none.

    Atomic: the SELECT and the UPDATE run in one ``BEGIN IMMEDIATE`` transaction, so another
    connection — in this process or another — waits, then sees the job taken.
    ``kinds``: only jobs this claimer has handlers for (None: any).
    """
    stamp = iso(now)
    kind_filter, params = "", [stamp, stamp]
    if kinds is not None:
        if not kinds:
            return None
        kind_filter = f" AND kind IN ({', '.join('?' * len(kinds))})"
        params.extend(kinds)
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT id FROM jobs WHERE ((status = 'pending' AND run_at <= ?) OR "
            f"(status = 'running' AND lease_until <= ?)){kind_filter} ORDER BY run_at, id LIMIT 1",
            params,
        ).fetchone()
        if row is None:
            return None
        claimed = conn.execute(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, claimed_by = ?, "
            "lease_until = ?, last_run_at = ? WHERE id = ? RETURNING *",
            (worker, iso(now + lease), stamp, row[0]),
        ).fetchone()
    return Job.from_row(claimed)


def renew(store: Store, job: Job, worker: str, until: datetime) -> None:
    """Extend the claim of a job this worker still holds (long calendar sends)."""
    with store.transaction() as conn:
        conn.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running' "
                     "AND claimed_by = ?", (iso(until), job.id, worker))


def finish(store: Store, job: Job, now: datetime, next_run: datetime | None = None) -> None:
    """The job ran: ``done``, or (recurring) ``pending`` again at ``next_run``, same row."""
    with store.transaction() as conn:
        if next_run is None:
            conn.execute("UPDATE jobs SET status = 'done', finished_at = ?, runs = runs + 1, "
                         "lease_until = NULL, last_error = NULL WHERE id = ?",
                         (iso(now), job.id))
        else:
            conn.execute("UPDATE jobs SET status = 'pending', run_at = ?, attempts = 0, "
                         "runs = runs + 1, lease_until = NULL, last_error = NULL, "
                         "finished_at = ? WHERE id = ?", (iso(next_run), iso(now), job.id))


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … after the 1st, 2nd, 3rd failure; at most an hour."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def fail(store: Store, job: Job, error: str, now: datetime) -> str:
    """Record a failed attempt; retried later, or ``failed`` after ``max_attempts``.

    Returns the job's new status. ``error`` should already be secret-free; it is cut to
    ``ERROR_CHARS`` characters.
    """
    error = error[:ERROR_CHARS]
    with store.transaction() as conn:
        if job.attempts >= job.max_attempts:
            conn.execute("UPDATE jobs SET status = 'failed', last_error = ?, finished_at = ?, "
                         "lease_until = NULL WHERE id = ?", (error, iso(now), job.id))
            return "failed"
        conn.execute("UPDATE jobs SET status = 'pending', last_error = ?, run_at = ?, "
                     "lease_until = NULL WHERE id = ?",
                     (error, iso(now + backoff(job.attempts)), job.id))
        return "pending"


def cancel(store: Store, key: str, now: datetime) -> bool:
    """Cancel the pending job scheduled under ``key`` (a form answered before its timeout).

    False when there is none pending (already run, running, or never scheduled). Keys are
    unique for ever: a cancelled key cannot be scheduled again — use a new one.
    """
    with store.transaction() as conn:
        done = conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = ? "
                            "WHERE key = ? AND status = 'pending'", (iso(now), key))
        return done.rowcount == 1


def prune(store: Store, now: datetime, keep: timedelta = KEEP_FINISHED) -> int:
    """Delete jobs that finished (done, failed, cancelled) more than ``keep`` ago."""
    with store.transaction() as conn:
        return conn.execute("DELETE FROM jobs WHERE status IN ('done', 'failed', 'cancelled') "
                            "AND finished_at < ?", (iso(now - keep),)).rowcount


def list_jobs(store: Store, status: str | None = None, kind: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
    """Jobs, pending and running first (soonest first), then the latest finished."""
    rows = store.fetch_all(
        "SELECT * FROM jobs WHERE (? IS NULL OR status = ?) AND (? IS NULL OR kind = ?) "
        "ORDER BY status IN ('done', 'failed', 'cancelled'), "
        "CASE WHEN status IN ('done', 'failed', 'cancelled') THEN finished_at END DESC, "
        "run_at, id LIMIT ?",
        (status, status, kind, kind, limit),
    )
    return [dict(r) for r in rows]


def next_due(store: Store) -> str | None:
    """When the earliest pending job is due (ISO, UTC), on the lock-free read connection."""
    row = store.read("SELECT min(run_at) FROM jobs WHERE status = 'pending'")
    return row[0][0] if row else None


# -- the daemon's runner -------------------------------------------------------------------------

# A handler gets the job and the moment; it returns None (done) or the next occurrence.
Handler = Callable[[Job, datetime], Awaitable[datetime | None]]


class Scheduler:
    """Claims due jobs and runs their handlers on the daemon's event loop.

    Handlers are ``async``; one that does blocking database work must hand it to a thread
    itself (``asyncio.to_thread``) — claiming and recording are sent to threads here, so the
    loop never waits for SQLite's write lock. Errors are recorded with ``secrets`` masked.
    """

    def __init__(self, store: Store, *, secrets: list[str] | None = None,
                 clock: Callable[[], datetime] | None = None, worker: str | None = None,
                 poll_seconds: float = 5.0):
        self.store = store
        self.handlers: dict[str, Handler] = {}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.worker = worker or worker_name()
        self.poll_seconds = poll_seconds
        self.mask = SecretFilter(secrets or [], patterns=[_QUERY_SECRET])
        self._wake: asyncio.Event | None = None

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        """Look for due jobs now (after scheduling one that may be due already)."""
        if self._wake is not None:
            self._wake.set()

    async def run_due(self) -> list[tuple[Job, str]]:
        """Run every job due now, one after another; returns (job, outcome) pairs."""
        ran: list[tuple[Job, str]] = []
        kinds = tuple(self.handlers)
        while True:
            now = self.clock()
            job = await asyncio.to_thread(claim_due, self.store, now, self.worker, kinds)
            if job is None:
                return ran
            ran.append((job, await self._run(job)))

    async def _run(self, job: Job) -> str:
        renewing = asyncio.create_task(self._keep_lease(job))
        try:
            next_run = await self.handlers[job.kind](job, self.clock())
        except asyncio.CancelledError:
            raise  # stopping: the lease lapses and the job is due again after a restart
        except Exception as exc:  # noqa: BLE001 - any handler failure is recorded, not raised
            reason = self.mask.redact(_describe(exc))
            status = await asyncio.to_thread(fail, self.store, job, reason, self.clock())
            log.warning("job %d (%s) failed (attempt %d of %d): %s%s", job.id, job.kind,
                        job.attempts, job.max_attempts, reason,
                        "" if status == "pending" else "; giving up")
            return status
        finally:
            renewing.cancel()
        await asyncio.to_thread(finish, self.store, job, self.clock(), next_run)
        return "done" if next_run is None else "rescheduled"

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            await asyncio.to_thread(renew, self.store, job, self.worker, self.clock() + LEASE)

    async def loop(self) -> None:
        """Forever: run what is due, then sleep until the next job or ``poll_seconds``."""
        self._wake = asyncio.Event()
        while True:
            try:
                await self.run_due()
                due = await asyncio.to_thread(next_due, self.store)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database is busy or full: try again later
                log.exception("scheduled jobs could not be run; retrying")
                due = None
            wait = self.poll_seconds
            if due is not None:
                until = (datetime.fromisoformat(due.replace("Z", "+00:00")) - self.clock())
                wait = max(0.0, min(wait, until.total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)


def _describe(exc: BaseException) -> str:
    """``Type: message`` and where it was raised (one line, for an operator to act on)."""
    where = traceback.extract_tb(exc.__traceback__)
    place = f" (at {where[-1].filename.rsplit('/', 1)[-1]}:{where[-1].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{place}"
