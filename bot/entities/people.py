"""Party sizes: 4个人, 两个大人一个小孩, 3大2小, 一家三口, a party of six, 2 adults and 1 child.

A count of people is its own entity (not a bare number) because a booking form needs adults and
children apart when the fan gives them, and because "4" in "明天晚上7点4个人" is the party, not
the minute. Sizes outside 1…``max_party`` are reported invalid (0个人, 500人) with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.entities import reasons
from bot.entities.context import Context
from bot.entities.model import Entity, Party
from bot.entities.text import EN_NUMBER_WORD, ZH_NUMERAL, number_from

__all__ = ["find_parties"]

_NUM = rf"(?:\d{{1,4}}|[{ZH_NUMERAL}]{{1,5}})"
_EN = rf"(?:\d{{1,4}}|{EN_NUMBER_WORD})"
_ADULT = r"(?:个|位|名)?\s*(?:大人|成人|成年人)"
_CHILD = r"(?:个|位|名)?\s*(?:小孩子?|孩子|小朋友|儿童|娃娃?|宝宝|小童)"
_PATTERNS = (
    re.compile(rf"(?P<a>{_NUM})\s*{_ADULT}\s*[，,、和跟加带及+]?\s*(?:带\s*)?(?P<c>{_NUM})\s*{_CHILD}"),
    re.compile(rf"(?P<a>{_NUM})\s*大\s*(?P<c>{_NUM})\s*小"),
    re.compile(rf"(?P<a>{_NUM})\s*{_ADULT}"),
    re.compile(rf"(?P<n>{_NUM})\s*(?:个人|位|名|口人|人)(?!民|生|家|数|气|员|物|体|工)"),
    re.compile(rf"一家\s*(?P<n>{_NUM})\s*口"),
    re.compile(rf"我们\s*(?P<n>{_NUM})\s*个(?!人)"),
    re.compile(
        rf"\b(?P<a>{_EN})\s+adults?\s*(?:,|and|&|\+|with)?\s*(?P<c>{_EN})\s+(?:kids?|child(?:ren)?)\b"
    ),
    re.compile(rf"\b(?P<a>{_EN})\s+adults?\b"),
    re.compile(rf"\bparty\s+of\s+(?P<n>{_EN})\b"),
    re.compile(rf"\btable\s+for\s+(?P<n>{_EN})\b"),
    re.compile(rf"\b(?P<n>{_EN})\s+(?:people|ppl|persons|guests|pax|of\s+us)\b"),
    re.compile(rf"\b(?:we\s+are|we're|we'll\s+be|we\s+will\s+be|there\s+are|there'll\s+be)\s+(?P<n>{_EN})\b(?!\s*(?:[:.]\d|[ap]m))"),
    # "for two" only where the number ends the phrase ("table for two", "for 4 tomorrow"), not
    # "for one flat white" / "for 2 days".
    re.compile(
        rf"\bfor\s+(?P<n>{_EN})\b(?![:.]\d)(?=\s*(?:$|[,.!?;:，。！？)]|(?:on|at|tomorrow|tonight|"
        r"today|this|next|please|pls|thanks|thank|and|at|around|from|in)\b))"
    ),
    re.compile(rf"\b(?:family|group)\s+of\s+(?P<n>{_EN})\b"),
    re.compile(r"\b(?P<one>just\s+me|only\s+me|just\s+myself)\b|(?P<one_zh>就我一个人?|就我自己)"),
)


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    value = number_from(text)
    return value if isinstance(value, int) else None


def find_parties(view: str, text: str, ctx: Context) -> Iterator[Entity]:
    """Every party size in ``view`` (the matching view of ``text``)."""
    for pattern in _PATTERNS:
        for m in pattern.finditer(view):
            groups = m.groupdict()
            if groups.get("one") or groups.get("one_zh"):
                party = Party(1)
            elif groups.get("a") is not None:
                adults, children = _count(m["a"]), _count(groups.get("c"))
                if adults is None or (groups.get("c") is not None and children is None):
                    continue
                party = Party(adults + (children or 0), adults, children)
            else:
                total = _count(m["n"])
                if total is None:
                    continue
                party = Party(total)
            problem = None
            if party.total < 1:
                problem = reasons.party_too_small()
            elif party.total > ctx.max_party:
                problem = reasons.party_too_large(party.total, ctx.max_party)
            yield Entity("party", party, text[m.start():m.end()],
                         m.start(), m.end(), problem=problem)
