"""Turn reply keys into on-voice text: pick a variant, fill the template, keep the tone.

Variants rotate without repeating the last one a fan saw (remembered per fan and key in
``fans.voice_memory``). Templates use Python format fields: a fact key, or one of the builtins
below. The language follows the fan, falling back to the persona's default.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Any

from bot.persona.model import Persona

BUILTIN_FIELDS: dict[str, str] = {
    "fan": "the fan's name, or the persona's fan_address when unknown",
    "me": "how the persona refers to itself (identity.self_reference, else name)",
    "brand": "the brand name",
    "sign_off": "voice.sign_off",
    "catchphrase": "one of the persona's catchphrases",
}

# Emoji and pictographs, removed when the persona's voice says emoji: none.
# Reply key of a fact answered on its own: "fact:wifi" says facts.wifi in the framing of the
# persona's `fact_answer` reply (its templates use {fact}); plain "{wifi}" without one.
FACT_PREFIX = "fact:"
FACT_ANSWER_REPLY = "fact_answer"

_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\ufe0f\u200d]+"
)
_FORMATTER = string.Formatter()


def template_fields(template: str) -> list[str]:
    """The field names a template uses; raises ValueError for a malformed template."""
    return [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]


class _Fields(dict):
    def __missing__(self, key: str) -> str:  # a template naming nothing known stays readable
        return "{" + key + "}"


_MAX_CACHED = 4096


@dataclass(frozen=True, slots=True)
class _Reply:
    """A reply key in one language, ready to render: variants compiled, choices precomputed."""

    language: str
    variants: list[str]
    # Per variant: the final text (no per-fan field), a format string whose only fields are
    # {fan} and {catchphrase}, or None (format specs, attributes, malformed...: use fill()).
    compiled: list[str | _Template | None]
    all_choices: tuple[int, ...]
    choices_without: dict[int, tuple[int, ...]]  # last variant seen -> the other variants
    catchphrases: list[str]
    fan_address: str
    strip_emoji: bool


class _Template(str):
    """A format string left with only per-fan fields (a str subclass, told apart by type)."""

    __slots__ = ()


_PER_FAN = ("fan", "catchphrase")


def _compile(template: str, fields: dict[str, str], strip_emoji: bool) -> str | _Template | None:
    """``template`` with the language's fixed fields filled in now, as fill() would fill them.

    Returns the final text when only fixed fields remain, a :class:`_Template` when {fan} or
    {catchphrase} remain, None when the template needs the general path.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return None
    parts: list[str] = []
    per_fan = False
    for literal, name, spec, conversion in parsed:
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if conversion is not None or spec or not name.isidentifier():
            return None
        if name in _PER_FAN:
            parts.append("{" + name + "}")
            per_fan = True
            continue
        value = fields.get(name)
        if value is None:
            value = "{" + name + "}"  # as _Fields.__missing__: unknown names stay readable
        elif type(value) is not str:
            return None
        parts.append(value.replace("{", "{{").replace("}", "}}"))
    if per_fan:
        return _Template("".join(parts))
    text = "".join(parts).format()  # only escaped braces left
    if strip_emoji:
        text = _EMOJI.sub("", text)
    return text.strip()


