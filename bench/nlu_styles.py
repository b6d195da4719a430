"""Intent accuracy per fan style (plain, cantonese, emoji, two_questions, other_business…).

Reads labelled JSON lines with a "cat" style field (tests/data/nlu/README.md of the held-out
sets: text, intent or null, cat, optional also and fact) and prints, per style, how many
messages got the right intent, then in-scope accuracy, out-of-scope recall, how many
two-question messages got exactly their further intents (``Understanding.also``), how many
out-of-scope messages were answered with a fact (question) intent at confidence ≥ 0.9, and the
median and 90th-percentile time per message (wall clock: noisy on a shared machine).

    python bench/nlu_styles.py --persona laowang-kitchen FILE.jsonl [--show STYLE|all]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.brand import load_brand  # noqa: E402

HIGH_CONFIDENCE = 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persona", "-p", default="laowang-kitchen")
    parser.add_argument("data", type=Path)
    parser.add_argument("--show", help="print the misses of one style (or 'all')")
    args = parser.parse_args()
    understander = load_brand(args.persona).understander
    rows = [json.loads(line) for line in args.data.read_text("utf-8").splitlines() if line.strip()]
    for row in rows[:50]:  # warm the caches, as a running daemon has them
        understander.understand(row["text"])
    per_style: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    in_scope, oos, also = [0, 0], [0, 0], [0, 0]
    confident_oos = 0
    times: list[int] = []
    for row in rows:
        start = time.perf_counter_ns()
        got = understander.understand(row["text"])
        times.append(time.perf_counter_ns() - start)
        expected, style = row.get("intent"), row.get("cat", "?")
        right = got.intent == expected
        per_style[style][0] += right
        per_style[style][1] += 1
        counts = oos if expected is None else in_scope
        counts[0] += right
        counts[1] += 1
        if row.get("also"):
            also[1] += 1
            also[0] += list(getattr(got, "also", ())) == list(row["also"])
        if expected is None and got.intent is not None and got.confidence >= HIGH_CONFIDENCE:
            confident_oos += understander.persona.intents[got.intent].kind == "question"
        if not right and args.show in (style, "all"):
            print(f"  [{style}] {row['text']!r}: expected {expected}, got {got.intent} "
                  f"({got.confidence:.2f}, {getattr(got, 'rule', '?')})")
    for style, (right, n) in sorted(per_style.items()):
        print(f"{style:20s} {right:4d}/{n:<4d} {right / n:6.1%}")
    times.sort()
    print(
        f"in-scope {in_scope[0]}/{in_scope[1]} {in_scope[0] / max(1, in_scope[1]):.1%}; "
        f"oos recall {oos[0]}/{oos[1]} {oos[0] / max(1, oos[1]):.1%}; "
        f"two questions exact {also[0]}/{also[1]}; "
        f"oos answered with a fact at ≥ {HIGH_CONFIDENCE}: {confident_oos}/{oos[1]}; "
        f"p50 {times[len(times) // 2] / 1000:.0f} µs, "
        f"p90 {times[int(len(times) * 0.9)] / 1000:.0f} µs"
    )


if __name__ == "__main__":
    main()
