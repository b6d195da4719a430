"""The relationship log: one SQLite file, WAL mode, one transaction per turn.

Tables and columns listed in docs/relationships.md (fans, messages, events, referrals,
broadcasts, deliveries) are a contract operators' queries rely on: add columns, never rename.
The schema is created by sqlite-utils migrations (bot/relations/migrations.py), each in its own
transaction. The hot path (one turn) uses prepared SQL on the same connection: sqlite-utils'
table helpers introspect the schema on every call, which would cost more than the whole turn.

Durability: ``synchronous=NORMAL`` in WAL mode survives a process crash (SIGKILL) without
losing a committed turn; only an OS crash or power loss can drop the last commits. Set
``synchronous="FULL"`` for that too, at one fsync (~4 ms here) per turn.

Checkpoints: by default SQLite copies the WAL back into the database inside whichever COMMIT
crosses 1,000 pages, so one turn in a few hundred pays for everybody's writes (15% of the mean
turn and most of its p99 in ``bench/engine.py``). The daemon calls
:meth:`Store.checkpoint_in_background`: a thread with its own connection checkpoints every
second, off the turn's path and outside the GIL (sqlite3 releases it while SQLite works). Past
``WAL_RESTART_PAGES`` a round ends with a short pass that holds our writer off so the WAL
starts over (see ``_checkpoint_round``); a commit still checkpoints past ``WAL_SAFETY_PAGES``
(another process writing, a reader holding an old snapshot), which keeps the WAL bounded.

Busy: a turn on the event loop must never wait for another process's write (an operator's
``brandbot broadcast`` in progress) — ``transaction(wait=False)`` raises :class:`StoreBusy` at
once instead, before anything is done, and the daemon runs that turn in a thread that may wait.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.relations.migrations import migrations

log = logging.getLogger("brandbot.store")

BUSY_TIMEOUT_MS = 30_000
# A WAL file left larger than this after a checkpoint is truncated back to it.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# With background checkpoints the writer still checkpoints in a commit past this many WAL pages
# (~40 MB). Under a steady stream of commits the thread's PASSIVE checkpoints never catch up
# with the end of the WAL, and SQLite only starts the WAL over after a checkpoint that did; the
# writer's own (nobody appends during it, and it copies only what the thread has not) does.
WAL_SAFETY_PAGES = 10_000
# The checkpoint thread lets the WAL start over once it holds this many pages (~8 MB), and the
# pass that does it, with our writer held off, waits until no more than WAL_LAST_PASS_PAGES
# landed during the pass before it.
WAL_RESTART_PAGES = 2_000
WAL_LAST_PASS_PAGES = 64


class StoreBusy(Exception):
    """``transaction(wait=False)`` found the log in use; nothing was done.

    ``process``: another process holds SQLite's write lock (it may hold it for long: a
    ``brandbot broadcast``); otherwise a thread of this process has the connection (briefly).
    """

    def __init__(self, message: str, process: bool):
        super().__init__(message)
        self.process = process


class StoreGroupLost(Exception):
    """The commit group's writes were lost (its transaction failed): its turns must fail."""


class StoreFull(Exception):
    """The log cannot be written: the disk (or the database's size limit) is full.

    Nothing of the turn was logged, so it must not be answered as if it had been: channels
    answer so that the platform retries (HTTP 503), and the retry is logged and answered once
    space returns. ``replies``: an apology in the persona's voice, for channels that can show
    one (the web chat); set by the daemon.
    """

    def __init__(self, message: str = "the relationship log is full (no space left)",
                 replies: list | None = None):
        super().__init__(message)
        self.replies = replies or []


