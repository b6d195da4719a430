"""One log line per condition per interval, however many requests hit the condition.

A full disk, a lost database or a bug on a hot path fails *every* request: a line (or a
traceback) per request buries the log under thousands of copies in seconds and costs the CPU
the daemon needs to recover. :class:`LogLimiter` lets the first occurrence of a condition
through, counts the repeats for ``interval`` seconds, and folds the count into the next line
("... (37 more like this since the last such line)"). Conditions are plain strings chosen by the
caller ("storage_full", "internal:POST /api/chat"); each has its own window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["LogLimiter", "limiter"]

_MAX_CONDITIONS = 1024  # conditions come from code, but paths are part of some: stay bounded


class LogLimiter:
    """Lets one record per condition through every ``interval`` seconds (thread-safe)."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, list[float | int]] = {}  # condition -> [opened_at, suppressed]

    def allow(self, condition: str) -> int | None:
        """None to stay quiet; else how many were suppressed since the last line (0 or more)."""
        now = self.clock()
        with self._lock:
            window = self._windows.get(condition)
            if window is not None and now - window[0] < self.interval:
                window[1] += 1
                return None
            suppressed = int(window[1]) if window is not None else 0
            if window is None and len(self._windows) >= _MAX_CONDITIONS:
                self._windows.pop(next(iter(self._windows)))
            self._windows[condition] = [now, 0]
            return suppressed

    def reset(self, condition: str) -> int:
        """Forget ``condition`` (it is over: the next occurrence logs at once); the suppressed
        count of its last window."""
        with self._lock:
            window = self._windows.pop(condition, None)
        return int(window[1]) if window is not None else 0

    def log(self, logger: logging.Logger, level: int, condition: str, msg: str, *args,
            exc_info=None) -> bool:
        """``logger.log(level, msg, *args)`` unless ``condition`` was logged within the
        interval; True if a line was written."""
        suppressed = self.allow(condition)
        if suppressed is None:
            return False
        if suppressed:
            msg = f"{msg} ({suppressed} more like this since the last such line)"
        logger.log(level, msg, *args, exc_info=exc_info)
        return True


# The daemon's: every error path that a flood of requests can hit logs through it.
limiter = LogLimiter()
