"""Faults the daemon must survive: a full disk, slow or vanishing clients (hardening 9, 11, 12).

Each test runs a real daemon (``Daemon.run``: uvicorn, the channels, the commit groups) in this
process on a free port, and talks to it over real sockets. A full disk is SQLite's own
``PRAGMA max_page_count`` on the daemon's connection: writes then fail with SQLITE_FULL
("database or disk is full") exactly as on a full disk; raising it is space coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from bot.config import load_settings
from bot.daemon import Daemon
from bot.logthrottle import LogLimiter
from tests.conftest import API_HEADERS, TEST_API_KEY, TINY, clear_brandbot_env, run_async
from tests.fakes.telegram_api import TOKEN as TG_TOKEN
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wechat_api import APP_ID, TOKEN, Pusher, text_push

ROOT = Path(__file__).resolve().parent.parent
# Long enough to need new database pages (overflow pages): short rows may still fit a full file.
LONG = "几点开门" + "，麻烦告诉我" * 300
UNAVAILABLE_ZH = "暂时记不下消息，请过几分钟再发一次"  # tiny.yaml's `unavailable` reply
WEBHOOK_SECRET = "s3cret-for-tests"


METRICS_TOKEN = "faults-metrics-token"
ADMIN = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def settings_for(tmp_path, monkeypatch):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)

    def make(**overrides):
        overrides.setdefault("metrics_token", METRICS_TOKEN)  # /healthz details, /metrics
        overrides.setdefault("web", {"api_key": TEST_API_KEY})  # the tests name their web fans
        return load_settings(None, personas=[str(TINY)], db=str(tmp_path / "faults.db"),
                             port=0, reload=False, **overrides)

    return make


def client(daemon) -> httpx.AsyncClient:
    """A client of the running daemon that names its web fans (with the test API key)."""
    return httpx.AsyncClient(base_url=daemon.url, timeout=20, headers=API_HEADERS)


@contextlib.asynccontextmanager
async def running(settings, prepare=None):
    daemon = Daemon(settings)
    daemon.open()
    if prepare is not None:
        prepare(daemon)
    serving = asyncio.create_task(daemon.run())
    deadline = time.monotonic() + 30
    while not daemon.url:
        if serving.done():
            await serving
            pytest.fail("the daemon did not start")
        assert time.monotonic() < deadline, "the daemon did not start in 30 s"
        await asyncio.sleep(0.01)
    try:
        yield daemon
    finally:
        daemon.server.should_exit = True
        await serving


def disk_full(daemon) -> None:
    with daemon.store.lock:
        pages = daemon.store.conn.execute("PRAGMA page_count").fetchone()[0]
        daemon.store.conn.execute(f"PRAGMA max_page_count={pages}")


def space_returns(daemon) -> None:
    with daemon.store.lock:
        daemon.store.conn.execute("PRAGMA max_page_count=1073741823")


def logged_in(db: str, channel: str, fan: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT m.text FROM messages m JOIN fans f ON f.id = m.fan_id WHERE f.channel = ? "
            "AND f.external_id = ? AND m.direction = 'in' ORDER BY m.id", (channel, fan))
        return [r[0] for r in rows]


def metric(text: str, kind: str) -> float:
    found = re.search(rf'^brandbot_errors_total{{kind="{kind}"}} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def until(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met in {timeout} s")
        await asyncio.sleep(0.05)


class Records(logging.Handler):
    """Every log record of every logger while installed (WARNING and above)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        logging.getLogger().setLevel(self._level)


# -- 9. the disk is full ---------------------------------------------------------------------


