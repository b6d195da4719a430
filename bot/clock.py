"""The one source of "now" for code that stamps the log: aware UTC, as :func:`iso` writes it.

Low in the import graph on purpose (standard library only): the engine, the relations modules,
the scheduler and the commands all take their default clock from here, and tests pass their own
``clock`` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current moment, timezone-aware, in UTC."""
    return datetime.now(UTC)


def utc_stamp() -> str:
    """Now, UTC, to the second, as ``/healthz`` shows times (``2026-12-06T07:30:00Z``)."""
    return utc_now().isoformat(timespec="seconds").replace("+00:00", "Z")
