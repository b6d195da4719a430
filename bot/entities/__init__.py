"""Entities for forms (issue 11): dates, times, party sizes, phones, names, e-mails, numbers.

One call reads everything a form may need from one message, so "明天晚上7点4个人" fills the
date-time and the party size at once::

    from bot.entities import extract
    extract("明天晚上7点4个人", now=now, tz=persona.zone, locale="zh-CN")
    # [Entity(kind='datetime', value=datetime(2026, 12, 10, 19, 0, tzinfo=...), text='明天晚上7点'),
    #  Entity(kind='party', value=Party(total=4), text='4个人')]

Each :class:`Entity` carries the span it came from (``start``/``end``/``text``), a typed value,
and a :class:`Problem` with a reason in Chinese and English when the value is impossible
(2月30日, 25点, 0个人, a malformed phone) — never silently dropped or coerced. Dates before now
are flagged ``past``; clock times said without morning/evening are flagged ``ambiguous``.
Traditional Chinese and fullwidth characters are read like Simplified/ASCII; names and other
spans are returned as the fan wrote them. Never raises on any ``str`` (hostile input included).

Conventions are listed in tests/data/entities/README.md; bench/entities.py measures accuracy
and speed against dateparser, jionlp and Recognizers-Text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from bot.entities.contact import find_emails, find_names, find_phones
from bot.entities.context import make_context
from bot.entities.model import KINDS, Entity, Party, Problem
from bot.entities.numbers import find_numbers
from bot.entities.people import find_parties
from bot.entities.text import matching_view
from bot.entities.when import (
    find_dates,
    find_datetimes,
    find_times,
    with_ranges,
    with_weekdays,
)

__all__ = ["KINDS", "MAX_TEXT", "Entity", "Party", "Problem", "extract", "first"]

# Longer messages are read up to here: a form answer is a line, not a document, and the cap
# bounds the work a hostile 1 MB message can cause.
MAX_TEXT = 2000
# When two candidates overlap and are equally long, the earlier kind here wins.
_PRIORITY = {kind: i for i, kind in enumerate(
    ("datetime", "date", "phone", "time", "email", "party", "name", "number"))}


def extract(text: str, kinds: Iterable[str] | None = None, *, now: dt.datetime | None = None,
            tz: dt.tzinfo | str | None = None, locale: str = "zh-CN",
            home_region: str | None = "CN", max_party: int = 50) -> list[Entity]:
    """Every entity in ``text``, in text order, no two overlapping.

    ``kinds``: report only these (see :data:`KINDS`); a ``datetime`` is reported instead of
    the date and time it joins (its ``date``/``time`` properties give them), so a form that
    wants a date should accept both kinds.
    ``now``/``tz``: relative dates resolve against ``now`` in ``tz`` (the persona's ``zone``);
    ``locale``: zh-CN, zh-TW, zh-HK, en-US, en-GB… (reading of 5/3, region of local phone
    numbers); ``home_region``: second region tried for a phone without a country code;
    ``max_party``: larger parties are reported invalid.
    """
    if not isinstance(text, str) or not text:
        return []
    text = text[:MAX_TEXT]
    wanted = set(KINDS if kinds is None else kinds)
    ctx = make_context(now, tz, locale, home_region, max_party)
    view = matching_view(text)
    # Every extractor runs whatever ``kinds`` asks for: overlaps are settled among all of
    # them, so 明天晚上7点 never yields the number 7 because only numbers were asked for.
    dates = with_weekdays(list(find_dates(view, text, ctx)), view, text)
    times = with_ranges(list(find_times(view, text)), view)
    found: list[Entity] = [entity for entity, _ in dates]
    found += times
    found += find_datetimes(text, dates, times, view, ctx)
    found += find_phones(view, text, ctx)
    found += find_emails(view, text)
    found += find_parties(view, text, ctx)
    found += find_names(view, text)
    found += find_numbers(view, text)
    return [e for e in _without_overlaps(found) if e.kind in wanted]


def first(entities: Iterable[Entity], kind: str) -> Entity | None:
    """The first entity of ``kind`` (a form slot usually takes the first one said)."""
    return next((e for e in entities if e.kind == kind), None)


def _without_overlaps(found: list[Entity]) -> list[Entity]:
    """Longest candidates first, then by kind priority; the result in text order.

    Taken characters are marked in a bytearray, so a hostile message with thousands of
    candidates costs length × span, not candidates².
    """
    found.sort(key=lambda e: (e.start - e.end, _PRIORITY[e.kind], e.start))
    taken: list[Entity] = []
    used = bytearray(max((e.end for e in found), default=0))
    for entity in found:
        if not any(used[entity.start:entity.end]):
            used[entity.start:entity.end] = b"\x01" * (entity.end - entity.start)
            taken.append(entity)
    taken.sort(key=lambda e: e.start)
    return taken
