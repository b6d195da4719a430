"""Warnings for texts that repeat what the facts say, and for names left over from a copy.

Facts are the single source of hours, prices, phone numbers and the address: a reply that
hard-codes "周一除外" or "Mondays we rest" keeps saying it after the operator edits ``hours``.
These checks find, in replies, catchphrases and the sign-off, the values a fact owns:

- clock times (7:00, 7点, 晚上9点, 9am, 9 pm), weekdays (周一, 星期一, 礼拜一, Monday, Tue–Sun),
  prices (¥38, 38元, 38块, $4.50) and phone numbers, found in any language and compared by
  meaning (晚上9点 = 9pm = 21:00, 周一 = Monday), so a zh reply is checked against the en fact;
- street names and house numbers taken from the ``address`` fact.

A value that a fact holds is reported with the fact to use instead. A weekday, clock time or phone
number that no fact holds is reported too when the persona has an hours/phone fact: it contradicts
it (the hours changed, the reply did not). Prices and addresses no fact mentions are left alone —
"worth a million yuan" in a joke belongs to no fact. Durations ("3 minutes"), counts and metro
lines are not values here. Text inside quotation marks (“…”, 「…」, "…") is an example of what a
fan may type ("are you open on Monday?") and is skipped, as are ``{placeholders}``.

A persona copied from another one often still says the old names: every name of the other
personas shipped next to it (brand, identity name, self-reference, aliases) that is not one of
its own is reported where it appears.

These are warnings: they never stop a persona from loading, and ``brandbot check`` still exits 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot.entities.text import zh_number
from bot.errors import Problem
from bot.i18n import _
from bot.persona.model import Persona
from bot.yaml_source import Positions, problem_at

# -- finding values -------------------------------------------------------------------------------

_QUOTED = re.compile(r"“[^”]*”|「[^」]*」|『[^』]*』|\"[^\"]*\"|‘[^’]*’")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")

_ZH_DAYS = {"一": "mon", "二": "tue", "三": "wed", "四": "thu", "五": "fri", "六": "sat",
            "日": "sun", "天": "sun"}
_EN_DAYS = {"mon": "mon", "tue": "tue", "wed": "wed", "thu": "thu", "fri": "fri", "sat": "sat",
            "sun": "sun"}
_PM_WORDS = ("下午", "晚上", "傍晚", "晚")

_CLOCK = re.compile(r"(?<![\d.:])([01]?\d|2[0-4])\s?[:：]\s?([0-5]\d)(?![\d:])")
_ZH_CLOCK = re.compile(
    r"(早上|上午|中午|下午|晚上|傍晚|凌晨|早|晚)?\s*(\d{1,2}|[一二两三四五六七八九十]{1,3})\s*[点點]"
    r"(?:\s*(半)|\s*(\d{1,2})\s*分|(\d{1,2})(?![\d.:]))?"
)
_EN_CLOCK = re.compile(r"(?<![\d.:])(\d{1,2})(?:[:.]([0-5]\d))?\s?([ap])\.?m\b\.?", re.I)
_ZH_WEEKDAY = re.compile(r"(?:周|週|星期|礼拜|禮拜)([一二三四五六日天])(?![次封个個条條回遍])")
_EN_WEEKDAY = re.compile(
    r"\b(mon|tues|tue|wednes|wed|thurs|thu|fri|satur|sat|sun)days?\b", re.I
)
_EN_DAY_ABBR = r"(Mon|Tues?|Wed|Thu(?:rs?)?|Fri|Sat|Sun)"
_EN_DAY_RANGE = re.compile(rf"\b{_EN_DAY_ABBR}\s*[–\-~/,]\s*{_EN_DAY_ABBR}\b")
_NUMBER = r"\d+(?:[.,]\d{1,2})?"
_PRICE_BEFORE = re.compile(
    rf"([¥￥$€£]|RMB|CNY)\s?({_NUMBER})(?:\s*[–\-~至到]\s*({_NUMBER}))?", re.I
)
_PRICE_AFTER = re.compile(
    rf"(?<![\d.])({_NUMBER})(?:\s*[–\-~至到]\s*({_NUMBER}))?\s?"
    r"(元|块钱|块|塊|rmb|yuan|kuai|dollars?|euros?)(?![a-z])",
    re.I,
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+?86[\s-]?)?(?:0\d{2,3}[\s-]?\d{3,4}[\s-]?\d{4}|1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})"
    r"(?![\w])|(?<![\w+])\+\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}(?![\w])"
)
_CURRENCY = {"¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "元": "CNY", "块": "CNY",
             "块钱": "CNY", "塊": "CNY", "yuan": "CNY", "kuai": "CNY", "$": "USD",
             "dollar": "USD", "dollars": "USD", "€": "EUR", "euro": "EUR", "euros": "EUR",
             "£": "GBP"}
_ZH_STREET = re.compile(r"([\u4e00-\u9fff]{1,6}?(?:大道|大街|路|街|巷|弄|胡同))")
_ZH_HOUSE = re.compile(r"([\u4e00-\u9fff]{1,6}?(?:大道|大街|路|街|巷|弄|胡同))\s*(\d+)\s*号")
_EN_STREET = re.compile(
    r"\b(\d+[a-z]?)\s+((?:[A-Za-z]+\s+){0,3}?"
    r"(?:road|rd|street|st|avenue|ave|lane|ln|boulevard|blvd|way|drive|dr|lu|jie))\b",
    re.I,
)

# What each kind is called in messages: (en, zh).
KIND_NAMES = {
    "time": ("time", "时间"),
    "weekday": ("weekday", "星期"),
    "price": ("price", "价格"),
    "phone": ("phone number", "电话号码"),
    "address": ("address", "地址"),
}


@dataclass(frozen=True)
class Value:
    """One value found in a text: its kind, what it means (comparable across languages), the
    text as written, and where it starts and ends in the text."""

    kind: str
    meaning: str
    written: str
    start: int
    end: int


def _amount(text: str) -> str:
    try:
        return format(Decimal(text.replace(",", ".")).normalize(), "f")
    except InvalidOperation:
        return text


def find_values(text: str, address_fragments: Iterable[str] = ()) -> list[Value]:
    """Every time, weekday, price, phone number and address fragment in ``text``."""
    found: list[Value] = []

    def add(kind: str, meaning: str, match: re.Match, group: int = 0) -> None:
        found.append(Value(kind, meaning, match.group(group), match.start(group),
                           match.end(group)))

    phones = list(_PHONE.finditer(text))
    for m in phones:
        digits = re.sub(r"\D", "", m.group())
        if m.group().startswith(("+86", "86")) and len(digits) > 11:
            digits = digits[2:]  # +86 28 … is 028 … dialled at home
            digits = digits if digits.startswith(("0", "1")) else "0" + digits
        add("phone", digits, m)

    def inside_phone(pos: int) -> bool:
        return any(p.start() <= pos < p.end() for p in phones)

    for m in _CLOCK.finditer(text):
        if not inside_phone(m.start()):
            add("time", f"{int(m.group(1)):02d}:{m.group(2)}", m)
    for m in _ZH_CLOCK.finditer(text):
        period, number, half = m.group(1), m.group(2), m.group(3)
        minutes = m.group(4) or m.group(5)
        if not number.isdigit() and not period and half != "半":
            continue  # 一点 / 有点: "a little", not one o'clock
        hour = int(number) if number.isdigit() else zh_number(number)
        if hour is None or hour > 24:
            continue
        if period in _PM_WORDS and hour < 12:
            hour += 12
        minute = 30 if half == "半" else int(minutes or 0)
        if minute > 59:
            continue
        add("time", f"{hour:02d}:{minute:02d}", m)
    for m in _EN_CLOCK.finditer(text):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if not 1 <= hour <= 12:
            continue
        hour = hour % 12 + (12 if m.group(3).lower() == "p" else 0)
        add("time", f"{hour:02d}:{minute:02d}", m)
    for m in _ZH_WEEKDAY.finditer(text):
        add("weekday", _ZH_DAYS[m.group(1)], m)
    for m in _EN_WEEKDAY.finditer(text):
        add("weekday", _EN_DAYS[m.group(1)[:3].lower()], m)
    for m in _EN_DAY_RANGE.finditer(text):
        for group in (1, 2):
            add("weekday", _EN_DAYS[m.group(group)[:3].lower()], m, group)
    priced: list[range] = []
    for m in _PRICE_BEFORE.finditer(text):
        currency = _CURRENCY.get(m.group(1).lower(), m.group(1).upper())
        priced.append(range(m.start(), m.end()))
        for group in (2, 3):
            if m.group(group):
                found.append(Value("price", f"{currency} {_amount(m.group(group))}",
                                   m.group(), m.start(), m.end()))
    for m in _PRICE_AFTER.finditer(text):
        if inside_phone(m.start()) or any(m.start() in span for span in priced):
            continue  # ¥38元 is one price
        currency = _CURRENCY.get(m.group(3).lower(), "CNY")
        for group in (1, 2):
            if m.group(group):
                found.append(Value("price", f"{currency} {_amount(m.group(group))}",
                                   m.group(), m.start(), m.end()))
    folded = text.casefold()
    for fragment in address_fragments:
        start = folded.find(fragment.casefold())
        while start >= 0:
            end = start + len(fragment)
            boundary_ok = not (fragment[:1].isascii() and fragment[:1].isalnum()) or (
                (start == 0 or not folded[start - 1].isalnum())
                and (end == len(folded) or not folded[end].isalnum())
            )
            if boundary_ok:
                found.append(Value("address", fragment.casefold(), text[start:end], start, end))
            start = folded.find(fragment.casefold(), end)
    return sorted(found, key=lambda v: (v.start, v.kind))


def address_fragments(address: str) -> set[str]:
    """Street names and "street + number" taken from an address, e.g. 玉林西路, 玉林西路66号,
    Yulin West Road, 66 Yulin West Road: the parts a reply should not repeat by hand."""
    fragments: set[str] = set()
    for piece in re.split(r"[省市区區县縣镇鎮，,（()）\s]", address):
        for m in _ZH_STREET.finditer(piece):
            if len(m.group(1)) >= 3:
                fragments.add(m.group(1))
    for m in _ZH_HOUSE.finditer(re.sub(r".*[市区县]", "", address.split("（")[0])):
        fragments.add(f"{m.group(1)} {m.group(2)} 号")
        fragments.add(f"{m.group(1)}{m.group(2)}号")
    for m in _EN_STREET.finditer(address):
        street = m.group(2).strip()
        if len(street.split()) >= 2:
            fragments.add(street)
            fragments.add(f"{m.group(1)} {street}")
    return fragments


def _visible(text: str) -> str:
    """The text with placeholders and quoted examples blanked out (same length, so positions
    still point into the original)."""
    blank = _PLACEHOLDER.sub(lambda m: " " * len(m.group()), text)
    return _QUOTED.sub(lambda m: " " * len(m.group()), blank)


def _clause(text: str, value: Value) -> str:
    """The words around a weekday or time up to the next punctuation ("周一除外", "Mondays we
    rest"), so the warning quotes what to replace, not just the bare value."""
    if value.kind not in ("weekday", "time"):
        return value.written
    end = value.end
    while end < len(text) and end - value.start < 24 and (
        text[end].isalnum() or text[end] in " '’–-:："
    ):
        end += 1
    return text[value.start:end].rstrip(" '’–-")


# -- the facts ------------------------------------------------------------------------------------


def _texts(value) -> list[str]:
    return [value] if isinstance(value, str) else [t for t in value.values() if t]


class FactValues:
    """Which fact holds which value, and the fact each kind of value belongs to ("home")."""

    def __init__(self, persona: Persona):
        self.fragments: set[str] = set()
        for key, value in persona.facts.items():
            if "address" in key.lower() or "地址" in key:
                for text in _texts(value):
                    self.fragments |= address_fragments(text)
        self.holders: dict[tuple[str, str], list[str]] = {}
        counts: dict[str, dict[str, int]] = {}
        for key, value in persona.facts.items():
            for text in _texts(value):
                for v in find_values(text, self.fragments):
                    holders = self.holders.setdefault((v.kind, v.meaning), [])
                    if key not in holders:
                        holders.append(key)
                    counts.setdefault(v.kind, {}).setdefault(key, 0)
                    counts[v.kind][key] += 1
        self.home: dict[str, str] = {}
        names = {"time": ("hours", "opening_hours", "open"), "weekday": ("hours", "opening_hours"),
                 "price": ("price", "prices"), "phone": ("phone", "tel", "telephone"),
                 "address": ("address",)}
        for kind, preferred in names.items():
            named = [k for k in preferred if k in persona.facts]
            if named:
                self.home[kind] = named[0]
            elif counts.get(kind):
                self.home[kind] = max(counts[kind], key=lambda k: counts[kind][k])
        if "weekday" not in self.home and "time" in self.home:
            self.home["weekday"] = self.home["time"]


def _fact_warning(value: Value, clause: str, holders: list[str], fix: str) -> str:
    kind_en, kind_zh = KIND_NAMES[value.kind]
    others = [h for h in holders if h != fix]
    if fix in holders:
        en = f"hard-codes the {kind_en} {value.written!r}, which fact {fix!r} holds"
        zh = f"写死了{kind_zh}「{value.written}」，它属于事实 {fix!r}"
    else:
        en = f"hard-codes the {kind_en} {value.written!r}, which fact {fix!r} does not say"
        zh = f"写死了{kind_zh}「{value.written}」，但事实 {fix!r} 里没有这一项（可能已过时）"
    if others:
        listed = ", ".join("{" + h + "}" for h in others)
        en += f" (also in {listed})"
        zh += f"（{listed} 里也有）"
    # the message's parts are built in both languages above; the catalog picks {en} or {zh}
    return _(
        "warning: {en}; use {{{fix}}} instead of {clause!r} so the reply follows the facts"
    ).format(en=en, fix=fix, clause=clause, zh=zh)


def _choose_fix(kind: str, holders: list[str], reply_key: str | None, facts: FactValues):
    if reply_key in holders:
        return reply_key
    home = facts.home.get(kind)
    if kind in ("weekday", "time") and home:
        return home
    if home in holders:
        return home
    if holders:
        return holders[0]
    if kind in ("weekday", "time", "phone"):
        return home
    return None


def _templated_texts(persona: Persona) -> Iterator[tuple[tuple, str, str | None]]:
    """(field path, text, reply key) for every text a fan reads that may use placeholders."""
    for key, per_language in persona.replies.items():
        for language, variants in per_language.items():
            for i, text in enumerate(variants):
                yield ("replies", key, language, i), text, key
    for language, phrases in persona.voice.catchphrases.items():
        for i, text in enumerate(phrases):
            yield ("voice", "catchphrases", language, i), text, None
    sign_off = persona.voice.sign_off
    for language, text in ({None: sign_off} if isinstance(sign_off, str)
                           else sign_off or {}).items():
        yield ("voice", "sign_off") + ((language,) if language else ()), text, None


def fact_value_warnings(persona: Persona, positions: Positions, path: str) -> list[Problem]:
    """Replies, catchphrases and the sign-off that hard-code a value belonging to a fact."""
    facts = FactValues(persona)
    warnings: list[Problem] = []
    for where, text, reply_key in _templated_texts(persona):
        visible = _visible(text)
        reported: set[tuple[str, str]] = set()
        for value in find_values(visible, facts.fragments):
            if (value.kind, value.meaning) in reported:
                continue
            holders = facts.holders.get((value.kind, value.meaning), [])
            fix = _choose_fix(value.kind, holders, reply_key, facts)
            if fix is None:
                continue  # a value no fact is about: a joke, an example
            reported.add((value.kind, value.meaning))
            clause = _clause(text, value)
            warnings.append(
                problem_at(path, positions, where, _fact_warning(value, clause, holders, fix))
            )
    return warnings


# -- names left over from a copied persona --------------------------------------------------------


def _names(persona: Persona) -> set[str]:
    """A persona's names, plus the first word of a multi-word Latin brand ("Northbound")."""
    names = {n.strip() for n in persona.own_names() if n and len(n.strip()) >= 2}
    brand = persona.brand
    for text in _texts(brand):
        words = text.split()
        if len(words) > 1 and words[0].isascii() and len(words[0]) >= 4:
            names.add(words[0])
    return names


def _contains_name(text: str, name: str) -> bool:
    if name.isascii():
        return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text, re.I) is not None
    return name in text


