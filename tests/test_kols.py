"""Referrals, campaigns and KOLs: who brought whom, influence, the automatic `kol` tag."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from bot.brand import load_brand
from bot.channels.registry import campaign_links as links
from bot.cli import main
from bot.engine import Engine
from bot.messages import FanRef, Inbound
from bot.relations.campaigns import CampaignError, create_campaign, list_campaigns
from bot.relations.kols import influence, rank
from bot.relations.scoring import decayed
from tests.conftest import ROOT, TINY


def say(engine, who: str, text: str = "你好", ref: str | None = None) -> list[str]:
    payload = {"ref": ref} if ref else {}
    return [r.text for r in engine.handle(Inbound(FanRef("web", who), text=text, payload=payload))]


def fan(store, who: str) -> dict:
    return store.find_fan("tiny", "web", who)


def events(store, fan_id: int, kind: str) -> list[dict]:
    rows = store.conn.execute(
        "SELECT payload FROM events WHERE fan_id = ? AND kind = ? ORDER BY id", (fan_id, kind)
    )
    return [json.loads(r[0]) for r in rows]


@pytest.fixture
def chain(tiny_engine, fresh_db):
    """A brings B and C by A's code; C brings D by C's code."""
    say(tiny_engine, "a")
    code_a = fan(fresh_db, "a")["referral_code"]
    say(tiny_engine, "b", ref=code_a)
    say(tiny_engine, "c", ref=code_a)
    say(tiny_engine, "d", ref=fan(fresh_db, "c")["referral_code"])
    return {w: fan(fresh_db, w) for w in "abcd"}


def test_a_chain_of_referrals_credits_the_right_fans(chain, fresh_db):
    a, b, c, d = (chain[w] for w in "abcd")
    assert b["referred_by"] == a["id"] and c["referred_by"] == a["id"]
    assert d["referred_by"] == c["id"]
    # A: one message (1) + two referrals (10 each); C: one message + one referral.
    assert a["score"] == pytest.approx(21)
    assert c["score"] == pytest.approx(11)
    # tiny's thresholds: acquaintance 3, friend 8. A's first referral took A from 1 to 11.
    assert events(fresh_db, a["id"], "stage_change") == [
        {"from": "stranger", "to": "friend", "score": 11.0}
    ]
    assert events(fresh_db, c["id"], "stage_change") == [
        {"from": "stranger", "to": "friend", "score": 11.0}
    ]
    assert events(fresh_db, b["id"], "stage_change") == []
    assert a["stage"] == c["stage"] == "friend" and b["stage"] == "stranger"
    refs = fresh_db.conn.execute("SELECT referrer_id, referred_id FROM referrals ORDER BY id")
    assert [tuple(r) for r in refs] == [(a["id"], b["id"]), (a["id"], c["id"]),
                                        (c["id"], d["id"])]


def test_influence_follows_the_documented_formula_and_ranks(chain, fresh_db, clock):
    a, b, c, d = (chain[w] for w in "abcd")
    ranked = rank(fresh_db, "tiny", load_brand(str(TINY)).persona.relationship, clock.now)
    assert [k.fan_id for k in ranked] == [a["id"], c["id"]]
    top = ranked[0]
    assert (top.direct, top.second) == (2, 1)
    expected = (10 + b["score"]) + (10 + c["score"]) + 0.5 * (10 + d["score"]) + 0.5 * a["score"]
    assert top.influence == pytest.approx(expected)
    assert ranked[1].influence == pytest.approx(10 + d["score"] + 0.5 * c["score"])


def test_influence_is_zero_without_anyone_brought_in():
    assert influence([], [5.0], 500.0) == 0.0


def test_the_kol_tag_comes_with_influence_and_dialogs_can_see_it(chain, tiny_engine, fresh_db):
    a = chain["a"]
    assert "kol" not in json.loads(a["tags"])  # influence 48 < 50
    say(tiny_engine, "b", "几点开门")  # B's engagement lifts A over the threshold
    say(tiny_engine, "b", "有停车位吗")
    a = fan(fresh_db, "a")
    assert "kol" in json.loads(a["tags"])
    assert len(events(fresh_db, a["id"], "kol")) == 1
    assert "kol" not in json.loads(fan(fresh_db, "c")["tags"])


def test_kol_tag_goes_after_a_long_silence(chain, tiny_engine, fresh_db, clock):
    say(tiny_engine, "b", "几点开门")
    say(tiny_engine, "b", "有停车位吗")
    assert "kol" in json.loads(fan(fresh_db, "a")["tags"])
    clock.advance(days=120)  # every score decays to 1/16
    say(tiny_engine, "a", "几点开门")
    a = fan(fresh_db, "a")
    assert "kol" not in json.loads(a["tags"])
    assert len(events(fresh_db, a["id"], "kol_lost")) == 1


def test_threshold_null_switches_tagging_off(tmp_path, fresh_db, clock):
    text = TINY.read_text(encoding="utf-8").replace(
        "  half_life_days: 30", "  half_life_days: 30\n  kol_threshold: null", 1
    )
    assert "kol_threshold: null" in text
    personas = tmp_path / "p" / "personas"
    personas.mkdir(parents=True)
    (personas / "tiny.yaml").write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "dialogs", tmp_path / "p" / "dialogs")
    engine = Engine(fresh_db, load_brand(str(personas / "tiny.yaml")), clock=clock, seed=1)
    say(engine, "a")
    code = fan(fresh_db, "a")["referral_code"]
    for who in "bcdefg":
        say(engine, who, ref=code)
    assert "kol" not in json.loads(fan(fresh_db, "a")["tags"])


def test_a_dialog_branches_on_the_kol_tag(tmp_path, fresh_db, clock):
    root = tmp_path / "p"
    (root / "personas").mkdir(parents=True)
    shutil.copy(TINY, root / "personas" / "tiny.yaml")
    shutil.copytree(ROOT / "dialogs", root / "dialogs")
    dialog = root / "dialogs" / "default.yaml"
    text = dialog.read_text(encoding="utf-8")
    ambassador = (
        "  - {trigger: deals, source: [chatting, confirm_subscribe], dest: chatting, "
        "conditions: [{has_tag: kol}], after: [{reply: greet}]}\n"
    )
    marker = "  - trigger: deals\n"
    dialog.write_text(text.replace(marker, ambassador + marker, 1), encoding="utf-8")
    engine = Engine(fresh_db, load_brand(str(root / "personas" / "tiny.yaml")), clock=clock, seed=1)
    say(engine, "a")
    assert say(engine, "a", "有什么优惠") == ["本周饮品第二杯半价"]
    code = fan(fresh_db, "a")["referral_code"]
    for who in "bcde":
        say(engine, who, ref=code)
    say(engine, "a", "你好")
    assert "kol" in json.loads(fan(fresh_db, "a")["tags"])
    assert say(engine, "a", "有什么优惠") in (["你好呀"], ["又见面啦"])


def test_campaign_codes_count_their_fans(tiny_engine, fresh_db, clock):
    created = create_campaign(fresh_db, "tiny", "Spring poster", clock.now)
    assert created.code.startswith("spring-poster-")
    say(tiny_engine, "x", ref=created.code)
    say(tiny_engine, "y", ref=created.code)
    say(tiny_engine, "y", ref="OTHER")  # a later touch: logged, not counted
    assert [c.fans for c in list_campaigns(fresh_db, "tiny")] == [2]
    assert fan(fresh_db, "y")["source_code"] == created.code
    assert events(fresh_db, fan(fresh_db, "y")["id"], "touch") == [{"code": "OTHER"}]
    with pytest.raises(CampaignError, match="already taken"):
        create_campaign(fresh_db, "tiny", "again", clock.now, code=created.code)
    with pytest.raises(CampaignError, match="deep link"):
        create_campaign(fresh_db, "tiny", "bad", clock.now, code="has space")


def test_links_carry_the_code_everywhere():
    out = links("abc", telegram_bot="@shop_bot", web_url="https://chat.example/")
    assert out["telegram"] == "https://t.me/shop_bot?start=abc"
    assert out["web"] == "https://chat.example/?ref=abc"
    assert "abc" in out["wechat"]


def test_cli_campaign_fan_link_and_kols(chain, fresh_db):
    db = fresh_db.path
    runner = CliRunner()
    out = runner.invoke(main, ["campaign", "create", "Expo", "--code", "expo26", "--db", db,
                               "--persona", "tiny", "--telegram-bot", "shop_bot"])
    assert out.exit_code == 0, out.output
    assert "https://t.me/shop_bot?start=expo26" in out.output
    out = runner.invoke(main, ["campaign", "list", "--db", db])
    assert "expo26" in out.output
    out = runner.invoke(main, ["fan", "link", str(chain["a"]["id"]), "--db", db])
    assert out.exit_code == 0 and chain["a"]["referral_code"] in out.output
    out = runner.invoke(main, ["kols", "--db", db, "--persona", str(TINY), "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["fan_id"] for r in rows] == [chain["a"]["id"], chain["c"]["id"]]
    out = runner.invoke(main, ["kols", "--db", db, "--persona", str(TINY), "--top", "1"])
    assert "influence" in out.output and out.output.count("\n") == 3


def test_decay_is_applied_to_influence(chain, fresh_db, clock):
    rules = load_brand(str(TINY)).persona.relationship
    later = clock.now.replace(year=2027)
    ranked = rank(fresh_db, "tiny", rules, later)
    a, b, c, d = (chain[w] for w in "abcd")

    def now_(f: dict) -> float:
        return decayed(f["score"], f["score_at"], later, rules)

    assert ranked[0].score == pytest.approx(now_(a))
    # Influence is made of the decayed scores, not of the stored ones: it fades with them.
    expected = (10 + now_(b)) + (10 + now_(c)) + 0.5 * (10 + now_(d)) + 0.5 * now_(a)
    assert now_(b) < b["score"]
    assert ranked[0].influence == pytest.approx(expected)


def test_each_fan_counts_who_they_brought_in_whoever_changes_it(chain, fresh_db):
    def counts() -> dict[str, int]:
        return {w: fan(fresh_db, w)["referrals"] for w in "abcd"}

    assert counts() == {"a": 2, "b": 0, "c": 1, "d": 0}
    conn = fresh_db.conn
    conn.execute("UPDATE fans SET referred_by = ? WHERE id = ?", (chain["c"]["id"],
                                                                  chain["b"]["id"]))
    assert counts() == {"a": 1, "b": 0, "c": 2, "d": 0}
    conn.execute("UPDATE fans SET referred_by = NULL WHERE id = ?", (chain["d"]["id"],))
    assert counts() == {"a": 1, "b": 0, "c": 1, "d": 0}
    conn.execute("INSERT INTO fans (channel, external_id, persona, first_seen, last_seen, "
                 "referred_by) VALUES ('web', 'e', 'tiny', 'now', 'now', ?)", (chain["a"]["id"],))
    assert counts()["a"] == 2
    conn.execute("DELETE FROM fans WHERE external_id = 'e'")
    assert counts() == {"a": 1, "b": 0, "c": 1, "d": 0}


def test_the_count_is_filled_in_for_a_log_made_before_it(tmp_path):
    import sqlite3

    import sqlite_utils

    from bot.relations.store import Store, migrations

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="m007_referrals_count")
    for n, parent in ((1, None), (2, 1), (3, 1), (4, 2)):
        old.conn.execute(
            "INSERT INTO fans (id, channel, external_id, persona, first_seen, last_seen, "
            "referred_by) VALUES (?, 'web', ?, 'tiny', 'now', 'now', ?)", (n, f"f{n}", parent))
    old.conn.commit()
    old.conn.close()
    store = Store(path)
    assert [r[0] for r in store.conn.execute("SELECT referrals FROM fans ORDER BY id")] == [
        2, 1, 0, 0]
    store.close()


def _bring_in(store, referrer_id: int, how_many: int, score: float, at: str) -> None:
    """``how_many`` fans brought in by ``referrer_id``, written by SQL (as an import would)."""
    store.conn.executemany(
        "INSERT INTO fans (channel, external_id, persona, first_seen, last_seen, score, "
        "score_at, referred_by) VALUES ('web', ?, 'tiny', ?, ?, ?, ?, ?)",
        [(f"bulk-{referrer_id}-{i}", at, at, score, at, referrer_id) for i in range(how_many)],
    )


def _sqlite_steps(store, action) -> int:
    """SQLite virtual-machine instructions that ``action`` costs: every row read shows here."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store.conn.set_progress_handler(count, 1)
    try:
        action()
    finally:
        store.conn.set_progress_handler(None, 1)
    return steps[0]


