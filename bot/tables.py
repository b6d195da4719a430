"""Plain text for the terminal: aligned tables (wide characters count double) and escaping.

Fan names and messages are written by strangers. Printed raw, an ESC sequence in a display
name retitles the operator's window or clears the screen, and a bidi override makes a line
read differently than it is. Every operator command prints fan-supplied text through
:func:`terminal_safe` (tables do it in :func:`cell`), JSON through :func:`json_text`; CJK,
emoji (with their joiners and tag sequences) and ordinary punctuation show as they are.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Any

import click

_ZWJ = "\u200d"
_BLACK_FLAG = "\U0001f3f4"  # an emoji tag sequence (England's flag) starts here
_TAGS = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
# Unicode line and paragraph separators and controls/format characters (C0, DEL, C1, bidi
# overrides and isolates, zero-width characters, tags) and lone surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@lru_cache(maxsize=4096)
def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _emoji_joiner(text: str, i: int) -> bool:
    """A zero-width joiner inside an emoji sequence (👨‍👩‍👧) is part of the emoji."""
    if i == 0 or i + 1 >= len(text):
        return False
    before, after = text[i - 1], text[i + 1]
    return (unicodedata.category(before) in ("So", "Sk", "Mn") or before == "\ufe0f"
            or "\U0001f3fb" <= before <= "\U0001f3ff") and unicodedata.category(after) == "So"


def terminal_safe(value: Any, keep_newlines: bool = False,
                  continuation: str | None = None) -> str:
    """``value`` as text that cannot drive the terminal: control and format characters as
    visible escapes (``\\x1b``, ``\\u202e``). ``keep_newlines`` keeps line feeds and tabs (a
    multi-line text of the operator's own, e.g. a newsletter); otherwise they are escaped too,
    so a fan's message cannot forge the next line of a listing. ``continuation``: line feeds
    become a new line starting with it (an indent), readable yet never at the line start."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the common case, in C
        return text
    if continuation is not None and not keep_newlines:
        return ("\n" + continuation).join(terminal_safe(part) for part in text.split("\n"))
    keep = set()
    for match in _TAGS.finditer(text):
        keep.update(range(match.start() + 1, match.end()))
    out = []
    for i, ch in enumerate(text):
        if (not _unsafe(ch) or i in keep or (keep_newlines and ch in "\n\t")
                or (ch == _ZWJ and _emoji_joiner(text, i))):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def _json_escape(match: re.Match) -> str:
    return "".join(f"\\u{u:04x}" for u in _utf16(match.group()))


def _utf16(ch: str) -> list[int]:
    data = ch.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


# What json.dumps(ensure_ascii=False) leaves raw although a terminal may act on it.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u00ad\u061c\u180e\u200b\u200c\u200e\u200f\u2028-\u202e"
                          "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
                          "\U000e0000-\U000e007f]")


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON for the terminal: like ``json.dumps(ensure_ascii=False)`` (CJK stays readable),
    with DEL, C1 and invisible format characters written as ``\\uXXXX`` (same data once
    parsed). JSON already escapes C0 controls such as ESC."""
    return json_safe(json.dumps(value, ensure_ascii=False, indent=indent))


def json_safe(encoded: str) -> str:
    """:func:`json_text` for JSON already encoded (with ``ensure_ascii=False``)."""
    return _JSON_UNSAFE.sub(_json_escape, encoded)


def echo(message: Any = "", err: bool = False, nl: bool = True) -> None:
    """``click.echo`` for a line or text that may hold fan-supplied parts: control characters
    escaped, line feeds and tabs kept (escape single-line fields with :func:`terminal_safe`)."""
    click.echo(terminal_safe(message, keep_newlines=True), err=err, nl=nl)


def cell(value: Any) -> str:
    """How a value shows in a table: floats to one decimal, None as empty, controls escaped."""
    if isinstance(value, float):
        return f"{value:.1f}"
    return terminal_safe(value)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK and emoji two, combining marks and joiners
    none, the rest one."""
    return sum(_char_width(ch) for ch in text)


@lru_cache(maxsize=8192)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


ELLIPSIS = "…"
TABLE_WIDTH = 100  # what a table fits when the output is not a terminal (a pipe, a file)
_GAP = 2


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, ending in an ellipsis when anything was cut."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ELLIPSIS


def table_width() -> int:
    """The terminal's width when output goes to one, else :data:`TABLE_WIDTH`."""
    import shutil
    import sys

    if sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((TABLE_WIDTH, 24)).columns)
    return TABLE_WIDTH


def _fit(widths: list[int], floors: list[int], max_width: int) -> list[int]:
    """Narrow the widest columns, one column at a time, until the line fits ``max_width``."""
    widths = list(widths)
    excess = sum(widths) + _GAP * (len(widths) - 1) - max_width
    while excess > 0:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        # take down to the next widest column at once (or what is needed)
        others = [widths[i] for i in shrinkable if i != widest] or [floors[widest]]
        step = max(1, min(excess, widths[widest] - max(max(others), floors[widest])))
        widths[widest] -= step
        excess -= step
    return widths


def format_table(columns: list[str], rows: list[list[Any]],
                 max_width: int | None = None, keep: tuple[int, ...] = ()) -> list[str]:
    """The header and rows as aligned lines (no trailing spaces). With ``max_width`` the
    widest columns are cut (ending in "…") until a line fits that many terminal columns;
    the columns numbered in ``keep`` (short computed values: times, flags) are never cut."""
    cells = [[cell(v) for v in row] for row in rows]
    header = [terminal_safe(c) for c in columns]
    widths = [max([display_width(c)] + [display_width(r[i]) for r in cells])
              for i, c in enumerate(header)]
    if max_width is not None:
        widths = _fit(widths, [w if i in keep else min(w, 6) for i, w in enumerate(widths)],
                      max_width)
    return [
        "  ".join(t + " " * (w - display_width(t))
                  for t, w in ((truncate(c, w), w) for c, w in zip(line, widths, strict=True)))
        .rstrip()
        for line in [header, *cells]
    ]