@pytest.mark.slow
def test_disk_full_web_gets_503_with_an_apology_one_log_line_health_degraded_then_recovers(
        settings_for):
    async def scenario():
        async with running(settings_for()) as daemon, \
                client(daemon) as http:
            first = await http.post("/api/chat", json={"text": "几点开门", "fan": "before"})
            assert first.status_code == 200
            disk_full(daemon)
            with Records() as seen:
                answers = await asyncio.gather(*(
                    http.post("/api/chat", json={"text": LONG, "fan": f"w{n}", "msg_id": f"m{n}"})
                    for n in range(200)))
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"]
                body = answer.json()
                assert [r["key"] for r in body["replies"]] == ["unavailable"]
                assert body["replies"][0]["text"] == UNAVAILABLE_ZH
            # One line for the condition, not one (or two tracebacks) per request.
            assert 1 <= len(seen.records) <= 3, [r.getMessage() for r in seen.records]
            assert not any(r.exc_info for r in seen.records)
            health = (await http.get("/healthz", headers=ADMIN)).json()
            assert health["status"] == "degraded"
            assert "full" in health["database"]["write_error"]
            metrics = (await http.get("/metrics", headers=ADMIN)).text
            assert metric(metrics, "storage_full") == 200
            assert metric(metrics, "internal") == 0
            assert logged_in(daemon.settings.db, "web", "w7") == []

            space_returns(daemon)
            retry = await http.post("/api/chat", json={"text": LONG, "fan": "w7", "msg_id": "m7"})
            assert retry.status_code == 200
            assert [r["key"] for r in retry.json()["replies"]] == ["welcome", "fallback"]
            again = await http.post("/api/chat", json={"text": LONG, "fan": "w7", "msg_id": "m7"})
            assert again.json()["replies"] == retry.json()["replies"]  # answered from the log
            assert logged_in(daemon.settings.db, "web", "w7") == [LONG]
            assert (await http.get("/healthz", headers=ADMIN)).json()["status"] == "ok"

    run_async(scenario(), timeout=120)


def test_disk_full_wechat_gets_a_non_200_and_the_retry_is_logged_once_when_space_returns(
        settings_for):
    pusher = Pusher()

    async def push(http, xml):
        query, body = pusher.plain(xml)
        return await http.post("/wechat", params=query, content=body,
                               headers={"Content-Type": "text/xml"})

    async def scenario():
        settings = settings_for(wechat={"app_id": APP_ID, "token": TOKEN})
        async with running(settings) as daemon, \
                client(daemon) as http:
            disk_full(daemon)
            xml = text_push("o-full", LONG, 8001)
            refused = await push(http, xml)
            assert refused.status_code != 200  # WeChat pushes it again; never an empty 200
            assert refused.status_code == 503
            again = await push(http, xml)  # WeChat's retry, still full
            assert again.status_code == 503
            assert logged_in(daemon.settings.db, "wechat", "o-full") == []

            space_returns(daemon)
            answered = await push(http, xml)  # WeChat's last retry
            assert answered.status_code == 200
            reply = pusher.open_reply(answered.content)["Content"]
            assert reply.startswith("欢迎来到小店")
            once_more = await push(http, xml)  # answered from the log, not a second turn
            assert pusher.open_reply(once_more.content)["Content"] == reply
            assert logged_in(daemon.settings.db, "wechat", "o-full") == [LONG]

    run_async(scenario(), timeout=60)


def test_disk_full_telegram_polling_update_is_held_and_answered_once_space_returns(
        settings_for):
    async def scenario():
        async with FakeTelegram() as fake:
            settings = settings_for(telegram={"token": TG_TOKEN, "api_url": fake.base_url})
            async with running(settings) as daemon:
                telegram = daemon.channels["telegram"]
                disk_full(daemon)
                fake.push_message(5150, LONG)

                async def held():
                    return telegram.stats["held"] >= 1
                await until(held, what="the update held")
                assert fake.texts(5150) == []
                assert (await asyncio.to_thread(
                    httpx.get, daemon.url + "healthz")).json()["status"] == "degraded"

                space_returns(daemon)

                async def answered():
                    return fake.texts(5150)
                await until(answered, what="the held update answered")
                assert logged_in(daemon.settings.db, "telegram", "5150") == [LONG]

    run_async(scenario(), timeout=60)