def test_a_turn_under_a_kol_does_not_read_everyone_the_kol_brought_in(chain, tiny_engine,
                                                                      fresh_db, clock):
    """Issue item 14: re-tagging the referrer read all its referrals (and theirs) every turn."""
    a = chain["a"]
    say(tiny_engine, "b", "几点开门")
    before = _sqlite_steps(fresh_db, lambda: say(tiny_engine, "b", "有停车位吗"))
    _bring_in(fresh_db, a["id"], 3000, 2.0, fan(fresh_db, "b")["score_at"])
    say(tiny_engine, "b", "几点开门")  # the tree changed by SQL: the sums are made again, once
    after = _sqlite_steps(fresh_db, lambda: say(tiny_engine, "b", "有停车位吗"))
    assert fan(fresh_db, "a")["referrals"] == 3002
    assert after < before * 1.5, (before, after)
    # ... and what the turn decided from its kept sums is what the full ranking computes.
    rules = load_brand(str(TINY)).persona.relationship
    ranked = {k.fan_id: k.influence for k in rank(fresh_db, "tiny", rules, clock.now)}
    assert "kol" in json.loads(fan(fresh_db, "a")["tags"])
    from bot.relations.kols import influence_of
    a_now = fan(fresh_db, "a")
    own = decayed(a_now["score"], a_now["score_at"], clock.now, rules)
    assert influence_of(fresh_db.conn, a["id"], own, clock.now, rules) == pytest.approx(
        ranked[a["id"]])


