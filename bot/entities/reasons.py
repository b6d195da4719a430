"""The bilingual reasons an impossible value is reported with (the form's re-ask says them)."""

from __future__ import annotations

import calendar

from bot.entities.model import Problem

__all__ = ["bad_phone", "no_such_day", "no_such_hour", "no_such_minute", "no_such_month",
           "party_too_large", "party_too_small"]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def no_such_month(month: int) -> Problem:
    return Problem("no_such_month", f"没有{month}月", f"there is no month {month}")


def no_such_day(year: int | None, month: int, day: int) -> Problem:
    name = calendar.month_name[month]
    if year is None:
        return Problem("no_such_day", f"{month}月没有{day}日", f"{name} has no {_ordinal(day)}")
    return Problem("no_such_day", f"{year}年{month}月没有{day}日",
                   f"{name} {year} has no {_ordinal(day)}")


def no_such_hour(hour: int) -> Problem:
    return Problem("no_such_hour", f"没有{hour}点这个时间", f"there is no hour {hour} in a day")


def no_such_minute(minute: int) -> Problem:
    return Problem("no_such_minute", f"一小时没有第{minute}分钟", f"an hour has no minute {minute}")


def party_too_small() -> Problem:
    return Problem("party_too_small", "人数至少是1位", "a party needs at least one person")


def party_too_large(total: int, maximum: int) -> Problem:
    return Problem("party_too_large", f"{total}位超过了上限（最多{maximum}位）",
                   f"{total} people is more than the maximum of {maximum}")


def bad_phone(text: str) -> Problem:
    return Problem("bad_phone", f"“{text}”不是有效的电话号码",
                   f"“{text}” is not a valid phone number")
