"""Times, waits and yes/no flags as an operator reads them, in the brand's own time zone.

The log keeps UTC with microseconds (``2026-03-05T06:05:09.123456Z``), which is right for
machines and hard for people: a Chengdu restaurant's evening shows as the next morning's
date. Tables show "今天 14:05" / "3月5日 14:05" (or "today 14:05" / "Mar 5 14:05"), waits as
"2 小时 5 分" / "2 h 5 min", flags as 是/否 or ✓/–; ``--json`` keeps the raw values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def parse_utc(value: str | None) -> datetime | None:
    """A log timestamp (ISO 8601, ``Z`` or an offset, or naive UTC) as an aware datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: str | None, zone: tzinfo, now: datetime, language: str = "en") -> str:
    """``value`` (a log timestamp) in ``zone``: today/yesterday with the time, else the date
    (with the year when not this year). Unreadable or empty: as it is / empty."""
    moment = parse_utc(value)
    if moment is None:
        return value or ""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    zh = language == "zh"
    if local.date() == today:
        return f"今天 {clock}" if zh else f"today {clock}"
    if local.date() == today - timedelta(days=1):
        return f"昨天 {clock}" if zh else f"yesterday {clock}"
    if zh:
        day = f"{local.month}月{local.day}日"
        return (day if local.year == today.year else f"{local.year}年{day}") + f" {clock}"
    day = f"{_MONTHS[local.month - 1]} {local.day}"
    return (day if local.year == today.year else f"{local.year}-{local:%m-%d}") + f" {clock}"


def duration(seconds: float, language: str = "en") -> str:
    """A wait as the two largest units: "3 天 2 小时" / "3 d 2 h", "5 分" / "5 min"."""
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    units = (("天", "d"), ("小时", "h"), ("分", "min"))
    parts = [(n, u) for n, u in zip((days, hours, mins), units, strict=True) if n]
    if not parts:
        return "不到 1 分" if language == "zh" else "< 1 min"
    return " ".join(f"{n} {u[0] if language == 'zh' else u[1]}" for n, u in parts[:2])


def ago(value: str | None, now: datetime, language: str = "en") -> str:
    """How long ago ``value`` was: "2 小时 5 分前" / "2 h 5 min ago"."""
    moment = parse_utc(value)
    if moment is None:
        return value or ""
    wait = duration((now - moment).total_seconds(), language)
    return f"{wait}前" if language == "zh" else f"{wait} ago"


def flag(value: object, language: str = "en") -> str:
    """A 0/1 column as 是/否 (Chinese) or ✓/– ."""
    on = bool(value) and value not in ("0", "false")
    if language == "zh":
        return "是" if on else "否"
    return "✓" if on else "–"
