"""The web chat API under attack: what a hostile client tries after the hardening (review r-web).

The real daemon app and SQLite (Starlette's TestClient in process; the real server over HTTP
where uvicorn's own handling of proxy headers is what is tested).
"""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from bot.channels.web import COOKIE
from bot.channels.web_limits import WebRateLimits
from bot.daemon import Daemon
from tests.test_daemon import ServeProcess, tiny_args, workdir  # noqa: F401 - fixture
from tests.test_webchat import limited_daemon


def fan_count(daemon) -> int:
    return daemon.store.conn.execute("SELECT count(*) FROM fans").fetchone()[0]


@pytest.fixture
def limited(tmp_path, monkeypatch):
    """A daemon with the web limits given (env settings), closed after the test."""
    made: list[Daemon] = []

    def make(**limits) -> Daemon:
        d = limited_daemon(tmp_path, monkeypatch, **limits)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


# -- acknowledgement ids ---------------------------------------------------------------------


@pytest.mark.parametrize("ids", [[2**63], [10**30], [0], [-1], [1, -(2**70)]])
def test_ack_ids_that_cannot_be_outbox_ids_are_a_400_not_a_500(client, daemon, ids):
    browser = TestClient(client.app)
    assert browser.post("/api/chat", json={"text": "你好"}).status_code == 200
    response = browser.post("/api/chat/ack", json={"ids": ids})
    assert response.status_code == 400, response.text
    assert "ids" in response.json()["error"]
    assert daemon.metrics.errors.labels("internal")._value.get() == 0


# -- cross-site requests ---------------------------------------------------------------------

# What another site's page can send without a CORS preflight: a form or a no-cors fetch with a
# text/plain body that happens to be JSON.
SIMPLE = {"content-type": "text/plain"}


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    {"origin": "https://evil.example"},                        # an older browser: no Sec-Fetch
    {"origin": "https://shop.testserver", "sec-fetch-site": "same-site"},  # sibling subdomain
    {"origin": "null"},                                        # a sandboxed iframe, data: URL
    {"origin": "http://[::1"},                                 # unparsable
])
def test_another_sites_post_is_refused_and_makes_no_fan(client, daemon, headers):
    browser = TestClient(client.app)
    victim = browser.post("/api/chat", json={"text": "你好"})
    cookie = victim.cookies[COOKIE]
    before = fan_count(daemon)
    body = b'{"text": "\xe6\x88\x91\xe8\xa6\x81\xe9\x80\x80\xe8\xae\xa2", "x": "="}'
    attack = browser.post("/api/chat", content=body, headers={**SIMPLE, **headers})
    assert attack.status_code == 403, attack.text
    assert "another site" in attack.json()["error"]
    assert COOKIE not in attack.headers.get("set-cookie", "")  # the visitor keeps their fan
    ack = browser.post("/api/chat/ack", content=b'{"ids": [1]}', headers={**SIMPLE, **headers})
    assert ack.status_code == 403
    assert fan_count(daemon) == before
    assert browser.cookies[COOKIE] == cookie


@pytest.mark.parametrize("headers", [
    {},                                                         # curl, a server: no Origin
    {"origin": "http://testserver", "sec-fetch-site": "same-origin"},  # the chat page itself
    {"origin": "http://testserver:8080"},                      # same host, Origin with a port
])
def test_the_page_itself_and_non_browser_clients_still_post(client, headers):
    browser = TestClient(client.app)
    response = browser.post("/api/chat", json={"text": "你好"}, headers=headers)
    assert response.status_code == 200, response.text


# -- per-address limits: IPv6 and IPv4-mapped ------------------------------------------------


def test_an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_the_ipv4(limited):
    d = limited(messages_per_ip="2/minute", messages_per_fan="null")
    app = d._build_app()

    def post(address: str) -> int:
        return TestClient(app, client=(address, 5000)).post(
            "/api/chat", json={"text": "你好"}).status_code

    # Changing the interface id (the last 64 bits) is free for the holder of a /64.
    assert [post(f"2001:db8:1:2::{n:x}") for n in range(1, 4)] == [200, 200, 429]
    assert post("2001:db8:1:3::1") == 200  # another subscriber's /64
    assert [post("203.0.113.9"), post("::ffff:203.0.113.9"), post("203.0.113.9")] == [
        200, 200, 429]
    # Loopback is exempt however a dual-stack listener writes it.
    assert {post("::ffff:127.0.0.1") for _ in range(4)} == {200}


# -- new fans per address ------------------------------------------------------------------