def test_disk_full_telegram_webhook_answers_503_so_telegram_delivers_again(settings_for):
    def update(update_id: int, chat: int, fake: FakeTelegram) -> dict:
        return {"update_id": update_id, "message": fake.message(chat, LONG)}

    async def scenario():
        async with FakeTelegram() as fake:
            settings = settings_for(telegram={
                "token": TG_TOKEN, "api_url": fake.base_url,
                "webhook_url": "https://bot.example.com/telegram/webhook",
                "webhook_secret": WEBHOOK_SECRET})
            async with running(settings) as daemon, \
                    client(daemon) as http:
                headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
                telegram = daemon.channels["telegram"]
                disk_full(daemon)
                first = await http.post("/telegram/webhook", json=update(70, 61, fake),
                                        headers=headers)
                assert first.status_code == 200  # confirmed: kept in memory until logged

                async def held():
                    return telegram.stats["held"] >= 1
                await until(held, what="the first update held")
                second = await http.post("/telegram/webhook", json=update(71, 62, fake),
                                         headers=headers)
                assert second.status_code == 503  # not confirmed: Telegram delivers it again

                space_returns(daemon)

                async def first_answered():
                    return fake.texts(61)
                await until(first_answered, what="the held update answered")
                redelivered = await http.post("/telegram/webhook", json=update(71, 62, fake),
                                              headers=headers)
                assert redelivered.status_code == 200

                async def second_answered():
                    return fake.texts(62)
                await until(second_answered, what="the redelivered update answered")
                assert logged_in(daemon.settings.db, "telegram", "61") == [LONG]
                assert logged_in(daemon.settings.db, "telegram", "62") == [LONG]

    run_async(scenario(), timeout=60)


def test_the_log_limiter_lets_one_line_per_condition_per_interval_through():
    now = [0.0]
    limiter = LogLimiter(interval=60, clock=lambda: now[0])
    logger = logging.getLogger("tests.faults.limiter")
    with Records() as seen:
        for _ in range(200):
            limiter.log(logger, logging.ERROR, "disk", "disk full")
        limiter.log(logger, logging.ERROR, "other", "another condition")
        now[0] = 61.0
        limiter.log(logger, logging.ERROR, "disk", "disk full")
    assert [r.getMessage() for r in seen.records] == [
        "disk full", "another condition",
        "disk full (199 more like this since the last such line)"]


# -- 11. slow request bodies -----------------------------------------------------------------


