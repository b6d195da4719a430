"""Cold load of a large persona: 150 CLINC150 intents x 30 English examples, time and peak RSS.

Run from the repository root::

    python bench/nlu_load.py --data PATH/data_full.json [--per-intent 30] [--runs 3]
    python bench/nlu_load.py --data ... --code /path/to/older/checkout   # A/B against old code

A persona file is written to a temporary folder: the small test persona
(tests/data/personas/tiny.yaml, for its replies and dialog intents) plus ``--per-intent``
training examples of each of CLINC150's 150 intents. Each run loads it with ``load_brand`` in
a fresh Python process with an empty fit cache (so the matcher is fitted, as on a first start
or after an edit) and reports the load's wall time, the process's CPU time (the steadier
figure on a shared machine) and its peak RSS; then once more with the cache filled (a
restart). Target: cold ≤ 5 s and ≤ 300 MB on the project's machine
class (2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import resource, sys, time
start = time.perf_counter()
from bot.brand import load_brand
brand = load_brand(sys.argv[1])
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
rss = usage.ru_maxrss / 1024
cpu = usage.ru_utime + usage.ru_stime
print(elapsed, rss, len(brand.persona.intents), brand.understander.matcher.threshold, cpu)
"""


def write_persona(data: Path, per_intent: int, folder: Path, seed: int = 0) -> Path:
    raw = json.loads(data.read_text(encoding="utf-8"))
    by_intent: dict[str, list[str]] = {}
    for text, intent in raw["train"]:
        by_intent.setdefault(intent, []).append(text)
    rng = random.Random(seed)
    persona = yaml.safe_load((ROOT / "tests" / "data" / "personas" / "tiny.yaml").read_text())
    persona["id"] = "clinc-load"
    for intent in sorted(by_intent):
        name = "clinc_" + re.sub(r"[^a-z0-9_]", "_", intent)
        persona["intents"][name] = {
            "examples": {"en": rng.sample(by_intent[intent], per_intent)},
        }
        persona["replies"][name] = {"zh": [intent], "en": [intent]}
    path = folder / "clinc-load.yaml"
    path.write_text(yaml.safe_dump(persona, allow_unicode=True), encoding="utf-8")
    return path


def run_child(
    persona: Path, cache: Path, code: Path | None
) -> tuple[float, float, int, float, float]:
    env = dict(os.environ, BRANDBOT_CACHE_DIR=str(cache))
    if code is not None:
        env["PYTHONPATH"] = str(code)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(persona)],
        env=env, capture_output=True, text=True, check=True, cwd=code or ROOT,
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]), float(out[3]), float(out[4])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="CLINC150's data_full.json")
    parser.add_argument("--per-intent", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", type=Path, help="a checkout whose bot/ to load instead")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        persona = write_persona(args.data, args.per_intent, folder)
        cold = []
        for run in range(args.runs):
            cache = folder / f"cache{run}"
            seconds, rss, intents, threshold, cpu = run_child(persona, cache, args.code)
            cold.append((seconds, rss))
            print(f"cold run {run}: {seconds:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.0f} MB "
                  f"({intents} intents, threshold {threshold:.3f})")
        seconds, rss, _, _, cpu = run_child(persona, folder / "cache0", args.code)
        print(f"warm (fit cached): {seconds:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.0f} MB")
        print(f"cold median: {statistics.median(s for s, _ in cold):.2f} s, "
              f"{statistics.median(r for _, r in cold):.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
