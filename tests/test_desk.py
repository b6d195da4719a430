"""The operator desk: replies through the fan's channel, transcripts, abandoned handoffs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.messages import FanRef, Inbound
from bot.relations.desk import log_operator_reply, time_to_first_reply, transcript
from bot.scheduled import expire_handoffs
from tests.fakes.telegram_api import TOKEN
from tests.test_broadcast import ThreadedFake

TG = FanRef("telegram", "4242")
WEB = FanRef("web", "ann")


def say(engine, text, fan=TG):
    return [r.text for r in engine.handle(Inbound(fan, text=text, display_name="Ann"))]


def row(store, fan=TG):
    return store.find_fan("tiny", fan.channel, fan.external_id)


@pytest.fixture
def fake_api():
    server = ThreadedFake()
    yield server.fake
    server.stop()


@pytest.fixture
def env(monkeypatch, fake_api):
    monkeypatch.delenv("BRANDBOT_CONFIG", raising=False)
    monkeypatch.setenv("BRANDBOT_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("BRANDBOT_TELEGRAM_API_URL", fake_api.base_url)


def test_an_operator_reply_reaches_the_fan_and_is_logged(tiny_engine, fresh_db, fake_api, env):
    say(tiny_engine, "你好")
    say(tiny_engine, "我要投诉")
    assert row(fresh_db)["handoff"] == 1
    out = CliRunner().invoke(main, ["handoff", "reply", "4242", "您好，我是店长", "--db",
                                    fresh_db.path])
    assert out.exit_code == 0, out.output
    assert fake_api.texts(4242) == ["您好，我是店长"]
    lines = transcript(fresh_db, row(fresh_db)["id"])
    assert lines[-1]["who"] == "operator" and lines[-1]["text"] == "您好，我是店长"
    assert [line["who"] for line in lines[:2]] == ["fan", "bot"]
    show = CliRunner().invoke(main, ["handoff", "show", "4242", "--db", fresh_db.path])
    assert show.exit_code == 0, show.output
    assert "in handoff since" in show.output
    assert "operator: 您好，我是店长" in show.output and "fan: 我要投诉" in show.output


def test_replies_only_go_to_fans_in_handoff(tiny_engine, fresh_db, env):
    say(tiny_engine, "你好")
    out = CliRunner().invoke(main, ["handoff", "reply", "4242", "hi", "--db", fresh_db.path])
    assert out.exit_code == 1 and "not in handoff" in out.output
    # Web chat fans get it through the outbox (tests/test_web_outbox.py).
    say(tiny_engine, "我要投诉", fan=WEB)
    out = CliRunner().invoke(main, ["handoff", "reply", "ann", "hi", "--db", fresh_db.path])
    assert out.exit_code == 0 and "queued for fan" in out.output
    assert [m["text"] for m in transcript(fresh_db, row(fresh_db, WEB)["id"])
            if m["who"] == "operator"] == ["hi"]


def test_a_blocked_fan_is_reported_and_marked(tiny_engine, fresh_db, fake_api, env):
    say(tiny_engine, "我要投诉")
    fake_api.blocked.add(4242)
    out = CliRunner().invoke(main, ["handoff", "reply", "4242", "hi", "--db", fresh_db.path])
    assert out.exit_code == 1 and "blocked" in out.output
    assert row(fresh_db)["blocked"] == 1


def test_an_abandoned_handoff_goes_back_to_the_bot_in_voice(tiny_engine, fresh_db, clock):
    say(tiny_engine, "我要投诉", fan=WEB)
    fan = row(fresh_db, WEB)
    assert fan["handoff"] == 1
    clock.advance(hours=3)
    assert expire_handoffs(tiny_engine, clock.now) == []
    log_operator_reply(fresh_db, fan, "在的，马上处理", clock.now)
    clock.advance(hours=3)  # 6 h since the handoff, 3 h since the operator's reply
    assert expire_handoffs(tiny_engine, clock.now) == []
    say(tiny_engine, "还在吗", fan=WEB)  # the fan writing does not keep the handoff alive
    clock.advance(hours=1, minutes=1)
    expired = expire_handoffs(tiny_engine, clock.now)
    assert [(e.fan, [r.text for r in e.replies]) for e in expired] == [
        (WEB, ["我回来啦，有问题随时问"])
    ]
    fan = row(fresh_db, WEB)
    assert fan["handoff"] == 0 and fan["dialog_state"] == "chatting"
    kinds = [r[0] for r in fresh_db.conn.execute(
        "SELECT kind FROM events WHERE fan_id = ? ORDER BY id", (fan["id"],))]
    assert kinds[-2:] == ["handoff_end", "handoff_timeout"]
    assert expire_handoffs(tiny_engine, clock.now + timedelta(days=1)) == []
    assert time_to_first_reply(fresh_db) == [180.0]
    assert time_to_first_reply(fresh_db, persona="tiny") == [180.0]
    # Another persona's report counts only its own fans' handoffs.
    assert time_to_first_reply(fresh_db, persona="laowang-kitchen") == []


def test_handoff_expire_command_returns_abandoned_conversations(tmp_path, tiny_brand, clock):
    from bot.engine import Engine
    from bot.relations import Store
    from tests.conftest import TINY

    db = tmp_path / "b.db"
    store = Store(db)
    engine = Engine(store, tiny_brand, clock=lambda: clock.now - timedelta(days=1), seed=1)
    say(engine, "我要投诉", fan=WEB)
    store.close()
    out = CliRunner().invoke(main, ["handoff", "expire", "--db", str(db), "-p", str(TINY)])
    assert out.exit_code == 0, out.output
    assert "1 abandoned handoff(s)" in out.output
    assert "told on their chat page's next request" in out.output
    store = Store(db)
    assert store.find_fan("tiny", "web", "ann")["handoff"] == 0
    payload = store.conn.execute(
        "SELECT payload FROM events WHERE kind = 'handoff_timeout'").fetchone()[0]
    assert json.loads(payload)["minutes"] == 240
    store.close()