def test_the_kept_sums_follow_turns_referrals_decay_and_tree_changes(chain, tiny_engine,
                                                                   fresh_db, clock):
    from bot.relations.kols import influence_of

    rules = load_brand(str(TINY)).persona.relationship

    def agree() -> None:
        ranked = {k.fan_id: k for k in rank(fresh_db, "tiny", rules, clock.now)}
        for who in "abcd":
            f = fan(fresh_db, who)
            own = decayed(f["score"], f["score_at"], clock.now, rules)
            kept = influence_of(fresh_db.conn, f["id"], own, clock.now, rules)
            k = ranked.get(f["id"])
            assert kept == pytest.approx(k.influence if k else 0.0), who
            assert (f["referrals"], f["referrals2"]) == ((k.direct, k.second) if k else (0, 0))

    say(tiny_engine, "d", "几点开门")  # a grandchild of A's
    agree()
    clock.advance(days=10)
    say(tiny_engine, "b", "有停车位吗")
    say(tiny_engine, "e", ref=fan(fresh_db, "d")["referral_code"])  # D brings E: A's 3rd level
    say(tiny_engine, "f", ref=fan(fresh_db, "b")["referral_code"])  # B brings F: A's 2nd level
    agree()
    clock.advance(days=45)
    say(tiny_engine, "f", "几点开门")
    agree()
    # An operator moves D from C to B by hand: the triggers make the sums known-stale.
    fresh_db.conn.execute("UPDATE fans SET referred_by = ? WHERE id = ?",
                          (chain["b"]["id"], chain["d"]["id"]))
    agree()
    say(tiny_engine, "d", "谢谢")
    agree()


