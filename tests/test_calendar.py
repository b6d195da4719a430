"""The topic calendar: due topics, sent once, in each fan's language, like a broadcast."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bot.brand import load_brand
from bot.channels.telegram_kind import TelegramOutlet
from bot.cli import main
from bot.persona.model import Persona, Topic
from bot.relations.calendar import due_topics, has_calendar_work, send_due_topics
from tests.conftest import ROOT
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.test_broadcast import NOW, PERSONA, add_fans

MOON = Topic(id="mid-autumn", date=date(2026, 1, 5), time="09:30",
             text={"zh": "中秋快乐", "en": "Happy Mid-Autumn"}, audience="stage>=friend")
LATER = Topic(id="spring", date=date(2026, 2, 1), text="春节见")


@pytest.fixture(scope="module")
def persona():
    demo = load_brand(PERSONA).persona
    # Times in UTC here; the zh persona's default zone (Asia/Shanghai) is tested below.
    return demo.model_copy(update={"calendar": [MOON, LATER], "timezone": "UTC"})


def test_topic_times_are_read_in_the_personas_time_zone(fresh_db, persona):
    shanghai = persona.model_copy(update={"timezone": None})  # zh default: Asia/Shanghai
    assert str(shanghai.zone) == "Asia/Shanghai"
    assert MOON.at(shanghai.zone) == NOW - timedelta(hours=8, minutes=30)  # 09:30 +08:00
    assert [t.id for t in due_topics(fresh_db, shanghai, NOW - timedelta(hours=8))] == [
        "mid-autumn"]
    assert due_topics(fresh_db, shanghai, NOW - timedelta(hours=9)) == []


def test_a_topic_is_due_from_its_time_for_a_day(fresh_db, persona):
    assert [t.id for t in due_topics(fresh_db, persona, NOW)] == ["mid-autumn"]
    assert due_topics(fresh_db, persona, NOW - timedelta(hours=1)) == []
    assert due_topics(fresh_db, persona, NOW + timedelta(days=1)) == []  # stale: not sent
    assert [t.id for t in due_topics(fresh_db, persona, NOW + timedelta(days=27))] == ["spring"]


def test_due_topics_go_out_once_in_each_fans_language(fresh_db, persona):
    add_fans(fresh_db, 3, start=1, language="zh")
    add_fans(fresh_db, 2, start=10, language="en")
    add_fans(fresh_db, 4, start=20, stage="stranger")  # outside the audience

    async def run():
        async with FakeTelegram() as fake:
            outlets = {"telegram": TelegramOutlet(fresh_db, PERSONA, TOKEN, fake.base_url,
                                                  overall_rate=None)}
            first = await send_due_topics(fresh_db, persona, outlets, NOW)
            again = await send_due_topics(fresh_db, persona, outlets, NOW + timedelta(hours=1))
            return fake, first, again

    fake, first, again = asyncio.run(run())
    assert len(first) == 1 and again == []
    assert fake.texts(1)[0].startswith("中秋快乐\n\n")
    assert fake.texts(10)[0].startswith("Happy Mid-Autumn\n\n")
    assert len(fake.sent()) == 5
    row = fresh_db.conn.execute("SELECT topic, audience, status FROM broadcasts").fetchone()
    assert tuple(row) == ("mid-autumn", "stage>=friend", "done")


def test_topics_are_validated(persona):
    with pytest.raises(ValidationError, match="audience"):
        Topic(id="x", date=date(2026, 1, 1), text="hi", audience="colour:red")
    with pytest.raises(ValidationError, match="HH:MM|pattern"):
        Topic(id="x", date=date(2026, 1, 1), text="hi", time="25:00")
    data = persona.model_dump()
    data["calendar"] = [MOON.model_dump(), MOON.model_dump()]
    with pytest.raises(ValidationError, match="unique"):
        Persona.model_validate(data)


def test_calendar_commands(fresh_db, tmp_path, monkeypatch):
    text = (ROOT / "personas" / f"{PERSONA}.yaml").read_text(encoding="utf-8")
    text += ("\ncalendar:\n  - id: soon\n    date: 2000-01-01\n    text: {zh: 你好, en: hi}\n")
    personas = tmp_path / "personas"
    personas.mkdir()
    (personas / f"{PERSONA}.yaml").write_text(text, encoding="utf-8")
    out = CliRunner().invoke(main, ["calendar", "list", "-p", str(personas / f"{PERSONA}.yaml"),
                                    "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    assert "soon" in out.output and "missed" in out.output
    monkeypatch.delenv("BRANDBOT_TELEGRAM_TOKEN", raising=False)
    out = CliRunner().invoke(main, ["calendar", "send", "-p", str(personas / f"{PERSONA}.yaml"),
                                    "--db", fresh_db.path])
    assert out.exit_code == 0, out.output
    assert "nothing due" in out.output


def test_an_interrupted_topic_send_is_finished_on_the_next_tick(fresh_db, persona):
    from bot.relations.broadcast import channel_reasons, create, deliver

    add_fans(fresh_db, 6, start=1, language="zh")

    async def run():
        async with FakeTelegram() as fake:
            outlets = {"telegram": TelegramOutlet(fresh_db, PERSONA, TOKEN, fake.base_url,
                                                  overall_rate=None)}
            # The daemon recorded the topic and was stopped after two deliveries.
            broadcast_id, _ = create(fresh_db, persona, "中秋快乐", MOON.audience, NOW,
                                     channel_reasons(outlets, None),
                                     texts={"zh": "中秋快乐"}, topic=MOON.id)
            await deliver(fresh_db, broadcast_id, persona, outlets, clock=lambda: NOW,
                          stop_after=2)
            later = NOW + timedelta(minutes=1)
            # The topic is no longer "due" (it was recorded), yet the daemon's gate sees the work.
            assert due_topics(fresh_db, persona, later) == []
            assert has_calendar_work(fresh_db, persona, later)
            resumed = await send_due_topics(fresh_db, persona, outlets, later)
            return fake, broadcast_id, resumed

    fake, broadcast_id, resumed = asyncio.run(run())
    assert resumed == [broadcast_id]
    assert not has_calendar_work(fresh_db, persona, NOW + timedelta(minutes=2))
    assert len(fake.sent()) == 6  # every fan once, nobody twice
    status = fresh_db.conn.execute("SELECT status FROM broadcasts").fetchone()[0]
    assert status == "done"
