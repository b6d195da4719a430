"""A forgotten fan leaves no bytes behind: the raw .db, -wal and -shm files are searched while
the store that forgot them is still open, as the daemon's is (issue: forgotten text survives)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.messages import FanRef, Inbound
from bot.relations import Store
from bot.relations.campaigns import create_campaign
from bot.relations.privacy import FORGOTTEN_CODE, export_fan, forget_fan

WORDS = "ZEBRA-QUOKKA-7731 我的手机号码是一三九"
NAME = "Xylophone-Margarethe"
TYPED_REF = "my-secret-ref-QX93"


def raw_files(db: Path) -> dict[str, bytes]:
    files = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(db) + suffix)
        files[path.name] = path.read_bytes() if path.exists() else b""
    return files


def holders(db: Path, secret: str) -> list[str]:
    """Which of the database's files contain ``secret`` (UTF-8 bytes)."""
    needle = secret.encode()
    return [name for name, data in raw_files(db).items() if needle in data]


@pytest.fixture
def live_store(tmp_path):
    """A store kept open like the daemon's: background checkpoints and a reader connection."""
    store = Store(tmp_path / "brandbot.db")
    store.checkpoint_in_background(interval=0.05)
    yield store
    store.close()


def talk(engine, who, text, **kw):
    engine.handle(Inbound(FanRef("telegram", who), text=text, platform_msg_id=f"{who}-{text}",
                          **kw))
    return engine.store.find_fan("tiny", "telegram", who)


@pytest.mark.parametrize("keep_aggregates", [True, False])
def test_forgotten_fan_leaves_no_bytes_in_db_wal_or_shm(live_store, tiny_brand, clock,
                                                         keep_aggregates):
    store = live_store
    engine = Engine(store, tiny_brand, clock=clock, seed=3)
    create_campaign(store, "tiny", "spring poster", clock(), code="spring26")
    alice = talk(engine, "oAlice-7731", WORDS, display_name=NAME, payload={"ref": TYPED_REF})
    talk(engine, "oAlice-7731", f"{WORDS} again")
    alice_code = alice["referral_code"]
    bob = talk(engine, "oBob", "有停车位吗", payload={"ref": alice_code})
    carol = talk(engine, "oCarol", "hello", payload={"ref": "spring26"})
    store.read("SELECT count(*) FROM fans")  # the reader connection exists, as in the daemon
    for secret in (WORDS, NAME, TYPED_REF, alice_code, "oAlice-7731"):
        assert holders(store.path and Path(store.path), secret), secret  # it was written

    forget_fan(store, alice["id"], keep_aggregates=keep_aggregates)

    db = Path(store.path)
    for secret in (WORDS, "ZEBRA-QUOKKA", "我的手机号码", NAME, TYPED_REF, alice_code,
                   "oAlice-7731"):
        assert holders(db, secret) == [], f"{secret!r} survives the forget"
    # Bob's own data stays; his link to Alice stays countable without her code.
    bob_row = store.fetch_one("SELECT * FROM fans WHERE id = ?", (bob["id"],))
    assert bob_row["source_code"] == FORGOTTEN_CODE
    assert bob_row["referred_by"] == (alice["id"] if keep_aggregates else None)
    assert store.fetch_one("SELECT code FROM referrals WHERE referred_id = ?",
                           (bob["id"],))["code"] == FORGOTTEN_CODE
    # An operator's campaign code is not the fan's: it stays and still counts.
    assert store.fetch_one("SELECT source_code FROM fans WHERE id = ?",
                           (carol["id"],))["source_code"] == "spring26"
    if keep_aggregates:
        data = json.dumps(export_fan(store, alice["id"]), ensure_ascii=False)
        for secret in (WORDS, NAME, TYPED_REF, alice_code, "oAlice-7731", "爱"):
            assert secret not in data
        assert export_fan(store, alice["id"])["fan"]["source_code"] == FORGOTTEN_CODE
    # The store keeps working after the checkpoint.
    assert talk(engine, "oDan", "你好")["id"]


def test_a_campaign_code_survives_forgetting_the_fan_it_brought(live_store, tiny_brand, clock):
    store = live_store
    engine = Engine(store, tiny_brand, clock=clock, seed=3)
    create_campaign(store, "tiny", "spring poster", clock(), code="spring26")
    fan = talk(engine, "oEve", "你好", payload={"ref": "spring26"})
    engine.handle(Inbound(FanRef("telegram", "oEve"), kind="event", event="follow",
                          payload={"ref": "spring26", "via": "qrcode"}))
    engine.handle(Inbound(FanRef("telegram", "oEve"), kind="event", event="follow",
                          payload={"ref": TYPED_REF, "via": "scan"}))
    forget_fan(store, fan["id"])
    codes = [json.loads(r["payload"]).get("ref") or json.loads(r["payload"]).get("code")
             for r in store.fetch_all("SELECT payload FROM events WHERE fan_id = ? "
                                      "AND kind IN ('referral', 'follow') ORDER BY id",
                                      (fan["id"],))]
    assert codes == ["spring26", "spring26", FORGOTTEN_CODE]
    assert store.fetch_one("SELECT code FROM referrals WHERE referred_id = ?",
                           (fan["id"],))["code"] == "spring26"


@pytest.mark.slow
def test_a_reader_holding_the_wal_delays_nothing_and_forget_again_empties_it(
        live_store, tiny_brand, clock, caplog):
    import sqlite3
    import time

    store = live_store
    engine = Engine(store, tiny_brand, clock=clock, seed=3)
    fan = talk(engine, "oFrank", WORDS, payload={"ref": TYPED_REF})
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM messages").fetchone()  # a snapshot from before
    try:
        started = time.monotonic()
        forget_fan(store, fan["id"])
        assert time.monotonic() - started < 10  # bounded wait, not the 30 s busy timeout
        assert "run the same `brandbot fan forget` again" in caplog.text
        assert holders(Path(store.path), WORDS) == ["brandbot.db-wal"]  # the old frames
        assert talk(engine, "oGrace", "你好")["id"]  # the store still works
    finally:
        reader.execute("COMMIT")
        reader.close()
    forget_fan(store, fan["id"])  # again, as the warning says: harmless, and the WAL empties
    assert holders(Path(store.path), WORDS) == []
    assert holders(Path(store.path), TYPED_REF) == []