def storage_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it: a lost commit group) is SQLite's "database or disk
    is full" (SQLITE_FULL: no space on the disk, or ``max_page_count`` reached)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, StoreFull):
            return True
        if (isinstance(exc, sqlite3.Error)
                and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


@functools.lru_cache(maxsize=16)  # a turn stamps its rows with one moment, five times or more
def iso(moment: datetime) -> str:
    """UTC ISO-8601, the one timestamp format in the log."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class Store:
    """The SQLite relationship log. Thread-safe: one connection guarded by a lock."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        # Deleted and overwritten content is zeroed, not left in free space: a forgotten fan's
        # words must not survive in the file (bot/relations/privacy.py).
        self.conn.execute("PRAGMA secure_delete=ON")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        self.db = sqlite_utils.Database(self.conn)
        self.lock = threading.RLock()
        migrations.apply(self.db)
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._checkpointer: threading.Thread | None = None
        self._group_owner: int | None = None
        self._group_error: BaseException | None = None
        self._stop_checkpoints = threading.Event()

    def checkpoint_in_background(self, interval: float = 1.0) -> bool:
        """Checkpoint the WAL from a thread every ``interval`` seconds instead of in commits.

        Returns False (and changes nothing) for an in-memory database. A PASSIVE checkpoint
        never blocks the writer; the last connection to close checkpoints what is left; the
        writer itself still checkpoints past ``WAL_SAFETY_PAGES`` so the WAL stays bounded.
        """
        if self.path == ":memory:" or self._checkpointer is not None:
            return self._checkpointer is not None
        checkpoints = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        with self.lock:
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_SAFETY_PAGES}")

        def run() -> None:
            try:
                while not self._stop_checkpoints.wait(interval):
                    try:
                        self._checkpoint_round(checkpoints)
                    except sqlite3.Error as exc:  # a busy moment: the next round catches up
                        log.warning("background WAL checkpoint failed: %s", exc)
            finally:
                checkpoints.close()

        self._checkpointer = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
        self._checkpointer.start()
        return True

    def _checkpoint_round(self, checkpoints: sqlite3.Connection) -> None:
        """PASSIVE checkpoints beside the writer; past ``WAL_RESTART_PAGES``, a last one with
        our writer held off, so that the WAL starts over.

        SQLite starts the WAL over (from its first frame) only when a write begins after a
        checkpoint that copied *every* frame. Under turns that never pause a pass never does
        (commits land while it copies), so the WAL grew to ``WAL_SAFETY_PAGES`` and the
        writer's own checkpoint, copying the pages of ~1,300 turns and syncing, stalled every
        connection for 20-60 ms on a 1 M-fan log (issue item 15; measured by
        ``bench/bigdb.py stalls``: each such stall was the commit just before a WAL restart).
        Here the passes beside the writer go on while each still finds much to copy, and the
        last one, under the store's lock, copies only what landed during the one before: a
        turn that finds the lock taken waits that long, as for any other thread.
        """
        busy, frames, copied = checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        if busy or frames < WAL_RESTART_PAGES or copied < frames:
            return  # a small WAL, or a reader holds an old snapshot: the next round tries
        for _ in range(8):  # catch up while commits keep landing during each pass
            _, now_frames, copied = checkpoints.execute(
                "PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
            landed, frames = now_frames - frames, now_frames
            if now_frames < frames or landed <= WAL_LAST_PASS_PAGES or copied < now_frames:
                break
        with self.lock:
            checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """A quick read on a second, read-only connection: never waits for a turn in progress.

        WAL lets readers run beside the writer; the web chat uses this on the event loop to see
        whether a fan has waiting messages without a thread hop or the write lock.
        """
        if self.path == ":memory:":
            with self.lock:
                return self.conn.execute(sql, params).fetchall()
        with self._reader_lock:
            if self._reader is None:
                self._reader = sqlite3.connect(
                    self.path, check_same_thread=False, isolation_level=None, timeout=30
                )
                self._reader.row_factory = sqlite3.Row
                self._reader.execute("PRAGMA query_only=1")
            return self._reader.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._group_owner == threading.get_ident():
            self.commit_group()
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join()
            self._checkpointer = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(
        self, wait: bool = True, join_group: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work (``BEGIN IMMEDIATE`` so writers never deadlock).

        ``wait=False``: raise :class:`StoreBusy` at once, having done nothing, when another
        thread holds the connection or another process holds the write lock.
        ``join_group`` (turns): inside this thread's commit group (:meth:`open_group`) the unit
        is a savepoint of the group's transaction, committed with the group. Any other
        transaction opened while this thread has a group commits the group first, so what it
        writes is committed when it returns, as callers expect.
        """
        if self._group_owner == threading.get_ident():
            if join_group:
                with self._savepoint():
                    yield self.conn
                return
            self._commit_group_early()
        if not self.lock.acquire(blocking=wait):
            raise StoreBusy("the relationship log is in use by another thread", process=False)
        try:
            self._begin(wait)
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
        finally:
            self.lock.release()

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        if self._group_error is not None:  # the group's transaction is gone: nothing to join
            raise StoreGroupLost("the commit group was rolled back") from self._group_error
        self.conn.execute("SAVEPOINT turn")
        try:
            yield
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO turn")
                self.conn.execute("RELEASE turn")
            else:  # SQLite rolled the whole group back (disk full, I/O error): all of it failed
                self._group_error = exc
            raise
        else:
            self.conn.execute("RELEASE turn")

    # -- commit groups -------------------------------------------------------------------------
    # Committing costs a fifth of a turn (SQLite writes and checksums every changed page into
    # the WAL). Turns that run together on the daemon's event loop share one COMMIT: each is a
    # savepoint of the group's transaction (its own failure rolls back only its own writes), and
    # nothing is answered before the group is committed, so no answered turn can be lost.

    @property
    def in_group(self) -> bool:
        return self._group_owner is not None

    def open_group(self) -> None:
        """Start a commit group for this thread's turns; StoreBusy if it would have to wait."""
        if self._group_owner is not None:
            return
        if not self.lock.acquire(blocking=False):
            raise StoreBusy("the relationship log is in use by another thread", process=False)
        try:
            self._begin(wait=False)
        except BaseException:
            self.lock.release()
            raise
        self._group_owner = threading.get_ident()
        self._group_error = None

    def commit_group(self) -> None:
        """Commit the group's transaction and end the group.

        Raises if the group's writes were lost — its COMMIT failed, SQLite rolled it back, or it
        was committed early and that failed — so that none of its turns is answered.
        """
        if self._group_owner is None:
            error, self._group_error = self._group_error, None
            if error is not None:
                raise StoreGroupLost("the commit group was not committed") from error
            return
        self._group_owner = None
        error, self._group_error = self._group_error, None
        try:
            if error is not None:
                raise StoreGroupLost("the commit group was rolled back") from error
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self.lock.release()

    def _commit_group_early(self) -> None:
        try:
            self.commit_group()
        except BaseException as exc:
            self._group_error = exc  # the group's own commit reports it too
            raise

    def _begin(self, wait: bool) -> None:
        if wait:
            self.conn.execute("BEGIN IMMEDIATE")
            return
        self.conn.execute("PRAGMA busy_timeout=0")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            raise StoreBusy("the relationship log is locked by another process",
                            process=True) from exc
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    # -- reads ---------------------------------------------------------------------------------
    # On the shared connection, under the lock: a read from another thread must not run inside
    # (and see the uncommitted rows of) a turn's transaction. ``read`` is the lock-free path.
    # Every module that reads the log outside a transaction goes through these two.

    def fetch_all(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def fetch_one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def find_fan(self, persona: str, channel: str, external_id: str) -> dict[str, Any] | None:
        row = self.fetch_one(
            "SELECT * FROM fans WHERE persona = ? AND channel = ? AND external_id = ?",
            (persona, channel, external_id),
        )
        return dict(row) if row else None

    def find_fan_and_message(
        self, persona: str, channel: str, external_id: str, platform_msg_id: str | None
    ) -> tuple[dict[str, Any] | None, int | None]:
        """The fan, and the id of their inbound message ``platform_msg_id`` if it is logged.

        One statement for what every turn asks first (who is this, did we answer this already).
        """
        row = self.fetch_one(
            "SELECT *, (SELECT m.id FROM messages m WHERE m.fan_id = fans.id "
            "AND m.platform_msg_id = ? AND m.direction = 'in') AS logged_message_id "
            "FROM fans WHERE persona = ? AND channel = ? AND external_id = ?",
            (platform_msg_id, persona, channel, external_id),
        )
        if row is None:
            return None, None
        fan = dict(row)
        return fan, fan.pop("logged_message_id")

    def replies_to(self, message_id: int) -> list[dict[str, Any]]:
        """The replies logged for one inbound message, in order."""
        return [
            dict(r)
            for r in self.fetch_all(
                "SELECT text, reply_key, language FROM messages WHERE in_reply_to = ? ORDER BY id",
                (message_id,),
            )
        ]

    def count_events(self, fan_id: int, kind: str, since: str) -> int:
        return self.fetch_one(
            "SELECT count(*) FROM events WHERE fan_id = ? AND kind = ? AND created_at >= ?",
            (fan_id, kind, since),
        )[0]

    def fan_by_referral_code(self, code: str) -> dict[str, Any] | None:
        row = self.fetch_one("SELECT * FROM fans WHERE referral_code = ?", (code,))
        return dict(row) if row else None

    def fans(self, persona: str | None = None, *, handoff_only: bool = False
             ) -> list[dict[str, Any]]:
        """Fans, most recently seen first; of one persona, or only those a human holds."""
        where = [w for w, on in (("persona = ?", persona), ("handoff = 1", handoff_only)) if on]
        sql = "SELECT * FROM fans" + (" WHERE " + " AND ".join(where) if where else "")
        return [dict(r) for r in self.fetch_all(sql + " ORDER BY last_seen DESC",
                                           (persona,) if persona else ())]

    def find_fans(self, query: str) -> list[dict[str, Any]]:
        """Fans matching an operator's reference: numeric id, external id or display name."""
        rows = self.fetch_all(
            "SELECT * FROM fans WHERE CAST(id AS TEXT) = ? OR external_id = ? OR display_name = ?",
            (query, query, query),
        )
        return [dict(r) for r in rows]

    def mark_blocked(
        self, persona: str, channel: str, external_id: str, blocked: bool, reason: str, now: str
    ) -> bool:
        """Record that a platform refused delivery (Telegram 403) or the fan came back.

        Returns False when the fan is unknown. Blocking also ends the subscription: a fan who
        blocked the bot cannot receive newsletters, and consent must be given again.
        """
        with self.transaction() as conn:
            fan = self.find_fan(persona, channel, external_id)
            if fan is None:
                return False
            if bool(fan["blocked"]) == blocked:
                return True
            conn.execute(
                "UPDATE fans SET blocked = ?, subscribed = CASE WHEN ? THEN 0 ELSE subscribed END "
                "WHERE id = ?",
                (int(blocked), int(blocked), fan["id"]),
            )
            log_event(conn, fan["id"], "block" if blocked else "unblock", {"reason": reason}, now)
            if blocked and fan["subscribed"]:
                log_event(conn, fan["id"], "unsubscribe", {"source": reason}, now)
            return True


def log_event(conn: sqlite3.Connection, fan_id: int, kind: str, payload: dict[str, Any],
              at: str) -> None:
    """Add one row to ``events`` (``at``: an :func:`iso` timestamp) in the caller's transaction."""
    conn.execute(
        "INSERT INTO events (fan_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
        (fan_id, kind, dumps(payload), at),
    )


def insert_message(conn: sqlite3.Connection, **columns: Any) -> int:
    """Log one message (in or out); the keys are ``messages`` columns. Returns its id."""
    cur = conn.execute(_insert_sql("messages", tuple(columns)), tuple(columns.values()))
    return cur.lastrowid


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, names: tuple[str, ...]) -> str:
    """The INSERT statement for these columns, built once (turns run it thousands of times)."""
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
