"""`brandbot serve` with the Telegram channel enabled by the environment alone, end to end.

The daemon is a real subprocess; Telegram is the local fake Bot API (tests/fakes/telegram_api.py)
in another process, reached through BRANDBOT_TELEGRAM_API_URL.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request

import pytest

from tests.fakes.telegram_api import TOKEN
from tests.test_daemon import ROOT, serve, tiny_args, workdir  # noqa: F401 - fixtures


def control(base: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("condition not met in time")


@pytest.mark.slow
def test_the_environment_alone_enables_telegram_polling(serve, workdir, fake_telegram):  # noqa: F811
    daemon = serve(*tiny_args(workdir), env={"BRANDBOT_TELEGRAM_TOKEN": TOKEN,
                                             "BRANDBOT_TELEGRAM_API_URL": fake_telegram + "/bot"})
    daemon.wait_for_log(r"channel telegram: on, @brand_test_bot by polling", timeout=20)
    assert TOKEN not in daemon.output
    update = {"update_id": 9001, "message": {
        "message_id": 1, "date": int(time.time()), "text": "几点开门",
        "chat": {"id": 4242, "type": "private", "first_name": "Ann"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Ann"}}}
    control(fake_telegram, "/_fake/push", [update])
    wait_for(lambda: control(fake_telegram, "/_fake/stats")["ok_calls"].get("sendMessage", 0) >= 2)
    with sqlite3.connect(workdir / "brandbot.db") as conn:
        rows = conn.execute(
            "SELECT m.direction, m.text FROM messages m JOIN fans f ON f.id = m.fan_id "
            "WHERE f.channel = 'telegram' AND f.external_id = '4242' ORDER BY m.id").fetchall()
    assert rows[0] == ("in", "几点开门")
    assert ("out", "营业时间：每天9点到21点") in rows
    daemon.signal(15)
    assert daemon.wait() == 0
    assert TOKEN not in daemon.output


def test_a_refused_token_stops_the_daemon_with_a_clear_error(serve, workdir, fake_telegram):  # noqa: F811
    env = {"BRANDBOT_TELEGRAM_TOKEN": "999:wrong-token-for-the-fake",
           "BRANDBOT_TELEGRAM_API_URL": fake_telegram + "/bot"}
    daemon = serve(*tiny_args(workdir), env=env)
    code = daemon.wait(timeout=30)
    assert code == 2, daemon.output
    assert "telegram" in daemon.output and "wrong-token" not in daemon.output
