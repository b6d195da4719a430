"""Turn reply keys into on-voice text: pick a variant, fill the template, keep the tone.

Variants rotate without repeating the last one a fan saw (remembered per fan and key in
``fans.voice_memory``). Templates use Python format fields: a fact key, or one of the builtins
below. The language follows the fan, falling back to the persona's default.
"""

from __future__ import annotations

import random
import re
import string
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


class Voice:
    """Renders a persona's replies for one fan at a time."""

    def __init__(self, persona: Persona):
        self.persona = persona
        # The fields every template of a language can use, resolved once (a persona is frozen).
        self._fields: dict[str, dict[str, str]] = {}

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
        language = self.language_for(key, language)
        variants = self.persona.replies.get(key, {}).get(language) or []
        if not variants:
            return "", language
        last = memory.get(key)
        choices = [i for i in range(len(variants)) if i != last] or [0]
        index = rng.choice(choices)
        memory[key] = index
        return self.fill(variants[index], language, fan_name=fan_name, rng=rng), language

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