def _named_texts(persona: Persona) -> Iterator[tuple[tuple, str]]:
    """Every text a fan reads or types in the persona: replies, facts, voice, intent examples."""
    for where, text, _key in _templated_texts(persona):
        yield where, text
    for key, value in persona.facts.items():
        for language, text in ({None: value} if isinstance(value, str) else value).items():
            yield ("facts", key) + ((language,) if language else ()), text
    for name, intent in persona.intents.items():
        for field in ("examples", "keywords"):
            for language, texts in (getattr(intent, field, None) or {}).items():
                for i, text in enumerate(texts):
                    yield ("intents", name, field, language, i), text
    for fact, answer in persona.fact_answers.items():
        for language, texts in answer.keywords.items():
            for i, text in enumerate(texts):
                yield ("fact_answers", fact, "keywords", language, i), text


def copied_name_warnings(
    persona: Persona, positions: Positions, path: str, others: Iterable[Persona]
) -> list[Problem]:
    """Texts that still say another persona's name (brand, identity, aliases) — what a copy of
    that persona keeps when its names were not all replaced."""
    own = _names(persona)
    own_folded = [n.casefold() for n in own]
    foreign: dict[str, str] = {}
    for other in others:
        for name in _names(other):
            folded = name.casefold()
            if any(folded in mine or mine in folded for mine in own_folded):
                continue
            foreign.setdefault(name, other.id)
    warnings: list[Problem] = []
    for where, text in _named_texts(persona):
        for name, source in sorted(foreign.items()):
            if _contains_name(text, name):
                warnings.append(problem_at(path, positions, where, _(
                    "warning: still says {name!r}, a name of persona {source!r}; this "
                    "persona is {id!r} — replace it with {{me}} or {{brand}} or your own name"
                ).format(name=name, source=source, id=persona.id)))
    return warnings
