"""Turns per second and latency through Engine.handle on the demo persona.

A file database (WAL, synchronous=NORMAL unless --sync FULL), many fans, a realistic mix of
Chinese (Simplified and Traditional) and English messages: greetings, fact questions, deals,
subscription flows, misses. One thread, so the figure is per core.

    python bench/engine.py [--turns 20000] [--fans 2000] [--sync NORMAL|FULL] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.brand import load_brand  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.messages import FanRef, Inbound  # noqa: E402
from bot.relations import Store  # noqa: E402

MESSAGES = [
    "你好",
    "在吗",
    "你们几点开门",
    "今天营业吗",
    "地址在哪",
    "怎么走",
    "有停车位吗",
    "停车收费吗",
    "有什么招牌菜",
    "有素菜吗",
    "人均多少钱",
    "有优惠吗",
    "可以订位吗",
    "周六晚上6个人",
    "能送外卖吗",
    "最近有什么活动",
    "我要订阅",
    "好的",
    "谢谢",
    "再见",
    "你是机器人吗",
    "營業時間是幾點",
    "有停車場嗎",
    "可以外送嗎",
    "hi",
    "what time do you open",
    "where are you",
    "is there parking nearby",
    "do you have vegetarian dishes",
    "how much per person",
    "can I book a table for 4",
    "do you deliver",
    "any discounts",
    "thanks!",
    "bye",
    "asdkjh qwe",
    "今天天气怎么样",
    "量子力学",
    "👍",
    "小朋友可以去吗 有儿童椅吗",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20000)
    parser.add_argument("--fans", type=int, default=2000)
    parser.add_argument("--sync", default="NORMAL", choices=["NORMAL", "FULL", "OFF"])
    parser.add_argument("--persona", default="laowang-kitchen")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--commit-checkpoints", action="store_true",
                        help="SQLite's default: checkpoint inside commits, not in a thread")
    args = parser.parse_args()

    brand = load_brand(args.persona)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db", synchronous=args.sync)
        if not args.commit_checkpoints:
            store.checkpoint_in_background()  # as the daemon does
        engine = Engine(store, brand, seed=0)
        fans = [FanRef("bench", f"fan{i}") for i in range(args.fans)]
        # Warm up (first contact for a slice of fans, imports, caches).
        for i in range(200):
            engine.handle(Inbound(fans[i % len(fans)], text=rng.choice(MESSAGES)))
        latencies = []
        started = time.perf_counter()
        for i in range(args.turns):
            inbound = Inbound(rng.choice(fans), text=rng.choice(MESSAGES), platform_msg_id=f"b{i}")
            t0 = time.perf_counter()
            engine.handle(inbound)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        rows = store.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        store.close()

    latencies.sort()
    result = {
        "turns": args.turns,
        "fans": args.fans,
        "synchronous": args.sync,
        "turns_per_s": round(args.turns / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "rows_logged": rows,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}: {value}")


if __name__ == "__main__":
    main()