class Voice:
    """Renders a persona's replies for one fan at a time."""

    def __init__(self, persona: Persona):
        self.persona = persona
        # The fields every template of a language can use, resolved once (a persona is frozen).
        self._fields: dict[str, dict[str, str]] = {}
        # (key, language asked for) -> _Reply: what render() needs, resolved on first use.
        self._replies: dict[tuple[str, str], _Reply] = {}

    def _fields_for(self, language: str) -> dict[str, str]:
        fields = self._fields.get(language)
        if fields is None:
            p = self.persona
            fields = {key: p.text(value, language) for key, value in p.facts.items()}
            fields.update(
                me=p.text(p.identity.self_reference or p.identity.name, language),
                brand=p.text(p.brand, language),
                sign_off=p.text(p.voice.sign_off, language),
            )
            self._fields[language] = fields
        return fields

    def language_for(self, key: str, language: str) -> str:
        if key.startswith(FACT_PREFIX):
            key = FACT_ANSWER_REPLY
        variants = self.persona.replies.get(key, {})
        if variants.get(language):
            return language
        return (
            self.persona.default_language
            if variants.get(self.persona.default_language)
            else next((lang for lang, texts in variants.items() if texts), language)
        )

    def render(
        self,
        key: str,
        language: str,
        *,
        fan_name: str | None,
        memory: dict[str, int],
        rng: random.Random,
    ) -> tuple[str, str]:
        """Text for reply ``key`` and the language it was written in; updates ``memory``."""
        reply = self._replies.get((key, language))
        if reply is None:
            reply = self._reply(key, language)
        language = reply.language
        variants = reply.variants
        if not variants:
            return "", language
        last = memory.get(key)
        if last is None:
            choices = reply.all_choices
        else:
            try:
                choices = reply.choices_without.get(last, reply.all_choices)
            except TypeError:  # an unhashable remembered value matches no index
                choices = reply.all_choices
        index = rng.choice(choices)
        memory[key] = index
        compiled = reply.compiled[index]
        if compiled is None:  # not a plain template: the general path
            return self.fill(variants[index], language, fan_name=fan_name, rng=rng), language
        catchphrases = reply.catchphrases
        # fill() draws a catchphrase whether or not the template uses one: so do we (same rng).
        catchphrase = rng.choice(catchphrases) if catchphrases else ""
        if type(compiled) is str:
            return compiled, language
        text = compiled.format(fan=fan_name or reply.fan_address, catchphrase=catchphrase)
        if reply.strip_emoji:
            text = _EMOJI.sub("", text)
        return text.strip(), language

    def _reply(self, key: str, language: str) -> _Reply:
        """Resolve once what rendering ``key`` for a fan writing ``language`` needs."""
        resolved = self.language_for(key, language)
        # language_for is idempotent, so whatever is cached under (key, resolved) is in resolved.
        shared = self._replies.get((key, resolved))
        if shared is None:
            p = self.persona
            variants = self._variants(key, resolved)
            fields = self._fields_for(resolved)
            strip_emoji = p.voice.emoji == "none"
            n = len(variants)
            shared = _Reply(
                language=resolved,
                variants=variants,
                compiled=[_compile(t, fields, strip_emoji) for t in variants],
                all_choices=tuple(range(n)),
                choices_without={i: tuple(j for j in range(n) if j != i) or (0,) for i in range(n)},
                catchphrases=p.voice.catchphrases.get(resolved) or [],
                fan_address=p.text(p.identity.fan_address, resolved),
                strip_emoji=strip_emoji,
            )
        if len(self._replies) < _MAX_CACHED:  # languages come from channels: keep it bounded
            self._replies[(key, resolved)] = shared
            self._replies[(key, language)] = shared
        return shared

    def _variants(self, key: str, language: str) -> list[str]:
        """The templates of ``key``; ``fact:<name>`` is the fact_answer framing of one fact."""
        if not key.startswith(FACT_PREFIX):
            return self.persona.replies.get(key, {}).get(language) or []
        fact = key[len(FACT_PREFIX) :]
        if fact not in self.persona.facts:
            return []
        field = "{" + fact + "}"
        framing = self.persona.replies.get(FACT_ANSWER_REPLY, {}).get(language) or ["{fact}"]
        return [template.replace("{fact}", field) for template in framing]

    def fill(
        self, template: str, language: str, *, fan_name: str | None, rng: random.Random
    ) -> str:
        p = self.persona
        fields: dict[str, Any] = _Fields(self._fields_for(language))
        catchphrases = p.voice.catchphrases.get(language) or []
        fields.update(
            fan=fan_name or p.text(p.identity.fan_address, language),
            catchphrase=rng.choice(catchphrases) if catchphrases else "",
        )
        try:
            text = template.format_map(fields)
        except (ValueError, IndexError, AttributeError, KeyError):
            text = template  # malformed templates are reported by `brandbot check`
        if p.voice.emoji == "none":
            text = _EMOJI.sub("", text)
        return text.strip()
