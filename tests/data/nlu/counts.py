"""Print the per-persona, per-split, per-style line counts of the NLU evaluation sets.

Run from the repository root:  python tests/data/nlu/counts.py
The table in tests/data/nlu/README.md is this script's output, pasted.
"""

import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PERSONAS = ("laowang", "northbound")
SPLITS = ("dev", "test")


def load(name: str, split: str) -> list[dict]:
    path = HERE / f"{name}-{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    data = {(name, split): load(name, split) for name in PERSONAS for split in SPLITS}
    columns = list(data)
    styles = sorted({row["cat"] for rows in data.values() for row in rows})
    print("| style | " + " | ".join(f"{n} {s}" for n, s in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for style in styles:
        counts = [Counter(row["cat"] for row in data[column])[style] for column in columns]
        print(f"| {style} | " + " | ".join(str(c) for c in counts) + " |")
    print("| **total** | " + " | ".join(str(len(data[c])) for c in columns) + " |")
    nulls = [sum(row["intent"] is None for row in data[c]) for c in columns]
    print("| out-of-scope (intent null) | " + " | ".join(
        f"{n} ({n / len(data[c]):.0%})" for n, c in zip(nulls, columns, strict=True)) + " |")
    two = [sum("also" in row for row in data[c]) for c in columns]
    print("| with `also` | " + " | ".join(str(n) for n in two) + " |")
    facts = [sum("fact" in row for row in data[c]) for c in columns]
    print("| with `fact` | " + " | ".join(str(n) for n in facts) + " |")


if __name__ == "__main__":
    main()
