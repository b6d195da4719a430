"""Memory of the web chat's rate limiter under many distinct fans (review r-web).

Every message hits a per-fan key; a client that drops its cookie (or simply a long-running
daemon with many fans) makes a new key per fan. The ``limits`` library's moving window keeps an
empty list per key forever; the sliding-window counter (what ``bot.channels.web_limits`` uses)
lets a key go with its window. A/B in one run, each in a fresh child process:

    python bench/web_limits_memory.py --fans 300000 --window "2/second"
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run(strategy: str, fans: int, window: str) -> dict:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

    cls = {"moving": MovingWindowRateLimiter, "sliding": SlidingWindowCounterRateLimiter}[strategy]
    storage = MemoryStorage()
    limiter, item = cls(storage), parse(window)
    start = time.perf_counter()
    for n in range(fans):
        limiter.hit(item, "message-fan", f"w-{n}")
    elapsed = time.perf_counter() - start
    time.sleep(item.get_expiry() * 2 + 1)  # every window over
    limiter.hit(item, "message-fan", "one-more")  # a hit runs the library's sweep
    time.sleep(2)
    return {
        "strategy": strategy,
        "hits_per_s": round(fans / elapsed),
        "keys_kept_after_windows": len(storage.events) + len(storage.storage),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=300_000)
    parser.add_argument("--window", default="2/second")
    parser.add_argument("--child", choices=["moving", "sliding"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.fans, args.window)))
        return
    for strategy in ("moving", "sliding"):
        out = subprocess.run([sys.executable, __file__, "--child", strategy, "--fans",
                              str(args.fans), "--window", args.window],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
