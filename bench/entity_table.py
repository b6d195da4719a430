"""The entity expression table (tests/data/entities/) and how an answer is scored against it.

Shared by bench/entities.py (accuracy of every candidate) and tests/test_entities.py.
An expression is correct when the answers are exactly the expected entities: same kinds,
values and flags (``past``, ``ambiguous``, ``surname``), or the same ``invalid`` code, the
same ``text`` where the table gives one, nothing missing and nothing extra.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

TABLE_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "entities"
_META = json.loads((TABLE_DIR / "meta.json").read_text(encoding="utf-8"))
NOW = dt.datetime.fromisoformat(_META["NOW"])
TZ = _META["TZ"]


def load_rows(name: str = "expressions.jsonl") -> list[dict[str, Any]]:
    """Every line of a table (expressions.jsonl, probes.jsonl) with its 1-based ``line``."""
    rows = []
    lines = (TABLE_DIR / name).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if line.strip():
            rows.append({**json.loads(line), "line": number})
    return rows


def _same_value(kind: str, got: Any, want: Any) -> bool:
    if kind == "party":
        return isinstance(got, dict) and all(
            got.get(key) == want.get(key) for key in ("total", "adults", "children"))
    if kind == "datetime" and isinstance(got, str):
        return got[:16] == want
    return got == want


def entity_matches(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """Does one answer (an ``Entity.to_json()``-shaped dict) satisfy one expected entity?"""
    if got.get("kind") != want["kind"]:
        return False
    if "text" in want and got.get("text") != want["text"]:
        return False
    if want.get("invalid"):
        return got.get("invalid") == want["invalid"]
    if got.get("invalid"):
        return False
    return _same_value(want["kind"], got.get("value"), want["value"]) and all(
        bool(got.get(flag)) == bool(want.get(flag)) for flag in ("past", "ambiguous", "surname"))


def row_correct(got: list[dict[str, Any]], row: dict[str, Any]) -> bool:
    """All expected entities found, each by a different answer, and no answer left over."""
    left = list(got)
    for want in row["expect"]:
        hit = next((g for g in left if entity_matches(g, want)), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left
