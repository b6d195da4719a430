"""The web chat channel in process: the real daemon app, engine and SQLite, driven by TestClient.

Odd input must never crash a turn or the server: every response here is a 200 or a 4xx with a
JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from starlette.testclient import TestClient

from bot.channels.web import COOKIE
from bot.daemon import _MaskingFormatter
from bot.messages import FanRef, Reply


def inbound_rows(daemon, fan: str) -> list[dict]:
    rows = daemon.store.conn.execute(
        "SELECT m.* FROM messages m JOIN fans f ON f.id = m.fan_id "
        "WHERE f.external_id = ? AND direction = 'in' ORDER BY m.id",
        (fan,),
    )
    return [dict(r) for r in rows]


def test_chat_answers_in_the_persona_voice_and_keeps_the_fan_in_a_cookie(client, daemon):
    first = client.post("/api/chat", json={"text": "你好"})
    assert first.status_code == 200
    body = first.json()
    assert body["persona"] == "tiny" and body["fan"].startswith("w-")
    assert body["replies"][0]["text"] == "欢迎来到小店，朋友！"
    assert first.cookies.get(COOKIE) == body["fan"]
    second = client.post("/api/chat", json={"text": "几点开门"})  # the cookie is sent back
    assert second.json()["fan"] == body["fan"]
    assert "每天9点到21点" in second.json()["replies"][0]["text"]
    assert COOKIE not in second.headers.get("set-cookie", "")
    assert len(inbound_rows(daemon, body["fan"])) == 2


def test_a_repeated_msg_id_is_answered_from_the_log_not_run_twice(client, daemon):
    payload = {"text": "几点开门", "fan": "dup", "msg_id": "m-1"}
    a = client.post("/api/chat", json=payload).json()
    b = client.post("/api/chat", json=payload).json()
    assert a["replies"] == b["replies"]
    assert len(inbound_rows(daemon, "dup")) == 1


def test_ref_on_the_first_message_records_the_referral(client, daemon):
    client.post("/api/chat", json={"text": "你好", "fan": "invited", "ref": "SPRING24"})
    row = daemon.store.conn.execute(
        "SELECT r.code FROM referrals r JOIN fans f ON f.id = r.referred_id "
        "WHERE f.external_id = 'invited'"
    ).fetchone()
    assert row["code"] == "SPRING24"


@pytest.mark.parametrize(
    "text",
    [
        "\ud800 lone surrogate",
        "nul \x00 inside",
        "👩‍👩‍👧‍👦 family emoji",
        "עברית RTL \u202e reversed",
        "e\u0301\u0301\u0301 combining",
        "\ufeff\u200b zero width",
        "繁體字：請問幾點開門",
        "x" * 2000,
        "   \n几点开门\t ",
    ],
)
def test_odd_unicode_never_crashes(client, daemon, text):
    raw = json.dumps({"text": text, "fan": "odd", "name": "名\udfff"}).encode()
    response = client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["replies"]
    assert daemon.metrics.errors.labels("turn")._value.get() == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\xff\xfe not utf-8", 400),
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"text": ""}', 400),
        (b'{"text": "   "}', 400),
        (b'{"text": 42}', 400),
        (b'{"text": "hi", "fan": "has spaces"}', 400),
        (b'{"text": "hi", "fan": "\\ud800"}', 400),
        (b'{"text": "hi", "msg_id": "\\ud800"}', 400),
        (b'{"text": "hi", "msg_id": {"a": 1}}', 400),
        (b'{"text": "hi", "lang": "fr"}', 400),
        (b'{"text": "hi", "persona": "nobody"}', 404),
        (json.dumps({"text": "x" * 2001}).encode(), 413),
        (b"[" * 5000 + b"]" * 5000, 400),
    ],
)
def test_bad_requests_get_a_json_error_not_a_crash(client, body, status):
    response = client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_oversized_bodies_get_413_with_or_without_a_length(client, daemon):
    big = json.dumps({"text": "几" * 20_000}).encode()
    assert client.post("/api/chat", content=big).status_code == 413

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(40):
            yield b" " * 1024

    response = client.post("/api/chat", content=chunks())
    assert response.status_code == 413
    assert daemon.metrics.errors.labels("http_413")._value.get() == 2


def test_page_and_static_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    js = client.get("/static/chat.js")
    assert js.status_code == 200 and "/api/chat" in js.text and "textContent" in js.text
    assert "innerHTML" not in js.text.replace("never innerHTML", "")
    assert client.get("/static/chat.css").status_code == 200
    assert client.get("/static/../daemon.py").status_code == 404
    info = client.get("/api/persona").json()
    assert info["id"] == "tiny" and info["name"] == {"zh": "小安", "en": "An"}


def test_health_is_503_when_the_database_is_not_usable(client, daemon):
    from pydantic import SecretStr

    daemon.settings.metrics_token = SecretStr("ops-token")  # details are for the operator
    operator = {"Authorization": "Bearer ops-token"}
    ok = client.get("/healthz", headers=operator)
    assert ok.status_code == 200 and ok.json()["database"]["ok"] is True
    daemon.store.conn.close()
    bad = client.get("/healthz", headers=operator)
    assert bad.status_code == 503
    assert bad.json()["status"] == "unavailable" and bad.json()["database"]["error"]
    assert client.get("/healthz").json() == {"status": "unavailable"}


def test_metrics_count_intents_fallbacks_and_handoffs(client):
    client.post("/api/chat", json={"text": "几点开门", "fan": "m"})
    client.post("/api/chat", json={"text": "qwzx plmk", "fan": "m"})
    client.post("/api/chat", json={"text": "我要投诉", "fan": "m"})
    client.post("/api/chat", json={"text": "转人工", "fan": "m"})
    text = client.get("/metrics").text
    assert 'brandbot_intents_total{intent="hours",persona="tiny"} 1.0' in text
    assert 'brandbot_fallbacks_total{persona="tiny"}' in text
    assert 'brandbot_messages_in_total{channel="web",persona="tiny"} 4.0' in text


def test_send_keeps_messages_for_the_fans_next_reply(daemon):
    app = daemon._build_app()
    web = daemon.channels["web"]
    with TestClient(app) as c:  # the outbox holds messages for fans the log knows
        c.post("/api/chat", json={"text": "你好", "fan": "later"})
    asyncio.run(web.send(FanRef("web", "later"), [Reply("新品上市啦", "news", "zh")]))
    with TestClient(app) as c:
        replies = c.post("/api/chat", json={"text": "你好", "fan": "later"}).json()["replies"]
        assert replies[0]["text"] == "新品上市啦" and len(replies) > 1
        again = c.post("/api/chat", json={"text": "你好", "fan": "later"}).json()["replies"]
        assert "新品上市啦" not in [r["text"] for r in again]


def test_the_log_formatter_masks_secrets_and_writes_json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_MaskingFormatter("json", ["sekrit-value"]))
    logger = logging.getLogger("brandbot.test.mask")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling https://api/botsekrit-value/getMe with 中文")
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert "sekrit-value" not in stream.getvalue()
    assert line["msg"] == "calling https://api/bot***/getMe with 中文"
    assert line["level"] == "WARNING"
