"""Entity extraction for forms (issue 11, item 2): the expression table and hostile input.

The table (tests/data/entities/expressions.jsonl and the held-out probes.jsonl) was written
before the extractor; every line not marked ``must_pass: false`` must come out exactly right.
Speed is measured by bench/entities.py, never here.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from bench.entity_table import NOW, TZ, load_rows, row_correct
from bot.entities import KINDS, MAX_TEXT, Entity, Party, extract, first
from bot.persona.model import zone_named

ROWS = [(name, row) for name in ("expressions.jsonl", "probes.jsonl") for row in load_rows(name)]
MUST = [(n, r) for n, r in ROWS if r.get("must_pass", True)]
KNOWN = [(n, r) for n, r in ROWS if not r.get("must_pass", True)]


def _answers(row: dict) -> list[dict]:
    return [e.to_json() for e in extract(row["text"], now=NOW, tz=TZ, locale=row["locale"])]


def test_the_tables_are_big_enough_and_cover_every_kind():
    table = load_rows("expressions.jsonl")
    assert len(table) >= 200
    kinds = {e["kind"] for row in table for e in row["expect"]}
    assert kinds == set(KINDS)
    assert {row["locale"][:5] for row in table} >= {"zh-CN", "zh-TW", "zh-HK", "en-US", "en-GB"}
    assert sum(1 for row in table if any(e.get("invalid") for e in row["expect"])) >= 20
    assert sum(1 for row in table if not row["expect"]) >= 15


@pytest.mark.parametrize(("table", "row"), MUST, ids=[f"{n}:{r['line']}" for n, r in MUST])
def test_expression(table, row):
    answers = _answers(row)
    assert row_correct(answers, row), (
        f"{row['text']!r} ({row['locale']}): expected {row['expect']}, got {answers}")


@pytest.mark.parametrize(("table", "row"), KNOWN, ids=[f"{n}:{r['line']}" for n, r in KNOWN])
def test_known_failures_are_still_failing(table, row):
    """Known misses stay listed with their reason; fixing one must move it into the table."""
    assert row.get("note"), "a known failure needs its reason in `note`"
    assert not row_correct(_answers(row), row)


def test_spans_point_into_the_original_text():
    for _, row in ROWS:
        for entity in extract(row["text"], now=NOW, tz=TZ, locale=row["locale"]):
            assert row["text"][entity.start:entity.end] == entity.text
            assert entity.text


def test_one_message_fills_several_slots_and_says_which_text_was_used():
    found = extract("我想订明天晚上7点4个人", now=NOW, tz=TZ, locale="zh-CN")
    assert [e.kind for e in found] == ["datetime", "party"]
    when, party = found
    assert when.text == "明天晚上7点" and party.text == "4个人"
    assert when.date == dt.date(2026, 12, 10) and when.time == dt.time(19, 0)
    assert when.value.tzinfo is not None and when.value.utcoffset() == dt.timedelta(hours=8)
    assert party.value == Party(4)
    assert first(found, "party") is party and first(found, "phone") is None


def test_impossible_values_are_reported_with_a_bilingual_reason():
    [day] = extract("2月30日", now=NOW, tz=TZ)
    assert not day.valid and day.value is None
    assert day.problem.code == "no_such_day"
    assert day.problem.message("zh") == "2月没有30日"
    assert day.problem.message("en") == "February has no 30th"
    [hour] = extract("25点", now=NOW, tz=TZ)
    assert hour.problem.code == "no_such_hour" and "25" in hour.problem.zh
    [big] = extract("500人", now=NOW, tz=TZ, max_party=50)
    assert big.problem.code == "party_too_large" and big.value == Party(500)
    assert "50" in big.problem.en and "500" in big.problem.zh
    [ok] = extract("500人", now=NOW, tz=TZ, max_party=600)
    assert ok.valid and ok.value.total == 500
    [phone] = extract("1381234567", now=NOW, tz=TZ)
    assert phone.problem.code == "bad_phone" and "1381234567" in phone.problem.zh


def test_past_dates_are_flagged_for_booking_forms():
    [morning] = extract("今天上午10点", now=NOW, tz=TZ)
    [evening] = extract("今天晚上7点", now=NOW, tz=TZ)
    assert morning.past and not evening.past
    [yesterday] = extract("yesterday", now=NOW, tz=TZ, locale="en-GB")
    assert yesterday.past and yesterday.valid


def test_relative_dates_resolve_in_the_given_time_zone():
    # 20:00 UTC on the 9th is already 04:00 on the 10th in Shanghai.
    now = dt.datetime(2026, 12, 9, 20, 0, tzinfo=dt.UTC)
    [in_shanghai] = extract("明天", now=now, tz=zone_named("Asia/Shanghai"))
    [in_london] = extract("明天", now=now, tz="Europe/London")
    assert in_shanghai.value == dt.date(2026, 12, 11)
    assert in_london.value == dt.date(2026, 12, 10)
    # A naive now is read in tz.
    [naive] = extract("tomorrow", now=dt.datetime(2026, 12, 9, 23, 30), tz="Asia/Shanghai")
    assert naive.value == dt.date(2026, 12, 10)
    [at] = extract("tomorrow 7pm", now=now, tz="America/New_York", locale="en-US")
    assert at.value.isoformat() == "2026-12-10T19:00:00-05:00"


def test_the_locale_decides_day_and_month_order():
    def read(locale):
        return extract("5/3", now=NOW, tz=TZ, locale=locale)[0].value

    assert read("zh-CN") == read("en-US") == read("zh-TW") == dt.date(2027, 5, 3)
    assert read("en-GB") == read("zh-HK") == dt.date(2027, 3, 5)


def test_asking_for_some_kinds_does_not_change_what_the_text_means():
    assert extract("明天晚上7点4个人", kinds={"number"}, now=NOW, tz=TZ) == []
    [party] = extract("明天晚上7点4个人", kinds={"party"}, now=NOW, tz=TZ)
    assert party.value.total == 4


def test_traditional_names_come_back_as_written():
    [name] = extract("我叫陳大文", now=NOW, tz=TZ, locale="zh-HK")
    assert name.value == "陳大文"
    [surname] = extract("我姓歐陽", now=NOW, tz=TZ, locale="zh-TW")
    assert surname.value == "歐陽" and surname.surname


def test_to_json_is_json():
    found = extract("明天晚上7点，两个大人一个小孩，电话13812345678，2月30日", now=NOW, tz=TZ)
    data = json.loads(json.dumps([e.to_json() for e in found], ensure_ascii=False))
    assert [d["kind"] for d in data] == ["datetime", "party", "phone", "date"]
    assert data[0]["value"] == "2026-12-10T19:00+08:00"
    assert data[1]["value"] == {"total": 3, "adults": 2, "children": 1}
    assert data[3]["invalid"] == "no_such_day" and data[3]["reason"]["zh"] == "2月没有30日"


HOSTILE = [
    "", " ", "\x00\x01\x02\x7f", "\u200b\u202e\ufeff", "\ud800", "🎉" * 500, "👨‍👩‍👧‍👦明天",
    "明天" * 5000, "1" * 10_000, "1 " * 5000, "-" * 10_000, "+" * 10_000, "１２：３０" * 1000,
    "点" * 10_000, "七点七点七点" * 1000, "明天晚上7点4个人\n" * 600, "a@" * 5000, "@." * 5000,
    "我叫" * 5000, "my name is " * 1000, "next " * 2000 + "friday", "half past " * 1000,
    "Ｍｙ ｎａｍｅ ｉｓ Ａｎｎａ，明天7:30pm兩位 ☎️ +86 138-1234-5678 🍜", "İ" * 1000 + "明天",
    "2" * 60 + "月" + "3" * 60 + "日", "9" * 400 + "点", "/".join(["12"] * 3000),
    "十" * 5000 + "个人", "廿卅" * 2000, "ﬀ" * 3000, "\t\r\n" * 3000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_never_raises(text):
    started = time.monotonic()
    for locale in ("zh-CN", "zh-HK", "en-GB"):
        found = extract(text, now=NOW, tz=TZ, locale=locale)
        assert all(isinstance(e, Entity) for e in found)
        for entity in found:
            assert text[entity.start:entity.end] == entity.text
            assert entity.end <= MAX_TEXT
    # Generous: a regular expression gone quadratic/exponential would take minutes, not seconds.
    assert time.monotonic() - started < 20


def test_non_strings_and_bad_arguments_are_harmless():
    assert extract(None) == []  # type: ignore[arg-type]
    assert extract(b"\xff\xfe") == []  # type: ignore[arg-type]
    assert extract("明天", kinds=[]) == []
    assert extract("明天", now=NOW, tz=TZ, locale="xx-YY")[0].value == dt.date(2026, 12, 10)
    assert extract("明天", now=NOW, tz=TZ, locale="")[0].value == dt.date(2026, 12, 10)


def test_a_clock_time_does_not_swallow_the_next_one():
    # Regression: "七点 九" was read as 7 o'clock with a dropped minute, hiding 九点.
    found = extract("晚上七点 九点", now=NOW, tz=TZ)
    assert [(e.text, e.time) for e in found] == [("晚上七点", dt.time(19)), ("九点", dt.time(9))]
    assert found[1].ambiguous


def test_a_range_end_takes_the_period_of_its_start():
    found = extract("晚上七点到九点", now=NOW, tz=TZ)
    assert [e.time for e in found] == [dt.time(19), dt.time(21)]
    assert not any(e.ambiguous for e in found)


@pytest.mark.parametrize(("text", "expected"), [
    # From the NLU tables' fan messages: what a form must not take as a slot value.
    ("waited 25 minutes for one flat white", [("number", "25")]),
    ("asked for decaf, was awake till 4am. cool cool", [("time", "4am")]),
    ("whats the avg cost for a family of 4", [("party", "family of 4")]),
    ("有一个问题", []),
    ("我们在三楼", []),
    ("想 book 个 table，周五晚上 4 个人", [("date", "周五"), ("party", "4 个人")]),
])
def test_real_fan_messages(text, expected):
    found = extract(text, now=NOW, tz=TZ, locale="en-GB" if text.isascii() else "zh-CN")
    assert [(e.kind, e.text) for e in found] == expected
