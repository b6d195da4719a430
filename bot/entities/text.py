"""A matching view of the fan's text that keeps every character at its place.

Entities report spans into the *original* message, so the normalisation here maps one
character to exactly one character: fullwidth ASCII (from Chinese IMEs) → ASCII, the
ideographic space → space, A–Z → a–z, Traditional → Simplified (OpenCC, as bot/nlu does;
the rare conversion that changes the length falls back to one character at a time). The
numeral readers (Chinese and English words) used by every extractor live here too.
"""

from __future__ import annotations

import re
from functools import lru_cache

import opencc

__all__ = ["EN_NUMBERS", "matching_view", "number_from", "zh_number"]

_T2S = opencc.OpenCC("t2s")
# Lone surrogates (invalid UTF-16 halves) make OpenCC's UTF-8 encoding raise; one-for-one.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Fullwidth ! … ~ → ASCII, ideographic space → space, A–Z → a–z; all one-to-one.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20
_FOLD.update({c: c + 32 for c in range(0x41, 0x5B)})
_FOLD.update({c + 0xFEE0: c + 32 for c in range(0x41, 0x5B)})


@lru_cache(maxsize=4096)
def _t2s_char(char: str) -> str:
    out = _T2S.convert(char)
    return out if len(out) == 1 else char


def matching_view(text: str) -> str:
    """``text`` folded for matching, same length, character i ↔ character i."""
    folded = text.translate(_FOLD)
    if folded.isascii():
        return folded
    folded = _SURROGATE.sub("\ufffd", folded)
    converted = _T2S.convert(folded)
    if len(converted) == len(folded):
        return converted
    return "".join(map(_t2s_char, folded))


_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
ZH_NUMERAL = "零〇一二两俩三四五六七八九十百千万廿卅"
_TENS_SHORT = str.maketrans({"廿": "二十", "卅": "三十"})


def zh_number(text: str) -> int | None:
    """The value of a Chinese numeral (十二, 一百零五, 两千, 一百二 = 120); None if malformed.

    Written here rather than calling cn2an: the forms need integers below 10⁸ and the
    lookup below costs under a microsecond, against ~23 µs a call for cn2an (bench/entities.py).
    """
    if not text:
        return None
    text = text.translate(_TENS_SHORT)  # 廿四 = 二十四 (dates in Cantonese and in writing)
    if all(c in _ZH_DIGITS for c in text):
        if len(text) == 1:
            return _ZH_DIGITS[text]
        return None  # 一二 / 三三: not a number a fan writes for an amount
    total = section = 0
    digit: int | None = None
    last_unit = 0
    zero_seen = False
    for char in text:
        if char in _ZH_DIGITS:
            if digit is not None:
                return None
            digit = _ZH_DIGITS[char]
            if digit == 0:
                zero_seen = True
                digit = None
        elif char in _ZH_UNITS:
            unit = _ZH_UNITS[char]
            if last_unit and unit >= last_unit:
                return None
            section += (1 if digit is None else digit) * unit
            digit = None
            last_unit = unit
            zero_seen = False
        elif char == "万":
            if digit is not None:
                section += digit
            if section == 0 or total:
                return None
            total = section * 10000
            section, digit, last_unit, zero_seen = 0, None, 0, False
        else:
            return None
    if digit is not None:
        # 一百二 = 120: a bare digit after a unit of 百 or more counts one unit lower.
        if last_unit >= 100 and not zero_seen:
            digit *= last_unit // 10
        section += digit
    return total + section


EN_NUMBERS: dict[str, int] = {
    w: i for i, w in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty"))
}
_TEN_WORDS = ("thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
for _tens, _word in zip(range(30, 100, 10), _TEN_WORDS, strict=True):
    EN_NUMBERS[_word] = _tens
_TENS = {w: v for w, v in EN_NUMBERS.items() if v >= 20 and v % 10 == 0}
_UNITS = {w: v for w, v in EN_NUMBERS.items() if 1 <= v <= 9}
EN_NUMBER_WORD = (
    r"(?:(?:" + "|".join(_TENS) + r")(?:[- ](?:" + "|".join(_UNITS) + r"))?|"
    + "|".join(sorted((w for w in EN_NUMBERS if w not in _TENS), key=len, reverse=True)) + r")"
)
_SPLIT = re.compile(r"[- ]")


def number_from(text: str) -> int | float | None:
    """An amount written in digits (1,200 / 3.5), Chinese numerals or English words."""
    if not text:
        return None
    if text[0].isdigit():
        plain = text.replace(",", "")
        try:
            return float(plain) if "." in plain else int(plain)
        except ValueError:
            return None
    if text[0] in ZH_NUMERAL:
        return zh_number(text)
    words = _SPLIT.split(text)
    if all(w in EN_NUMBERS for w in words):
        return sum(EN_NUMBERS[w] for w in words)
    return None
