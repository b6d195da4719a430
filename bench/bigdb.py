"""A big relationship log (1,000,000 fans, 10,000,000 messages) and the scale measurements on it.

The log is built with bulk SQL (recursive CTEs, ``INSERT … SELECT``) in one transaction with the
journal off, on the schema of the real migrations (``Store`` opens the file first), its
indexes and triggers dropped during the load and re-created after, so it takes minutes, not
hours. The data is deterministic (arithmetic hashes, no random()): the same command builds the
same log. ``--kol N`` gives fan 1 N direct referrals (a KOL), a tenth of whom brought in one
more fan each; the rest of the referrals (30% of fans) point at earlier fans at random.

    python bench/bigdb.py build /tmp/big.db [--fans 1000000] [--messages 10000000] [--kol 50000]
    python bench/bigdb.py turns /tmp/big.db [--turns 3000]     # item 14: KOL's fans vs others
    python bench/bigdb.py commands /tmp/big.db                  # item 16: kols / report -p
    python bench/bigdb.py serve /tmp/big.db [-c 16 -d 20]       # item 15: web chat latency

``turns``, ``serve`` and ``commands`` write to the log (new turns) or only read it; rebuild
(or copy the file first) to compare runs on identical data. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PERSONA = "laowang-kitchen"
DAYS = 180  # the log spans this many days up to the build time
TEXTS = ["你好", "你们几点开门", "有停车位吗", "地址在哪", "可以订位吗", "谢谢", "有优惠吗",
         "hello", "what time do you open", "do you deliver", "量子力学", "asdkjh qwe"]
INTENTS = ["greeting", "hours", "parking", "location", "reservation", "thanks", "deals",
           "greeting", "hours", "delivery", None, None]
TABLES = ("fans", "messages", "events", "referrals")


def _hash(expr: str, mod: int) -> str:
    """A deterministic pseudo-random number in [0, mod) from an integer SQL expression."""
    return f"((({expr}) * 2654435761 + 40503) % 4294967296 % {mod})"


def _ts(seconds_expr: str) -> str:
    """The log's timestamp format (``store.iso``) for ``:start`` + ``seconds_expr`` seconds."""
    return (f"strftime('%Y-%m-%dT%H:%M:%S', :start + ({seconds_expr}), 'unixepoch') "
            f"|| '.000000Z'")


