"""`brandbot report`: the numbers, the terminal tables, and the HTML page in a real browser."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.messages import FanRef, Inbound
from bot.relations.campaigns import create_campaign
from bot.relations.desk import log_operator_reply
from bot.relations.reports import build, to_html, to_text
from tests.conftest import TINY
from tests.test_webchat_browser import ARGS, CHROMIUM, _browser_or_skip


def say(engine, who, text, ref=None):
    payload = {"ref": ref} if ref else {}
    engine.handle(Inbound(FanRef("web", who), text=text, payload=payload))


@pytest.fixture
def history(tiny_engine, fresh_db, clock):
    """Four days: a campaign, referrals, questions, misses, a complaint answered after 30 min."""
    create_campaign(fresh_db, "tiny", "Poster", clock.now, code="poster")
    say(tiny_engine, "a", "你好")
    code = fresh_db.find_fan("tiny", "web", "a")["referral_code"]
    for who in "bcde":
        clock.advance(days=1)
        say(tiny_engine, who, "你好", ref=code if who in "bc" else "poster")
        say(tiny_engine, who, "几点开门")
        say(tiny_engine, who, "blorp zzz")
    say(tiny_engine, "e", "我要投诉")
    clock.advance(minutes=30)
    log_operator_reply(fresh_db, fresh_db.find_fan("tiny", "web", "e"), "我来处理", clock.now)
    return fresh_db


def test_the_report_counts_what_happened(history, tiny_brand, clock):
    data = build(history, clock.now, clock.now - timedelta(days=10), "tiny",
                 tiny_brand.persona.relationship)
    assert data["fans"] == 5
    assert sum(n for _, n in data["funnel"]) == 5
    assert [n for _, n in data["new_fans_per_day"]] == [1, 1, 1, 1, 1]
    assert dict(data["new_fans_by_source"]) == {
        "referred by a fan": 2, "campaign: Poster": 2, "direct (no code)": 1}
    assert dict(data["top_intents"])["hours"] == 4
    assert data["not_understood"] == [["blorp zzz", 4]]
    assert data["handoffs"] == {"started": 1, "timed_out": 0, "open_now": 1, "answered": 1,
                                "median_minutes_to_first_reply": 30.0}
    assert data["top_kols"][0]["direct"] == 2
    assert sum(r[1] for r in data["messages_per_day"]) == 14
    text = to_text(data)
    for title in ("Fans per stage", "New fans by source", "Messages per day", "Top intents",
                  "Not understood", "Handoffs", "Top KOLs"):
        assert title in text
    later = build(history, clock.now, clock.now + timedelta(days=1), "tiny")
    assert later["new_fans_per_day"] == [] and later["fans"] == 5


def test_cli_report_prints_tables_json_and_writes_html(history, tmp_path):
    page = tmp_path / "r.html"
    out = CliRunner().invoke(main, ["report", "--db", history.path, "--since", "2026-01-01",
                                    "--persona", str(TINY), "--html", str(page)])
    assert out.exit_code == 0, out.output
    assert "Fans per stage (funnel)" in out.output and page.exists()
    out = CliRunner().invoke(main, ["report", "--db", history.path, "--since", "2026-01-01",
                                    "--json"])
    assert json.loads(out.output)["fans"] == 5
    out = CliRunner().invoke(main, ["report", "--db", history.path, "--since", "yesterday"])
    assert out.exit_code == 1 and "YYYY-MM-DD" in out.output


def test_html_is_self_contained_and_escapes_fan_text(history, clock):
    say_fresh = build(history, clock.now, clock.now - timedelta(days=10))
    say_fresh["not_understood"] = [["<script>alert(1)</script>", 2]]
    page = to_html(say_fresh)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page


@pytest.mark.slow
def test_the_html_report_opens_in_a_real_browser(history, tiny_brand, clock, tmp_path):
    sync_playwright = _browser_or_skip()
    data = build(history, clock.now, clock.now - timedelta(days=10), "tiny",
                 tiny_brand.persona.relationship)
    page_file = tmp_path / "report.html"
    page_file.write_text(to_html(data), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(locale="zh-CN")
            errors: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            assert errors == []
            assert all(url.startswith("file://") for url in requests), requests
            assert page.locator("svg.chart").count() == 5
            assert page.locator("#funnel rect.bar").count() == 5
            assert page.locator("#messages rect.bar2").count() == len(data["messages_per_day"])
            assert "blorp zzz" in page.inner_text("#missed")
            # Hovering a bar shows its tooltip.
            page.locator("#sources rect.bar").first.hover()
            assert page.locator("#tip").is_visible()
            label, count = data["new_fans_by_source"][0][:2]
            assert page.inner_text("#tip") == f"{label}: {count}"
            assert page.title().startswith("brandbot report")
        finally:
            browser.close()


def test_a_persona_report_leaves_out_another_personas_fans(history, tiny_brand, clock, tmp_path):
    # A one-persona log skips the per-message persona look-up (issue item 16); a log with a
    # second persona must still count only the asked persona's fans, and everybody without it.
    rules = tiny_brand.persona.relationship
    since = clock.now - timedelta(days=10)
    alone = build(history, clock.now, since, "tiny", rules)
    from bot.brand import load_brand
    from bot.engine import Engine
    from tests.conftest import ROOT

    other = Engine(history, load_brand(str(ROOT / "personas" / "northbound-coffee.yaml")),
                   clock=clock, seed=2)
    for who in "xy":
        other.handle(Inbound(FanRef("web", who), text="hello"))
        other.handle(Inbound(FanRef("web", who), text="blorp zzz"))
    history.conn.execute("INSERT INTO events (fan_id, kind, payload, created_at) VALUES "
                         "((SELECT id FROM fans WHERE external_id = 'x'), 'handoff', '{}', ?)",
                         (clock.now.isoformat(),))
    beside = build(history, clock.now, since, "tiny", rules)
    for key in ("fans", "funnel", "new_fans_per_day", "new_fans_by_source", "messages_per_day",
                "top_intents", "not_understood", "handoffs", "top_kols", "subscribed"):
        assert beside[key] == alone[key], key
    everybody = build(history, clock.now, since)
    assert everybody["fans"] == 7
    assert dict(everybody["not_understood"])["blorp zzz"] == 6
    assert everybody["handoffs"]["started"] == 2
