"""Safe-mode WeChat text pushes over loopback HTTP: brandbot's full turn versus WeRoBot.

Three servers, one after another, each in its own process on 127.0.0.1, each given the same
pre-built, signed and AES-encrypted text pushes (wechatpy's ``WeChatCrypto``, 800 fans, unique
MsgIds) from C keep-alive connections for D seconds:

* ``brandbot``: the WeChat channel's routes on the daemon's stack (``Daemon.open`` + ``run_turn``:
  the demo persona, turns on the event loop sharing commits, a fresh SQLite log, metrics;
  uvicorn + uvloop on a TCP_NODELAY socket with the daemon's one-write HTTP protocol,
  ``bot/http_protocol.py``) — verify, decrypt, parse, the whole turn (understanding, dialog,
  voice, the logged transaction), encrypt the passive reply;
* ``werobot``: WeRoBot (installed only for this bench: ``pip install werobot waitress``) answering
  every text with a fixed string, sessions off (its default SQLite session store would slow it
  down), behind waitress (4 threads) — WeRoBot is WSGI;
* ``bare``: wechatpy + Starlette on stock uvicorn (head and body in two writes), verify +
  decrypt + fixed encrypted reply: for scale, what a minimal Python handler does.

    python bench/wechat_load.py                     # 16 connections, 10 s each
    python bench/wechat_load.py -c 16 -d 10 --json --only brandbot,werobot
    python bench/wechat_load.py --only bare --bare-one-write   # bare with one write per response
    python bench/wechat_load.py -d 8 --only brandbot,brandbot-compatible,werobot  # replay guard A/B

Reports req/s, p50/p99/max, errors and the brandbot/WeRoBot ratio. Targets: brandbot >= 1.0x
WeRoBot while doing the whole turn, p99 <= 50 ms. Only 127.0.0.1 is contacted; each run is
bounded (--duration, capped at 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadgen import drive, free_port, percentile_ms  # noqa: E402  (bench/, next to this file)

TOKEN = "benchToken2026"
APP_ID = "wxbench000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_bench0000001"
PERSONA = "laowang-kitchen"
FIXED = "老王的灶台每天11点开火"
MESSAGES = ["你好", "你们几点开门", "有停车位吗", "地址在哪", "今天有什么菜", "可以订位吗",
            "谢谢", "hello", "what time do you open", "is there parking", "菜单", "辣不辣"]


# -- the servers (run with --serve NAME in a child process) --------------------------------------


def tcp_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def run_uvicorn(app, port: int, http: object = "httptools") -> None:
    import uvicorn
    import uvloop

    config = uvicorn.Config(app, http=http, log_config=None, access_log=False, lifespan="off",
                            server_header=False, timeout_keep_alive=5)
    server = uvicorn.Server(config)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(server.serve(sockets=[tcp_socket(port)]))


def serve_brandbot(port: int, db: str, encryption: str = "safe") -> None:
    import gc
    import logging

    from starlette.applications import Starlette

    from bot.channels.wechat import WeChatChannel, WeChatChannelSettings
    from bot.config import load_settings
    from bot.daemon import Daemon

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transitions", "brandbot.wechat"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    daemon = Daemon(load_settings(None, db=db, personas=[PERSONA], port=port, reload=False))
    daemon.open()  # the daemon's own setup: prefit, brands, store, metrics, turn threads
    channel = WeChatChannel(
        daemon.run_turn, PERSONA,
        WeChatChannelSettings(token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, encryption=encryption),
        store=daemon.store,
    )
    gc.collect()
    gc.freeze()
    from bot.http_protocol import CoalescingHttpProtocol  # the daemon's, as in Daemon.run

    run_uvicorn(Starlette(routes=channel.routes()), port, http=CoalescingHttpProtocol)


def serve_werobot(port: int) -> None:
    import waitress
    from werobot import WeRoBot

    robot = WeRoBot(token=TOKEN, app_id=APP_ID, encoding_aes_key=AES_KEY, enable_session=False)

    @robot.text
    def answer(message):
        return FIXED

    waitress.serve(robot.wsgi, host="127.0.0.1", port=port, _quiet=True)


def serve_bare(port: int, one_write: bool = False) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from wechatpy import create_reply, parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def wechat(request: Request) -> Response:
        q = request.query_params
        try:
            check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
        except (InvalidSignatureException, KeyError):
            return Response(status_code=403)
        if request.method == "GET":
            return Response(q.get("echostr", ""))
        xml = crypto.decrypt_message(await request.body(), q["msg_signature"], q["timestamp"],
                                     q["nonce"])
        reply = create_reply(FIXED, parse_message(xml)).render()
        return Response(crypto.encrypt_message(reply, q["nonce"]), media_type="application/xml")

    from bot.http_protocol import CoalescingHttpProtocol

    run_uvicorn(Starlette(routes=[Route("/wechat", wechat, methods=["GET", "POST"])]), port,
                http=CoalescingHttpProtocol if one_write else "httptools")


# -- the client -----------------------------------------------------------------------------------


def build_pushes(count: int, seed: int = 7) -> list[bytes]:
    """Complete HTTP requests: signed, encrypted text pushes with unique MsgIds."""
    from tests.fakes.wechat_api import Pusher, text_push

    rng = random.Random(seed)
    pusher = Pusher(TOKEN, APP_ID, AES_KEY)
    now = int(time.time())
    requests = []
    for n in range(count):
        openid = f"oBenchFan{n % 800:05d}xxxxxxxxxxxx"
        xml = text_push(openid, rng.choice(MESSAGES), 10**15 + n, create_time=now,
                        account=ACCOUNT)
        params, body = pusher.encrypted(xml, account=ACCOUNT)
        head = (f"POST /wechat?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        requests.append(head + body)
    return requests


class Feed:
    """The pre-built pushes, shared by every connection in turn (``wrapped``: some were sent
    twice; a repeated MsgId is answered from the log, so the run should not wrap)."""

    def __init__(self, requests: list[bytes]):
        self.requests, self.next, self.wrapped = requests, 0, False

    def take(self, connection: int = 0, n: int = 0) -> bytes:
        if self.next >= len(self.requests):
            self.next, self.wrapped = 0, True
        request = self.requests[self.next]
        self.next += 1
        return request


def encrypted_reply(status: bytes, body: bytes) -> str | None:
    if b" 200 " in status and b"<Encrypt>" in body:
        return None
    return status.decode(errors="replace").strip() + f" ({len(body)} bytes)"


def wait_ready(proc: subprocess.Popen, port: int, log, timeout: float = 60) -> float:
    from tests.fakes.wechat_api import Pusher

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server exited: {log.read().decode()[-2000:]}")
        query = urllib.parse.urlencode({**Pusher(TOKEN).query(), "echostr": "ready"})
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/wechat?{query}",
                                        timeout=1) as r:
                if r.read() == b"ready":
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server not ready in time")


def measure(name: str, feed: Feed, args, tmp: str) -> dict:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", name, "--port", str(port),
           "--db", str(Path(tmp) / f"{name}.db")] + (["--bare-one-write"] * args.bare_one_write)
    # stderr to a file, not a pipe: waitress warns about its queue depth under load, and a full
    # pipe would stall the server.
    log = open(Path(tmp) / f"{name}.log", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        ready = wait_ready(proc, port, log)
        feed.next = 0
        asyncio.run(drive(port, args.connections, args.warmup, feed.take, encrypted_reply))
        lat, bad, elapsed = asyncio.run(
            drive(port, args.connections, args.duration, feed.take, encrypted_reply))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return {"server": name, "requests": len(lat), "req_per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(percentile_ms(lat, 50), 2), "p99_ms": round(percentile_ms(lat, 99), 2),
            "max_ms": round(lat[-1] * 1000, 2),
            "errors": len(bad), "first_error": bad[0] if bad else None,
            "pushes_reused": feed.wrapped, "ready_s": round(ready, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--only", default="brandbot,werobot,bare")
    ap.add_argument("--pushes", type=int, default=50_000, help="distinct pre-built pushes")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--bare-one-write", action="store_true",
                    help="serve `bare` with the daemon's one-write HTTP protocol (its A/B)")
    args = ap.parse_args()
    if args.serve:
        {"brandbot": lambda: serve_brandbot(args.port, args.db),
         # The same encrypted pushes in compatible mode: each signed URL is checked and
         # recorded by the replay guard (bot/channels/wechat_replay.py), its A/B.
         "brandbot-compatible": lambda: serve_brandbot(args.port, args.db, "compatible"),
         "werobot": lambda: serve_werobot(args.port),
         "bare": lambda: serve_bare(args.port, args.bare_one_write)}[args.serve]()
        return
    args.duration = min(args.duration, 60.0)
    args.warmup = min(args.warmup, 10.0)
    feed = Feed(build_pushes(args.pushes))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            results.append(measure(name.strip(), feed, args, tmp))
    by = {r["server"]: r for r in results}
    summary = {"connections": args.connections, "duration_s": args.duration, "results": results}
    if "brandbot" in by and "werobot" in by:
        summary["ratio_brandbot_to_werobot"] = round(
            by["brandbot"]["req_per_s"] / by["werobot"]["req_per_s"], 2)
    if "brandbot-compatible" in by and "werobot" in by:
        summary["ratio_brandbot_compatible_to_werobot"] = round(
            by["brandbot-compatible"]["req_per_s"] / by["werobot"]["req_per_s"], 2)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return
    print(f"{args.connections} connections, {args.duration:.0f} s each, safe mode (AES)")
    print(f"{'server':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    for r in results:
        print(f"{r['server']:10} {r['req_per_s']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['max_ms']:8.2f} {r['errors']:7d}" + ("  (pushes reused)"
                                                        if r["pushes_reused"] else ""))
    if "ratio_brandbot_to_werobot" in summary:
        print(f"brandbot / WeRoBot: {summary['ratio_brandbot_to_werobot']:.2f}x")


if __name__ == "__main__":
    main()
