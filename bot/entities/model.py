"""What the extractors return: typed values with the span of text they came from.

A form fills slots from these, so each entity says *which* text was used (``start``/``end``
into the fan's original message, ``text`` is that slice), and a value that cannot be right is
kept, marked invalid with a bilingual reason, instead of being dropped or bent into something
plausible: the form re-asks with the reason ("2月没有30日" / "February has no 30th").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "Entity", "Party", "Problem"]

# Every kind the package knows, in the order a form usually asks for them.
KINDS: tuple[str, ...] = (
    "datetime", "date", "time", "party", "phone", "email", "name", "number"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a value is impossible: a stable ``code`` for programs, a sentence per language."""

    code: str
    zh: str
    en: str

    def message(self, language: str) -> str:
        """The reason in ``language`` (``zh`` or anything else → English)."""
        return self.zh if language.startswith("zh") else self.en


@dataclass(frozen=True, slots=True)
class Party:
    """How many people: the total, and adults/children when the fan said so (else None)."""

    total: int
    adults: int | None = None
    children: int | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """One thing found in a message.

    ``value`` by kind: ``date`` → :class:`datetime.date`; ``time`` → :class:`datetime.time`;
    ``datetime`` → an aware :class:`datetime.datetime` in the requested time zone; ``party`` →
    :class:`Party`; ``number`` → int or float; ``phone`` → E.164 text (``+8613812345678``);
    ``email`` → lower-cased address; ``name`` → the name as written. ``value`` is None when
    ``problem`` is set and no value can be built (2月30日).

    Flags: ``past`` — a date/datetime before now (booking forms refuse it); ``ambiguous`` — a
    clock time said without morning/evening (七点半, 7:30), kept as said (07:30) so the form can
    ask or apply opening hours; ``surname`` — a name that is only a family name (我姓李).
    """

    kind: str
    value: Any
    text: str
    start: int
    end: int
    problem: Problem | None = None
    past: bool = False
    ambiguous: bool = False
    surname: bool = False
    # Set on datetimes: the date and time parts, for forms that keep them in separate slots.
    parts: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def valid(self) -> bool:
        """False when ``problem`` says the value is impossible."""
        return self.problem is None

    @property
    def date(self) -> dt.date | None:
        """The calendar day of a ``date`` or ``datetime`` entity (None otherwise/invalid)."""
        if isinstance(self.value, dt.datetime):
            return self.value.date()
        return self.value if isinstance(self.value, dt.date) else None

    @property
    def time(self) -> dt.time | None:
        """The clock time of a ``time`` or ``datetime`` entity (None otherwise/invalid)."""
        if isinstance(self.value, dt.datetime):
            return self.value.timetz().replace(tzinfo=None)
        return self.value if isinstance(self.value, dt.time) else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (a form's submission data, the expression table's format).

        Values: date ``2026-12-10``, time ``19:00``, datetime ``2026-12-10T19:00+08:00``,
        party ``{"total", "adults", "children"}``, the rest as they are. Flags appear only when
        true; an impossible value adds ``invalid`` (the code) and ``reason`` ({zh, en}).
        """
        value = self.value
        if isinstance(value, dt.datetime):
            value = value.isoformat(timespec="minutes")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, dt.time):
            value = value.isoformat(timespec="minutes")
        elif isinstance(value, Party):
            value = {"total": value.total, "adults": value.adults, "children": value.children}
        out: dict[str, Any] = {"kind": self.kind, "value": value, "text": self.text,
                               "start": self.start, "end": self.end}
        for flag in ("past", "ambiguous", "surname"):
            if getattr(self, flag):
                out[flag] = True
        if self.problem is not None:
            out["invalid"] = self.problem.code
            out["reason"] = {"zh": self.problem.zh, "en": self.problem.en}
        return out
