"""Durable scheduled jobs: survive restarts, run once, retry with back-off, no cron.

Real SQLite files, real Store connections (one per "daemon"), the real daemon's handlers for the
calendar against the fake Telegram Bot API over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bot.cli import main
from bot.config import load_settings
from bot.daemon import Daemon
from bot.relations import Store
from bot.relations.jobs import Job, Scheduler, cancel, claim_due, list_jobs, prune, schedule
from tests.conftest import ROOT, clear_brandbot_env
from tests.fakes.telegram_api import FakeTelegram
from tests.test_broadcast import PERSONA, add_fans

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def counting_scheduler(store: Store, clock: Clock, calls: list, worker: str = "w1") -> Scheduler:
    scheduler = Scheduler(store, clock=clock, worker=worker)

    async def remember(job: Job, now: datetime) -> None:
        calls.append((worker, job.payload["n"]))

    scheduler.register("remember", remember)
    return scheduler


def test_a_job_survives_a_restart_and_runs_once(tmp_path):
    path = tmp_path / "jobs.db"
    first = Store(path)
    job = schedule(first, "remember", T0 + timedelta(hours=1), {"n": 1}, key="once", now=T0)
    assert schedule(first, "remember", T0, {"n": 2}, key="once", now=T0).id == job.id
    calls: list = []
    assert asyncio.run(counting_scheduler(first, Clock(T0), calls).run_due()) == []
    first.close()  # the daemon stops before the job is due

    later = Clock(T0 + timedelta(hours=2))
    for _ in range(3):  # three restarts after it was due
        store = Store(path)
        # Startup planning again with the same key changes nothing.
        schedule(store, "remember", T0, {"n": 3}, key="once", now=later())
        asyncio.run(counting_scheduler(store, later, calls).run_due())
        store.close()
    assert calls == [("w1", 1)]
    store = Store(path)
    [row] = list_jobs(store)
    store.close()
    assert (row["status"], row["runs"], row["attempts"]) == ("done", 1, 1)


def test_two_connections_claiming_the_same_due_job_one_gets_it(tmp_path):
    path = tmp_path / "jobs.db"
    setup = Store(path)
    schedule(setup, "remember", T0, {"n": 1}, now=T0)
    stores = [Store(path), Store(path)]
    start, got = threading.Barrier(2), []

    def claim(store: Store, worker: str) -> None:
        start.wait()
        got.append(claim_due(store, T0 + timedelta(seconds=1), worker))

    threads = [threading.Thread(target=claim, args=(s, f"d{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    claimed = [j for j in got if j is not None]
    assert len(got) == 2 and len(claimed) == 1
    row = setup.fetch_one("SELECT status, claimed_by, attempts FROM jobs")
    assert row["status"] == "running" and row["claimed_by"] in ("d0", "d1")
    assert row["attempts"] == 1  # claimed once, not twice

    # Two daemons' loops over many jobs: every job runs exactly once in all.
    for n in range(2, 32):
        schedule(setup, "remember", T0, {"n": n}, now=T0)
    calls: list = []
    clock = Clock(T0 + timedelta(seconds=5))

    async def both():
        await asyncio.gather(counting_scheduler(stores[0], clock, calls, "d0").run_due(),
                             counting_scheduler(stores[1], clock, calls, "d1").run_due())

    asyncio.run(both())
    assert sorted(n for _, n in calls) == list(range(2, 32))
    for store in [setup, *stores]:
        store.close()


def test_a_failing_handler_is_retried_with_backoff_then_marked_failed(fresh_db):
    secret = "s3cr3t-app-secret-value"
    clock = Clock(T0)
    attempts: list[datetime] = []
    scheduler = Scheduler(fresh_db, clock=clock, secrets=[secret])

    async def broken(job: Job, now: datetime) -> None:
        attempts.append(now)
        raise RuntimeError(f"the platform refused appsecret={secret} at "
                           "https://api.example/send?access_token=TOKEN123456&x=1")

    scheduler.register("broken", broken)
    schedule(fresh_db, "broken", T0, key="b", max_attempts=3, now=T0)
    assert [o for _, o in asyncio.run(scheduler.run_due())] == ["pending"]
    row = list_jobs(fresh_db)[0]
    assert row["status"] == "pending" and row["run_at"] > "2026-03-01T08:00:29"
    assert asyncio.run(scheduler.run_due()) == []  # backing off: not yet due again
    for _ in range(2):
        clock.moment += timedelta(hours=1)
        asyncio.run(scheduler.run_due())
    clock.moment += timedelta(days=1)
    assert asyncio.run(scheduler.run_due()) == []  # given up: never run again
    assert len(attempts) == 3
    row = list_jobs(fresh_db)[0]
    assert row["status"] == "failed" and row["attempts"] == 3
    assert "RuntimeError: the platform refused appsecret=***" in row["last_error"]
    assert "access_token=***&x=1" in row["last_error"]
    assert secret not in json.dumps(row) and "TOKEN123456" not in json.dumps(row)


def test_a_recurring_job_reschedules_its_own_row(fresh_db):
    clock = Clock(T0)
    scheduler = Scheduler(fresh_db, clock=clock)
    seen = []

    async def every_minute(job: Job, now: datetime) -> datetime:
        seen.append(now)
        return now + timedelta(minutes=1)

    scheduler.register("tick", every_minute)
    schedule(fresh_db, "tick", T0, key="tick", now=T0)
    for _ in range(3):
        asyncio.run(scheduler.run_due())
        asyncio.run(scheduler.run_due())  # the next one is not due yet
        clock.moment += timedelta(minutes=1)
    assert seen == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    [row] = list_jobs(fresh_db)
    assert (row["status"], row["runs"], row["run_at"]) == ("pending", 3,
                                                           "2026-03-01T08:03:00.000000Z")


def test_a_claim_left_by_a_crashed_daemon_is_taken_again_after_its_lease(fresh_db):
    schedule(fresh_db, "remember", T0, {"n": 1}, now=T0)
    assert claim_due(fresh_db, T0, "crashed") is not None
    assert claim_due(fresh_db, T0 + timedelta(minutes=1), "next") is None
    again = claim_due(fresh_db, T0 + timedelta(minutes=6), "next")
    assert again is not None and again.attempts == 2


# -- the persona's time zone and the calendar ------------------------------------------------------


def test_persona_timezone_default_and_validation():
    from bot.persona.loader import load_persona_file, resolve_file

    zh, _ = load_persona_file(resolve_file(PERSONA, "personas"))
    en, _ = load_persona_file(resolve_file("northbound-coffee", "personas"))
    assert zh.timezone is None and zh.zone == ZoneInfo("Asia/Shanghai")
    assert en.zone == ZoneInfo("UTC")
    data = zh.model_dump()
    data["timezone"] = "Europe/Berlin"
    assert type(zh).model_validate(data).zone == ZoneInfo("Europe/Berlin")
    for bad in ("Mars/Olympus", "../../etc/passwd", "Beijing"):
        data["timezone"] = bad
        with pytest.raises(ValidationError, match="unknown time zone"):
            type(zh).model_validate(data)


def kinds(ran: list) -> list[str]:
    return [job.kind for job, _ in ran]


def topic_runs(ran: list) -> list[tuple[str, str]]:
    return [(outcome, job.run_at) for job, outcome in ran if job.kind == "calendar_topic"]


def _persona_with_topic(tmp_path, day: date) -> str:
    text = (ROOT / "personas" / f"{PERSONA}.yaml").read_text(encoding="utf-8")
    text += (f"\ncalendar:\n  - id: morning\n    date: {day.isoformat()}\n    time: '09:00'\n"
             "    text: {zh: 早上好, en: Good morning}\n")
    folder = tmp_path / "personas"
    folder.mkdir(exist_ok=True)
    path = folder / f"{PERSONA}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_a_calendar_topic_at_0900_shanghai_is_sent_once_across_a_restart(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    # Tomorrow in Shanghai, so that planning at the real "now" sees it as upcoming.
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    due = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)  # 09:00 +08:00
    persona = _persona_with_topic(tmp_path, day)
    db = str(tmp_path / "cal.db")

    async def daemon_round(fake, moment: datetime) -> list:
        d = Daemon(load_settings(None, personas=[persona], db=db))
        d.open()
        try:
            await d._start_jobs()
            d.scheduler.clock = lambda: moment
            return await d.scheduler.run_due()
        finally:
            d.close()

    async def scenario():
        async with FakeTelegram() as fake:
            monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", fake.token)
            monkeypatch.setenv("BRANDBOT_TELEGRAM_API_URL", fake.base_url)
            seed = Store(db)
            add_fans(seed, 3, start=1, language="zh")
            seed.close()
            early = await daemon_round(fake, due - timedelta(minutes=1))
            assert topic_runs(early) == []  # not due yet
            assert {"handoff_expire", "prune_jobs"} <= set(kinds(early))
            ran = await daemon_round(fake, due + timedelta(seconds=30))
            assert topic_runs(ran) == [("done", due.isoformat().replace("+00:00", ".000000Z"))]
            again = await daemon_round(fake, due + timedelta(minutes=2))  # restarted daemon
            assert topic_runs(again) == []
            return fake

    fake = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sorted(str(c.params["chat_id"]) for c in fake.sent()) == ["1", "2", "3"]
    assert all(t.startswith("早上好") for t in fake.texts())
    store = Store(db)
    rows = list_jobs(store, kind="calendar_topic")
    assert [(r["status"], r["runs"]) for r in rows] == [("done", 1)]
    assert store.fetch_one("SELECT count(*) FROM broadcasts WHERE topic = 'morning'")[0] == 1
    store.close()


@pytest.mark.slow
def test_a_topic_moved_by_a_reload_goes_out_once_at_its_new_time(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    nine = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)  # 09:00 +08:00
    persona = _persona_with_topic(tmp_path, day)
    db = str(tmp_path / "moved.db")

    async def scenario():
        async with FakeTelegram() as fake:
            monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", fake.token)
            monkeypatch.setenv("BRANDBOT_TELEGRAM_API_URL", fake.base_url)
            d = Daemon(load_settings(None, personas=[persona], db=db))
            d.open()
            try:
                add_fans(d.store, 2, start=1, language="zh")
                await d._start_jobs()
                # The operator moves the topic to 11:00 and the daemon reloads the persona.
                path = Path(persona)
                path.write_text(path.read_text(encoding="utf-8").replace(
                    "time: '09:00'", "time: '11:00'"), encoding="utf-8")
                d._reload_lock = asyncio.Lock()
                await d.reload("test")
                d.scheduler.clock = lambda: nine + timedelta(minutes=1)
                at_nine = topic_runs(await d.scheduler.run_due())
                sent_at_nine = len(fake.sent())
                d.scheduler.clock = lambda: nine + timedelta(hours=2, minutes=1)
                at_eleven = topic_runs(await d.scheduler.run_due())
                return at_nine, sent_at_nine, at_eleven, len(fake.sent())
            finally:
                d.close()

    at_nine, sent_at_nine, at_eleven, sent = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [o for o, _ in at_nine] == ["done"] and sent_at_nine == 0  # the old slot: skipped
    assert at_eleven == [("done", (nine + timedelta(hours=2)).isoformat().replace(
        "+00:00", ".000000Z"))]
    assert sent == 2


def test_cancel_and_prune(fresh_db):
    schedule(fresh_db, "remember", T0 + timedelta(hours=1), {"n": 1}, key="form:42", now=T0)
    assert cancel(fresh_db, "form:42", T0) is True
    assert cancel(fresh_db, "form:42", T0) is False  # nothing pending any more
    calls: list = []
    asyncio.run(counting_scheduler(fresh_db, Clock(T0 + timedelta(hours=2)), calls).run_due())
    assert calls == []
    assert list_jobs(fresh_db)[0]["status"] == "cancelled"
    assert prune(fresh_db, T0 + timedelta(days=29)) == 0
    assert prune(fresh_db, T0 + timedelta(days=31)) == 1 and list_jobs(fresh_db) == []


# -- brandbot jobs list ---------------------------------------------------------------------------


def test_jobs_list_in_chinese_and_english(fresh_db, monkeypatch):
    schedule(fresh_db, "calendar_topic", T0, {"persona": PERSONA}, key="c", now=T0)
    failed = schedule(fresh_db, "handoff_expire", T0, key="h", max_attempts=1, now=T0)
    claimed = claim_due(fresh_db, T0, "w", ("handoff_expire",))
    assert claimed.id == failed.id
    from bot.relations.jobs import fail

    fail(fresh_db, claimed, "ValueError: wechat is not configured", T0)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    out = CliRunner().invoke(main, ["jobs", "list", "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    assert "类型" in out.output and "日历话题群发" in out.output and "已失败" in out.output
    assert "共 2 个任务，1 个已失败" in out.output
    assert "wechat is not configured" in out.output
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    out = CliRunner().invoke(main, ["jobs", "list", "--db", fresh_db.path])
    assert "kind" in out.output and "failed" in out.output and "类型" not in out.output
    assert "2 job(s), 1 failed" in out.output
    out = CliRunner().invoke(main, ["jobs", "list", "--db", fresh_db.path, "--lang", "zh",
                                    "--status", "pending", "--json"])
    assert [json.loads(line)["key"] for line in out.output.splitlines()] == ["c"]
