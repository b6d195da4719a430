"""Newsletters: audiences, dry-run reasons, exactly-once delivery through the fake Bot API,
429s and 403s, and a killed broadcast resumed without a second copy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from bot.brand import load_brand
from bot.channels.telegram_kind import TelegramOutlet
from bot.channels.wechat_kind import R_QUOTA, R_WINDOW, WeChatKind
from bot.cli import main
from bot.relations.audience import AudienceError, parse
from bot.relations.broadcast import (
    R_BLOCKED,
    R_HANDOFF,
    R_UNSUBSCRIBED,
    BroadcastError,
    channel_reasons,
    create,
    deliver,
    plan,
)
from bot.relations.store import iso
from tests.fakes.telegram_api import TOKEN, FakeTelegram

PERSONA = "laowang-kitchen"
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo():
    return load_brand(PERSONA).persona


def add_fans(store, count: int, *, channel: str = "telegram", start: int = 1000, **cols):
    """Insert ``count`` fans directly (fast): subscribed by default."""
    values = {"subscribed": 1, "blocked": 0, "handoff": 0, "language": "zh", "stage": "friend",
              "tags": "[]"}
    values.update(cols)
    rows = [
        (channel, str(start + i), PERSONA, values["language"], iso(NOW), iso(NOW),
         values["stage"], values["subscribed"], values["blocked"], values["handoff"],
         values["tags"])
        for i in range(count)
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO fans (channel, external_id, persona, language, first_seen, last_seen, "
            "stage, subscribed, blocked, handoff, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )


def statuses(store, broadcast_id: int) -> dict[str, int]:
    return {r[0]: r[1] for r in store.conn.execute(
        "SELECT status, count(*) FROM deliveries WHERE broadcast_id = ? GROUP BY status",
        (broadcast_id,))}


# -- audiences -----------------------------------------------------------------------------------


def test_audience_expressions_select_the_right_fans(fresh_db):
    add_fans(fresh_db, 3, stage="stranger", start=1)
    add_fans(fresh_db, 2, stage="loyal", start=10, tags='["kol","vip"]', language="en")
    add_fans(fresh_db, 4, channel="wechat", stage="friend", start=20)
    able = channel_reasons({"telegram": object(), "wechat": object()})

    def total(expr: str) -> int:
        return plan(fresh_db, PERSONA, expr, NOW, able).total

    assert total("all") == 9
    assert total("stage>=friend") == 6
    assert total("stage >= loyal") == 2
    assert total("stage<friend") == 3
    assert total("tag:kol") == 2 and total("tag:ko") == 0
    assert total("lang:en") == 2
    assert total("channel:wechat") == 4
    assert total("channel:telegram and stage>=friend") == 2
    assert total("channel:telegram, not tag:vip") == 3
    assert total("tag:kol or channel:wechat") == 6
    assert total("(lang:en or channel:wechat) and not stage>=loyal") == 4
    for bad in ("stage>=boss", "lang:fr", "colour:red", "(tag:x", "tag:x or"):
        with pytest.raises(AudienceError):
            parse(bad)


def test_dry_run_says_why_each_fan_is_left_out(fresh_db):
    add_fans(fresh_db, 5, start=1)  # will receive
    add_fans(fresh_db, 2, start=100, subscribed=0)
    add_fans(fresh_db, 3, start=200, blocked=1)
    add_fans(fresh_db, 1, start=300, handoff=1)
    add_fans(fresh_db, 2, channel="web", start=400)
    add_fans(fresh_db, 3, channel="wechat", start=500)
    # wechat 500 wrote an hour ago (inside the window); 501 three days ago; 502 never.
    recent, old = iso(NOW - timedelta(hours=1)), iso(NOW - timedelta(days=3))
    ids = {r[1]: r[0] for r in fresh_db.conn.execute("SELECT id, external_id FROM fans")}
    with fresh_db.transaction() as conn:
        for ext, when in (("500", recent), ("501", old)):
            conn.execute("INSERT INTO messages (fan_id, direction, text, created_at, kind) "
                         "VALUES (?, 'in', 'hi', ?, 'message')", (ids[ext], when))
    able = channel_reasons({"telegram": object(), "wechat": object()},
                           {"web": "web chat is off: set web.enabled: true"},
                           reach={"wechat": WeChatKind.reach})
    p = plan(fresh_db, PERSONA, "all", NOW, able)
    assert p.recipients == 6 and p.by_channel == {"telegram": 5, "wechat": 1}
    assert p.reasons == {
        R_UNSUBSCRIBED: 2, R_BLOCKED: 3, R_HANDOFF: 1, R_WINDOW: 2,
        "no channel able to send (web chat is off: set web.enabled: true)": 2,
    }
    # Five customer-service messages already spent since 500's message: quota. Both kinds
    # count: newsletters sent (two broadcasts) and operator replies (three).
    with fresh_db.transaction() as conn:
        for _ in range(2):
            broadcast_id = conn.execute(
                "INSERT INTO broadcasts (persona, text, created_at) VALUES (?, 'x', ?)",
                (PERSONA, recent)).lastrowid
            conn.execute("INSERT INTO deliveries (broadcast_id, fan_id, status, sent_at) "
                         "VALUES (?, ?, 'sent', ?)", (broadcast_id, ids["500"], recent))
        for _ in range(3):
            conn.execute("INSERT INTO messages (fan_id, direction, text, created_at, reply_key) "
                         "VALUES (?, 'out', 'op', ?, 'operator')", (ids["500"], recent))
    assert plan(fresh_db, PERSONA, "all", NOW, able).reasons[R_QUOTA] == 1
    # Without Telegram settings, Telegram fans are counted as unreachable, saying what to set.
    p = plan(fresh_db, PERSONA, "channel:telegram", NOW,
             channel_reasons({}, {"telegram": "set BRANDBOT_TELEGRAM_TOKEN"}))
    assert p.recipients == 0
    assert p.reasons["no channel able to send (set BRANDBOT_TELEGRAM_TOKEN)"] == 5


def test_a_persona_without_an_unsubscribe_hint_cannot_broadcast(fresh_db, tiny_brand):
    with pytest.raises(BroadcastError, match="newsletter_footer"):
        create(fresh_db, tiny_brand.persona, "hi", "all", NOW, {})


def test_cli_dry_run_prints_counts_and_reasons(fresh_db, monkeypatch):
    add_fans(fresh_db, 4, start=1)
    add_fans(fresh_db, 1, start=50, subscribed=0)
    monkeypatch.delenv("BRANDBOT_TELEGRAM_TOKEN", raising=False)
    monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", TOKEN)
    out = CliRunner().invoke(main, ["broadcast", "-p", PERSONA, "-t", "hello", "--dry-run",
                                    "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    assert "4 would receive it (telegram 4)" in out.output
    assert "unsubscribed" in out.output
    assert fresh_db.conn.execute("SELECT count(*) FROM broadcasts").fetchone()[0] == 0
    out = CliRunner().invoke(main, ["broadcast", "-p", PERSONA, "--dry-run", "--db",
                                    fresh_db.path])
    assert out.exit_code == 1 and "--text T or --file F" in out.output


# -- delivery ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_fans_through_429s_and_403s_each_accounted_for_once(fresh_db, demo):
    add_fans(fresh_db, 10_000, start=1000)
    add_fans(fresh_db, 20, start=50_000, language="en")
    blocked = {1000 + i for i in range(0, 10_000, 500)}  # 20 fans blocked the bot

    async def run():
        async with FakeTelegram() as fake:
            fake.blocked = set(blocked)
            for chat in (1001, 1002, 5003):
                fake.fail("sendMessage", status=429, retry_after=1, chat_id=chat)
            fake.fail("sendMessage", status=400, description="Bad Request: chat not found",
                      chat_id=7777)
            outlet = TelegramOutlet(fresh_db, PERSONA, TOKEN, fake.base_url, overall_rate=None,
                                    clock=lambda: NOW)
            able = channel_reasons({"telegram": outlet})
            broadcast_id, p = create(fresh_db, demo, "新菜上线", "all", NOW, able)
            assert p.recipients == 10_020
            final = await deliver(fresh_db, broadcast_id, demo, {"telegram": outlet},
                                  clock=lambda: NOW, batch=500)
            return fake, broadcast_id, final

    fake, broadcast_id, final = asyncio.run(run())
    assert final == {"sent": 9_999, "failed": 21}
    per_chat: dict[int, int] = {}
    for call in fake.sent():
        per_chat[int(call.params["chat_id"])] = per_chat.get(int(call.params["chat_id"]), 0) + 1
    assert len(per_chat) == 9_999 and set(per_chat.values()) == {1}
    assert not blocked & set(per_chat)
    texts = fake.texts(1000 + 1)
    assert texts[0].startswith("新菜上线\n\n") and "退订" in texts[0]
    assert "unsubscribe" in fake.texts(50_000)[0]
    rows = fresh_db.conn.execute(
        "SELECT f.external_id, f.blocked, f.subscribed, d.status, d.error FROM deliveries d "
        "JOIN fans f ON f.id = d.fan_id WHERE d.broadcast_id = ? AND d.status = 'failed'",
        (broadcast_id,)).fetchall()
    by_ext = {int(r[0]): r for r in rows}
    assert set(by_ext) == blocked | {7777}
    assert all(by_ext[c][1] == 1 and by_ext[c][2] == 0 for c in blocked)
    assert "Chat not found" in by_ext[7777][4]
    assert fresh_db.conn.execute(
        "SELECT count(*) FROM deliveries WHERE broadcast_id = ?", (broadcast_id,)
    ).fetchone()[0] == 10_020
    # A second broadcast plans the blocked fans out.
    again = plan(fresh_db, PERSONA, "all", NOW, channel_reasons({"telegram": 1}))
    assert again.reasons[R_BLOCKED] == 20


def test_fans_who_changed_since_planning_are_skipped_at_send_time(fresh_db, demo):
    add_fans(fresh_db, 3, start=1)

    async def run():
        async with FakeTelegram() as fake:
            outlet = TelegramOutlet(fresh_db, PERSONA, TOKEN, fake.base_url, overall_rate=None)
            broadcast_id, _ = create(fresh_db, demo, "hi", "all", NOW,
                                     channel_reasons({"telegram": outlet}))
            with fresh_db.transaction() as conn:
                conn.execute("UPDATE fans SET subscribed = 0 WHERE external_id = '1'")
                conn.execute("UPDATE fans SET handoff = 1 WHERE external_id = '2'")
            final = await deliver(fresh_db, broadcast_id, demo, {"telegram": outlet},
                                  clock=lambda: NOW)
            return fake, final

    fake, final = asyncio.run(run())
    assert final == {"sent": 1, "skipped": 2}
    assert [int(c.params["chat_id"]) for c in fake.sent()] == [3]


class ThreadedFake:
    """The fake Bot API in a thread of this process, so a subprocess can use it and the test can
    read every call it received afterwards."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.fake = FakeTelegram()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.fake.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.mark.slow
