"""The web chat's durable outbox: operator replies and timeout messages reach web fans.

Delivery is at least once: a message comes with every poll and every answer until the page
acknowledges its id (``POST /api/chat/ack``); only then is it delivered.

`brandbot handoff reply` runs in another process than the daemon; both meet in the log's
``outbox`` table. The daemon app is real (TestClient), the CLI is real (CliRunner), the log is a
real SQLite file.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from bot.cli import main
from bot.config import load_settings
from bot.daemon import Daemon
from bot.messages import FanRef, Reply
from bot.relations import outbox
from bot.relations.privacy import forget_fan
from tests.conftest import API_HEADERS, TEST_API_KEY, TINY, clear_brandbot_env


def texts(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["text"] for r in response.json()["replies"]]


def operator_lines(store, external_id: str) -> list[dict]:
    rows = store.conn.execute(
        "SELECT m.* FROM messages m JOIN fans f ON f.id = m.fan_id WHERE f.external_id = ? "
        "AND m.direction = 'out' AND m.reply_key = 'operator' ORDER BY m.id", (external_id,))
    return [dict(r) for r in rows]


def ids(response) -> list[int]:
    return [r["id"] for r in response.json()["replies"] if "id" in r]


def ack(client, fan: str | None, message_ids: list[int]) -> int:
    body = {"ids": message_ids, **({"fan": fan} if fan else {})}
    response = client.post("/api/chat/ack", json=body)
    assert response.status_code == 200, response.text
    return response.json()["acknowledged"]


def reply(daemon, fan: str, text: str):
    return CliRunner().invoke(main, ["handoff", "reply", fan, text, "--db", daemon.settings.db])


def test_a_cli_reply_reaches_a_web_fan_by_polling_until_acknowledged(client, daemon):
    client.post("/api/chat", json={"text": "你好", "fan": "ann"})
    client.post("/api/chat", json={"text": "我要投诉", "fan": "ann"})
    assert daemon.store.find_fan("tiny", "web", "ann")["handoff"] == 1
    assert texts(client.get("/api/chat/pending?fan=ann")) == []

    out = reply(daemon, "ann", "您好，我是店长，已经为您安排退款。")
    assert out.exit_code == 0, out.output
    assert "queued for fan" in out.output

    # The page polls; the poll's response is lost (or the tab closed before it showed it):
    # the message comes again, with the same id, until the page acknowledges it.
    first = client.get("/api/chat/pending?fan=ann")
    assert texts(first) == ["您好，我是店长，已经为您安排退款。"]
    lost = client.get("/api/chat/pending?fan=ann")
    assert texts(lost) == texts(first) and ids(lost) == ids(first)
    assert ack(client, "ann", ids(first)) == 1
    assert ack(client, "ann", ids(first)) == 0  # a repeated acknowledgement changes nothing
    assert texts(client.get("/api/chat/pending?fan=ann")) == []
    assert all(r["text"] != "您好，我是店长，已经为您安排退款。"
               for r in client.post("/api/chat", json={"text": "好的", "fan": "ann"})
               .json()["replies"])

    logged = operator_lines(daemon.store, "ann")
    assert [(m["text"], m["channel"], m["direction"]) for m in logged] == [
        ("您好，我是店长，已经为您安排退款。", "web", "out")]
    kinds = [r[0] for r in daemon.store.conn.execute(
        "SELECT kind FROM events e JOIN fans f ON f.id = e.fan_id WHERE f.external_id = 'ann'")]
    assert "operator_reply" in kinds


def test_a_cli_reply_comes_before_the_answer_to_the_fans_next_message(client, daemon):
    client.post("/api/chat", json={"text": "我要投诉", "fan": "bo"})
    assert reply(daemon, "bo", "在的").exit_code == 0
    assert reply(daemon, "bo", "请稍等").exit_code == 0
    answer = client.post("/api/chat", json={"text": "还在吗", "fan": "bo"})
    got = texts(answer)
    assert got[:2] == ["在的", "请稍等"] and len(got) > 2  # then the bot's acknowledgement
    fan = daemon.store.find_fan("tiny", "web", "bo")
    assert len(outbox.pending(daemon.store, fan["id"])) == 2  # shown, not yet acknowledged
    assert ack(client, "bo", ids(answer)) == 2
    assert texts(client.get("/api/chat/pending?fan=bo")) == []
    assert outbox.pending(daemon.store, fan["id"]) == []
    delivered = daemon.store.conn.execute(
        "SELECT count(*) FROM outbox WHERE fan_id = ? AND delivered_at IS NOT NULL",
        (fan["id"],)).fetchone()[0]
    assert delivered == 2


def test_the_page_polls_and_acknowledges_with_its_cookie(client, daemon):
    page = TestClient(client.app)  # a browser: no API key, only its cookie
    fan = page.post("/api/chat", json={"text": "我要投诉"}).json()["fan"]
    assert reply(daemon, fan, "hello from a human").exit_code == 0
    polled = page.get("/api/chat/pending")
    assert texts(polled) == ["hello from a human"]
    assert ack(page, None, ids(polled)) == 1
    assert texts(page.get("/api/chat/pending")) == []


def test_a_fan_cannot_acknowledge_another_fans_messages(client, daemon):
    client.post("/api/chat", json={"text": "我要投诉", "fan": "vic"})
    assert reply(daemon, "vic", "您的订单号 A-778").exit_code == 0
    victim_ids = ids(client.get("/api/chat/pending?fan=vic"))
    other = TestClient(client.app)
    other.post("/api/chat", json={"text": "你好"})
    assert ack(other, None, victim_ids) == 0          # its own cookie: another fan's ids
    assert ack(client, "someone", victim_ids) == 0    # the key, but naming another fan
    assert ack(TestClient(client.app), None, victim_ids) == 0  # no fan at all
    assert texts(client.get("/api/chat/pending?fan=vic")) == ["您的订单号 A-778"]


@pytest.mark.parametrize("body", [
    b'{"ids": "1"}', b'{"ids": [1, "2"]}', b'{"ids": [true]}', b'{"ids": [1.5]}',
    b"[1]", b"not json", b'{"ids": [' + b",".join([b"1"] * 101) + b"]}",
    b'{"ids": [1], "persona": "nobody"}', b'{"ids": [1], "fan": "bad id"}',
])
def test_bad_acknowledgements_get_a_json_error(client, body):
    response = client.post("/api/chat/ack", content=body)
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]


def test_polling_without_a_conversation_or_with_bad_input(client):
    fresh = TestClient(client.app)
    body = fresh.get("/api/chat/pending").json()
    assert body == {"fan": None, "persona": "tiny", "replies": []}
    assert "set-cookie" not in fresh.get("/api/chat/pending").headers
    assert client.get("/api/chat/pending?fan=nobody").json()["replies"] == []
    assert client.get("/api/chat/pending?fan=bad%20id").status_code == 400
    assert client.get("/api/chat/pending?fan=alice%0A").status_code == 400  # "$" took "alice\n"
    assert client.get("/api/chat/pending?persona=other").status_code == 404


def test_send_is_durable_across_a_daemon_restart(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    monkeypatch.setenv("BRANDBOT_WEB__API_KEY", TEST_API_KEY)
    settings = load_settings(None, personas=[str(TINY)], db=str(tmp_path / "d.db"))
    first = Daemon(settings)
    first.open()
    with TestClient(first._build_app(), headers=API_HEADERS) as c:
        c.post("/api/chat", json={"text": "你好", "fan": "cy"})
    queued = asyncio.run(first.channels["web"].send(FanRef("web", "cy"),
                                                    [Reply("新品上市啦", "news", "zh")]))
    assert queued is None  # queued: nothing reported as not sent
    # A fan the log does not know has nothing to attach messages to.
    ghost = asyncio.run(first.channels["web"].send(FanRef("web", "ghost"), [Reply("x")]))
    assert (ghost.skipped, ghost.reason) == (1, "unknown web chat fan")
    first.close()

    second = Daemon(settings)
    second.open()
    try:
        with TestClient(second._build_app(), headers=API_HEADERS) as c:
            got = c.get("/api/chat/pending?fan=cy").json()["replies"]
            assert [{k: v for k, v in r.items() if k != "id"} for r in got] == [
                {"text": "新品上市啦", "key": "news", "language": "zh"}]
    finally:
        second.close()


def test_a_timed_out_handoff_tells_the_web_fan(client, daemon):
    from bot.engine import utc_now

    client.post("/api/chat", json={"text": "我要投诉", "fan": "dee"})
    fan = daemon.store.find_fan("tiny", "web", "dee")
    old = (utc_now() - timedelta(hours=5)).isoformat().replace("+00:00", "Z")
    with daemon.store.transaction() as conn:  # the handoff started 5 h ago (timeout: 4 h)
        conn.execute("UPDATE events SET created_at = ? WHERE fan_id = ?", (old, fan["id"]))
        conn.execute("UPDATE fans SET last_seen = ? WHERE id = ?", (old, fan["id"]))
    asyncio.run(daemon._relations_once())
    assert texts(client.get("/api/chat/pending?fan=dee")) == ["我回来啦，有问题随时问"]
    assert daemon.store.find_fan("tiny", "web", "dee")["handoff"] == 0


def test_the_cli_expire_command_queues_for_web_fans(tmp_path, tiny_brand, clock):
    from bot.engine import Engine
    from bot.messages import Inbound
    from bot.relations import Store

    db = tmp_path / "e.db"
    store = Store(db)
    engine = Engine(store, tiny_brand, clock=lambda: clock.now - timedelta(days=1), seed=1)
    engine.handle(Inbound(FanRef("web", "eve"), text="我要投诉"))
    store.close()
    out = CliRunner().invoke(main, ["handoff", "expire", "--db", str(db), "-p", str(TINY)])
    assert out.exit_code == 0, out.output
    assert "told on their chat page's next request" in out.output
    store = Store(db)
    try:
        fan = store.find_fan("tiny", "web", "eve")
        assert [(p["text"], p["reply_key"]) for p in outbox.pending(store, fan["id"])] == [
            ("我回来啦，有问题随时问", "handoff_end")]
    finally:
        store.close()


@pytest.mark.parametrize("keep_aggregates", [True, False])
def test_forgetting_a_fan_empties_their_outbox(tiny_engine, fresh_db, keep_aggregates):
    from bot.messages import Inbound

    tiny_engine.handle(Inbound(FanRef("web", "fay"), text="我要投诉"))
    fan = fresh_db.find_fan("tiny", "web", "fay")
    outbox.enqueue(fresh_db, fan["id"], [Reply("private words", "operator")], tiny_engine.clock())
    forget_fan(fresh_db, fan["id"], keep_aggregates=keep_aggregates)
    assert fresh_db.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_handoff_end_from_the_cli_reaches_a_web_fan(client, daemon, tmp_path):
    from click.testing import CliRunner

    from bot.cli import main

    client.post("/api/chat", json={"text": "我要投诉", "fan": "wen"})
    db = daemon.settings.db
    daemon.store.conn.execute("PRAGMA wal_checkpoint")
    result = CliRunner().invoke(main, ["handoff", "end", "wen", "--db", db,
                                       "--persona", str(TINY)])
    assert result.exit_code == 0, result.output
    pending = client.get("/api/chat/pending", params={"fan": "wen"}).json()["replies"]
    assert [r["text"] for r in pending] == ["我回来啦，有问题随时问"]


def test_a_retried_request_gets_the_operator_messages_again(client, daemon):
    client.post("/api/chat", json={"text": "我要投诉", "fan": "zed"})
    assert reply(daemon, "zed", "已经为您安排退款").exit_code == 0
    first = client.post("/api/chat", json={"text": "好", "fan": "zed", "msg_id": "m2"})
    again = client.post("/api/chat", json={"text": "好", "fan": "zed", "msg_id": "m2"})
    assert texts(first)[0] == "已经为您安排退款" and texts(again) == texts(first)  # 1st lost
    assert ids(again) == ids(first) and len(ids(first)) == 1
    assert ack(client, "zed", ids(again)) == 1
    assert texts(client.get("/api/chat/pending?fan=zed")) == []


def tiny_with_footer(tmp_path) -> str:
    """The tiny persona with the unsubscribe footer every newsletter needs."""
    import shutil

    from tests.conftest import ROOT

    (tmp_path / "personas").mkdir(exist_ok=True)
    shutil.copytree(ROOT / "dialogs", tmp_path / "dialogs", dirs_exist_ok=True)
    text = TINY.read_text(encoding="utf-8").replace(
        "replies:\n", "replies:\n  newsletter_footer: {zh: [回复 退订 即可取消], "
        "en: [Reply unsubscribe to stop]}\n", 1)
    path = tmp_path / "personas" / "tiny.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_newsletter_reaches_a_subscribed_web_fan_through_the_outbox(client, daemon, tmp_path):
    # The bot tells a web fan "订阅成功": a broadcast must then reach them, not skip them.
    client.post("/api/chat", json={"text": "我要订阅", "fan": "sub"})
    client.post("/api/chat", json={"text": "是", "fan": "sub"})
    assert daemon.store.find_fan("tiny", "web", "sub")["subscribed"] == 1
    out = CliRunner().invoke(main, ["broadcast", "-p", tiny_with_footer(tmp_path),
                                    "-t", "本周新菜：酸菜鱼", "--db", daemon.settings.db])
    assert out.exit_code == 0, out.output
    status = daemon.store.conn.execute(
        "SELECT d.status FROM deliveries d JOIN fans f ON f.id = d.fan_id "
        "WHERE f.external_id = 'sub'").fetchone()[0]
    assert status == "sent"  # for the web: waiting in the outbox for the fan's page
    polled = client.get("/api/chat/pending?fan=sub")
    assert "本周新菜：酸菜鱼" in texts(polled)[0] and "退订" in " ".join(texts(polled))
    assert ack(client, "sub", ids(polled)) == len(ids(polled)) >= 1
    assert texts(client.get("/api/chat/pending?fan=sub")) == []
    # Once per broadcast: resuming it sends nothing again.
    broadcast_id = daemon.store.conn.execute("SELECT max(id) FROM broadcasts").fetchone()[0]
    again = CliRunner().invoke(main, ["broadcast", "resume", str(broadcast_id), "--db",
                                      daemon.settings.db])
    assert again.exit_code == 0, again.output
    assert texts(client.get("/api/chat/pending?fan=sub")) == []


def test_with_the_web_chat_off_a_broadcast_says_why_web_fans_are_left_out(
        client, daemon, monkeypatch, tmp_path):
    client.post("/api/chat", json={"text": "我要订阅", "fan": "off"})
    client.post("/api/chat", json={"text": "是", "fan": "off"})
    monkeypatch.setenv("BRANDBOT_WEB__ENABLED", "false")
    out = CliRunner().invoke(main, ["broadcast", "-p", tiny_with_footer(tmp_path), "-t", "hi",
                                    "--dry-run", "--db", daemon.settings.db])
    assert out.exit_code == 0, out.output
    assert "web chat is off: set web.enabled: true" in out.output
