"""Reloading edited personas while the daemon runs, and watching their folders for edits.

A reload validates a persona and its dialog completely (``load_brand``) in a worker thread, then
swaps the brand in with ``Engine.set_brand``: turns in flight finish on the brand they started
with. An invalid edit is logged as ``path:line:col: field: problem`` and the previous version
stays live; ``/healthz`` shows the failed reload until a later one succeeds.

Watching: inotify through watchfiles, else our own polling of the YAML files (watchfiles' poller
gives up on a whole folder at the first entry it cannot stat — a symlink loop — and hot reload
would be gone until a restart). ``watch_mode`` ("off", "inotify", "polling", "failed") is what
``/healthz`` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.clock import utc_stamp

reload_log = logging.getLogger("brandbot.reload")


@dataclass
class PersonaState:
    """A served persona as ``/healthz`` shows it."""

    ref: str  # what the settings named (id or path): reloads resolve it the same way
    channels: list[str]
    loaded_at: str = ""
    reload_error: list[str] = field(default_factory=list)
    failed_at: str | None = None


class PersonaReloader:
    """Reloads the daemon's personas on request (SIGHUP) or when their files change."""

    def __init__(self, engine, personas: dict[str, PersonaState], metrics, *,
                 debounce_ms: int, on_reloaded: Callable[[object], Awaitable[None]]):
        self.engine, self.personas, self.metrics = engine, personas, metrics
        self.debounce_ms = debounce_ms
        self.on_reloaded = on_reloaded  # e.g. plan the calendar of the new version
        self.watch_mode = "off"
        self.watch_error: str | None = None
        self._skipped: set[str] = set()  # paths the watcher skips, each logged once
        self._lock = asyncio.Lock()

    def watch_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        for pid in self.personas:
            brand = self.engine.brand(pid)
            for file in (brand.persona_path, brand.dialog_path):
                folder = Path(file).resolve().parent
                if folder not in dirs:
                    dirs.append(folder)
        return dirs

    def failed(self) -> dict[str, PersonaState]:
        return {pid: st for pid, st in self.personas.items() if st.reload_error}

    async def reload(self, reason: str, changed: set[Path] | None = None) -> None:
        """Reload the personas whose files changed (all when ``changed`` is None)."""
        from bot.brand import load_brand
        from bot.errors import BrandbotError, ConfigError
        from bot.nlu.prefit import prefit

        async with self._lock:
            for pid, state in self.personas.items():
                current = self.engine.brand(pid)
                files = {Path(current.persona_path).resolve(), Path(current.dialog_path).resolve()}
                if changed is not None and not (files & changed) and not state.reload_error:
                    continue
                try:
                    await asyncio.to_thread(prefit, [state.ref])
                    brand = await asyncio.to_thread(load_brand, state.ref)
                    if brand.id != pid:
                        raise BrandbotError(
                            f"{brand.persona_path}: id: the persona id changed from {pid!r} to "
                            f"{brand.id!r}; fans are keyed by it: change it back, or restart "
                            "to serve it as a new persona"
                        )
                except ConfigError as exc:
                    self._failed(pid, state, [str(p) for p in exc.problems], reason)
                    continue
                except Exception as exc:  # noqa: BLE001 - unreadable file, vanished dialog...
                    self._failed(pid, state, [str(exc)], reason)
                    continue
                previous = current.persona.version
                self.engine.set_brand(brand)
                await self.on_reloaded(brand)
                state.loaded_at, state.reload_error, state.failed_at = utc_stamp(), [], None
                self.metrics.reloads.labels(pid).inc()
                self.metrics.set_persona(pid, brand.persona.version, previous)
                reload_log.info(
                    "reloaded persona %s version %s (%s)", pid, brand.persona.version, reason
                )

    def _failed(self, pid: str, state: PersonaState, problems: list[str], reason: str) -> None:
        state.reload_error, state.failed_at = problems, utc_stamp()
        self.metrics.reload_failures.labels(pid).inc()
        for problem in problems:
            reload_log.error("%s", problem)
        reload_log.error(
            "reload of persona %s refused (%s, %d problem(s)); version %s stays live",
            pid, reason, len(problems), self.engine.brand(pid).persona.version,
        )

    # -- watching ------------------------------------------------------------------------

    def _resolve_changed(self, path: str) -> Path:
        """The real file behind a changed path; a symlink loop is skipped (logged once)."""
        try:
            return Path(path).resolve(strict=False)
        except (RuntimeError, OSError) as exc:  # RuntimeError: Python 3.11's "Symlink loop"
            self._skip_once(path, exc)
            return Path(os.path.abspath(path))

    def _skip_once(self, path: str, exc: BaseException) -> None:
        if path not in self._skipped:
            self._skipped.add(path)
            reload_log.warning("file watching: skipping %s (%s)", path, exc)

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on edits until ``stop`` is set: inotify (watchfiles), else polling."""
        import watchfiles

        dirs = self.watch_dirs()

        def yaml_only(change, path: str) -> bool:
            return path.endswith((".yaml", ".yml"))

        if os.environ.get("WATCHFILES_FORCE_POLLING") not in ("1", "true"):
            self.watch_mode = "inotify"
            try:
                async for changes in watchfiles.awatch(
                    *dirs,
                    watch_filter=yaml_only,
                    debounce=self.debounce_ms,
                    step=min(50, self.debounce_ms),
                    stop_event=stop,
                    recursive=False,
                ):
                    await self._reload_changed({self._resolve_changed(p) for _, p in changes})
                return
            except Exception as exc:  # noqa: BLE001 - inotify limits and the like
                reload_log.warning("file watching failed (%s); polling instead", exc)
        self.watch_mode = "polling"
        try:
            await self._poll_yaml(dirs, stop)
        except Exception as exc:  # noqa: BLE001 - shown by /healthz; SIGHUP still reloads
            self.watch_mode, self.watch_error = "failed", f"{type(exc).__name__}: {exc}"
            reload_log.error("file watching failed: %s; reload with SIGHUP", exc)

    async def _reload_changed(self, changed: set[Path]) -> None:
        names = ", ".join(sorted(p.name for p in changed))
        await self.reload(f"changed: {names}", changed)

    async def _poll_yaml(self, dirs: list[Path], stop: asyncio.Event,
                         interval: float = 0.3) -> None:
        """Every ``interval`` s, compare each folder's YAML files (size, mtime, inode)."""

        def snapshot() -> dict[Path, tuple[int, int, int]]:
            seen = {}
            for folder in dirs:
                try:
                    entries = list(os.scandir(folder))
                except OSError as exc:  # the folder itself is gone: try again next round
                    self._skip_once(str(folder), exc)
                    continue
                for entry in entries:
                    if not entry.name.endswith((".yaml", ".yml")):
                        continue
                    try:
                        st = entry.stat()  # follows symlinks: ELOOP for a loop
                    except OSError as exc:
                        self._skip_once(entry.path, exc)
                        continue
                    seen[Path(entry.path)] = (st.st_size, st.st_mtime_ns, st.st_ino)
            return seen

        before = await asyncio.to_thread(snapshot)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
                return
            now = await asyncio.to_thread(snapshot)
            changed = {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)}
            before = now
            if changed:
                await self._reload_changed({self._resolve_changed(str(p)) for p in changed})
