"""What moving the turn's fan writes into bot/relations/fans.py costs: A/B in one process.

The engine used to run the fan UPDATE itself; it now calls ``fans.save_turn`` with the same
statement on the same connection. This times both, in alternating blocks on one file database
inside transactions like a turn's, with CPU time (``time.process_time``) so a busy machine
inflates both sides alike.

    python bench/fan_writes.py [--rounds 20] [--block 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.relations import Store, fans  # noqa: E402

INLINE = (
    "UPDATE fans SET last_seen = ?, language = ?, dialog_state = ?, stage = ?, score = ?, "
    "score_at = ?, subscribed = ?, subscribed_at = ?, blocked = ?, handoff = ?, "
    "misses = ?, tags = ?, voice_memory = ?, display_name = coalesce(?, display_name) "
    "WHERE id = ?"
)


def inline(conn, fan_id: int, n: int) -> None:
    conn.execute(INLINE, ("2026-01-01T00:00:00.000000Z", "zh", "idle", "friend", float(n),
                          "2026-01-01T00:00:00.000000Z", 1, None, 0, 0, 0, "[]", "{}", None,
                          fan_id))


def through_relations(conn, fan_id: int, n: int) -> None:
    fans.save_turn(conn, fan_id, at="2026-01-01T00:00:00.000000Z", language="zh",
                   dialog_state="idle", stage="friend", score=float(n), subscribed=True,
                   subscribed_at=None, blocked=0, handoff=False, misses=0, tags="[]",
                   voice_memory="{}", display_name=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        with store.transaction() as conn:
            fan_id = fans.create_fan(conn, channel="web", external_id="f", persona="p",
                                     display_name=None, language="zh", dialog_state="idle",
                                     referral_code="abcd2345", at="2026-01-01T00:00:00Z")
        per_write: dict[str, list[float]] = {"inline": [], "relations": []}
        for _ in range(args.rounds):
            for name, write in (("inline", inline), ("relations", through_relations)):
                with store.transaction() as conn:
                    start = time.process_time()
                    for n in range(args.block):
                        write(conn, fan_id, n)
                    per_write[name].append((time.process_time() - start) / args.block * 1e6)
        store.close()
    for name, values in per_write.items():
        print(f"{name:>9}: median {statistics.median(values):.2f} µs per fan update "
              f"(min {min(values):.2f}, max {max(values):.2f}; {args.rounds} blocks of "
              f"{args.block})")


if __name__ == "__main__":
    main()