@pytest.mark.parametrize("who", ["a", "c", "d"])
@pytest.mark.parametrize("keep_aggregates", [True, False])
def test_forgetting_a_fan_in_the_tree_keeps_counts_and_sums_true(chain, tiny_engine, fresh_db,
                                                                 clock, who, keep_aggregates):
    """Forget the top (A), the middle (C: brought in by A, brought in D) or a leaf (D), keeping
    aggregates or not: every remaining fan's counts and kept sums agree with the tree."""
    from bot.relations.kols import influence_of
    from bot.relations.privacy import forget_fan

    rules = load_brand(str(TINY)).persona.relationship
    for w, text in (("d", "几点开门"), ("c", "有停车位吗"), ("b", "几点开门"), ("a", "谢谢")):
        say(tiny_engine, w, text)
    clock.advance(days=3)
    ids = {w: chain[w]["id"] for w in "abcd"}

    forget_fan(fresh_db, ids[who], keep_aggregates=keep_aggregates)

    ranked = {k.fan_id: k for k in rank(fresh_db, "tiny", rules, clock.now)}
    for w, fan_id in ids.items():
        f = fresh_db.fetch_one("SELECT * FROM fans WHERE id = ?", (fan_id,))
        if f is None:
            assert w == who and not keep_aggregates
            continue
        direct = fresh_db.fetch_one("SELECT count(*) AS n FROM fans WHERE referred_by = ?",
                                    (fan_id,))["n"]
        second = fresh_db.fetch_one(
            "SELECT count(*) AS n FROM fans WHERE referred_by IN "
            "(SELECT id FROM fans WHERE referred_by = ?)", (fan_id,))["n"]
        assert (f["referrals"], f["referrals2"]) == (direct, second), w
        own = decayed(f["score"], f["score_at"], clock.now, rules)
        kept = influence_of(fresh_db.conn, fan_id, own, clock.now, rules)
        k = ranked.get(fan_id)
        assert kept == pytest.approx(k.influence if k else 0.0), w
    say(tiny_engine, "b", "几点开门")  # turns go on over the changed tree
