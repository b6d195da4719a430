"""Readable operator output (issue item 8): tables that fit 100 columns with CJK widths,
times in the brand's zone, `fans --filter/--sort/--limit`, `handoff list` with reason, wait
and last message, and the report's days and KOLs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from click.testing import CliRunner

from bot.cli import main
from bot.humantime import ago, duration, flag, when
from bot.messages import FanRef, Inbound
from bot.persona.model import zone_named
from bot.tables import display_width, format_table, truncate
from tests.conftest import TINY
from tests.test_cli import HOSTILE_NAME, RAW_CONTROLS, _hostile_log
from tests.test_report import history, say  # noqa: F401 - a fixture, used by name

SHANGHAI = zone_named("Asia/Shanghai")


def _columns_start(line: str, cells: list[str]) -> list[int]:
    """Display offset where each of ``cells`` begins in ``line`` (searched left to right)."""
    out, pos = [], 0
    for c in cells:
        pos = line.index(c, pos)
        out.append(display_width(line[:pos]))
        pos += len(c)
    return out


# -- tables ---------------------------------------------------------------------------------------


def test_cjk_tables_fit_100_columns_and_stay_aligned():
    rows = [[1, "老王厨房的超级忠实粉丝" * 4, "web", "stranger"],
            [22, "bob", "telegram", "friend"],
            [333, "👨\u200d👩\u200d👧 家人" * 10, "wechat", "regular"]]
    lines = format_table(["id", "粉丝", "channel", "stage"], rows, max_width=100)
    assert all(display_width(line) <= 100 for line in lines)
    assert lines[1].count("…") == 1 and lines[3].count("…") == 1 and "…" not in lines[2]
    stage = [_columns_start(line, [w])[0] for line, w in
             zip(lines, ["stage", "stranger", "friend", "regular"], strict=True)]
    assert len(set(stage)) == 1, lines  # CJK counted double: the last column lines up
    # Without a limit nothing is cut (the old behaviour, for callers that need it whole).
    assert "…" not in "".join(format_table(["粉丝"], [["老王" * 80]]))


def test_truncate_counts_wide_characters_and_never_overflows():
    assert truncate("老王厨房", 8) == "老王厨房"
    assert truncate("老王厨房", 7) == "老王厨…"
    assert display_width(truncate("老王厨房", 6)) <= 6
    assert display_width("e\u0301") == 1 and display_width("👨\u200d👩\u200d👧") == 6


def test_hostile_names_stay_escaped_when_cut_to_fit():
    lines = format_table(["fan", "message"], [[HOSTILE_NAME * 5, "x" * 200]], max_width=60)
    for ch in RAW_CONTROLS:
        assert ch not in "".join(lines)
    assert lines[1].startswith("\\x1b]0;owned\\x07") and display_width(lines[1]) <= 60


# -- human times ----------------------------------------------------------------------------------


def test_times_show_in_the_brands_zone():
    now = datetime(2026, 3, 5, 23, 0, tzinfo=UTC)  # 3月6日 07:00 in Shanghai
    assert when("2026-03-05T22:05:09.123456Z", SHANGHAI, now, "zh") == "今天 06:05"
    assert when("2026-03-05T14:05:00.000000Z", SHANGHAI, now, "zh") == "昨天 22:05"
    assert when("2026-03-01T06:05:00.000000Z", SHANGHAI, now, "zh") == "3月1日 14:05"
    assert when("2025-12-31T20:00:00.000000Z", SHANGHAI, now, "en") == "Jan 1 04:00"
    assert when("2025-06-01T00:00:00.000000Z", SHANGHAI, now, "en") == "2025-06-01 08:00"
    assert when("2025-06-01T00:00:00.000000Z", SHANGHAI, now, "zh") == "2025年6月1日 08:00"
    assert when("2026-03-05T22:05:09.123456Z", zone_named("UTC"), now, "en") == "today 22:05"
    assert when("2026-02-01T00:00:00Z", zone_named("UTC"), now, "en") == "Feb 1 00:00"
    assert when("not a time", SHANGHAI, now) == "not a time" and when(None, SHANGHAI, now) == ""
    assert duration(125 * 60, "zh") == "2 小时 5 分" and duration(30, "en") == "< 1 min"
    assert duration(3 * 86400 + 7200 + 60, "en") == "3 d 2 h"
    assert ago("2026-03-05T21:00:00Z", now, "en") == "2 h ago"
    assert flag(1, "zh") == "是" and flag(0, "zh") == "否" and flag(1) == "✓" and flag(0) == "–"


# -- brandbot fans --------------------------------------------------------------------------------


def _crowd(engine, store) -> str:
    for i, channel in enumerate(["web", "web", "web", "telegram"]):
        engine.handle(Inbound(FanRef(channel, f"f{i}"), text="你好",
                              display_name=f"成都火锅爱好者第{i}号" * 3))
    with store.transaction() as conn:
        conn.execute("UPDATE fans SET subscribed = 1, score = 10 * id WHERE external_id != 'f1'")
    return store.path


def test_fans_filter_sort_and_limit(tiny_engine, fresh_db):
    db = _crowd(tiny_engine, fresh_db)
    runner = CliRunner()
    args = ["fans", "--db", db, "--filter", "channel=web", "--filter", "subscribed=yes",
            "--sort", "-score", "--json"]
    rows = [json.loads(x) for x in runner.invoke(main, args).output.splitlines()]
    assert [r["external_id"] for r in rows] == ["f2", "f0"]
    limited = runner.invoke(main, [*args, "--limit", "1"]).output.splitlines()
    assert [json.loads(x)["external_id"] for x in limited] == ["f2"]
    ascending = runner.invoke(main, ["fans", "--db", db, "--sort", "score", "--json"]).output
    assert [json.loads(x)["external_id"] for x in ascending.splitlines()][0] == "f1"
    table = runner.invoke(main, ["fans", "--db", db, "--sort", "-score", "--limit", "2"])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert "2 of 4 fan(s) shown" in lines[-1] and len(lines) == 4
    assert all(display_width(line) <= 100 for line in lines)
    named = runner.invoke(main, ["fans", "--db", db, "--filter", "name=第3号", "--json"]).output
    assert [json.loads(x)["external_id"] for x in named.splitlines()] == ["f3"]
    for bad in (["--filter", "colour=red"], ["--filter", "subscribed=maybe"],
                ["--sort", "age"], ["--filter", "channel"]):
        out = runner.invoke(main, ["fans", "--db", db, *bad])
        assert out.exit_code == 2 and "error:" in out.output, bad
    assert runner.invoke(main, ["fans", "--db", db, "--tz", "Mars/Base"]).exit_code == 2


def test_fans_table_is_readable_and_json_keeps_raw_values(tiny_engine, fresh_db):
    db = _crowd(tiny_engine, fresh_db)
    out = CliRunner().invoke(main, ["fans", "--db", db, "--tz", "Asia/Shanghai"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert all(display_width(line) <= 100 for line in lines), lines
    assert "dialog_state" not in lines[0] and "✓" in out.output and "–" in out.output
    # 2026-01-05 10:00 UTC is 18:00 in Shanghai; no microseconds, no 'T'.
    assert "Jan 5 18:00" in out.output and not re.search(r"\d\d:\d\d:\d\d", out.output)
    zh = CliRunner(env={"LC_ALL": "zh_CN.UTF-8"}).invoke(main, ["fans", "--db", db])
    assert "是" in zh.output and "1月5日 18:00" in zh.output and "4 个粉丝" in zh.output
    raw = json.loads(CliRunner().invoke(main, ["fans", "--db", db, "--json"])
                     .output.splitlines()[0])
    assert raw["last_seen"] == "2026-01-05T10:00:00.000000Z" and raw["subscribed"] in (0, 1)
    assert set(raw) >= {"external_id", "dialog_state", "handoff"}


# -- brandbot handoff list ------------------------------------------------------------------------


def test_handoff_list_says_why_how_long_and_the_last_message(tiny_engine, fresh_db, clock):
    db = _hostile_log(tiny_engine, fresh_db)
    tiny_engine.handle(Inbound(FanRef("web", "calm"), text="你好", display_name="阿明"))
    tiny_engine.handle(Inbound(FanRef("web", "calm"), text="转人工"))
    assert fresh_db.find_fan("tiny", "web", "calm")["handoff"] == 1
    out = CliRunner().invoke(main, ["handoff", "list", "--db", db])
    assert out.exit_code == 0, out.output
    for ch in RAW_CONTROLS:
        assert ch not in out.output
    lines = out.output.splitlines()
    assert lines[0].split()[4:] == ["reason", "started", "waiting", "last", "message"]
    assert all(display_width(line) <= 100 for line in lines)
    evil = next(x for x in lines if "\\x1b]0;owned" in x)
    calm = next(x for x in lines if "阿明" in x)
    assert "complaint" in evil and "我要投诉\\x9b3" in evil and " ago" in evil
    assert "asked for a human" in calm and "转人工" in calm
    assert "2 conversation(s) in handoff" in lines[-1]
    zh = CliRunner(env={"LC_ALL": "zh_CN.UTF-8"}).invoke(main, ["handoff", "list", "--db", db])
    assert "投诉" in zh.output and "要求人工" in zh.output and "前" in zh.output


# -- brandbot report ------------------------------------------------------------------------------


def test_report_counts_days_in_the_personas_zone(tiny_engine, fresh_db, clock):
    clock.now = datetime(2026, 1, 4, 20, 0, tzinfo=UTC)  # 1月5日 04:00 in Chengdu/Shanghai
    tiny_engine.handle(Inbound(FanRef("web", "night-owl"), text="你好"))
    runner = CliRunner()
    args = ["report", "--db", fresh_db.path, "--since", "2026-01-05", "--json"]
    data = json.loads(runner.invoke(main, [*args, "--persona", str(TINY)]).output)
    assert data["timezone"] == "Asia/Shanghai" and data["since"] == "2026-01-05"
    assert [d for d, _ in data["new_fans_per_day"]] == ["2026-01-05"]
    assert [d for d, *_ in data["messages_per_day"]] == ["2026-01-05"]
    utc = json.loads(runner.invoke(main, [*args[:-2], "2026-01-04", "--json",
                                          "--tz", "UTC"]).output)
    assert [d for d, _ in utc["new_fans_per_day"]] == ["2026-01-04"]
    kolkata = json.loads(runner.invoke(main, [*args[:-2], "2026-01-05", "--json",
                                              "--tz", "Asia/Kolkata"]).output)
    assert [d for d, _ in kolkata["new_fans_per_day"]] == ["2026-01-05"]  # 01:30 next day


def test_half_hour_zones_and_summer_time_put_messages_on_the_right_day(tiny_engine, fresh_db,
                                                                       clock):
    from bot.relations.reports import build

    for moment in (datetime(2026, 1, 4, 18, 20, tzinfo=UTC),    # Kolkata 23:50 on the 4th
                   datetime(2026, 1, 4, 18, 40, tzinfo=UTC),    # Kolkata 00:10 on the 5th
                   datetime(2026, 7, 4, 22, 30, tzinfo=UTC)):   # Berlin (summer) 00:30 on 5th
        clock.now = moment
        tiny_engine.handle(Inbound(FanRef("web", f"f{moment:%m%d%H%M}"), text="你好"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kolkata = build(fresh_db, datetime(2026, 1, 6, tzinfo=UTC), start,
                    zone=zone_named("Asia/Kolkata"))
    assert kolkata["new_fans_per_day"][:2] == [["2026-01-04", 1], ["2026-01-05", 1]]
    berlin = build(fresh_db, datetime(2026, 1, 6, tzinfo=UTC), start,
                   zone=zone_named("Europe/Berlin"))  # winter now, summer then
    assert berlin["new_fans_per_day"][-1] == ["2026-07-05", 1]


def test_report_lists_kols_of_every_persona_without_persona(history, tmp_path):  # noqa: F811
    out = CliRunner().invoke(main, ["report", "--db", history.path, "--since", "2026-01-01",
                                    "--json"])
    kols = json.loads(out.output)["top_kols"]
    assert kols and kols[0]["persona"] == "tiny" and kols[0]["direct"] == 2
    text = CliRunner().invoke(main, ["report", "--db", history.path, "--since", "2026-01-01"])
    assert "Top KOLs" in text.output and "days in Asia/Shanghai" in text.output
    assert all(display_width(line) <= 100 for line in text.output.splitlines()), text.output
