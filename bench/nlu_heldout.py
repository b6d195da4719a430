"""Held-out fan messages against the demo personas, at default settings, grouped by style.

Run from the repository root, one ``PERSONA=FILE`` pair per data set (JSON lines with ``text``,
``intent`` or null, and any other fields such as ``cat``)::

    python bench/nlu_heldout.py laowang-kitchen=tests/data/nlu/laowang-dev.jsonl \\
        northbound-coffee=tests/data/nlu/northbound-dev.jsonl [--by cat] [--json]

Each persona is loaded as the daemon loads it (its matcher's threshold calibrated, unless the
persona sets ``nlu.threshold``); the figures are those of ``brandbot nlu eval``: in-scope
accuracy (an in-scope message answered with its intent), out-of-scope recall (an out-of-scope
message answered with none), p50 time per message, and the same per value of ``--by``.
Tune on dev files only; report test files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.brand import load_brand  # noqa: E402
from bot.nlu.evaluate import evaluate  # noqa: E402


def read_rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append({**row, "text": str(row["text"]), "intent": row.get("intent")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", metavar="PERSONA=FILE")
    parser.add_argument("--by", default="cat", help="group by this field (default: cat)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="run each set this many times and report the lowest p50 (warm caches; for timing)",
    )
    args = parser.parse_args(argv)

    out = {}
    for pair in args.pairs:
        persona, sep, file = pair.partition("=")
        if not sep:
            parser.error(f"expected PERSONA=FILE, got {pair!r}")
        understander = load_brand(persona).understander
        rows = read_rows(Path(file))
        report = min(
            (evaluate(understander, rows, by=args.by) for _ in range(max(1, args.repeat))),
            key=lambda r: r.p50_us,
        )
        data = report.to_dict()
        data.pop("results")
        out[f"{persona}={Path(file).name}"] = data
        if args.json:
            continue
        print(f"== {persona} on {Path(file).name}: {report.n} messages")
        print(
            f"in-scope {report.in_scope_accuracy:.1%}  OOS recall {report.oos_recall:.1%}  "
            f"overall {report.accuracy:.1%}  threshold {report.threshold:.3f} "
            f"({report.threshold_source})  p50 {report.p50_us:.0f} µs  mean {report.mean_us:.0f} µs"
        )
        for value, s in report.groups:
            print(
                f"  {value:20} n={s.n:3}  right {s.accuracy:6.1%}  "
                f"in-scope {s.in_scope_accuracy:6.1%}  oos {s.oos_recall:6.1%}"
            )
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
