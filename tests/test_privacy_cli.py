"""`brandbot fan export` / `brandbot fan forget`: the privacy commands over a real log."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bot.cli import main
from bot.messages import FanRef, Inbound


def _chat(engine, who, text, **kw):
    engine.handle(Inbound(FanRef("web", who), text=text, display_name=f"Fan {who}", **kw))


def test_export_prints_everything_about_one_fan(tiny_engine, fresh_db):
    _chat(tiny_engine, "ann", "你好", payload={"ref": "POSTER"})
    _chat(tiny_engine, "ann", "几点开门")
    _chat(tiny_engine, "bob", "hello")
    out = CliRunner().invoke(main, ["fan", "export", "ann", "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["fan"]["display_name"] == "Fan ann"
    assert data["fan"]["source_code"] == "POSTER"
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == ["你好", "几点开门"]
    assert {e["kind"] for e in data["events"]} >= {"referral"}
    assert data["referred_by"][0]["code"] == "POSTER"


def test_forget_anonymises_and_keeps_counts(tiny_engine, fresh_db):
    _chat(tiny_engine, "ann", "我要投诉")
    fan_id = fresh_db.find_fan("tiny", "web", "ann")["id"]
    before = fresh_db.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    out = CliRunner().invoke(main, ["fan", "forget", str(fan_id), "--db", fresh_db.path, "-y"])
    assert out.exit_code == 0, out.output
    assert "anonymised" in out.output
    row = dict(fresh_db.conn.execute("SELECT * FROM fans WHERE id = ?", (fan_id,)).fetchone())
    assert row["external_id"] == f"forgotten-{fan_id}" and row["display_name"] is None
    texts = [r[0] for r in fresh_db.conn.execute("SELECT text FROM messages")]
    assert len(texts) == before and set(texts) == {""}
    assert fresh_db.find_fans("ann") == []


def test_forget_without_aggregates_deletes_rows_and_asks_first(tiny_engine, fresh_db):
    _chat(tiny_engine, "ann", "你好")
    runner = CliRunner()
    out = runner.invoke(main, ["fan", "forget", "ann", "--db", fresh_db.path,
                               "--no-aggregates"], input="n\n")
    assert out.exit_code == 1 and fresh_db.find_fans("ann")
    out = runner.invoke(main, ["fan", "forget", "ann", "--db", fresh_db.path,
                               "--no-aggregates"], input="y\n")
    assert out.exit_code == 0, out.output
    assert fresh_db.conn.execute("SELECT count(*) FROM fans").fetchone()[0] == 0
    assert fresh_db.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_unknown_or_ambiguous_fans_are_refused(tiny_engine, fresh_db):
    _chat(tiny_engine, "ann", "你好")
    out = CliRunner().invoke(main, ["fan", "export", "nobody", "--db", fresh_db.path])
    assert out.exit_code == 1 and "no fan 'nobody'" in out.output
    out = CliRunner().invoke(main, ["fan", "export", "x", "--db", "/nonexistent/db"])
    assert out.exit_code == 1


def test_a_fan_named_after_another_fans_id_cannot_shield_that_fan(tiny_engine, fresh_db):
    """Display names are the fans' own choice: Mallory calling himself "1" (Ann's id) or
    "ann" (Ann's platform id) must not make `fan forget 1` / `fan export ann` ambiguous, or
    Ann's request to be forgotten could never be carried out."""
    _chat(tiny_engine, "ann", "你好")
    ann = fresh_db.find_fan("tiny", "web", "ann")
    for alias in (str(ann["id"]), "ann"):
        tiny_engine.handle(Inbound(FanRef("web", f"mallory-{alias}"), text="hi",
                                   display_name=alias))
    out = CliRunner().invoke(main, ["fan", "export", "ann", "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["fan"]["id"] == ann["id"]
    out = CliRunner().invoke(main, ["fan", "forget", str(ann["id"]), "--db", fresh_db.path,
                                    "-y"])
    assert out.exit_code == 0, out.output
    assert fresh_db.fetch_one("SELECT external_id FROM fans WHERE id = ?",
                              (ann["id"],))["external_id"] == f"forgotten-{ann['id']}"
    assert len(fresh_db.find_fans("ann")) == 1  # Mallory is still there, untouched


def test_an_id_that_is_also_a_platform_id_is_refused_and_id_colon_picks_the_row(
        tiny_engine, fresh_db):
    # Telegram ids are numbers: "2" may be fan 2's row id and another fan's platform id.
    _chat(tiny_engine, "ann", "你好")
    _chat(tiny_engine, "1", "你好")  # platform id "1", row id 2; Ann is row 1
    out = CliRunner().invoke(main, ["fan", "export", "1", "--db", fresh_db.path])
    assert out.exit_code == 1 and "id:1" in out.output
    out = CliRunner().invoke(main, ["fan", "export", "id:1", "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["fan"]["external_id"] == "ann"
