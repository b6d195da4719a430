"""Load the web chat endpoint of a real `brandbot serve` and report what an operator cares about.

Starts the daemon on 127.0.0.1 (a free port, a temporary database), waits until /healthz
answers (= time to ready), then drives ``POST /api/chat`` from C keep-alive connections for
D seconds, each request a different fan message with its own msg_id. Reports requests/s,
p50/p90/p99/max latency, errors, and the daemon's peak RSS (VmHWM from /proc).

    python bench/serve_load.py                    # 16 connections, 10 s
    python bench/serve_load.py -c 16 -d 20 --engine-threads 2 --json

Targets (2-core machine): >= 1,500 req/s, p99 <= 20 ms, RSS <= 150 MB, ready <= 2 s.
Only 127.0.0.1 is ever contacted; the run is bounded by --duration (and a hard 120 s cap).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from loadgen import drive, free_port, percentile_ms

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [
    "你好", "你们几点开门", "有停车位吗", "地址在哪", "今天有什么菜", "可以订位吗", "谢谢",
    "hello", "what time do you open", "is there parking", "do you deliver", "菜单", "辣不辣",
]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_daemon(port: int, db: str, extra_env: dict[str, str]) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, **extra_env}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--db", db, "--no-reload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = start + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited: {proc.stderr.read().decode()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, time.monotonic() - start
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit("daemon not ready within 30 s")


def chat_requests(run: str, api_key: str):
    """Web chat POSTs: per connection its own random messages, 50 fans, a new msg_id each
    (``run`` keeps them apart between runs: a repeated msg_id is answered from the log).
    The fans are named by the bench, so it speaks with the daemon's ``web.api_key``; from
    127.0.0.1 the rate limits do not apply (``web.rate_limit_exempt``)."""
    rngs: dict[int, random.Random] = {}

    def request(wid: int, n: int) -> bytes:
        rng = rngs.setdefault(wid, random.Random(wid))
        body = json.dumps(
            {"text": rng.choice(MESSAGES), "fan": f"load-{wid}-{n % 50}",
             "msg_id": f"{run}-{wid}-{n}"},
            ensure_ascii=False,
        ).encode()
        return (
            f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    return request


def answered(status: bytes, body: bytes) -> str | None:
    return None if b" 200 " in status else status.decode(errors="replace").strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--engine-threads", type=int, default=None,
                    help="BRANDBOT_ENGINE_THREADS for the daemon (default: its setting)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    duration = min(args.duration, 120.0)
    api_key = secrets.token_urlsafe(24)
    extra = {"BRANDBOT_WEB__API_KEY": api_key}
    if args.engine_threads is not None:
        extra["BRANDBOT_ENGINE_THREADS"] = str(args.engine_threads)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc, ready = start_daemon(port, str(Path(tmp) / "bench.db"), extra)
        try:
            asyncio.run(drive(port, args.connections, min(args.warmup, 10.0),
                              chat_requests("warm-up", api_key), answered))
            lat, errors, elapsed = asyncio.run(
                drive(port, args.connections, duration, chat_requests("measured", api_key),
                      answered))
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            code = proc.wait(timeout=15)

    report = {
        "connections": args.connections,
        "duration_s": round(elapsed, 2),
        "requests": len(lat),
        "errors": len(errors),
        "req_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile_ms(lat, 50), 2),
        "p90_ms": round(percentile_ms(lat, 90), 2),
        "p99_ms": round(percentile_ms(lat, 99), 2),
        "max_ms": round(lat[-1] * 1000, 2),
        "peak_rss_mb": round(rss, 1),
        "ready_s": round(ready, 2),
        "exit_code": code,
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:12} {value}")


if __name__ == "__main__":
    main()
