"""Cutting a long reply into messages a platform accepts, measured the way the platform measures.

:func:`split_text` is the loop both channels share: while what is left is over the limit, take
the longest prefix that fits (whole characters only), cut it at the channel's preferred boundary
and go on with the rest. Pieces are stripped of surrounding whitespace; empty ones are dropped.
How length is counted is a :class:`Measure` (:data:`UTF16_UNITS` for Telegram, :data:`UTF8_BYTES`
for WeChat); where to cut inside the prefix is the channel's ``boundary`` function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measure:
    """How a platform counts length.

    ``over(text, limit)``: whether ``text`` is longer than ``limit``. ``prefix(text, limit)``: the
    longest prefix of ``text`` within ``limit``, never ending inside a character.
    """

    over: Callable[[str, int], bool]
    prefix: Callable[[str, int], str]


def split_text(
    text: str, limit: int, measure: Measure, boundary: Callable[[str], int]
) -> list[str]:
    """Pieces of ``text`` within ``limit`` (as ``measure`` counts), cut where ``boundary`` says.

    ``boundary(window)`` gets the longest prefix that fits and returns where to cut it (a number
    of characters, above 0).
    """
    pieces: list[str] = []
    rest = text.strip()
    while measure.over(rest, limit):
        # At least one character per piece, whatever the boundary says: never loop forever.
        cut = max(1, boundary(measure.prefix(rest, limit) or rest[:1]))
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if piece:
            pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


# -- UTF-16 code units (Telegram) -----------------------------------------------------------------


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts it (a character outside the BMP is 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _utf16_over(text: str, limit: int) -> bool:
    # Nearly every reply is short: two UTF-16 units per character at most, no need to count.
    return len(text) * 2 > limit and utf16_units(text) > limit


def _utf16_prefix(text: str, limit: int) -> str:
    if not _utf16_over(text, limit):
        return text
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


UTF16_UNITS = Measure(_utf16_over, _utf16_prefix)


# -- UTF-8 bytes (WeChat) -------------------------------------------------------------------------


def _utf8_over(text: str, limit: int) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _utf8_prefix(text: str, limit: int) -> str:
    encoded = text.encode("utf-8", "surrogatepass")
    end = min(limit, len(encoded))
    while 0 < end < len(encoded) and encoded[end] & 0xC0 == 0x80:  # inside a character
        end -= 1
    # surrogatepass both ways: a lone surrogate counts its 3 bytes and stays in the text.
    return encoded[:end].decode("utf-8", "surrogatepass")


UTF8_BYTES = Measure(_utf8_over, _utf8_prefix)
