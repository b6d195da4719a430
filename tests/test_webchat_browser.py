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

import pytest

from tests.test_daemon import ServeProcess, tiny_args, workdir  # noqa: F401 - fixture

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
                page.wait_for_function("document.title.includes('小安')", timeout=10_000)
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
                assert cookies["brandbot_fan"].startswith("w-")
                assert not errors, errors
            finally:
                browser.close()
        import sqlite3

        db = sqlite3.connect(workdir / "brandbot.db")
        fan = db.execute(
            "SELECT id, source_code FROM fans WHERE external_id = ?", (cookies["brandbot_fan"],)
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
