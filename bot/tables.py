"""Plain-text tables for the terminal, aligned for Chinese (wide characters count double)."""

from __future__ import annotations

import unicodedata
from typing import Any


def cell(value: Any) -> str:
    """How a value shows in a table: floats to one decimal, None as empty."""
    if isinstance(value, float):
        return f"{value:.1f}"
    return "" if value is None else str(value)


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """The header and rows as aligned lines (no trailing spaces)."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([display_width(c)] + [display_width(r[i]) for r in cells])
              for i, c in enumerate(columns)]
    return [
        "  ".join(c + " " * (w - display_width(c)) for c, w in zip(line, widths, strict=True))
        .rstrip()
        for line in [columns, *cells]
    ]