def build(path: Path, fans: int, messages: int, kol: int) -> None:
    from bot.brand import load_brand
    from bot.relations import Store

    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    Store(path).close()  # the real schema, from the real migrations
    brand = load_brand(PERSONA)
    stages = brand.persona.relationship.stages
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    conn.execute("PRAGMA temp_store=MEMORY")
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
        f"AND tbl_name IN ({','.join('?' * len(TABLES))}) AND sql IS NOT NULL", TABLES
    ).fetchall()
    conn.execute("BEGIN")
    for kind, name, _ in schema:
        conn.execute(f"DROP {kind} {name}")
    span = DAYS * 86400
    params = {"start": int(time.time()) - span, "fans": fans, "kol": kol,
              "per_fan": span / fans, "initial": brand.dialog.initial}
    stage = "CASE " + " ".join(
        f"WHEN score >= {stages[s]} THEN '{s}'" for s in sorted(stages, key=stages.get,
                                                              reverse=True)
    ) + " ELSE 'stranger' END"
    # Fans: 1..N in order of first contact. Fan 1 is the KOL; fans 2..kol+1 (every one that is
    # not a multiple of 10 past the KOL's own) came through it; 30% of the others through a
    # random earlier fan.
    referred = (
        f"CASE WHEN i = 1 THEN NULL "
        f"WHEN i <= :kol + 1 THEN 1 "
        f"WHEN i <= :kol + 1 + :kol / 10 THEN i - :kol / 10 "
        f"WHEN {_hash('i', 10)} < 3 THEN 1 + {_hash('i + 7', 1000000007)} % (i - 1) "
        f"ELSE NULL END"
    )
    conn.execute(
        f"""
        INSERT INTO fans (id, channel, external_id, persona, display_name, language, first_seen,
            last_seen, dialog_state, stage, score, score_at, subscribed, tags, referred_by,
            referral_code, source_code)
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :fans),
        f AS (SELECT i, {referred} AS ref, {_hash('i', 60)} * 1.0 AS score,
                     CAST(i * :per_fan AS INTEGER) AS first, {_hash('i + 3', 86400 * 30)} AS gap
              FROM n)
        SELECT i, CASE i % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'telegram' ELSE 'wechat' END,
            'big-' || i, '{PERSONA}', 'fan ' || i, CASE WHEN i % 4 = 0 THEN 'en' ELSE 'zh' END,
            {_ts('first')}, {_ts('min(first + gap, ' + str(span) + ')')},
            :initial, {stage}, score, {_ts('min(first + gap, ' + str(span) + ')')},
            {_hash('i + 5', 5)} = 0, '[]', CASE WHEN ref = i THEN NULL ELSE ref END,
            'big' || i, CASE WHEN ref IS NOT NULL THEN 'big' || ref END
        FROM f
        """,
        params,
    )
    conn.execute(
        "INSERT INTO referrals (referrer_id, referred_id, code, channel, created_at) "
        "SELECT referred_by, id, source_code, channel, first_seen FROM fans "
        "WHERE referred_by IS NOT NULL"
    )
    conn.execute(
        "UPDATE fans SET referrals = c.n FROM (SELECT referred_by AS p, count(*) AS n FROM fans "
        "WHERE referred_by IS NOT NULL GROUP BY 1) AS c WHERE fans.id = c.p"
    )
    print(f"fans: {time.perf_counter() - started:.0f} s", flush=True)
    # Messages: pairs (inbound 2j-1, its reply 2j), time-ordered, fans at random.
    pairs = messages // 2
    texts, intents = json.dumps(TEXTS, ensure_ascii=False), json.dumps(INTENTS)
    for direction, id_expr in (("in", "2 * j - 1"), ("out", "2 * j")):
        conn.execute(
            f"""
            INSERT INTO messages (id, fan_id, direction, text, intent, confidence,
                state_before, state_after, platform_msg_id, created_at, channel, language,
                reply_key, in_reply_to, kind)
            WITH RECURSIVE n(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM n WHERE j < :pairs)
            SELECT {id_expr}, 1 + {_hash('j', 'max(:fans, 1)')}, '{direction}',
                CASE WHEN '{direction}' = 'in' THEN json_extract(:texts, '$[' || (j % 12) || ']')
                     ELSE '好的，收到' END,
                CASE WHEN '{direction}' = 'in' THEN json_extract(:intents, '$[' || (j % 12) || ']')
                     END,
                CASE WHEN '{direction}' = 'in' THEN 0.9 END, :initial, :initial,
                CASE WHEN '{direction}' = 'in' THEN 'big-' || j END,
                {_ts('CAST(j * :per_msg AS INTEGER)')}, 'web', 'zh',
                CASE WHEN '{direction}' = 'out' THEN 'answer' END,
                CASE WHEN '{direction}' = 'out' THEN 2 * j - 1 END, 'message'
            FROM n
            """,
            {**params, "pairs": pairs, "texts": texts, "intents": intents,
             "per_msg": span / max(pairs, 1)},
        )
        print(f"messages ({direction}): {time.perf_counter() - started:.0f} s", flush=True)
    conn.execute(
        "INSERT INTO events (fan_id, kind, payload, created_at) "
        "SELECT id, 'referral', json_object('code', source_code, 'referrer_id', referred_by), "
        "first_seen FROM fans WHERE referred_by IS NOT NULL "
        "UNION ALL SELECT id, 'subscribe', '{}', first_seen FROM fans WHERE subscribed = 1 "
        "UNION ALL SELECT id, 'handoff', '{}', last_seen FROM fans WHERE id % 1000 = 0"
    )
    for kind, _name, sql in schema:  # indexes first, then triggers (they need the columns only)
        if kind == "index":
            conn.execute(sql)
    print(f"indexes: {time.perf_counter() - started:.0f} s", flush=True)
    for kind, _name, sql in schema:
        if kind == "trigger":
            conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    Store(path).close()  # any migration newer than the build applies (as for a real log)
    size = path.stat().st_size / 2**20
    print(f"built {path} ({size:.0f} MB) in {time.perf_counter() - started:.0f} s: "
          f"{fans:,} fans, {pairs * 2:,} messages, KOL fan 1 with {kol:,} referrals")


