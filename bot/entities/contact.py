"""Phone numbers, e-mail addresses and names a fan gives about themselves.

Phone numbers are found by shape here and *validated* by phonenumbers (Google's libphonenumber
metadata, the ``phonenumberslite`` build without geocoding/carrier data): the numbering plans of
China, Hong Kong, Taiwan and the rest of the world change, and a well-kept library tracks them.
A number without a country code is read in the locale's region, then in the brand's home region.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from types import ModuleType

from bot.entities import reasons
from bot.entities.context import Context
from bot.entities.model import Entity

__all__ = ["find_emails", "find_names", "find_phones"]

# A run of digits with the separators people type (spaces, dashes, dots, brackets), an optional
# + or 00 prefix. Digits are counted afterwards: 7 to 15 is a phone number (or a bad one).
_PHONE = re.compile(r"(?<![A-Za-z0-9_+.@])(?:\+|00)?\(?\d[\d \-.()]{3,20}\d(?![\d@])")
_ISO_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
_NON_DIGIT = re.compile(r"\D")


def find_phones(view: str, text: str, ctx: Context) -> Iterator[Entity]:
    """Phone numbers in ``view``; a phone-shaped run that no region accepts is ``bad_phone``."""
    for m in _PHONE.finditer(view):
        raw = m.group().rstrip(" -.(")
        end = m.start() + len(raw)
        if _ISO_DATE.fullmatch(raw) or "  " in raw:
            continue
        digits = _NON_DIGIT.sub("", raw)
        explicit = raw.startswith(("+", "00"))
        if not 7 <= len(digits) <= 15 or (not explicit and len(digits) < 8 and "-" not in raw):
            continue
        if not explicit and "." in raw and raw.count(".") == 1:
            continue  # a decimal amount (1234.50)
        span = text[m.start():end]
        number = _parse(raw, ctx.regions)
        if number is None and not explicit and raw.isdigit() and len(raw) < 10:
            continue  # 12345678 in no region's plan is an amount or a code, not a bad phone
        if number is None:
            yield Entity("phone", None, span, m.start(), end, problem=reasons.bad_phone(span))
        else:
            e164 = _phonenumbers().format_number(number, _phonenumbers().PhoneNumberFormat.E164)
            yield Entity("phone", e164, span, m.start(), end)


@cache
def _phonenumbers() -> ModuleType:
    """Imported on the first phone-shaped text (~100 ms), not when the daemon starts."""
    import phonenumbers

    return phonenumbers


def _parse(raw: str, regions: tuple[str, ...]):  # -> phonenumbers.PhoneNumber | None
    phonenumbers = _phonenumbers()
    for region in regions if not raw.startswith(("+", "00")) else regions[:1]:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9_.+-])[a-z0-9](?:[a-z0-9._%+-]{0,62}[a-z0-9_])?@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"[a-z]{2,24}(?![\w-])"
)


def find_emails(view: str, text: str) -> Iterator[Entity]:
    """E-mail addresses (lower-cased)."""
    for m in _EMAIL.finditer(view):
        yield Entity("email", m.group(), text[m.start():m.end()], m.start(), m.end())


_ZH_NAME_TRIGGER = re.compile(r"我叫|我的名字(?:是|叫)|名字(?:是|叫)|叫我|我姓|本人姓")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{1,4}")
# Words that end a name written without punctuation after it (我叫王小明明天来).
_AFTER_NAME = re.compile(
    r"明天|今天|后天|电话|手机|号码|预订|订位|就|想|要|来|在|呢|啊|吧|哦|呀|嘛|了|的|，"
)
_NOT_A_NAME = ("不", "什么", "啥", "谁", "哪", "做", "作", "一个", "个", "这", "那", "你", "他",
               "她")
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容",
                      "令狐", "司徒", "夏侯", "轩辕", "端木", "独孤", "南宫", "长孙", "宇文")
_EN_NAME = re.compile(
    r"\b(?:my\s+name\s+is|my\s+name's|call\s+me|i'm|i\s+am|this\s+is|name\s*:)\s+", re.IGNORECASE
)
_EN_WORDS = re.compile(r"([A-Z][a-z'\u2019-]+)(?:[ \t]+([A-Z][a-z'\u2019-]+))?")
# Capitalised words that follow "I'm" without being a name.
_NOT_EN_NAME = {"Sorry", "Fine", "Good", "Great", "Okay", "Ok", "Here", "Not", "So", "Just",
                "Looking", "Hungry", "Back", "Going", "Coming", "Interested", "Vegetarian",
                "Vegan", "Allergic", "Late", "On", "In", "At", "The", "A", "Very", "Really",
                "Also", "Still", "Busy", "Free", "Happy", "New", "From", "With", "Your", "Me"}


def find_names(view: str, text: str) -> Iterator[Entity]:
    """Names introduced by the fan (我叫王小明, 我姓李, 叫我阿强, my name is Anna)."""
    for m in _ZH_NAME_TRIGGER.finditer(view):
        han = _HAN.match(view, m.end())
        if not han:
            continue
        name = han.group()
        stop = _AFTER_NAME.search(name, 1)
        if stop:
            name = name[:stop.start()]
        if not name or name.startswith(_NOT_A_NAME):
            continue
        start = m.end()
        if m.group().endswith("姓"):
            size = 2 if name[:2] in _COMPOUND_SURNAMES else 1
            yield Entity("name", text[start:start + size], text[start:start + size], start,
                         start + size, surname=True)
        else:
            end = start + len(name)
            yield Entity("name", text[start:end], text[start:end], start, end)
    for m in _EN_NAME.finditer(text):
        words = _EN_WORDS.match(text, m.end())
        if not words or words[1] in _NOT_EN_NAME:
            continue
        if m.group().lower().startswith("call") and words[1] in ("Back", "On", "At"):
            continue
        end = words.end(2) if words[2] and words[2] not in _NOT_EN_NAME else words.end(1)
        yield Entity("name", text[words.start():end], text[words.start():end], words.start(), end)
