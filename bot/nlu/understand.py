"""One call that turns a fan's raw message into everything the dialog engine needs to know.

Normalisation runs once per message and its result feeds intent matching, taboo detection and
the yes/no lexicon, so the engine never has to care about scripts, casing or punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.nlu.matcher import IntentMatcher
from bot.nlu.normalize import Phrase, PhraseIndex, detect_language, normalize
from bot.persona.model import Persona

__all__ = ["Understander", "Understanding", "confirmation"]

Confirmation = Literal["affirm", "deny"]


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the bot understood of one message.

    ``intent`` is None below the matcher's threshold while ``best`` still names the closest
    intent; ``taboo`` is a taboo subject name; ``confirmation`` is set only when the whole
    message is a yes or a no, for dialogs waiting on a confirmation step.
    """

    text: str
    normalized: str
    language: str
    intent: str | None
    confidence: float
    best: str
    taboo: str | None
    confirmation: Confirmation | None


# Whole-message answers, compared after normalize() (so Traditional forms, casing and trailing
# punctuation/emoji do not matter). Kept small and unambiguous: a longer message is a sentence
# for the intent matcher, not a bare yes/no.
_AFFIRM_WORDS = (
    "是|是的|是啊|是呀|对|对的|对啊|对呀|没错|好|好的|好啊|好呀|好吧|好滴|好嘞|行|行的|行啊|可以|可以的"
    "|要|要的|嗯|嗯嗯|恩|嗯呢|没问题|当然|當然|当然了|当然可以|确定|确认|同意|ok啦|好哒"
    "|yes|yeah|yea|yep|yup|y|ok|okay|okey|k|kk|sure|please|yes please|of course|definitely"
    "|absolutely|certainly|alright|all right|sounds good|go ahead|do it|confirm|correct|right"
    "|why not|👍|👌"
)
_DENY_WORDS = (
    "不|不要|不用|不用了|不是|不对|不行|不好|不可以|不需要|不必|不了|算了|算了吧|别|别了|没有|取消|拒绝"
    "|no|nope|nah|n|not really|no thanks|no thank you|cancel|stop|never mind|nevermind|dont"
    "|dont want|negative|👎"
)
# Emoji normalise to nothing, so they are matched on the raw stripped text instead.
_AFFIRM = frozenset(w for w in map(normalize, _AFFIRM_WORDS.split("|")) if w)
_DENY = frozenset(w for w in map(normalize, _DENY_WORDS.split("|")) if w)
_AFFIRM_EMOJI = frozenset(w for w in _AFFIRM_WORDS.split("|") if not normalize(w))
_DENY_EMOJI = frozenset(w for w in _DENY_WORDS.split("|") if not normalize(w))
# A bare yes/no is short; a longer message is a sentence for the intent matcher.
_MAX_CONFIRMATION_CHARS = 16
_REPEATS = re.compile(r"(.)\1{2,}")


def confirmation(normalized: str, text: str = "") -> Confirmation | None:
    """``'affirm'``/``'deny'`` when a normalised message is only a yes or a no, else None.

    ``text`` (the raw message) is only consulted for a bare 👍/👎, which normalise away.
    """
    if not normalized:
        raw = text.strip().replace("\ufe0f", "")
        if raw in _AFFIRM_EMOJI:
            return "affirm"
        return "deny" if raw in _DENY_EMOJI else None
    if len(normalized) > _MAX_CONFIRMATION_CHARS:
        return None
    if normalized in _AFFIRM:
        return "affirm"
    if normalized in _DENY:
        return "deny"
    if _REPEATS.search(normalized) is None:
        return None
    squeezed = _REPEATS.sub(r"\1", normalized)  # "okkk", "好好好"
    if squeezed in _AFFIRM:
        return "affirm"
    return "deny" if squeezed in _DENY else None


class Understander:
    """Intent, taboo, yes/no and language for messages to one persona.

    Built once per persona (rebuilt on hot reload): the IntentMatcher pools every language's
    examples and keywords, because fans mix languages and the matcher's n-grams do not collide
    across scripts.
    """

    def __init__(self, persona: Persona, *, threshold: float | None = None) -> None:
        self.persona = persona
        examples: dict[str, list[str]] = {}
        keywords: dict[str, list[str]] = {}
        for name, intent in persona.intents.items():
            examples[name] = [p for phrases in intent.examples.values() for p in phrases]
            keywords[name] = [k for words in intent.keywords.values() for k in words]
        if threshold is None:
            threshold = persona.nlu.threshold
        self.matcher = IntentMatcher(examples, keywords, threshold=threshold)
        self._taboo = self._compile_taboo(persona)
        self._taboo_index = PhraseIndex(phrase for phrase, _ in self._taboo)

    @staticmethod
    def _compile_taboo(persona: Persona) -> list[tuple[Phrase, str]]:
        """Normalised taboo words; English-edged ones only match whole words."""
        phrases = [
            (Phrase(word), subject)
            for subject, per_language in persona.taboo.subjects.items()
            for words in per_language.values()
            for word in words
        ]
        return [(phrase, subject) for phrase, subject in phrases if phrase.text]

    def taboo(self, normalized: str) -> str | None:
        """The first taboo subject one of whose keywords occurs in a normalised message."""
        found = self._taboo_index.found(normalized)
        return self._taboo[found[0]][1] if found else None

    def language(
        self, text: str, forced_language: str | None = None, fallback_language: str | None = None
    ) -> str:
        """Forced, else detected, else fallback, else the persona default; always spoken."""
        spoken = self.persona.languages
        for candidate in (forced_language, detect_language(text), fallback_language):
            if candidate is not None:
                return candidate if candidate in spoken else self.persona.default_language
        return self.persona.default_language

    def understand(
        self,
        text: str,
        forced_language: str | None = None,
        fallback_language: str | None = None,
    ) -> Understanding:
        """Understand one raw message; never raises for any string."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        normalized = normalize(text)
        match = self.matcher.match_normalized(normalized)
        return Understanding(
            text=text,
            normalized=normalized,
            language=self.language(text, forced_language, fallback_language),
            intent=match.intent,
            confidence=match.confidence,
            best=match.best,
            taboo=self.taboo(normalized) if self._taboo else None,
            confirmation=confirmation(normalized, text),
        )
