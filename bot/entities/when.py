"""Dates, clock times and the two together, in Chinese (both scripts) and English.

Rules, not a date library: the forms need a closed set of shapes (明天, 下周六, 3月5号, next
Friday, 5/3, 晚上7点, 七点半, 7:30pm, half past seven…) resolved against an injectable *now*
in the persona's time zone, with impossible values reported rather than rolled over, and each
call within a few tens of microseconds. bench/entities.py compares this with dateparser,
jionlp and Microsoft's Recognizers-Text on the project's expression table.

Conventions (tests/data/entities/README.md has the full list): a date without a year is the next
such day on or after today; ``周六``/``Saturday`` is the next Saturday on or after today,
``这周六``/``this Saturday`` the one in this Monday–Sunday week, ``下周六``/``next Saturday``
the one in next week; a clock time without a period keeps the hour as said and is flagged
``ambiguous``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator

from bot.entities import reasons
from bot.entities.context import Context
from bot.entities.model import Entity, Problem
from bot.entities.text import EN_NUMBER_WORD, ZH_NUMERAL, number_from

__all__ = ["find_dates", "find_datetimes", "find_times"]

_NUM = rf"(?:\d{{1,4}}|[{ZH_NUMERAL}]{{1,5}})"
_EN_NUM = rf"(?:\d{{1,2}}|{EN_NUMBER_WORD})"

# --- dates -------------------------------------------------------------------------------------

# 听日/寻日/琴日: Cantonese tomorrow/yesterday (聽日 after the Traditional → Simplified fold).
_REL_DAYS = {"听日": 1, "寻日": -1, "琴日": -1, "大后天": 3, "后天": 2,
              "明天": 1, "明日": 1, "明儿": 1, "明晚": 1, "明早": 1,
             "明夜": 1, "今天": 0, "今日": 0, "今儿": 0, "今晚": 0, "今早": 0, "今夜": 0,
             "昨天": -1, "昨日": -1, "昨晚": -1, "前天": -2, "tomorrow": 1, "tmr": 1, "tmrw": 1,
             "today": 0, "tonight": 0, "yesterday": -1, "day after tomorrow": 2}
# The part of the day some day words carry (今晚 8点 → 20:00).
_DAY_PERIOD = {"今晚": "evening", "明晚": "evening", "今夜": "evening", "明夜": "evening",
               "昨晚": "evening", "tonight": "evening", "今早": "morning", "明早": "morning"}
_REL_DAY = re.compile(
    r"听日|寻日|琴日|大后天|后天|明天|明日|明儿|明晚|明早|明夜|今天|今日|今儿|今晚|今早|今夜|昨天|昨日|昨晚|前天"
    r"|\b(?:the\s+)?day\s+after\s+tomorrow\b|\b(?:tomorrow|tmrw?|today|tonight|yesterday)\b"
)
_WEEKDAY_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5,
               "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_WEEK_ZH = re.compile(
    r"(?P<pre>下下个?|下个?|这个?|本|上上个?|上个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末1-7])"
)
_WEEKDAYS_EN = {d.lower(): i for i, d in enumerate(calendar.day_name)} | {"weekend": 5}
_WEEK_EN = re.compile(
    r"\b(?:(?P<pre>this|next|last|coming|on|the)\s+)?(?P<wd>" + "|".join(_WEEKDAYS_EN) + r")\b"
)
_WEEK_SHIFT = {"下下": 14, "下": 7, "这": 0, "本": 0, "上": -7, "上上": -14,
               "this": 0, "next": 7, "last": -7}
_YMD_ZH = re.compile(
    rf"(?:(?P<y>\d{{4}})\s*年\s*)?(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})\s*(?P<suffix>日|号)?"
)
_MONTH_REL_DAY = re.compile(rf"(?P<rel>下个?月|这个?月|本月)\s*(?P<d>{_NUM})\s*(?:日|号)")
_DAY_ONLY = re.compile(rf"(?P<d>{_NUM})\s*(?:日|号)(?![线桌楼门房口车床])")
_ISO = re.compile(r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?![\d.])")
_SLASH = re.compile(r"(?<![\d/.:])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])")
_MONTHS_EN = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m} | {"sept": 9}
_MON = "(?:" + "|".join(sorted(_MONTHS_EN, key=len, reverse=True)) + r")\b\.?"
_ORD = r"(?:st|nd|rd|th)?\b"
_DAY_MONTH_EN = re.compile(
    rf"\b(?P<d>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<mon>{_MON})(?:,?\s+(?P<y>\d{{4}})\b)?"
)
_MONTH_DAY_EN = re.compile(rf"\b(?P<mon>{_MON})\s*(?P<d>\d{{1,2}}){_ORD}(?:,?\s+(?P<y>\d{{4}})\b)?")
_THE_DAY_EN = re.compile(r"\bthe\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?[a-z]{3})")
_IN_DAYS = re.compile(
    rf"(?P<n>{_NUM})\s*天\s*(?:以后|之后|后)|\bin\s+(?P<n2>{_EN_NUM})\s+days?\b"
    rf"|\b(?P<n3>{_EN_NUM})\s+days?\s+(?:later|from\s+now)\b"
)
_MAY_VERB = re.compile(r"\s*(?:of\s+us|people|ppl|persons|guests|adults|kids|children)\b")
_WEEKDAY_WORD = re.compile(
    r"(?:(?:on|this|next|coming|the)\s+)?(?:" + "|".join(_WEEKDAYS_EN) + r")"
    r"|(?:周|星期|礼拜)[一二三四五六日天1-7]"
)
_WEEKDAY_GAP = re.compile(r"\s*(?:,|，|、|\(|（|\)|）)?\s*")
# Characters before a bare 周X that make it part of another word (一周一次, 每周六).
_NOT_WEEKDAY_BEFORE = set(ZH_NUMERAL + "0123456789几每")


def _date_entity(text: str, start: int, end: int, ctx: Context, year: int | None,
                 month: int, day: int, *, explicit: bool = True) -> Entity:
    """A date from its parts; year None means the next such day on or after today."""
    span = text[start:end]
    if not 1 <= month <= 12:
        return Entity("date", None, span, start, end, problem=reasons.no_such_month(month))
    if year is None:
        # Valid in some year (29 February only in leap years): the next such day from today.
        if not 1 <= day <= (29 if month == 2 else calendar.monthrange(2001, month)[1]):
            return Entity("date", None, span, start, end,
                          problem=reasons.no_such_day(None, month, day))
        today = ctx.today
        year = today.year + ((month, day) < (today.month, today.day))
        while month == 2 and day == 29 and not calendar.isleap(year):
            year += 1
        explicit = False
    elif not 1 <= day <= calendar.monthrange(year, month)[1]:
        return Entity("date", None, span, start, end,
                      problem=reasons.no_such_day(year, month, day))
    value = dt.date(year, month, day)
    return Entity("date", value, span, start, end, past=explicit and value < ctx.today)


def _day(text: str, start: int, end: int, ctx: Context, value: dt.date) -> Entity:
    return Entity("date", value, text[start:end], start, end, past=value < ctx.today)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    value = number_from(text)
    return value if isinstance(value, int) else None


def find_dates(view: str, text: str, ctx: Context) -> Iterator[tuple[Entity, str | None]]:
    """Every date in ``view`` (the matching view of ``text``), with the part of day it implies."""
    today = ctx.today
    monday = today - dt.timedelta(days=today.weekday())
    for m in _REL_DAY.finditer(view):
        word = re.sub(r"\s+", " ", m.group()).removeprefix("the ")
        value = today + dt.timedelta(days=_REL_DAYS[word])
        yield _day(text, m.start(), m.end(), ctx, value), _DAY_PERIOD.get(word)
    for m in _WEEK_ZH.finditer(view):
        pre = m["pre"]
        if pre is None and m.start() and view[m.start() - 1] in _NOT_WEEKDAY_BEFORE:
            continue
        weekday = _WEEKDAY_ZH[m["wd"]]
        if pre is None:
            value = today + dt.timedelta(days=(weekday - today.weekday()) % 7)
        else:
            value = monday + dt.timedelta(days=_WEEK_SHIFT[pre.rstrip("个")] + weekday)
        yield _day(text, m.start(), m.end(), ctx, value), None
    for m in _WEEK_EN.finditer(view):
        pre, weekday = m["pre"], _WEEKDAYS_EN[m["wd"]]
        if pre in (None, "on", "coming", "the"):
            value = today + dt.timedelta(days=(weekday - today.weekday()) % 7)
        elif pre == "last" and m["wd"] != "weekend":
            value = today - dt.timedelta(days=(today.weekday() - weekday) % 7 or 7)
        else:
            value = monday + dt.timedelta(days=_WEEK_SHIFT[pre] + weekday)
        yield _day(text, m.start(), m.end(), ctx, value), None
    for m in _YMD_ZH.finditer(view):
        month, day = _int(m["m"]), _int(m["d"])
        if month is None or day is None or (m["suffix"] is None and not m["d"].isdigit()):
            continue
        yield _date_entity(text, m.start(), m.end(), ctx, _int(m["y"]), month, day), None
    for m in _MONTH_REL_DAY.finditer(view):
        day = _int(m["d"])
        if day is None:
            continue
        month, year = today.month, today.year
        if m["rel"].startswith("下"):
            month, year = (1, year + 1) if month == 12 else (month + 1, year)
        yield _date_entity(text, m.start(), m.end(), ctx, year, month, day), None
    for m in _DAY_ONLY.finditer(view):
        if m.start() and view[m.start() - 1] in "第月":
            continue
        entity = _day_of_month(text, m, ctx)
        if entity is not None:
            yield entity, None
    for m in _THE_DAY_EN.finditer(view):
        entity = _day_of_month(text, m, ctx)
        if entity is not None:
            yield entity, None
    for m in _ISO.finditer(view):
        yield _date_entity(text, m.start(), m.end(), ctx, int(m["y"]), int(m["m"]),
                           int(m["d"])), None
    for m in _SLASH.finditer(view):
        yield _slash_date(text, m, ctx), None
    for pattern in (_DAY_MONTH_EN, _MONTH_DAY_EN):
        for m in pattern.finditer(view):
            month = _MONTHS_EN[m["mon"].rstrip(".")]
            if m["mon"].startswith("may") and _MAY_VERB.match(view, m.end()):
                continue  # "may 5 of us come"
            yield _date_entity(text, m.start(), m.end(), ctx, _int(m["y"]), month,
                               int(m["d"])), None
    for m in _IN_DAYS.finditer(view):
        n = _int(m["n"] or m["n2"] or m["n3"])
        if n is None or n > 3660:
            continue
        yield _day(text, m.start(), m.end(), ctx, today + dt.timedelta(days=n)), None


def _day_of_month(text: str, m: re.Match[str], ctx: Context) -> Entity | None:
    """20号 / the 24th: this month if the day is still to come, else next month."""
    day = _int(m["d"])
    if day is None or not 1 <= day <= 31:
        return None
    today = ctx.today
    month, year = today.month, today.year
    if day < today.day:
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return _date_entity(text, m.start(), m.end(), ctx, year, month, day, explicit=False)


def with_weekdays(dates: list[tuple[Entity, str | None]], view: str, text: str,
                  ) -> list[tuple[Entity, str | None]]:
    """Join a weekday written next to a date (Saturday 12th December, 12月12日周六) into one.

    The date decides the day; the joined span keeps the weekday's words out of other entities.
    Neighbours are looked up by position, so the cost grows with the number of dates only.
    """
    is_weekday = [bool(_WEEKDAY_WORD.fullmatch(view, e.start, e.end)) for e, _ in dates]
    starting_at: dict[int, list[int]] = {}
    for i, (entity, _) in enumerate(dates):
        starting_at.setdefault(entity.start, []).append(i)
    joined = []
    for i, (left, left_period) in enumerate(dates):
        for start in range(left.end, _WEEKDAY_GAP.match(view, left.end).end() + 1):
            for j in starting_at.get(start, ()):
                if is_weekday[i] == is_weekday[j]:
                    continue  # one weekday and one date
                day, period = (dates[j] if is_weekday[i] else (left, left_period))
                end = dates[j][0].end
                joined.append((Entity("date", day.value, text[left.start:end], left.start, end,
                                      problem=day.problem, past=day.past), period))
    return dates + joined


def _slash_date(text: str, m: re.Match[str], ctx: Context) -> Entity:
    """5/3: month/day or day/month by locale; the other order when the first is impossible."""
    a, b = int(m["a"]), int(m["b"])
    year = None if m["y"] is None else int(m["y"]) + (2000 if len(m["y"]) == 2 else 0)
    month, day = (b, a) if ctx.day_first else (a, b)
    first = _date_entity(text, m.start(), m.end(), ctx, year, month, day)
    if first.valid:
        return first
    other = _date_entity(text, m.start(), m.end(), ctx, year, day, month)
    return other if other.valid and month > 12 else first


# --- times -------------------------------------------------------------------------------------

_PERIOD_ZH = {"凌晨": "small_hours", "半夜": "small_hours", "清晨": "morning", "早上": "morning",
              "早晨": "morning", "早": "morning", "上午": "morning", "中午": "noon",
              "午后": "afternoon", "下午": "afternoon", "傍晚": "evening", "晚上": "evening",
              "夜里": "evening", "夜晚": "evening", "晚": "evening"}
_PERIOD_ZH_RE = "|".join(sorted(_PERIOD_ZH, key=len, reverse=True))
_TIME_ZH = re.compile(
    rf"(?:(?P<p>{_PERIOD_ZH_RE})\s*)?(?P<h>{_NUM})\s*(?:点钟|点|时)"
    rf"(?:\s*(?P<half>半)|\s*(?P<q>[一三])刻|\s*(?P<m>{_NUM})(?:\s*(?P<fen>分)|(?!\s*[点时])))?"
)
_TIME_DIGITS = re.compile(
    rf"(?:(?P<p>{_PERIOD_ZH_RE})\s*)?(?<![\d:.])(?P<h>\d{{1,2}})\s*:\s*(?P<m>\d{{2}})(?![\d:])"
    r"(?:\s*(?P<ap>[ap])(?:m\b|\.m\b\.?))?"
)
_TIME_DOT_AMPM = re.compile(
    r"(?<![\d.:])(?P<h>\d{1,2})\.(?P<m>\d{2})\s*(?P<ap>[ap])(?:m\b|\.m\b\.?)"
)
_TIME_AMPM = re.compile(r"(?<![\d.:])(?P<h>\d{1,2})\s*(?P<ap>[ap])(?:m\b|\.m\b\.?)")
_TIME_EN_PERIOD = re.compile(
    rf"\b(?P<h>{_EN_NUM})(?::(?P<m>\d{{2}}))?\s+(?:o'?clock\s+)?"
    r"(?:in\s+the\s+|this\s+)(?P<p>morning|afternoon|evening)\b|"
    rf"\b(?P<h2>{_EN_NUM})\s+(?:o'?clock\s+)?at\s+night\b"
)
_TIME_OCLOCK = re.compile(rf"\b(?P<h>{_EN_NUM})\s*o'?clock\b")
_TIME_PAST_TO = re.compile(
    rf"\b(?:(?P<half>half)|(?:a\s+)?(?P<quarter>quarter)|(?P<mm>{_EN_NUM})(?:\s+minutes?)?)"
    rf"\s+(?P<dir>past|after|to)\s+(?P<h>{_EN_NUM})\b"
)
_NOON = re.compile(r"\b(?P<w>noon|midday|midnight)\b")
_AT_HOUR = re.compile(
    rf"\bat\s+(?P<h>{_EN_NUM})\b(?![:.]\d)"
    r"(?!\s*(?:[ap]\.?m\b|o'?clock|people|ppl|persons?|guests|adults?|kids?|child|children"
    r"|of\s+us|days?|%|in\s+the|this\s+(?:morning|afternoon|evening)|at\s+night))"
)
# Minutes written without 分 must not swallow a following count (7点4个人 is 7点 + 4个人).
_COUNT_AFTER = set("个位人大小口")


def _clock(hour: int, minute: int, period: str | None, ampm: str | None = None,
           ) -> tuple[dt.time | None, bool, Problem | None]:
    """24-hour time from an hour as said, the part of day and am/pm: (time, ambiguous, problem)."""
    if minute > 59:
        return None, False, reasons.no_such_minute(minute)
    if hour > 24 or (ampm and not 1 <= hour <= 12):
        return None, False, reasons.no_such_hour(hour)
    ambiguous = False
    if hour == 24:
        hour = 0
    elif ampm == "a":
        hour %= 12
    elif ampm == "p":
        hour = hour % 12 + 12
    elif period in ("small_hours",):
        hour = 0 if hour == 12 else hour
    elif period == "noon":
        hour = hour + 12 if 1 <= hour <= 4 else hour
    elif period == "afternoon":
        hour = hour + 12 if 1 <= hour <= 11 else hour
    elif period == "evening":
        hour = 0 if hour == 12 else hour + 12 if 5 <= hour <= 11 else hour
    elif period is None:
        ambiguous = 1 <= hour <= 12
    return dt.time(hour, minute), ambiguous, None


def _time_entity(text: str, start: int, end: int, hour: int, minute: int, period: str | None,
                 ampm: str | None = None) -> Entity:
    value, ambiguous, problem = _clock(hour, minute, period, ampm)
    return Entity("time", value, text[start:end], start, end, problem=problem,
                  ambiguous=ambiguous)


def find_times(view: str, text: str) -> Iterator[Entity]:
    """Every clock time in ``view`` (the matching view of ``text``)."""
    for m in _TIME_ZH.finditer(view):
        hour = _int(m["h"])
        if hour is None:
            continue
        period = _PERIOD_ZH[m["p"]] if m["p"] else None
        start, end, minute = (m.start("p") if m["p"] else m.start("h")), m.end(), 0
        if m["p"] in ("晚", "早") and m.start() and view[m.start() - 1] in "今明昨":
            period, start = None, m.start("h")  # 今晚8点: 今晚 is the day, it brings the period
        if m["half"]:
            minute = 30
        elif m["q"]:
            minute = 15 if m["q"] == "一" else 45
        elif m["m"]:
            raw = m["m"]
            minute_value = _int(raw)
            plain_ok = (len(raw) == 2 if raw.isdigit() else len(raw) >= 2) and (
                m.end() >= len(view) or view[m.end()] not in _COUNT_AFTER)
            if minute_value is None or not (m["fen"] or plain_ok):
                end = m.start("m")
                while view[end - 1].isspace():
                    end -= 1
            else:
                minute = minute_value
        if (hour == 1 and period is None and minute == 0 and not m["half"] and
                view[m.start("h"):end].rstrip("钟") == "一点"):
            continue  # 一点 = "a little" (快一点, 一点都不辣)
        yield _time_entity(text, start, end, hour, minute, period)
    for pattern in (_TIME_DIGITS, _TIME_DOT_AMPM):
        for m in pattern.finditer(view):
            period = _PERIOD_ZH.get(m["p"]) if "p" in m.re.groupindex and m["p"] else None
            start = m.start("p") if period else m.start("h")
            if start and view[start - 1].isdigit():
                continue
            yield _time_entity(text, start, m.end(), int(m["h"]), int(m["m"]), period,
                               m["ap"])
    for m in _TIME_AMPM.finditer(view):
        yield _time_entity(text, m.start(), m.end(), int(m["h"]), 0, None, m["ap"])
    for m in _TIME_EN_PERIOD.finditer(view):
        hour = _int(m["h"] or m["h2"])
        if hour is not None:
            yield _time_entity(text, m.start(), m.end(), hour, int(m["m"] or 0),
                               m["p"] or "evening")
    for m in _TIME_OCLOCK.finditer(view):
        hour = _int(m["h"])
        if hour is not None:
            yield _time_entity(text, m.start(), m.end(), hour, 0, None)
    for m in _TIME_PAST_TO.finditer(view):
        hour = _int(m["h"])
        minutes = 30 if m["half"] else 15 if m["quarter"] else _int(m["mm"])
        if hour is None or minutes is None or minutes >= 60 or (m["half"] and m["dir"] == "to"):
            continue
        if m["dir"] == "to":
            hour, minutes = (hour - 1) % 24 or 12, 60 - minutes
        yield _time_entity(text, m.start(), m.end(), hour, minutes, None)
    for m in _NOON.finditer(view):
        value = dt.time(0, 0) if m["w"] == "midnight" else dt.time(12, 0)
        yield Entity("time", value, text[m.start():m.end()], m.start(), m.end())
    for m in _AT_HOUR.finditer(view):
        hour = _int(m["h"])
        if hour is not None:
            yield _time_entity(text, m.start("h"), m.end(), hour, 0, None)


_RANGE_GAP = re.compile(r"\s*(?:到|至|-|~|–|—|to|until|till)\s*")


def with_ranges(times: list[Entity], view: str) -> list[Entity]:
    """晚上七点到九点 / 7pm to 9: the end of a range said without its period takes the start's."""
    index_at: dict[int, list[int]] = {}
    for i, clock in enumerate(times):
        index_at.setdefault(clock.start, []).append(i)
    out = list(times)
    for first in times:
        if first.ambiguous or first.value is None or first.value.hour < 12:
            continue
        gap = _RANGE_GAP.match(view, first.end)
        if not gap:
            continue
        for i in index_at.get(gap.end(), ()):
            then = out[i]
            if then.ambiguous and then.value is not None and then.value.hour < 12:
                later = then.value.replace(hour=then.value.hour + 12)
                out[i] = Entity("time", later, then.text, then.start, then.end)
    return out


