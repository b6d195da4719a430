"""Regenerate bot/nlu/data/pinyin.txt, the toneless pinyin of each Han character, from pypinyin.

Run from the repository root (needs ``pip install pypinyin``, a build-time tool only)::

    python bench/make_pinyin_table.py

Why a table rather than pypinyin at run time: importing pypinyin loads its phrase dictionary
(~55 MB of Python objects) into every daemon, while the matcher only needs one toneless reading
per character, its most common one (pypinyin lists it first): 41k characters, ~150 KB on disk.
Format: one line per syllable, ``syllable<TAB>characters``; ``ü`` is written ``v`` as pinyin
keyboards do.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from pathlib import Path

from pypinyin.pinyin_dict import pinyin_dict

OUT = Path(__file__).resolve().parent.parent / "bot" / "nlu" / "data" / "pinyin.txt"


def toneless(reading: str) -> str:
    """'lǜ' → 'lv', 'xíng' → 'xing'."""
    reading = reading.replace("ü", "v").replace("ǖ", "v").replace("ǘ", "v")
    reading = reading.replace("ǚ", "v").replace("ǜ", "v")
    return "".join(c for c in unicodedata.normalize("NFD", reading) if c.isascii()).lower()


def main() -> None:
    by_syllable: dict[str, list[str]] = defaultdict(list)
    for code, readings in sorted(pinyin_dict.items()):
        char = chr(code)
        if not ("\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"):
            continue
        syllable = toneless(readings.split(",")[0])
        if syllable.isalpha() and syllable.isascii():
            by_syllable[syllable].append(char)
    lines = [f"{s}\t{''.join(chars)}" for s, chars in sorted(by_syllable.items())]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(lines)} syllables, {sum(map(len, by_syllable.values()))} characters")


if __name__ == "__main__":
    main()