# -- item 14: turns of fans under a KOL -----------------------------------------------------------


def turns(path: Path, count: int) -> None:
    """Turns of fans the KOL (fan 1) brought in vs turns of fans nobody brought in, alternated
    so that both see the same machine load; also the KOL's own turns."""
    from bot.brand import load_brand
    from bot.engine import Engine
    from bot.messages import FanRef, Inbound
    from bot.relations import Store

    store = Store(path)
    store.checkpoint_in_background()
    engine = Engine(store, load_brand(PERSONA), seed=0)
    referrals = store.fetch_one("SELECT referrals FROM fans WHERE id = 1")[0]
    kids = [r[0] for r in store.fetch_all(
        "SELECT external_id FROM fans WHERE referred_by = 1 LIMIT 2000")]
    others = [r[0] for r in store.fetch_all(
        "SELECT external_id FROM fans WHERE referred_by IS NULL AND referrals = 0 "
        "ORDER BY id DESC LIMIT 2000")]
    rng = random.Random(1)
    groups = {"under the KOL": kids, "other fans": others, "the KOL itself": ["big-1"]}
    lat: dict[str, list[float]] = {g: [] for g in groups}
    run = int(time.time())
    # Warm-up, not timed: the first turn under the KOL computes its kept sums from the
    # referral tree once (a log made before them); every later turn uses them.
    for group, ids in groups.items():
        engine.handle(Inbound(FanRef(_CHANNELS[int(ids[0].split("-")[1]) % 3], ids[0]),
                              text="你好", platform_msg_id=f"w{run}-{group}"))
    for i in range(count):
        for group, ids in groups.items():
            if group == "the KOL itself" and i % 10:
                continue
            external = rng.choice(ids)
            channel = _CHANNELS[int(external.split("-")[1]) % 3]
            fan = FanRef(channel, external)
            inbound = Inbound(fan, text=rng.choice(TEXTS), platform_msg_id=f"t{run}-{i}")
            t0 = time.perf_counter()
            engine.handle(inbound)
            lat[group].append(time.perf_counter() - t0)
    store.close()
    out = {"kol_referrals": referrals}
    for group, values in lat.items():
        values.sort()
        out[group] = {"turns": len(values), "turns_per_s": round(len(values) / sum(values), 1),
                      "p50_ms": round(values[len(values) // 2] * 1000, 2),
                      "p99_ms": round(values[int(len(values) * 0.99)] * 1000, 2)}
    out["ratio_under_kol_vs_others"] = round(
        out["under the KOL"]["turns_per_s"] / out["other fans"]["turns_per_s"], 2)
    print(json.dumps(out, ensure_ascii=False, indent=1))


_CHANNELS = ("web", "telegram", "wechat")


def stalls(path: Path, count: int) -> None:
    """Turns one after another on the log as the daemon writes it (background checkpoints),
    each timed, with the WAL's size and restarts (its header's checkpoint sequence) beside:
    a stall that comes with the WAL starting over is the writer's own checkpoint."""
    from bot.brand import load_brand
    from bot.engine import Engine
    from bot.messages import FanRef, Inbound
    from bot.relations import Store

    store = Store(path)
    store.checkpoint_in_background()
    engine = Engine(store, load_brand(PERSONA), seed=0)
    wal = Path(f"{path}-wal")
    rng, run = random.Random(2), int(time.time())
    fans = [FanRef("web", f"stall-{run}-{i}") for i in range(800)]

    def restarts() -> int:
        with open(wal, "rb") as f:
            return int.from_bytes(f.read(16)[12:16], "big")

    samples = []
    for i in range(count):
        before = restarts()
        t0 = time.perf_counter()
        engine.handle(Inbound(rng.choice(fans), text=rng.choice(TEXTS), platform_msg_id=f"s{i}"))
        samples.append((time.perf_counter() - t0, i, restarts() != before))
    store.close()
    # The WAL starts over at the write *after* the checkpoint that emptied it: mark the turn
    # before each restart (its commit checkpointed, if it was the writer's own checkpoint).
    samples = [(d, i, i + 1 < len(samples) and samples[i + 1][2]) for d, i, _ in samples]
    lat = sorted(s[0] for s in samples)
    slow = [s for s in samples if s[0] > 0.02]
    print(json.dumps({
        "turns": count, "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2), "max_ms": round(lat[-1] * 1000, 1),
        "wal_restarts": sum(1 for s in samples if s[2]),
        "turns_over_20ms": len(slow),
        "of_them_just_before_a_wal_restart": sum(1 for s in slow if s[2]),
        "slowest": [[i, round(d * 1000, 1), r] for d, i, r in sorted(samples)[-8:]],
        "before_restarts_ms": [round(d * 1000, 1) for d, _, r in samples if r],
    }))


# -- item 16: the operator commands ---------------------------------------------------------------


def commands(path: Path, since: str) -> None:
    """Peak RSS and wall time of ``brandbot kols``, ``report`` (with and without
    ``--persona``), ``fans`` and ``handoff list``."""
    runs = {
        "kols": ["kols", "--top", "20", "--persona", PERSONA, "--db", str(path)],
        "report -p": ["report", "--since", since, "--persona", PERSONA, "--db", str(path)],
        # item 8: listings chosen by SQLite, never the whole fan table in Python
        "fans": ["fans", "--db", str(path)],
        "fans -f": ["fans", "--filter", "channel=web", "--filter", "subscribed=yes", "--sort",
                    "-score", "--limit", "20", "--db", str(path)],
        "handoffs": ["handoff", "list", "--db", str(path)],
        "report": ["report", "--since", since, "--db", str(path)],
    }
    for name, argv in runs.items():
        code = ("import resource, sys, time; from bot.cli import main; t = time.perf_counter()\n"
                "try:\n    main(sys.argv[1:], standalone_mode=False)\nfinally:\n"
                "    print(json.dumps({'s': round(time.perf_counter() - t, 2), 'rss_mb': round("
                "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), "
                "file=sys.stderr)")
        proc = subprocess.run([sys.executable, "-c", "import json\n" + code, *argv], cwd=ROOT,
                              capture_output=True, text=True)
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        print(f"{name:10} exit {proc.returncode} {tail}")
        print("  " + "\n  ".join(proc.stdout.splitlines()[-8:]))


# -- item 15: web chat latency over time ----------------------------------------------------------


def serve(path: Path, connections: int, duration: float, trace: str | None) -> None:
    """``brandbot serve`` on the big log, 16 keep-alive connections of web chat turns; latency
    percentiles and the slowest moments (a stall shows as many slow requests at once)."""
    import secrets

    from loadgen import free_port, read_response
    from serve_load import MESSAGES, peak_rss_mb, start_daemon

    port = free_port()
    api_key = secrets.token_urlsafe(24)  # the bench names its fans: the daemon's web.api_key
    proc, ready = start_daemon(port, str(path), {"BRANDBOT_WEB__API_KEY": api_key})
    auth = f"Authorization: Bearer {api_key}\r\n".encode()
    samples: list[tuple[float, float]] = []  # (when sent, latency)
    run = int(time.time())

    async def drive(seconds: float, record: bool) -> None:
        stop_at = time.perf_counter() + seconds

        async def connection(number: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            rng, n = random.Random(number), 0
            try:
                while time.perf_counter() < stop_at:
                    n += 1
                    body = json.dumps({"text": rng.choice(MESSAGES),
                                       "fan": f"big-{number}-{n % 50}",
                                       "msg_id": f"{run}-{record}-{number}-{n}"},
                                      ensure_ascii=False).encode()
                    t0 = time.perf_counter()
                    writer.write(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth
                                 + b"Content-Type: application/json\r\nContent-Length: %d"
                                 b"\r\n\r\n" % len(body) + body)
                    status, _ = await read_response(reader)
                    if record:
                        samples.append((t0, time.perf_counter() - t0))
                    if b" 200 " not in status:
                        raise SystemExit(f"web chat answered {status!r}")
            finally:
                writer.close()

        await asyncio.gather(*(connection(i) for i in range(connections)))

    try:
        asyncio.run(drive(2.0, False))
        started = time.perf_counter()
        asyncio.run(drive(duration, True))
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    lat = sorted(s[1] for s in samples)
    pick = lambda p: round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 2)  # noqa: E731
    slow = sorted(samples, key=lambda s: -s[1])[:8]
    print(json.dumps({"connections": connections, "requests": len(lat),
                      "req_per_s": round(len(lat) / elapsed, 1), "p50_ms": pick(50),
                      "p90_ms": pick(90), "p99_ms": pick(99), "max_ms": round(lat[-1] * 1000, 1),
                      "peak_rss_mb": round(rss, 1), "ready_s": round(ready, 2),
                      "slowest_at_s": [[round(t - started, 2), round(d * 1000, 1)]
                                       for t, d in slow]}))
    if trace:
        Path(trace).write_text("".join(f"{t - started:.4f} {d * 1000:.2f}\n"
                                       for t, d in sorted(samples)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the log")
    b.add_argument("db", type=Path)
    b.add_argument("--fans", type=int, default=1_000_000)
    b.add_argument("--messages", type=int, default=10_000_000)
    b.add_argument("--kol", type=int, default=50_000, help="direct referrals of fan 1 (0: none)")
    t = sub.add_parser("turns", help="engine turns: fans under the KOL vs other fans")
    t.add_argument("db", type=Path)
    t.add_argument("--turns", type=int, default=3000)
    st = sub.add_parser("stalls", help="turn latency over time and the WAL's restarts")
    st.add_argument("db", type=Path)
    st.add_argument("--turns", type=int, default=20000)
    c = sub.add_parser("commands", help="peak RSS and time of kols / report --persona")
    c.add_argument("db", type=Path)
    c.add_argument("--since", default=(datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d"))
    s = sub.add_parser("serve", help="web chat latency on the log")
    s.add_argument("db", type=Path)
    s.add_argument("-c", "--connections", type=int, default=16)
    s.add_argument("-d", "--duration", type=float, default=20.0)
    s.add_argument("--trace", help="write 'seconds latency_ms' per request here")
    s.add_argument("--copy", action="store_true", help="serve a copy (leave the built log as is)")
    args = ap.parse_args()
    if args.command == "build":
        build(args.db, args.fans, args.messages, args.kol)
    elif args.command == "turns":
        turns(args.db, args.turns)
    elif args.command == "stalls":
        stalls(args.db, args.turns)
    elif args.command == "commands":
        commands(args.db, args.since)
    else:
        if args.copy:
            with tempfile.TemporaryDirectory(dir=args.db.parent) as tmp:
                copy = Path(tmp) / args.db.name
                shutil.copy(args.db, copy)
                serve(copy, args.connections, args.duration, args.trace)
        else:
            serve(args.db, args.connections, args.duration, args.trace)


if __name__ == "__main__":
    main()
