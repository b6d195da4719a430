"""A real browser: headless Chromium (Debian's `chromium`, driven by Playwright's Python package)
opens the web chat, types Chinese and sees the persona's reply.

Browsers cannot be downloaded here, so Playwright drives the system Chromium through
``executable_path`` (never ``playwright install``). `.ci/run` installs it; in CI (CI=true) a
missing browser FAILS this test, elsewhere it is skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from bot.config import load_settings
from tests.conftest import TINY, clean_environ, clear_brandbot_env
from tests.test_daemon import ServeProcess, tiny_args, workdir  # noqa: F401 - fixture

# A real Chromium per test: seconds each (the quick loop, `-m "not slow"`, leaves them out).
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _browser_or_skip():
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append("chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
        sync_playwright = None
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


def test_a_fan_chats_in_chinese_in_a_real_browser(workdir):  # noqa: F811 - fixture
    sync_playwright = _browser_or_skip()
    daemon = ServeProcess(workdir, *tiny_args(workdir))
    try:
        daemon.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(locale="zh-CN")
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{daemon.port}/?ref=POSTER1")
                page.locator("#title", has_text="小安").wait_for(timeout=10_000)
                # The fan cookie came with the page, before any message: a lost first
                # response retried is the same fan's retry (signed, HttpOnly).
                before = {c["name"]: c for c in page.context.cookies()}
                assert before["brandbot_fan"]["httpOnly"] is True
                assert page.evaluate("document.cookie") == ""
                assert page.inner_text("#send") == "发送"
                page.fill("#text", "你们几点开门？")
                page.press("#text", "Enter")
                reply = page.locator("#log li.bot").first
                reply.wait_for(timeout=10_000)
                assert "每天9点到21点" in page.inner_text("#log")
                assert page.inner_text("#log li.fan") == "你们几点开门？"
                # The page switches its labels to English; the cookie keeps the same fan.
                page.click("#lang")
                assert page.inner_text("#send") == "Send"
                page.fill("#text", "is there parking")
                page.press("#text", "Enter")
                page.locator("#log li.bot").nth(1).wait_for(timeout=10_000)
                cookies = {c["name"]: c["value"] for c in page.context.cookies()}
                assert cookies["brandbot_fan"] == before["brandbot_fan"]["value"]
                assert cookies["brandbot_fan"].startswith("w-")
                assert not errors, errors
            finally:
                browser.close()
        db = sqlite3.connect(workdir / "brandbot.db")
        fan_id = cookies["brandbot_fan"].rpartition(".")[0]  # the signature after the last "."
        assert db.execute("SELECT count(*) FROM fans").fetchone()[0] == 1
        fan = db.execute(
            "SELECT id, source_code FROM fans WHERE external_id = ?", (fan_id,)
        ).fetchone()
        assert fan[1] == "POSTER1"  # ?ref= went with the first message
        count = db.execute(
            "SELECT count(*) FROM messages WHERE fan_id = ? AND direction = 'in'", (fan[0],)
        ).fetchone()[0]
        assert count == 2  # both messages, the same fan
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()


def test_an_operator_reply_shows_once_though_it_is_sent_again(workdir):  # noqa: F811 - fixture
    """At least once: the page's first acknowledgement is lost, so the next poll brings the
    operator's reply again; the page shows it once, and its later acknowledgement lands."""
    sync_playwright = _browser_or_skip()
    daemon = ServeProcess(workdir, *tiny_args(workdir))
    text = "您好，我是店长，退款已经办好了。"
    try:
        daemon.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(locale="zh-CN")
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                polls: list = []
                page.on("response", lambda r: polls.append(r)
                        if "/api/chat/pending" in r.url else None)
                lost_acks: list[str] = []
                page.route("**/api/chat/ack",
                           lambda route: (lost_acks.append(route.request.post_data or ""),
                                          route.abort()))
                page.goto(f"http://127.0.0.1:{daemon.port}/")
                page.locator("#title", has_text="小安").wait_for(timeout=10_000)
                page.fill("#text", "我要投诉")
                page.press("#text", "Enter")
                page.locator("#log li.bot").first.wait_for(timeout=10_000)
                cookie = {c["name"]: c["value"] for c in page.context.cookies()}["brandbot_fan"]
                fan = cookie.rpartition(".")[0]

                out = subprocess.run(
                    [sys.executable, "-m", "bot", "handoff", "reply", fan, text,
                     "--db", str(workdir / "brandbot.db")],
                    cwd=workdir, env=clean_environ(), capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out.stderr
                # Polls every 4 s: wait for two that carried it (the first ack was dropped).
                page.locator("#log li.bot", has_text=text).first.wait_for(timeout=15_000)
                def carried() -> int:
                    return sum(text in r.text() for r in list(polls) if r.ok)

                for _ in range(40):  # up to 20 s: the poll interval is 4 s
                    if carried() >= 2:
                        break
                    page.wait_for_timeout(500)
                assert carried() >= 2, "the unacknowledged reply was not sent again"
                assert lost_acks
                with page.expect_response(lambda r: "/api/chat/ack" in r.url,
                                          timeout=15_000) as acked:
                    page.unroute("**/api/chat/ack")
                assert acked.value.status == 200
                shown = [t for t in page.locator("#log li.bot").all_inner_texts() if t == text]
                assert shown == [text]  # sent at least twice, shown once
                assert not errors, errors
            finally:
                browser.close()
        db = sqlite3.connect(workdir / "brandbot.db")
        waiting = db.execute(
            "SELECT count(*) FROM outbox o JOIN fans f ON f.id = o.fan_id "
            "WHERE f.external_id = ? AND o.delivered_at IS NULL", (fan,)).fetchone()[0]
        assert waiting == 0  # acknowledged: it will not come again
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()


def test_the_page_shows_the_503_apology_and_the_429_message(tmp_path, monkeypatch):
    """A full disk answers 503 with the persona's apology in ``replies``: the page shows it
    (it used to retry twice and say only "could not send"); over a rate limit it says so in the
    fan's language. The real daemon in process (its disk made full by SQLite's max_page_count)
    and Chromium through Playwright's async API on the same loop."""
    _browser_or_skip()
    from playwright.async_api import async_playwright

    from tests.conftest import run_async
    from tests.test_faults import LONG, UNAVAILABLE_ZH, disk_full, running, space_returns

    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        None, personas=[str(TINY)], db=str(tmp_path / "page.db"), port=0, reload=False,
        # Loopback is exempt by default: the browser is on 127.0.0.1.
        web={"rate_limit_exempt": [], "messages_per_fan": "3/minute"})

    async def scenario() -> list[str]:
        async with running(settings) as daemon, async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = await browser.new_page(locale="zh-CN")
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                chats: list[int] = []
                page.on("response", lambda r: chats.append(r.status)
                        if r.url.endswith("/api/chat") else None)
                await page.goto(daemon.url)
                await page.locator("#title", has_text="小安").wait_for(timeout=10_000)
                disk_full(daemon)
                await page.fill("#text", LONG)
                await page.press("#text", "Enter")
                await page.locator("#log li.bot", has_text=UNAVAILABLE_ZH).wait_for(
                    timeout=15_000)
                assert chats == [503]  # shown at once, not retried into the same wall
                space_returns(daemon)
                for n in range(2):  # the refused message counted toward the fan's 3/minute
                    await page.fill("#text", "几点开门")
                    await page.press("#text", "Enter")
                    await page.locator("#log li.bot").nth(n + 1).wait_for(timeout=15_000)
                assert "每天9点到21点" in await page.inner_text("#log")
                await page.fill("#text", "几点开门")
                await page.press("#text", "Enter")
                await page.locator("#log li.error", has_text="发得太快了").wait_for(
                    timeout=15_000)
                assert chats == [503, 200, 200, 429]
                assert not errors, errors
                return await page.locator("#log li").all_inner_texts()
            finally:
                await browser.close()

    shown = run_async(scenario(), timeout=90)
    assert "没发出去" not in " ".join(shown)


def test_an_unknown_persona_in_the_link_never_titles_the_page_with_an_error(workdir):  # noqa: F811
    """``?persona=`` is in the link anyone can edit: its 404 ``{"error": ...}`` became the
    persona, and the title read "和undefined聊天"."""
    sync_playwright = _browser_or_skip()
    daemon = ServeProcess(workdir, *tiny_args(workdir))
    try:
        daemon.wait_ready()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(locale="zh-CN")
                with page.expect_response(lambda r: "/api/persona" in r.url,
                                          timeout=10_000) as asked:
                    page.goto(f"http://127.0.0.1:{daemon.port}/?persona=nobody")
                assert asked.value.status == 404
                # A message waits for the persona answer to be handled (the fan cookie), so
                # once its failure shows, the page has done what it does with the 404.
                page.fill("#text", "你好")
                page.press("#text", "Enter")
                page.locator("#log li.error").wait_for(timeout=15_000)
                title = page.inner_text("#title")
                assert "undefined" not in title and "undefined" not in page.title()
            finally:
                browser.close()
    finally:
        daemon.kill()
