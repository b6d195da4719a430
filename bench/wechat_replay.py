"""What the WeChat replay guard costs per push (plain/compatible mode), in CPU time.

Throughput runs of ``bench/wechat_load.py`` are too noisy on a shared machine to show a few
microseconds, so this measures the guard's own work directly, best of several rounds of
``time.process_time`` (CPU time, little affected by other processes):

* ``check``: ``digest(fields)`` + ``ReplayGuard.admit`` for a new (timestamp, nonce) — what
  every plaintext or compatible-mode push pays on the event loop;
* ``retry``: the same for a pair already seen with the same fields (WeChat's retry);
* ``flush``: writing the recorded pairs to ``wechat_nonces`` in a real SQLite file (the daemon
  does it from a thread once a second), per pair;
* ``flush1``: the same write one pair at a time, awaited as the push path does when pushes
  arrive one by one (CPU and wall time per push, thread hop included);
* ``parse``: for scale, ``parse_xml`` of the same push (part of every push's existing path).

    python bench/wechat_replay.py            # 50,000 pushes, best of 5
    python bench/wechat_replay.py -n 20000 -r 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best(rounds: int, fn) -> float:
    """The smallest CPU time of ``rounds`` calls of ``fn()`` (each does a full batch)."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    from bot.channels.wechat_crypto import parse_xml
    from bot.channels.wechat_replay import ReplayGuard, digest
    from bot.relations import Store
    from tests.fakes.wechat_api import text_push

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--pushes", type=int, default=50_000)
    ap.add_argument("-r", "--rounds", type=int, default=5)
    args = ap.parse_args()
    now = time.time()
    stamp = str(int(now))
    bodies = [text_push(f"oFan{i % 800:04d}", "你们几点开门", 10**9 + i, int(now)).encode()
              for i in range(args.pushes)]
    fields = [parse_xml(b) for b in bodies]
    nonces = [str(10**9 + i) for i in range(args.pushes)]
    n = args.pushes

    def parse() -> None:
        for body in bodies:
            parse_xml(body)

    guard = ReplayGuard("wxbench", 300.0, lambda: now)

    def check() -> None:
        guard._seen.clear()
        guard._expiry.clear()
        guard._unsaved.clear()
        for nonce, f in zip(nonces, fields, strict=True):
            guard.admit(stamp, nonce, digest(f), authenticated=False)

    def retry() -> None:
        for nonce, f in zip(nonces, fields, strict=True):
            guard.admit(stamp, nonce, digest(f), authenticated=False)

    results = {"parse": best(args.rounds, parse), "check": best(args.rounds, check),
               "retry": best(args.rounds, retry)}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        flushes = []
        for round_ in range(args.rounds):
            saver = ReplayGuard("wxbench", 300.0, lambda: now, store)
            for nonce, f in zip(nonces, fields, strict=True):
                saver.admit(f"{stamp}{round_}", nonce, digest(f), authenticated=False)
            start = time.process_time()
            asyncio.run(saver.flush())
            flushes.append(time.process_time() - start)
        results["flush"] = min(flushes)
        # One pair per write: the push path awaits the flush before the turn, so pushes
        # arriving one at a time each pay a thread hop and a transaction (concurrent ones share).
        single = min(args.pushes, 2000)
        cpu, wall = [], []
        for round_ in range(args.rounds):
            saver = ReplayGuard("wxbench", 300.0, lambda: now, store)

            async def one_by_one(saver=saver, round_=round_) -> None:
                for nonce, f in zip(nonces[:single], fields[:single], strict=True):
                    saver.admit(f"{stamp}1{round_}", nonce, digest(f), authenticated=False)
                    await saver.flush()

            start, started = time.process_time(), time.perf_counter()
            asyncio.run(one_by_one())
            cpu.append(time.process_time() - start)
            wall.append(time.perf_counter() - started)
        store.close()
    print(f"{n} pushes, best of {args.rounds} rounds, CPU µs per push:")
    for name in ("parse", "check", "retry", "flush"):
        print(f"  {name:6} {results[name] / n * 1e6:7.2f}")
    print(f"  flush1 {min(cpu) / single * 1e6:7.2f}  (one pair per write; wall "
          f"{min(wall) / single * 1e6:.0f} µs per push, {single} pushes)")


if __name__ == "__main__":
    main()
