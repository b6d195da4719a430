"""One signed URL, one push: each (timestamp, nonce) WeChat signed is accepted once.

In plain and compatible mode a push's ``signature`` covers the token, the timestamp and the
nonce — never the body — and a timestamp stays fresh for ``max_clock_skew`` (300 s). So whoever
sees one signed URL (a proxy's access log, a monitoring tool) could post any body, as any OpenID,
for five minutes. :class:`ReplayGuard` closes that: the first push with a given pair records a
digest of what it says; the same pair with the same digest again is WeChat re-sending the same
push (a retry: it goes on, and the engine's dedupe answers it from the log); the same pair with
anything else is refused with 403. Encrypted pushes (``msg_signature`` covers the ciphertext)
are authenticated: they are recorded, never refused, so that in compatible mode a plaintext
replay of their URL is refused too. The console's ``GET`` verification consumes its pair as
well (its URL would otherwise sign five minutes of pushes).

Safe mode needs none of this (plaintext pushes are refused, and the body is signed), and the
channel does not use it there.

Cost: one dict lookup and insert per push on the event loop; the pairs are written to the
``wechat_nonces`` table (migration ``m009``) from a thread and loaded back at start, so a restart
does not reopen the window. The channel awaits :meth:`ReplayGuard.flush` before a push has any
effect (pushes arriving together share one transaction): a pair that was acted on is in the
store, so a daemon killed right after a push (SIGKILL, OOM) cannot accept its URL again after
the restart. A background flush once a second catches anything left. A pair is forgotten once its
timestamp is no longer fresh (the signature check refuses it then anyway). Memory: one entry
per push of the last ``window`` seconds (~150 bytes each).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from bot.channels.wechat_crypto import PushRejected

log = logging.getLogger("brandbot.wechat")

FLUSH_EVERY = 1.0  # seconds between two writes of new pairs to the store


def digest(fields: Mapping[str, Any]) -> str:
    """What a push says, independent of XML formatting (``Encrypt`` left out: in compatible
    mode the same push comes with and without it)."""
    canonical = repr(sorted((k, v) for k, v in fields.items() if k != "Encrypt"))
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class ReplayGuard:
    """The (timestamp, nonce) pairs of one account seen within the freshness window."""

    def __init__(self, app_id: str, window: float, clock: Callable[[], float],
                 store: Any = None):
        self.app_id, self.window, self.clock, self.store = app_id, window, clock, store
        self._seen: dict[tuple[str, str], str] = {}
        self._expiry: deque[tuple[float, tuple[str, str]]] = deque()
        self._unsaved: list[tuple[str, str, str, str, float]] = []
        self._task: asyncio.Task | None = None
        self._writing = asyncio.Lock()

    # -- the check (on the event loop, per push) ---------------------------------------------

    def admit(self, timestamp: str, nonce: str, what: str, *, authenticated: bool) -> bool:
        """Record the pair; True for its first use, False for a retry of the same push.

        Raises :class:`PushRejected` (403) for a pair already used by a different push, unless
        this one is ``authenticated`` (its body is signed: WeChat sent it).
        """
        now = self.clock()
        self._prune(now)
        key = (timestamp, nonce)
        seen = self._seen.get(key)
        if seen is None:
            expires = _stamp(timestamp) + self.window + 1
            self._seen[key] = what
            self._expiry.append((expires, key))
            self._unsaved.append((self.app_id, timestamp, nonce, what, expires))
            return True
        if seen == what or authenticated:
            return False
        raise PushRejected(403, f"a signed URL replayed with another body (timestamp "
                                f"{timestamp}, nonce {nonce[:32]}): refused")

    def _prune(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            self._seen.pop(expiry.popleft()[1], None)

    # -- the store (in threads) ------------------------------------------------------------

    def load(self) -> int:
        """Read the pairs still fresh from the store (blocking); how many."""
        if self.store is None:
            return 0
        rows = self.store.fetch_all(
            "SELECT timestamp, nonce, digest, expires_at FROM wechat_nonces "
            "WHERE app_id = ? AND expires_at >= ? ORDER BY expires_at",
            (self.app_id, self.clock()),
        )
        for timestamp, nonce, what, expires in rows:
            if (timestamp, nonce) not in self._seen:
                self._seen[(timestamp, nonce)] = what
                self._expiry.append((expires, (timestamp, nonce)))
        return len(rows)

    def _write(self, rows: list[tuple], now: float) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO wechat_nonces (app_id, timestamp, nonce, digest, "
                "expires_at) VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM wechat_nonces WHERE expires_at < ?", (now,))

    async def flush(self) -> None:
        """Write the pairs recorded since the last flush (in a thread). When it returns, every
        pair admitted before the call is in the store (or its write failed and was logged):
        concurrent callers wait for the write in flight, which may hold their pair, then write
        together what is left (one transaction for all the pushes that arrived meanwhile)."""
        if self.store is None or not self._unsaved:
            return
        async with self._writing:
            if not self._unsaved:
                return
            rows, self._unsaved = self._unsaved, []
            try:
                await asyncio.to_thread(self._write, rows, self.clock())
            except Exception:  # noqa: BLE001 - kept in memory; the next flush tries again
                self._unsaved[:0] = rows
                log.exception("wechat: could not save %d signed-URL nonce(s); retrying",
                              len(rows))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.store is None:
            return
        loaded = await asyncio.to_thread(self.load)
        if loaded:
            log.info("wechat: %d signed URL(s) of the last %.0f s remembered", loaded,
                     self.window)
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()


def _stamp(timestamp: str) -> float:
    try:
        return float(int(timestamp))
    except ValueError:  # the signature check refuses these first; be safe anyway
        return 0.0
