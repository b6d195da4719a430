"""Split a fan message into the clauses that may each ask something.

"几点开门？能停车吗" and "what time do you open, and is there parking" are two questions; the
bot should answer both. :func:`clauses` cuts a raw message at sentence punctuation and at
connectors (还有/另外/顺便/also/btw/and is/and do…), and keeps only pieces long enough to ask
something, so "你好，几点开门？" stays one question.
"""

from __future__ import annotations

import re

__all__ = ["MAX_CLAUSES", "clauses"]

# At most this many clauses are understood (and so answered) per message.
MAX_CLAUSES = 3
# Sentence punctuation and connectors that start a new question.
_SPLIT = re.compile(
    r"[，,。！!？?；;\n、]+|\.\s+|\s+-\s+"
    r"|(?:还有|另外|顺便问一?下|顺便|再问一?下|以及|对了|然后)"
    r"|\s(?:and also|also|btw|by the way|plus|oh and|and)\s+(?=(?:is|are|do|does|can|could|what"
    r"|where"
    r"|when|how|any|u|you|ur|your)\b)"
    r"|\s(?:also|btw|plus)\s+",
    re.IGNORECASE,
)
# A piece shorter than this (Han characters, or Latin letters / 3) is a filler ("嗯", "ok").
_MIN_WEIGHT = 3
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def _weight(piece: str) -> float:
    return len(_HAN.findall(piece)) + len(_LATIN.findall(piece)) / 3


def clauses(text: str) -> list[str]:
    """The question-sized pieces of a raw message, in order (one piece when it has no split)."""
    pieces = _SPLIT.split(text[:600])
    if len(pieces) == 1:
        return [text]
    pieces = [p.strip() for p in pieces]
    kept = [p for p in pieces if p and _weight(p) >= _MIN_WEIGHT]
    return kept[:MAX_CLAUSES] if len(kept) > 1 else [text]
