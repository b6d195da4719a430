"""The web chat channel in process: the real daemon app, engine and SQLite, driven by TestClient.

Odd input must never crash a turn or the server: every response here is a 200 or a 4xx with a
JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from bot.channels.web import COOKIE
from bot.channels.web_identity import WebIdentity, secret_file
from bot.config import SettingsError, load_settings
from bot.daemon import Daemon
from bot.logsetup import MaskingFormatter
from bot.messages import FanRef, Reply
from bot.relations import outbox
from tests.conftest import API_HEADERS, TEST_API_KEY, TINY, clear_brandbot_env
from tests.test_daemon import ServeProcess, tiny_args, workdir  # noqa: F401 - fixture


def inbound_rows(daemon, fan: str) -> list[dict]:
    rows = daemon.store.conn.execute(
        "SELECT m.* FROM messages m JOIN fans f ON f.id = m.fan_id "
        "WHERE f.external_id = ? AND direction = 'in' ORDER BY m.id",
        (fan,),
    )
    return [dict(r) for r in rows]


def test_chat_answers_in_the_persona_voice_and_keeps_the_fan_in_a_signed_cookie(client, daemon):
    browser = TestClient(client.app)  # no API key: what a visitor's page is
    first = browser.post("/api/chat", json={"text": "你好"})
    assert first.status_code == 200
    body = first.json()
    assert body["persona"] == "tiny" and body["fan"].startswith("w-")
    assert body["replies"][0]["text"] == "欢迎来到小店，朋友！"
    cookie = first.cookies.get(COOKIE)
    assert cookie.startswith(body["fan"] + ".") and len(cookie) > len(body["fan"]) + 20
    assert "httponly" in first.headers["set-cookie"].lower()
    second = browser.post("/api/chat", json={"text": "几点开门"})  # the cookie is sent back
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
        (b'{"text": "hi", "fan": "alice\\n"}', 400),
        (b'{"text": "hi", "fan": "alice\\r\\n"}', 400),
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


def test_send_keeps_messages_for_the_fans_next_reply_until_acknowledged(daemon):
    app = daemon._build_app()
    web = daemon.channels["web"]
    with TestClient(app, headers=API_HEADERS) as c:  # the outbox holds messages for known fans
        c.post("/api/chat", json={"text": "你好", "fan": "later"})
    asyncio.run(web.send(FanRef("web", "later"), [Reply("新品上市啦", "news", "zh")]))
    with TestClient(app, headers=API_HEADERS) as c:
        replies = c.post("/api/chat", json={"text": "你好", "fan": "later"}).json()["replies"]
        assert replies[0]["text"] == "新品上市啦" and len(replies) > 1
        assert isinstance(replies[0]["id"], int) and all("id" not in r for r in replies[1:])
        acked = c.post("/api/chat/ack", json={"ids": [replies[0]["id"]], "fan": "later"})
        assert acked.json() == {"acknowledged": 1}
        again = c.post("/api/chat", json={"text": "你好", "fan": "later"}).json()["replies"]
        assert "新品上市啦" not in [r["text"] for r in again]


def test_the_log_formatter_masks_secrets_and_writes_json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("json", ["sekrit-value"]))
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


# -- who a request speaks for (issue: web fan identity was guessable) -------------------------


def fans_named(daemon, external_id: str) -> int:
    return daemon.store.conn.execute(
        "SELECT count(*) FROM fans WHERE channel = 'web' AND external_id = ?", (external_id,)
    ).fetchone()[0]


def queue_for(daemon, external_id: str, text: str) -> None:
    fan = daemon.store.find_fan("tiny", "web", external_id)
    outbox.enqueue(daemon.store, fan["id"], [Reply(text, "operator", "zh")], datetime.now(UTC))


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key-wrong-key", f"Bearer {TEST_API_KEY}x", f"Bearer {TEST_API_KEY[:-1]}",
     TEST_API_KEY, f"Basic {TEST_API_KEY}", "Bearer ", f"Bearer  {TEST_API_KEY} trailing"],
)
def test_a_caller_chosen_fan_needs_the_api_key(client, daemon, authorization):
    client.post("/api/chat", json={"text": "我要投诉", "fan": "alice"})  # with the key
    fan = daemon.store.find_fan("tiny", "web", "alice")
    outbox.enqueue(daemon.store, fan["id"], [Reply("退款已办好，电话 138-0000-0000", "operator")],
                   datetime.now(UTC))
    stranger = TestClient(client.app)
    headers = {} if authorization is None else {"Authorization": authorization}
    read = stranger.get("/api/chat/pending?fan=alice", headers=headers)
    write = stranger.post("/api/chat", json={"text": "我是alice", "fan": "alice"},
                          headers=headers)
    ack = stranger.post("/api/chat/ack", json={"ids": [1, 2, 3], "fan": "alice"},
                        headers=headers)
    for response in (read, write, ack):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["error"] and "138" not in response.text
    assert len(inbound_rows(daemon, "alice")) == 1  # nothing written into alice's log
    assert len(outbox.pending(daemon.store, fan["id"])) == 1  # nor acknowledged
    # The key holder still reads them.
    assert "138-0000-0000" in client.get("/api/chat/pending?fan=alice").text


def test_without_an_api_key_set_a_fan_field_is_refused(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    settings = load_settings(None, personas=[str(TINY)], db=str(tmp_path / "nokey.db"))
    d = Daemon(settings)
    d.open()
    try:
        with TestClient(d._build_app()) as c:
            for headers in ({}, {"Authorization": "Bearer anything-at-all-here"}):
                r = c.post("/api/chat", json={"text": "hi", "fan": "alice"}, headers=headers)
                assert r.status_code == 403 and "web.api_key" in r.json()["error"]
                assert c.get("/api/chat/pending?fan=alice", headers=headers).status_code == 403
            assert c.post("/api/chat", json={"text": "你好"}).status_code == 200  # the page works
        assert d.store.find_fan("tiny", "web", "alice") is None
    finally:
        d.close()


def test_forged_tampered_or_foreign_cookies_are_ignored(client, daemon):
    browser = TestClient(client.app)
    victim = browser.post("/api/chat", json={"text": "我要投诉"})
    fan = victim.json()["fan"]
    good = victim.cookies.get(COOKIE)
    queue_for(daemon, fan, "您的退款单号 R-12345")
    fan_part, _, sig = good.rpartition(".")
    forged = [
        fan,                                   # the bare id, as the old unsigned cookie held it
        f"{fan}.{'A' * len(sig)}",             # a made-up signature
        f"{fan[:-1]}{'x' if fan[-1] != 'x' else 'y'}.{sig}",  # another id, the victim's signature
        f"{fan_part}.{sig[:-1]}",              # a truncated signature
        WebIdentity(b"another daemon's secret, 48 bytes long........").cookie_value(fan),
        "alice",
        "w-abc.%%%",
        "." * 300,
    ]
    for value in forged:
        attacker = TestClient(client.app, cookies={COOKIE: value})
        pending = attacker.get("/api/chat/pending")
        assert pending.status_code == 200 and pending.json()["fan"] is None, value
        assert "R-12345" not in pending.text
        chat = attacker.post("/api/chat", json={"text": "你好"})
        assert chat.status_code == 200 and chat.json()["fan"] not in (fan, "alice"), value
        assert chat.cookies.get(COOKIE) != value  # a fresh fan and cookie instead
    assert len(inbound_rows(daemon, fan)) == 1
    # The genuine cookie still works.
    owner = TestClient(client.app, cookies={COOKIE: good})
    assert "R-12345" in owner.get("/api/chat/pending").text


def test_the_cookie_secret_is_made_once_0600_beside_the_db_and_survives_a_restart(
        client, daemon, caplog):
    caplog.set_level(logging.DEBUG)
    path = secret_file(daemon.settings.db)
    assert path.is_file() and (path.stat().st_mode & 0o777) == 0o600
    secret = path.read_text().strip()
    assert len(secret) >= 32
    browser = TestClient(client.app)
    fan = browser.post("/api/chat", json={"text": "你好"}).json()["fan"]
    cookie = browser.cookies.get(COOKIE)
    daemon.close()

    again = Daemon(daemon.settings)  # a restart: same database, same secret file
    again.open()
    try:
        with TestClient(again._build_app(), cookies={COOKIE: cookie}) as c:
            assert c.post("/api/chat", json={"text": "几点开门"}).json()["fan"] == fan
        assert path.read_text().strip() == secret
    finally:
        again.close()
    assert secret not in caplog.text and cookie.rpartition(".")[2] not in caplog.text


def test_a_loose_secret_file_is_tightened_and_a_configured_secret_makes_no_file(
        tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    db = tmp_path / "loose.db"
    path = secret_file(str(db))
    path.write_text("s" * 40)
    path.chmod(0o644)
    d = Daemon(load_settings(None, personas=[str(TINY)], db=str(db)))
    d.open()
    d._build_app()
    d.close()
    assert (path.stat().st_mode & 0o777) == 0o600 and path.read_text() == "s" * 40

    monkeypatch.setenv("BRANDBOT_WEB__COOKIE_SECRET", "c" * 40)
    other = tmp_path / "configured.db"
    settings = load_settings(None, personas=[str(TINY)], db=str(other))
    assert "c" * 40 in settings.secrets()  # masked in every log line
    d = Daemon(settings)
    d.open()
    with TestClient(d._build_app()) as c:
        cookie = c.post("/api/chat", json={"text": "你好"}).cookies.get(COOKIE)
    d.close()
    assert not secret_file(str(other)).exists()
    fan, _, _ = cookie.rpartition(".")
    assert WebIdentity(b"c" * 40).cookie_fan({COOKIE: cookie}) == fan


def test_short_secrets_and_keys_are_refused_without_showing_them(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    monkeypatch.setenv("BRANDBOT_WEB__COOKIE_SECRET", "short-secret-abc")
    monkeypatch.setenv("BRANDBOT_WEB__API_KEY", "tiny-key")
    with pytest.raises(SettingsError) as err:
        load_settings(None, personas=[str(TINY)], db=str(tmp_path / "x.db"))
    text = str(err.value)
    assert "web.cookie_secret" in text and "web.api_key" in text
    assert "short-secret-abc" not in text and "tiny-key" not in text


def test_the_api_key_is_never_logged(client, daemon, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/api/chat", json={"text": "你好", "fan": "k"})
    TestClient(client.app).post("/api/chat", json={"text": "你好", "fan": "k"},
                                headers={"Authorization": f"Bearer {TEST_API_KEY}-wrong"})
    assert TEST_API_KEY not in caplog.text
    assert TEST_API_KEY in daemon.settings.secrets()  # and masked if anything ever did


# -- a first visitor's retry (issue: a lost first response made two fans) ---------------------


@pytest.mark.parametrize("first_get", ["/", "/api/persona"])
def test_a_first_visitors_lost_response_is_retried_as_the_same_fan(client, daemon, first_get):
    browser = TestClient(client.app)
    assert browser.get(first_get).status_code == 200  # what the page does before sending
    before = dict(browser.cookies)
    assert before.get(COOKIE), "the page must hold its fan cookie before its first message"
    message = {"text": "你好", "msg_id": "m-first-1", "ref": "SPRING24"}
    first = browser.post("/api/chat", json=message)
    assert first.status_code == 200
    browser.cookies = before  # the response (and anything it set) was lost on the way
    retry = browser.post("/api/chat", json=message)
    assert retry.json()["fan"] == first.json()["fan"]
    assert retry.json()["replies"] == first.json()["replies"]
    fan = first.json()["fan"]
    assert len(inbound_rows(daemon, fan)) == 1
    assert daemon.store.conn.execute("SELECT count(*) FROM fans").fetchone()[0] == 1
    assert daemon.store.conn.execute(
        "SELECT count(*) FROM referrals WHERE code = 'SPRING24'").fetchone()[0] == 1
    # A browser that already holds a valid cookie is not given another one.
    assert COOKIE not in browser.get(first_get).headers.get("set-cookie", "")


# -- rate limits -----------------------------------------------------------------------------


def limited_daemon(tmp_path, monkeypatch, **limits):
    clear_brandbot_env(monkeypatch)
    monkeypatch.setenv("BRANDBOT_WEB__API_KEY", TEST_API_KEY)
    for key, value in limits.items():
        monkeypatch.setenv(f"BRANDBOT_WEB__{key.upper()}", value)
    d = Daemon(load_settings(None, personas=[str(TINY)], db=str(tmp_path / "rl.db")))
    d.open()
    return d


def test_too_many_messages_from_one_fan_get_429_with_retry_after(tmp_path, monkeypatch):
    d = limited_daemon(tmp_path, monkeypatch, messages_per_fan="3/minute",
                       messages_per_ip="100/minute")
    try:
        with TestClient(d._build_app()) as browser:
            statuses = [browser.post("/api/chat", json={"text": f"你好{n}"}).status_code
                        for n in range(4)]
            assert statuses == [200, 200, 200, 429]
            refused = browser.post("/api/chat", json={"text": "再来"})
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            error = refused.json()["error"]
            assert "请稍等" in error and "Too many" in error
            # Another fan (a new browser at the same address) is not held back by this one.
            assert TestClient(d._build_app()).post("/api/chat", json={"text": "你好"}
                                                   ).status_code == 200
        fan = d.store.conn.execute("SELECT id FROM fans ORDER BY id").fetchone()[0]
        n = d.store.conn.execute("SELECT count(*) FROM messages WHERE fan_id = ? "
                                 "AND direction = 'in'", (fan,)).fetchone()[0]
        assert n == 3  # refused messages never reach the engine
        assert d.metrics.errors.labels("http_429")._value.get() == 2
    finally:
        d.close()


def test_one_address_is_limited_across_fans_but_the_api_key_only_per_fan(
        tmp_path, monkeypatch):
    d = limited_daemon(tmp_path, monkeypatch, messages_per_fan="2/minute",
                       messages_per_ip="3/minute", requests_per_ip="8/minute")
    try:
        app = d._build_app()
        # New cookie-less visitors from one address: each a new fan, the address is counted.
        statuses = [TestClient(app).post("/api/chat", json={"text": "你好"}).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # The key holder speaks for many fans from one server: only each fan is limited.
        api = TestClient(app, headers={"Authorization": f"Bearer {TEST_API_KEY}"},
                         client=("10.0.0.9", 4000))
        got = [api.post("/api/chat", json={"text": "你好", "fan": f"f{n % 3}"}).status_code
               for n in range(7)]
        assert got == [200] * 6 + [429]
        # Every /api/ request counts toward requests_per_ip (polls too).
        poller = TestClient(app, client=("10.0.0.7", 4000))
        polls = [poller.get("/api/chat/pending").status_code for _ in range(9)]
        assert polls == [200] * 8 + [429]
        # Loopback is exempt by default (tests, bench, a local proxy without forwarding).
        local = TestClient(app, client=("127.0.0.1", 4000))
        assert {local.get("/api/chat/pending").status_code for _ in range(20)} == {200}
    finally:
        d.close()


@pytest.mark.parametrize(("key", "value", "fix"), [
    ("messages_per_fan", "lots", "20/minute"),
    ("requests_per_ip", "5 per fortnight", "20/minute"),
    ("rate_limit_exempt", '["10.0.0.0/33"]', "IP address or network"),
])
def test_bad_rate_limit_settings_say_how_to_write_them(tmp_path, monkeypatch, key, value, fix):
    clear_brandbot_env(monkeypatch)
    monkeypatch.setenv(f"BRANDBOT_WEB__{key.upper()}", value)
    with pytest.raises(SettingsError) as err:
        load_settings(None, personas=[str(TINY)], db=str(tmp_path / "x.db"))
    assert f"web.{key}" in str(err.value) and fix in str(err.value)


def test_rate_limits_can_be_turned_off(tmp_path, monkeypatch):
    d = limited_daemon(tmp_path, monkeypatch, messages_per_fan="null", messages_per_ip="null",
                       requests_per_ip="null")
    try:
        assert d.settings.web.messages_per_fan is None
        with TestClient(d._build_app()) as browser:
            assert {browser.post("/api/chat", json={"text": "你好"}).status_code
                    for _ in range(25)} == {200}
    finally:
        d.close()


@pytest.mark.slow
def test_behind_the_proxy_each_forwarded_address_is_limited_on_its_own(workdir):  # noqa: F811
    """The real server: nginx's X-Forwarded-For (from 127.0.0.1, trusted) is the client address
    for the per-address limit; loopback itself stays exempt. ``web.trusted_proxies`` decides
    whose header is believed."""
    def post(daemon, forwarded: str):
        status, raw, headers = daemon.request(
            "POST", "/api/chat", {"text": "你好"},
            headers={"X-Forwarded-For": forwarded, "Content-Type": "application/json"})
        return status, headers

    env = {"BRANDBOT_WEB__MESSAGES_PER_IP": "2/minute"}
    daemon = ServeProcess(workdir, *tiny_args(workdir), env=env).wait_ready()
    try:
        first = [post(daemon, "203.0.113.5")[0] for _ in range(3)]
        status, headers = post(daemon, "198.51.100.1, 203.0.113.5")  # a client-sent prefix
        assert first == [200, 200, 429] and status == 429
        assert int(headers["retry-after"]) >= 1
        assert post(daemon, "203.0.113.6")[0] == 200  # another visitor
        direct = [daemon.request("POST", "/api/chat", {"text": "你好"}, headers={})[0]
                  for _ in range(4)]
        assert direct == [200] * 4  # loopback without a forwarded address: exempt
    finally:
        daemon.kill()

    env["BRANDBOT_WEB__TRUSTED_PROXIES"] = '["10.9.9.9"]'  # 127.0.0.1 is no proxy of ours now
    daemon = ServeProcess(workdir, *tiny_args(workdir), env=env).wait_ready()
    try:
        assert [post(daemon, "203.0.113.5")[0] for _ in range(4)] == [200] * 4
    finally:
        daemon.kill()