def test_a_killed_broadcast_resumes_without_a_second_copy(fresh_db, tmp_path):
    fans = 1_500
    add_fans(fresh_db, fans, start=1000)
    server = ThreadedFake()
    env = {**os.environ, "BRANDBOT_TELEGRAM_TOKEN": TOKEN,
           "BRANDBOT_TELEGRAM_API_URL": server.fake.base_url}
    env.pop("BRANDBOT_CONFIG", None)
    base = [sys.executable, "-m", "bot", "broadcast"]
    try:
        proc = subprocess.Popen(
            base + ["-p", PERSONA, "-t", "第一封", "--db", fresh_db.path, "--rate", "300",
                    "--batch", "40"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        watch = sqlite3.connect(fresh_db.path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sent = watch.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'"
                                 ).fetchone()[0]
            if sent >= 300:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = len(server.fake.sent())
        assert 300 <= before < fans
        broadcast_id = watch.execute("SELECT max(id) FROM broadcasts").fetchone()[0]
        left = watch.execute("SELECT count(*) FROM deliveries WHERE status IN "
                             "('queued', 'sending')").fetchone()[0]
        assert left > 0
        out = subprocess.run(base + ["resume", str(broadcast_id), "--db", fresh_db.path,
                                     "--rate", "0"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        watch.close()
    finally:
        server.stop()
    per_chat: dict[int, int] = {}
    for call in server.fake.sent():
        chat = int(call.params["chat_id"])
        per_chat[chat] = per_chat.get(chat, 0) + 1
    assert max(per_chat.values()) == 1, "somebody got a second copy"
    counts = statuses(fresh_db, broadcast_id)
    assert sum(counts.values()) == fans
    assert set(counts) <= {"sent", "unknown"}
    # Every "sent" row arrived; "unknown" rows (in flight at the kill) arrived or not, once.
    assert counts["sent"] <= len(per_chat) <= counts["sent"] + counts.get("unknown", 0)
    status = fresh_db.conn.execute("SELECT status FROM broadcasts WHERE id = ?",
                                   (broadcast_id,)).fetchone()[0]
    assert status == "done"
    show = CliRunner().invoke(main, ["broadcast", "show", str(broadcast_id), "--db",
                                     fresh_db.path])
    assert "sent" in show.output
    listing = CliRunner().invoke(main, ["broadcast", "list", "--db", fresh_db.path])
    assert listing.exit_code == 0 and "done" in listing.output


def test_wechat_fans_get_customer_service_messages_within_the_window(fresh_db, demo):
    from bot.channels.wechat_kind import WeChatOutlet
    from tests.fakes.wechat_api import APP_ID, APP_SECRET, FakeWeChat

    add_fans(fresh_db, 3, channel="wechat", start=1)
    ids = {r[1]: r[0] for r in fresh_db.conn.execute("SELECT id, external_id FROM fans")}
    with fresh_db.transaction() as conn:
        for ext in ("1", "2", "3"):
            conn.execute("INSERT INTO messages (fan_id, direction, text, created_at, kind) "
                         "VALUES (?, 'in', 'hi', ?, 'message')",
                         (ids[ext], iso(NOW - timedelta(hours=1 if ext != "3" else 50))))
    with FakeWeChat() as server:
        server.fail("message/custom/send", 45047)  # the first send: quota already used
        outlet = WeChatOutlet(APP_ID, APP_SECRET, server.api_url)
        broadcast_id, p = create(fresh_db, demo, "周末有新菜", "all", NOW,
                                 channel_reasons({"wechat": outlet}))
        assert p.recipients == 2 and p.reasons == {R_WINDOW: 1}
        final = asyncio.run(deliver(fresh_db, broadcast_id, demo, {"wechat": outlet},
                                    clock=lambda: NOW))
        bodies = [c.body for c in server.sent()]
    assert final == {"sent": 1, "failed": 1, "skipped": 1}
    assert [b["touser"] for b in bodies] == ["2"]  # the refused one is not in sent()
    assert json.dumps(bodies, ensure_ascii=False).count("周末有新菜") == 1
    assert "退订" in bodies[0]["text"]["content"]
    error = fresh_db.conn.execute(
        "SELECT error FROM deliveries WHERE status = 'failed'").fetchone()[0]
    assert "45047" in error


def test_a_timed_out_newsletter_is_never_sent_twice(fresh_db):
    """Telegram may have delivered a message whose response timed out: record it as unknown."""
    from telegram.error import TimedOut

    from bot.channels import telegram_kind as T
    from bot.channels.telegram_sender import Sender
    from bot.relations import broadcast as B

    add_fans(fresh_db, 1, start=555, language="zh")
    persona = load_brand(PERSONA).persona

    class AcceptsThenTimesOut:
        def __init__(self):
            self.got = []

        async def send_message(self, chat_id, text, **kwargs):
            self.got.append(chat_id)  # accepted by Telegram, but the response is lost
            if len(self.got) == 1:
                raise TimedOut()
            return object()

        async def shutdown(self):
            pass

    async def run():
        bot = AcceptsThenTimesOut()
        outlet = T.TelegramOutlet(fresh_db, PERSONA, "1:x", overall_rate=None, backoff=0.01)
        outlet.bot, outlet.recorder = bot, T._Recorder(bot)
        outlet.sender = Sender(outlet.recorder, overall_rate=None, per_chat_rate=None,
                               backoff=0.01, retry_timeouts=False)
        broadcast_id, _ = B.create(fresh_db, persona, "新菜上线", "all", NOW,
                                   B.channel_reasons({"telegram": outlet}))
        final = await B.deliver(fresh_db, broadcast_id, persona, {"telegram": outlet},
                                clock=lambda: NOW)
        return bot, final

    bot, final = asyncio.run(run())
    assert len(bot.got) == 1
    assert final["unknown"] == 1 and final["sent"] == 0
