"""Plain amounts (三十五个饺子, 1,200, 3.5, twenty-one) not already part of another entity.

A lone 一 is everywhere in Chinese (一起, 一下, 一个问题, 第一次) and so is "one" in English
("this one"): neither counts on its own; another single Chinese numeral counts only before a
measure word (三个, not 三楼).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.entities.model import Entity
from bot.entities.text import EN_NUMBER_WORD, ZH_NUMERAL, number_from

__all__ = ["find_numbers"]

_DIGITS = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|[.,]\d)", re.ASCII)
_ZH = re.compile(rf"(?<![第{ZH_NUMERAL}])[{ZH_NUMERAL}]+")
_MEASURE = set("个份张只碗杯瓶盒斤块串条把根件套桌间本次")
_EN = re.compile(rf"\b{EN_NUMBER_WORD}\b")


def find_numbers(view: str, text: str) -> Iterator[Entity]:
    """Every amount in ``view`` (the matching view of ``text``)."""
    for m in _DIGITS.finditer(view):
        value = number_from(m.group())
        if value is not None:
            yield Entity("number", value, text[m.start():m.end()], m.start(), m.end())
    for m in _ZH.finditer(view):
        run = m.group()
        if len(run) == 1 and (run == "一" or m.end() >= len(view)
                              or view[m.end()] not in _MEASURE):
            continue  # 一个问题, 一下: the article, not an amount
        value = number_from(run)
        if value is not None:
            yield Entity("number", value, text[m.start():m.end()], m.start(), m.end())
    for m in _EN.finditer(view):
        if m.group() == "one":
            continue
        value = number_from(m.group())
        if value is not None:
            yield Entity("number", value, text[m.start():m.end()], m.start(), m.end())
