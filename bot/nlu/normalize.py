"""Text normalisation and language detection shared by every NLU component.

Fans type the same request in many surface forms: Traditional or Simplified characters, fullwidth
letters from a Chinese IME, emoji, stray punctuation, invisible characters pasted from other apps.
Intent examples, keywords and taboo words are all compared *after* this normalisation, so one
function decides what "the same text" means for the whole bot. It runs on every message, so it
is written to be cheap (one regex pass, OpenCC only for non-ASCII text) and to never raise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from operator import add

import opencc

from bot.nlu.fanspeak import mandarin

__all__ = ["Phrase", "PhraseIndex", "detect_language", "normalize"]

# Created once: building an OpenCC converter loads its dictionaries (milliseconds), converting a
# short message afterwards takes about a microsecond.
_T2S = opencc.OpenCC("t2s")

# Characters deleted outright (not turned into a space) so that they cannot split a word: lone
# surrogates (invalid UTF-16 halves that would make OpenCC's UTF-8 encoding fail), and format
# characters such as zero-width spaces/joiners, bidi marks and the soft hyphen, which users paste
# invisibly inside words.
_DELETE = re.compile(
    "[\ud800-\udfff\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff]"
)
# Apostrophes are removed rather than spaced so "what's" and "whats" become the same word.
_APOSTROPHES = re.compile("['\u2019\u02bc]")
# Everything that is not a letter, digit or combining mark is a separator: ASCII and CJK
# punctuation, symbols, emoji, controls and any whitespace. ``_`` counts as \w, hence listed.
_SEPARATORS = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Return the canonical form of ``text`` used for all matching.

    NFKC (fullwidth → ASCII, compatibility ideographs → unified), casefold, Traditional →
    Simplified Chinese, Cantonese/Taiwanese words → Mandarin (:func:`bot.nlu.fanspeak.mandarin`),
    punctuation/emoji/symbols → one space, trimmed. Never raises for any
    ``str``; non-strings are converted with ``str()`` so a stray ``None`` payload is harmless.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if text.isascii():
        # Fast path for the common English message: no OpenCC, no Unicode tables.
        text = text.lower()
    else:
        text = _DELETE.sub("", text)
        text = unicodedata.normalize("NFKC", text).casefold()
        if not text.isascii():
            text = mandarin(_T2S.convert(text))
    text = _APOSTROPHES.sub("", text)
    return _SEPARATORS.sub(" ", text).strip()


# Han ideographs: CJK Unified (incl. Extension A), compatibility ideographs and the
# supplementary-plane extensions. Kana and Hangul are deliberately not counted as Chinese.
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# A run of Latin letters (ASCII, Latin-1/Extended-A/B, fullwidth) counts as one English word.
_LATIN_WORD = re.compile("[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]+")


def detect_language(text: str) -> str | None:
    """Guess ``'zh'`` or ``'en'`` for a fan message, or None when it has neither script.

    Each Han character is weighed against each Latin *word*: a Chinese character carries about
    as much meaning as an English word, so "我想买iPhone" is Chinese and "what does 火锅 mean"
    is English. Ties go to Chinese because Chinese messages often embed one Latin brand name.
    """
    if not isinstance(text, str) or not text:
        return None
    han = 0 if text.isascii() else len(_HAN.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    if han == 0 and latin == 0:
        return None
    return "zh" if han >= latin else "en"


class Phrase:
    """A keyword or taboo word, normalised once, that finds itself in normalised messages.

    Words that start or end with a Latin letter or digit only match as whole words ("art" is not
    in "start"); Chinese ones match anywhere, since Chinese is written without spaces.
    """

    __slots__ = ("text", "_pattern")

    def __init__(self, word: str):
        self.text = normalize(word)
        text = self.text
        self._pattern = None
        if text and (text[0].isascii() or text[-1].isascii()):
            left = r"(?<![a-z0-9])" if text[0].isascii() else ""
            right = r"(?![a-z0-9])" if text[-1].isascii() else ""
            self._pattern = re.compile(left + re.escape(text) + right)

    def found_in(self, normalized: str) -> bool:
        return (
            bool(self.text)
            and self.text in normalized
            and (self._pattern is None or self._pattern.search(normalized) is not None)
        )


class PhraseIndex:
    """Finds which of many phrases occur in a normalised message without testing every one.

    Phrases are bucketed by their first two characters (one for one-character phrases); a
    message only tests the phrases of the buckets its own character pairs (and characters)
    open, a few instead of the hundreds of keywords a persona has. Same verdicts as calling
    :meth:`Phrase.found_in` on each phrase.
    """

    __slots__ = ("_buckets", "_short")

    def __init__(self, phrases: Iterable[Phrase]):
        self._buckets: dict[str, list[tuple[int, str, re.Pattern[str] | None]]] = {}
        self._short = False
        for position, phrase in enumerate(phrases):
            text = phrase.text
            if not text:
                continue  # an empty phrase is found nowhere
            self._short |= len(text) == 1
            entry = (position, text, phrase._pattern)
            self._buckets.setdefault(text[:2], []).append(entry)

    def found(self, normalized: str) -> list[int]:
        """Positions (in the order given to the constructor) of the phrases found."""
        pairs, chars = _keys(normalized)
        keys = (pairs | chars) if self._short else pairs
        buckets = self._buckets
        out = [
            position
            for key in keys & buckets.keys()
            for position, text, pattern in buckets[key]
            if text in normalized and (pattern is None or pattern.search(normalized) is not None)
        ]
        out.sort()
        return out


# The character pairs and characters of the last message looked up: a message is looked up in
# several indexes (keywords, taboo, facts, the NLU rules' word lists), and building these sets
# was most of each look-up. One entry, compared by value, is enough (the same message comes
# in a row); it is replaced atomically, so threads at worst recompute it.
_last_keys: tuple[str, frozenset[str], frozenset[str]] = ("", frozenset(), frozenset())


def _keys(normalized: str) -> tuple[frozenset[str], frozenset[str]]:
    global _last_keys
    last = _last_keys
    if last[0] == normalized:
        return last[1], last[2]
    pairs = frozenset(map(add, normalized, normalized[1:]))
    chars = frozenset(normalized)
    _last_keys = (normalized, pairs, chars)
    return pairs, chars