# --- both --------------------------------------------------------------------------------------

_JOIN_DATE_TIME = re.compile(r"\s*(?:at|@|,|，|的)?\s*")
_JOIN_TIME_DATE = re.compile(r"\s*(?:on|,|，)?\s*")
_EVENING_HOURS = range(1, 12)


def find_datetimes(text: str, dates: list[tuple[Entity, str | None]], times: list[Entity],
                   view: str, ctx: Context) -> Iterator[Entity]:
    """A date and a time next to each other (明天晚上7点, Friday 7:30pm, 7pm tomorrow).

    Pairs are looked up by position (what starts where the gap after the other one ends), so
    a message full of dates and times costs their number, not its square.
    """
    times_at: dict[int, list[Entity]] = {}
    for clock in times:
        times_at.setdefault(clock.start, []).append(clock)
    dates_at: dict[int, list[tuple[Entity, str | None]]] = {}
    for day, period in dates:
        dates_at.setdefault(day.start, []).append((day, period))
    for day, day_period in dates:
        # Any start inside the gap: the next span may itself begin with "at"/"on".
        for start in range(day.end, _JOIN_DATE_TIME.match(view, day.end).end() + 1):
            for clock in times_at.get(start, ()):
                yield from _joined(text, day, day_period, clock, ctx)
    for clock in times:
        for start in range(clock.end, _JOIN_TIME_DATE.match(view, clock.end).end() + 1):
            for day, day_period in dates_at.get(start, ()):
                yield from _joined(text, day, day_period, clock, ctx)


def _joined(text: str, day: Entity, day_period: str | None, clock: Entity,
            ctx: Context) -> Iterator[Entity]:
    start, end = min(day.start, clock.start), max(day.end, clock.end)
    problem = day.problem or clock.problem
    if problem:
        yield Entity("datetime", None, text[start:end], start, end, problem=problem)
        return
    time_of_day, ambiguous = clock.value, clock.ambiguous
    if ambiguous and day_period == "evening" and time_of_day.hour in _EVENING_HOURS:
        time_of_day, ambiguous = time_of_day.replace(hour=time_of_day.hour + 12), False
    elif ambiguous and day_period == "morning":
        ambiguous = False
    value = dt.datetime.combine(day.value, time_of_day, tzinfo=ctx.tz)
    yield Entity("datetime", value, text[start:end], start, end, past=value < ctx.now,
                 ambiguous=ambiguous, parts=(day, clock))