def _slow_client(port: int) -> socket.socket:
    """A client that sends its headers and half its body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: brandbot\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 100\r\n\r\n{\"text\": \"slo")
    return sock


def _answer_then_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (blocking)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            received += chunk
    sock.close()
    return received


@pytest.mark.slow
def test_slow_bodies_are_cut_off_others_are_served_and_over_the_cap_is_503(settings_for):
    async def scenario():
        settings = settings_for(read_timeout=4.0, max_connections=20)
        async with running(settings) as daemon:
            port = int(daemon.url.rsplit(":", 1)[1].strip("/"))
            async with client(daemon) as http:
                held = [_slow_client(port) for _ in range(10)]
                served = await http.post("/api/chat", json={"text": "几点开门", "fan": "n1"})
                assert served.status_code == 200  # a normal client is served meanwhile
            over = [_slow_client(port) for _ in range(15)]  # 25 connections: over the cap
            answers = await asyncio.gather(*(asyncio.to_thread(_answer_then_eof, s)
                                             for s in held + over))
            statuses = [a[:12] for a in answers]
            assert statuses[:10] == [b"HTTP/1.1 408"] * 10  # cut off after the read timeout
            refused = statuses[10:].count(b"HTTP/1.1 503")  # answered at once, not a hang
            assert refused >= 5 and set(statuses[10:]) <= {b"HTTP/1.1 503", b"HTTP/1.1 408"}
            async with client(daemon) as http:
                after = await http.post("/api/chat", json={"text": "几点开门", "fan": "n3"})
                assert after.status_code == 200
                metrics = (await http.get("/metrics", headers=ADMIN)).text
            assert metric(metrics, "read_timeout") == 25 - refused
            assert metric(metrics, "over_capacity") == refused
            assert metric(metrics, "client_abort") == 0

    run_async(scenario(), timeout=90)


def test_the_systemd_unit_raises_the_file_descriptor_limit_above_the_connection_cap():
    unit = (ROOT / "deploy" / "brandbot.service").read_text()
    found = re.search(r"^LimitNOFILE=(\d+)$", unit, re.M)
    assert found, "deploy/brandbot.service: no LimitNOFILE="
    default_cap = load_settings(None).max_connections
    assert int(found.group(1)) >= 4 * default_cap  # sockets, the database, the fake-free rest


# -- 12. a client disconnecting mid-body -----------------------------------------------------


def test_a_client_leaving_mid_body_is_a_client_abort_not_an_internal_error(settings_for):
    async def scenario():
        async with running(settings_for()) as daemon:
            port = int(daemon.url.rsplit(":", 1)[1].strip("/"))
            with Records() as seen:
                for _ in range(3):
                    sock = _slow_client(port)
                    sock.close()  # gone before the rest of the body
                async with client(daemon) as http:
                    async def counted():
                        text = (await http.get("/metrics", headers=ADMIN)).text
                        return metric(text, "client_abort") == 3 and text
                    metrics = await until(counted, what="three client aborts counted")
            assert metric(metrics, "internal") == 0
            assert [r.getMessage() for r in seen.records] == []  # no 500, no traceback

    run_async(scenario(), timeout=60)


def test_an_internal_error_is_one_traceback_per_interval_not_two_per_request(settings_for):
    def a_bug(persona):  # a fault injected into one route: the handler is what is tested
        raise RuntimeError("a bug on /api/persona")

    def with_a_bug(daemon):
        daemon.persona_info = a_bug

    async def scenario():
        async with running(settings_for(), prepare=with_a_bug) as daemon, \
                client(daemon) as http:
            with Records() as seen:
                answers = [await http.get("/api/persona") for _ in range(50)]
            assert {a.status_code for a in answers} == {500}
            assert {a.json()["error"] for a in answers} == {"internal error"}
            assert len(seen.records) == 1, [r.getMessage() for r in seen.records]
            assert seen.records[0].exc_info and "GET /api/persona" in seen.records[0].getMessage()
            metrics = (await http.get("/metrics", headers=ADMIN)).text
            assert metric(metrics, "internal") == 50

    run_async(scenario(), timeout=60)


def test_disk_full_wechat_retry_with_the_same_signed_url_is_answered_once_space_returns(
        settings_for):
    """WeChat may retry with the very same query string; the replay guard must let that retry
    through to a real turn when the first attempt was refused (503) and never logged."""
    pusher = Pusher()

    async def scenario():
        settings = settings_for(wechat={"app_id": APP_ID, "token": TOKEN})
        async with running(settings) as daemon, \
                client(daemon) as http:
            xml = text_push("o-same-url", LONG, 8101)
            query, body = pusher.plain(xml)

            async def push():
                return await http.post("/wechat", params=query, content=body,
                                       headers={"Content-Type": "text/xml"})

            disk_full(daemon)
            assert (await push()).status_code == 503
            assert logged_in(daemon.settings.db, "wechat", "o-same-url") == []
            space_returns(daemon)
            answered = await push()
            assert answered.status_code == 200
            reply = pusher.open_reply(answered.content)["Content"]
            assert reply.startswith("欢迎来到小店")
            assert logged_in(daemon.settings.db, "wechat", "o-same-url") == [LONG]

    run_async(scenario(), timeout=60)


@pytest.mark.slow
def test_idle_keep_alive_connections_make_room_for_new_clients_at_the_cap(settings_for):
    """Browsers keep a connection open after each request (keep-alive). Idle, they serve
    nobody: at the cap they are closed to make room, instead of a new client getting 503 from
    a daemon with nothing to do. Connections with a request under way are never closed."""
    async def scenario():
        settings = settings_for(read_timeout=8.0, max_connections=4)
        async with running(settings) as daemon:
            port = int(daemon.url.rsplit(":", 1)[1].strip("/"))
            slow = _slow_client(port)  # a request under way: holds one place
            idle = [httpx.AsyncClient(base_url=daemon.url, timeout=20) for _ in range(3)]
            try:
                for http in idle:  # three more, each left open after its answer
                    assert (await http.get("/healthz")).status_code == 200
                newcomers = [httpx.AsyncClient(base_url=daemon.url, timeout=20)
                             for _ in range(3)]
                try:
                    for http in newcomers:
                        assert (await http.get("/healthz")).status_code == 200
                finally:
                    for http in newcomers:
                        await http.aclose()
            finally:
                for http in idle:
                    await http.aclose()
            answer = await asyncio.to_thread(_answer_then_eof, slow)
            assert answer.startswith(b"HTTP/1.1 408")  # kept to its read timeout, not evicted

    run_async(scenario(), timeout=60)


@pytest.mark.slow
def test_a_kept_alive_connection_cannot_idle_forever_by_sending_blank_lines(settings_for):
    """After a response, one CRLF (which HTTP parsers skip before a request line) cancelled
    uvicorn's keep-alive timeout and armed no read timeout: the socket stayed open for ever,
    and a client could pile up as many as it liked. Now any byte after a response starts the
    read timeout."""
    async def scenario():
        async with running(settings_for(read_timeout=3.0)) as daemon:
            port = int(daemon.url.rsplit(":", 1)[1].strip("/"))

            def request_then_blank_lines() -> bytes:
                sock = socket.create_connection(("127.0.0.1", port), timeout=25)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: brandbot\r\n\r\n")
                first = sock.recv(65536)
                assert first.startswith(b"HTTP/1.1 200"), first
                sock.sendall(b"\r\n")
                try:
                    return _answer_then_eof(sock)  # returns once the server closes it
                except TimeoutError:
                    return b"still open after 25 s"

            assert await asyncio.to_thread(request_then_blank_lines) == b""

    run_async(scenario(), timeout=60)


@pytest.mark.slow
def test_a_client_that_never_reads_its_answers_is_cut_off(settings_for):
    """Slow reading: pipeline many requests and read nothing. The answers fill the socket
    buffers, uvicorn pauses writing and the request's task waits for ever, holding a socket
    and a place under the cap (tasks count toward it too). Past ``read_timeout`` with writing
    paused, the connection is dropped and the task ends."""
    async def scenario():
        async with running(settings_for(read_timeout=3.0)) as daemon:
            port = int(daemon.url.rsplit(":", 1)[1].strip("/"))
            state = daemon.server.server_state

            def pipeline_and_never_read() -> socket.socket:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", port))
                sock.settimeout(5)
                with contextlib.suppress(OSError):  # the server stops reading: fine
                    sock.sendall(b"GET /static/chat.js HTTP/1.1\r\nHost: brandbot\r\n\r\n" * 3000)
                return sock

            sock = await asyncio.to_thread(pipeline_and_never_read)
            try:
                async def stuck():
                    return len(state.tasks) == 1
                await until(stuck, what="the answer blocked on a client that does not read")

                async def freed():
                    return not state.tasks and not state.connections
                await until(freed, timeout=25, what="the non-reading client cut off")
            finally:
                sock.close()
            async with client(daemon) as http:
                metrics = (await http.get("/metrics", headers=ADMIN)).text
            assert metric(metrics, "write_timeout") == 1

    run_async(scenario(), timeout=90)


@pytest.mark.slow
def test_a_slow_pipelined_request_does_not_kill_the_answer_of_the_one_before(settings_for):
    """HTTP pipelining: request A is complete and being answered (slowly: another process
    holds the log's write lock) while the next request B trickles in. B's read timeout ends
    B, not A: A is answered, then the connection closes."""
    async def scenario():
        async with running(settings_for(read_timeout=3.0)) as daemon:
            port = int(daemon.url.rsplit(":", 1)[1].strip("/"))
            holder = sqlite3.connect(daemon.settings.db, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # `brandbot broadcast` in another process
            body = b'{"text": "\xe5\x87\xa0\xe7\x82\xb9\xe5\xbc\x80\xe9\x97\xa8", "fan": "p1"}'
            sock = socket.create_connection(("127.0.0.1", port), timeout=25)
            try:
                sock.sendall(
                    b"POST /api/chat HTTP/1.1\r\nHost: brandbot\r\nContent-Type: "
                    b"application/json\r\nAuthorization: Bearer " + TEST_API_KEY.encode()
                    + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                    + b"POST /api/chat HTTP/1.1\r\nHost: bro")  # B: never finished
                async with client(daemon) as http:
                    async def timed_out():
                        text = (await http.get("/metrics", headers=ADMIN)).text
                        return metric(text, "read_timeout") >= 1
                    await until(timed_out, what="B's read timeout")
                holder.execute("COMMIT")  # A can be logged and answered now
                answer = await asyncio.to_thread(_answer_then_eof, sock)
            finally:
                holder.close()
                sock.close()
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert b"408" not in answer.split(b"\r\n", 1)[0]
            assert logged_in(daemon.settings.db, "web", "p1") == ["几点开门"]

    run_async(scenario(), timeout=90)