def test_a_client_dropping_its_cookie_cannot_make_fans_without_end(limited):
    d = limited(new_fans_per_ip="3/minute", messages_per_ip="100/minute",
                messages_per_fan="100/minute")
    app = d._build_app()
    attacker = ("198.51.100.7", 5000)
    statuses = [TestClient(app, client=attacker).post("/api/chat", json={"text": "你好"})
                .status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert fan_count(d) == 3
    # Fresh cookies from the page or /api/persona count too (else they are the way around);
    # over the limit the page is still served, without a cookie.
    page = TestClient(app, client=attacker).get("/")
    assert page.status_code == 200 and COOKIE not in page.headers.get("set-cookie", "")
    assert COOKIE not in TestClient(app, client=attacker).get("/api/persona").headers.get(
        "set-cookie", "")
    # Another address, and a visitor who kept their cookie, are not held back.
    other = TestClient(app, client=("198.51.100.8", 5000))
    assert other.get("/").headers.get("set-cookie", "").startswith(COOKIE)
    assert [other.post("/api/chat", json={"text": "你好"}).status_code for _ in range(4)] == [
        200] * 4
    assert fan_count(d) == 4


def test_new_fans_per_ip_takes_several_windows_and_null(limited):
    d = limited(new_fans_per_ip="30/minute;300/hour")
    assert d.settings.web.new_fans_per_ip == "30/minute;300/hour"
    d = limited(new_fans_per_ip="null")
    assert d.settings.web.new_fans_per_ip is None


# -- the limiter forgets ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_limiter_forgets_a_fan_once_its_window_is_over():
    """Every fan that ever wrote left a key in the moving-window storage for good (an empty
    list, and a sweep over all of them): memory grew with the fans table."""
    limits = WebRateLimits(messages_per_fan="5/second", messages_per_ip=None)
    for n in range(2_000):
        assert limits.message("192.0.2.1", f"w-{n}", trusted=False) is None
    storage = limits._limiter.storage
    deadline = time.monotonic() + 30
    while True:
        limits.message("192.0.2.1", "w-still-writing", trusted=False)  # a hit runs the sweep
        kept = len(storage.storage) + len(storage.events)
        if kept <= 2:
            break
        assert time.monotonic() < deadline, f"{kept} keys still kept after 30 s"
        time.sleep(0.2)


# -- the cookie over HTTPS behind the proxy --------------------------------------------------


def test_the_fan_cookie_is_secure_when_the_trusted_proxy_says_https(workdir):  # noqa: F811
    daemon = ServeProcess(workdir, *tiny_args(workdir)).wait_ready()
    try:
        _, _, tls = daemon.request("GET", "/", headers={"X-Forwarded-Proto": "https",
                                                          "X-Forwarded-For": "203.0.113.5"})
        _, _, plain = daemon.request("GET", "/", headers={})
    finally:
        daemon.kill()
    attributes = [a.strip().lower() for a in tls["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes
    assert "secure" not in [a.strip().lower() for a in plain["set-cookie"].split(";")]


# -- caches ----------------------------------------------------------------------------------


def test_no_api_answer_may_be_stored_by_a_shared_cache(client, daemon):
    """A CDN or proxy_cache keyed by URL would give one fan's operator reply (pending) or fan
    cookie (persona) to the next visitor: every API answer says no-store."""
    browser = TestClient(client.app)
    first = browser.post("/api/chat", json={"text": "我要投诉"})
    fan = first.json()["fan"]
    row = daemon.store.find_fan("tiny", "web", fan)
    from datetime import UTC, datetime

    from bot.messages import Reply
    from bot.relations import outbox

    outbox.enqueue(daemon.store, row["id"], [Reply("您的退款单号 R-12345", "operator")],
                   datetime.now(UTC))
    pending = browser.get("/api/chat/pending")
    assert "R-12345" in pending.text
    answers = {
        "chat": first,
        "pending": pending,
        "persona": TestClient(client.app).get("/api/persona"),  # sets a new cookie
        "ack": browser.post("/api/chat/ack", json={"ids": [pending.json()["replies"][0]["id"]]}),
        "error": browser.post("/api/chat", content=b"not json"),
    }
    for name, response in answers.items():
        assert response.headers.get("cache-control") == "no-store", name


# -- cookie tossing over HTTPS ---------------------------------------------------------------


def test_over_https_the_fan_cookie_is_host_only_and_a_planted_plain_one_is_ignored(client,
                                                                                     daemon):
    """A sibling subdomain (or a man in the middle of plain HTTP) can set ``brandbot_fan`` for
    the whole domain: planted with the attacker's own signed cookie, the visitor would chat as
    the attacker's fan and the attacker read the replies. Over HTTPS the cookie is
    ``__Host-brandbot_fan``, which only this host can set."""
    from bot.channels.web_identity import SECURE_COOKIE

    attacker = TestClient(client.app)  # plain HTTP: gets an ordinary signed cookie
    attacker.post("/api/chat", json={"text": "你好"})
    planted = attacker.cookies[COOKIE]
    attacker_fan = planted.rpartition(".")[0]

    victim = TestClient(client.app, base_url="https://testserver")
    page = victim.get("/")
    attributes = [a.strip().lower() for a in page.headers["set-cookie"].split(";")]
    assert attributes[0].startswith(SECURE_COOKIE.lower() + "=")
    assert {"secure", "path=/", "httponly", "samesite=lax"} <= set(attributes)
    assert not any(a.startswith("domain") for a in attributes)
    victim.cookies.set(COOKIE, planted)  # the tossed cookie, beside the real one
    said = victim.post("/api/chat", json={"text": "我的手机号是 13800000000"})
    assert said.status_code == 200 and said.json()["fan"] != attacker_fan
    # The attacker's own cookie finds nothing of the victim's.
    assert "13800000000" not in attacker.get("/api/chat/pending").text
    row = daemon.store.find_fan("tiny", "web", attacker_fan)
    n = daemon.store.conn.execute(
        "SELECT count(*) FROM messages WHERE fan_id = ? AND direction = 'in'", (row["id"],)
    ).fetchone()[0]
    assert n == 1


# -- display names ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "stored"), [
    ("\u202e21# · bew · ecilA", "21# · bew · ecilA"),     # reads as "Alice · web · #12"
    ("Bob\n· telegram · #1\r\n", "Bob · telegram · #1"),  # a second line in the topic title
    ("\x00\x1b[31mred\x1b[0m", "[31mred [0m"),
    ("👩‍👩‍👧 小\u2067明\u2069", "👩‍👩‍👧 小明"),               # the emoji's joiners stay
    ("\u202a\u202c \n", None),
])
def test_a_fan_chosen_name_is_stored_as_one_plain_line(client, daemon, name, stored):
    answer = client.post("/api/chat", json={"text": "你好", "fan": "named", "name": name})
    assert answer.status_code == 200
    assert daemon.store.find_fan("tiny", "web", "named")["display_name"] == stored
