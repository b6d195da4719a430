"""Telegram throughput: updates through polling → engine → sendMessage, vs a bare PTB echo bot.

Both bots run against the same local fake Bot API server (``tests/fakes/telegram_api.py``, in its
own process on 127.0.0.1) in the same run, on the same event loop type, and are timed the same
way: N text updates are pushed at once from C chats; the clock stops when every update has been
answered (echo: its ``sendMessage`` returned; brandbot: every turn ran and every reply was sent).
Rounds alternate echo / brandbot; the report gives each round and the median.

brandbot does the whole turn on the demo persona (laowang-kitchen, a temporary SQLite file in WAL
mode): understanding, dialog, voice, relationship, one transaction, then the paced sender. The
fans exist already (a warm-up round makes the first contacts), as in steady operation. Turns go
through the daemon's own ``Daemon.run_turn`` (``Daemon.open``: the demo persona, metrics, turns
on the event loop sharing commits, a thread only when the database is busy), exactly as
``brandbot serve`` wires the channel.
Pacing is switched off here (``per_chat_rate=None, overall_rate=None``): against Telegram the
sender holds to ~1 message/s per chat and ~30/s overall, which would measure the limits, not the
code.

    python bench/telegram_load.py                        # 3 rounds of 3,000 updates, 300 chats
    python bench/telegram_load.py -n 5000 -c 500 -r 5 --json

Target: brandbot ≥ 0.8 × the bare echo's updates/s. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telegram import Update  # noqa: E402
from telegram.ext import Application, ContextTypes, MessageHandler, filters  # noqa: E402

from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.daemon import Daemon  # noqa: E402
from tests.fakes.telegram_api import TOKEN  # noqa: E402

PERSONA = "laowang-kitchen"
HELDOUT = ROOT / "tests" / "data" / "nlu" / "laowang-heldout.jsonl"


def fan_messages() -> list[str]:
    return [json.loads(line)["text"] for line in HELDOUT.read_text("utf-8").splitlines()
            if line.strip()]


def updates(n: int, chats: int, texts: list[str], start_id: int) -> list[dict]:
    out = []
    for i in range(n):
        chat = 10_000 + i % chats
        out.append({
            "update_id": start_id + i,
            "message": {
                "message_id": i + 1, "date": int(time.time()),
                "chat": {"id": chat, "type": "private", "first_name": f"Fan{chat}"},
                "from": {"id": chat, "is_bot": False, "first_name": f"Fan{chat}"},
                "text": texts[i % len(texts)],
            },
        })
    return out


class FakeProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise SystemExit(f"the fake Bot API did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        self.control = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}/_fake",
                                         timeout=30)

    async def reset(self) -> None:
        await self.control.post("/reset")

    async def push(self, batch: list[dict]) -> None:
        await self.control.post("/push", content=json.dumps(batch))

    async def stats(self) -> dict:
        return (await self.control.get("/stats")).json()

    async def close(self) -> None:
        await self.control.aclose()
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def wait_until(condition, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out after {timeout} s")
        await asyncio.sleep(0.002)


async def echo_round(fake: FakeProcess, batch: list[dict], timeout: float) -> dict:
    """The bare PTB echo bot: one MessageHandler that replies with the same text."""
    answered = 0

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        nonlocal answered
        await update.message.reply_text(update.message.text)
        answered += 1

    app = (Application.builder().token(TOKEN).base_url(fake.base_url)
           .base_file_url(fake.base_url.replace("/bot", "/file/bot")).build())
    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    await app.updater.start_polling(allowed_updates=["message"], timeout=10)
    await app.start()
    started = time.perf_counter()
    await fake.push(batch)
    await wait_until(lambda: answered >= len(batch), timeout)
    elapsed = time.perf_counter() - started
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    return {"updates": len(batch), "seconds": elapsed, "sent": answered}


async def brandbot_round(fake: FakeProcess, daemon: Daemon, batch: list[dict],
                         timeout: float, send_concurrency: int = 8) -> dict:
    channel = TelegramChannel(daemon.engine, PERSONA, TOKEN, base_url=fake.base_url,
                              per_chat_rate=None, overall_rate=None, run_turn=daemon.run_turn,
                              send_concurrency=send_concurrency)
    await channel.start()
    started = time.perf_counter()
    await fake.push(batch)
    await wait_until(lambda: channel.stats["turns"] >= len(batch), timeout)
    await channel.idle()
    elapsed = time.perf_counter() - started
    sent = channel.sender.stats["sent"]
    await channel.stop()
    return {"updates": len(batch), "seconds": elapsed, "sent": sent,
            "errors": channel.stats["errors"]}


async def main_async(args: argparse.Namespace) -> dict:
    texts = fan_messages()
    fake = FakeProcess()
    tmp = tempfile.TemporaryDirectory()
    daemon = Daemon(load_settings(None, db=str(Path(tmp.name) / "bench.db"),
                                  personas=[PERSONA], reload=False))
    daemon.open()
    next_id = 1
    try:
        # Warm-up: first contacts for every chat, and both code paths once.
        warm = updates(args.chats, args.chats, ["你好"], next_id)
        next_id += len(warm)
        await fake.reset()
        await brandbot_round(fake, daemon, warm, args.timeout)
        await fake.reset()
        await echo_round(fake, updates(200, args.chats, texts, next_id), args.timeout)
        next_id += 200
        rounds: dict[str, list[dict]] = {"echo": [], "brandbot": []}
        for _ in range(args.rounds):
            for name in rounds:
                batch = updates(args.updates, args.chats, texts, next_id)
                next_id += len(batch)
                await fake.reset()
                if name == "echo":
                    result = await echo_round(fake, batch, args.timeout)
                else:
                    result = await brandbot_round(fake, daemon, batch, args.timeout,
                                                  send_concurrency=args.send_concurrency)
                result["updates_per_s"] = result["updates"] / result["seconds"]
                rounds[name].append(result)
                if not args.json:
                    print(f"  {name:15s} {result['updates']} updates in {result['seconds']:.2f} s"
                          f" = {result['updates_per_s']:,.0f}/s ({result['sent']} messages)",
                          flush=True)
    finally:
        await fake.close()
        daemon.close()
        tmp.cleanup()
    echo = statistics.median(r["updates_per_s"] for r in rounds["echo"])
    ours = statistics.median(r["updates_per_s"] for r in rounds["brandbot"])
    return {"echo_updates_per_s": echo, "brandbot_updates_per_s": ours, "ratio": ours / echo,
            "rounds": rounds, "loop": args.loop, "updates": args.updates, "chats": args.chats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--updates", type=int, default=3000)
    parser.add_argument("-c", "--chats", type=int, default=300)
    parser.add_argument("-r", "--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--send-concurrency", type=int, default=8,
                        help="sendMessage requests in flight at once (the channel's default: 8)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        report = runner.run(main_async(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"echo (bare PTB)  {report['echo_updates_per_s']:,.0f} updates/s (median)")
        print(f"brandbot         {report['brandbot_updates_per_s']:,.0f} updates/s (median)")
        print(f"ratio            {report['ratio']:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
