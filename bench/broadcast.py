"""Newsletters at scale: plan over 1,000,000 fans, deliver to 100,000 through a local fake.

1. **plan** — a database of ``--fans`` fans (80% Telegram, 10% web chat, 10% WeChat; 70%
   subscribed, 2% blocked, 0.1% in handoff, tags and stages mixed), then
   ``brandbot broadcast --dry-run`` in a fresh process: wall time and that process's peak RSS
   (targets: ≤ 10 s and ≤ 200 MB for 1,000,000 fans).
2. **deliver** — ``--deliver`` subscribed Telegram fans, ``brandbot broadcast --rate 0`` against
   the fake Bot API (tests/fakes/telegram_api.py, a separate process, no limits): wall time, and
   our process's CPU time per delivery (what brandbot itself costs per newsletter: planning,
   the delivery rows, PTB, the sender, HTTP). The same count of bare PTB ``send_message``
   calls (2 in flight, as our sender uses next to the server) is the baseline: the difference
   is our own overhead per delivery.

    python bench/broadcast.py                         # 1,000,000 planned, 100,000 delivered
    python bench/broadcast.py --fans 100000 --deliver 10000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.relations import Store  # noqa: E402
from tests.fakes.telegram_api import TOKEN  # noqa: E402

PERSONA = "laowang-kitchen"
STAGES = ("stranger", "acquaintance", "friend", "loyal", "advocate")


BASELINE = """
import asyncio, sys
from telegram import Bot
from telegram.request import HTTPXRequest

async def main(url, token, n):
    bot = Bot(token, base_url=url, request=HTTPXRequest(connection_pool_size=64))
    await bot.initialize()
    gate = asyncio.Semaphore(2)
    async def one(i):
        async with gate:
            await bot.send_message(100000 + i, "bench")
    await asyncio.gather(*(one(i) for i in range(n)))
    await bot.shutdown()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def fill(path: str, fans: int, *, all_telegram: bool = False) -> None:
    store = Store(path)
    now = "2026-01-05T10:00:00.000000Z"
    batch = []
    with store.transaction() as conn:
        for i in range(fans):
            r = (i * 2654435761) % 1000  # a cheap, reproducible spread
            channel = "telegram" if all_telegram or r < 800 else ("web" if r < 900 else "wechat")
            batch.append((
                channel, str(100_000 + i), PERSONA, "zh" if r % 3 else "en", now, now,
                STAGES[r % 5], 1 if all_telegram or r % 10 < 7 else 0,
                1 if not all_telegram and r % 50 == 0 else 0,
                1 if not all_telegram and r == 996 else 0,
                '["kol"]' if r % 97 == 0 else "[]",
            ))
            if len(batch) == 50_000:
                _insert(conn, batch)
                batch.clear()
        _insert(conn, batch)
    store.close()


def _insert(conn, batch) -> None:
    conn.executemany(
        "INSERT INTO fans (channel, external_id, persona, language, first_seen, last_seen, "
        "stage, subscribed, blocked, handoff, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS (MB) of that child, its output.

    ``os.wait4`` gives that one child's resource use (``RUSAGE_CHILDREN`` would report the
    largest peak of every child so far).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
                                cwd=ROOT)
        stdout = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves, with its own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(cmd)} failed:\n{errors.read()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fans", type=int, default=1_000_000)
    parser.add_argument("--deliver", type=int, default=100_000)
    parser.add_argument("--dir", help="Where to put the databases (default: a temp dir).")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="brandbot-bench-"))
    env = {**os.environ, "BRANDBOT_TELEGRAM_TOKEN": TOKEN}
    env.pop("BRANDBOT_CONFIG", None)
    results: dict[str, object] = {}

    plan_db = str(work / "plan.db")
    if not Path(plan_db).exists():
        start = time.perf_counter()
        fill(plan_db, args.fans)
        print(f"filled {args.fans:,} fans in {time.perf_counter() - start:.1f} s", flush=True)
    cmd = [sys.executable, "-m", "bot", "broadcast", "-p", PERSONA, "-t", "bench",
           "--dry-run", "--db", plan_db]
    wall, cpu, rss, out = child(cmd, env)
    print(out)
    results["plan"] = {"fans": args.fans, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                       "peak_rss_mb": round(rss, 1)}

    if args.deliver:
        send_db = str(work / "send.db")
        if Path(send_db).exists():
            os.unlink(send_db)
        fill(send_db, args.deliver, all_telegram=True)
        fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0"],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            port = int(re.match(r"port (\d+)", fake.stdout.readline()).group(1))
            env["BRANDBOT_TELEGRAM_API_URL"] = f"http://127.0.0.1:{port}/bot"
            cmd = [sys.executable, "-m", "bot", "broadcast", "-p", PERSONA, "-t", "bench",
                   "--db", send_db, "--rate", "0"]
            wall, cpu, rss, out = child(cmd, env)
            print(out)
            base_wall, base_cpu, _, _ = child(
                [sys.executable, "-c", BASELINE, env["BRANDBOT_TELEGRAM_API_URL"], TOKEN,
                 str(args.deliver)], env)
        finally:
            fake.terminate()
            fake.wait(10)
        store = Store(send_db)
        sent = store.conn.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'"
                                  ).fetchone()[0]
        store.close()
        results["deliver"] = {
            "fans": args.deliver, "sent": sent, "wall_s": round(wall, 1),
            "per_s": round(sent / wall), "cpu_us_per_delivery": round(cpu / max(sent, 1) * 1e6),
            "peak_rss_mb": round(rss, 1),
            "bare_ptb_per_s": round(args.deliver / base_wall),
            "bare_ptb_cpu_us_per_send": round(base_cpu / args.deliver * 1e6),
            "our_overhead_cpu_us_per_delivery": round((cpu - base_cpu) / max(sent, 1) * 1e6),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
