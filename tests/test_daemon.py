"""`brandbot serve` end to end: the real process, real HTTP, real SQLite, real signals.

Each test starts the daemon as a subprocess on a free port (``--port 0``; the port is read from
its banner) in a temporary folder holding copies of the personas and dialogs, so edits there
exercise hot reload without touching the repository.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import API_HEADERS, ROOT, TEST_API_KEY, TINY, clean_environ

# The operator's token for /metrics and the /healthz details: requests send it unless asked
# not to (auth=False), so tests see the details as an operator does.
METRICS_TOKEN = "test-metrics-token-5d1c"


class ServeProcess:
    """One `brandbot serve` subprocess; its stderr is collected line by line.

    It skips the prefit child (bot/nlu/prefit.py, ~0.5 s of CPU a start): the tests' fit cache
    is warm, so the child would only re-read the persona. The hot-reload test turns it back on
    (``BRANDBOT_PREFIT=on``), and tests/test_prefit.py checks the child fills the cache.
    """

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None):
        clean = clean_environ()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", "0", *args],
            cwd=cwd,
            env={**clean, "PYTHONUNBUFFERED": "1", "BRANDBOT_METRICS_TOKEN": METRICS_TOKEN,
                 "BRANDBOT_WEB__API_KEY": TEST_API_KEY, "BRANDBOT_PREFIT": "off",
                 **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 20) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"serving on http://(?:127\.0\.0\.1|0\.0\.0\.0):(\d+)/",
                              self.output)
            if match and "ready in" in self.output:
                self.port = int(match.group(1))
                return self
            if self.proc.poll() is not None:
                self._reader.join(timeout=10)  # stdout at EOF: its last lines are in
                pytest.fail(f"daemon exited {self.proc.returncode}:\n{self.output}")
            time.sleep(0.02)
        pytest.fail(f"daemon not ready in {timeout} s:\n{self.output}")

    def wait_for_log(self, pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.02)
        pytest.fail(f"no log line matching {pattern!r} in:\n{self.output}")

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 10,
                auth: bool = True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        given = headers
        headers = dict(API_HEADERS if given is None else given)
        if auth and path in ("/healthz", "/metrics") and "Authorization" not in (given or {}):
            headers["Authorization"] = f"Bearer {METRICS_TOKEN}"
        try:
            data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, raw, dict(response.getheaders())
        finally:
            conn.close()

    def chat(self, text: str, fan: str = "fan-1", **extra) -> dict:
        status, raw, _ = self.request("POST", "/api/chat", {"text": text, "fan": fan, **extra})
        assert status == 200, raw
        return json.loads(raw)

    def health(self, auth: bool = True) -> tuple[int, dict]:
        status, raw, _ = self.request("GET", "/healthz", auth=auth)
        return status, json.loads(raw)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15) -> int:
        """The exit code, once the output is complete (the reader saw stdout's end)."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder like a deployment: personas/ (the tiny test persona), dialogs/, no database."""
    (tmp_path / "personas").mkdir()
    shutil.copy(TINY, tmp_path / "personas" / "tiny.yaml")
    shutil.copytree(ROOT / "dialogs", tmp_path / "dialogs")
    return tmp_path


@pytest.fixture
def serve(workdir: Path):
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        daemon = ServeProcess(workdir, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def tiny_args(workdir: Path, *extra: str) -> list[str]:
    return ["--persona", str(workdir / "personas" / "tiny.yaml"),
            "--db", str(workdir / "brandbot.db"), *extra]


def texts(answer: dict) -> str:
    return " ".join(r["text"] for r in answer["replies"])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    # Write to a temporary file and rename, as editors do: the watcher must see it either way.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text.replace(old, new), encoding="utf-8")
    tmp.replace(path)


def poll(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# -- start-up ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_configuration_serves_the_demo_persona_and_says_what_it_started(serve, workdir):
    daemon = serve().wait_ready()
    out = daemon.output
    assert "persona laowang-kitchen" in out
    assert f"database {workdir / 'brandbot.db'}" in out
    assert "channel web: on" in out
    assert "channel telegram: off; to enable, set BRANDBOT_TELEGRAM_TOKEN" in out
    assert ("channel wechat: off; to enable, set BRANDBOT_WECHAT_TOKEN and BRANDBOT_WECHAT_APPID"
            in out)
    answer = daemon.chat("你们几点开门")
    assert answer["persona"] == "laowang-kitchen" and answer["replies"]
    status, page, headers = daemon.request("GET", "/")
    assert status == 200 and b"/static/chat.js" in page
    assert "default-src 'self'" in headers["content-security-policy"]
    assert (workdir / "brandbot.db").exists()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_invalid_settings_exit_2_naming_the_key(serve, workdir):
    (workdir / "brandbot.yaml").write_text("host: 127.0.0.1\nprot: 80\n", encoding="utf-8")
    daemon = serve()
    assert daemon.wait() == 2
    assert "brandbot.yaml:2:1: prot: unknown key 'prot'" in daemon.output
    assert "port" in daemon.output  # the known keys are listed as the fix

    (workdir / "brandbot.yaml").write_text("reload: true\n", encoding="utf-8")
    daemon = serve(env={"BRANDBOT_LOG_FORMAT": "xml"})
    assert daemon.wait() == 2
    assert "BRANDBOT_LOG_FORMAT: log_format: must be 'text' or 'json'" in daemon.output


def test_secrets_never_reach_the_logs_health_or_metrics(serve, workdir, fake_telegram):
    from tests.fakes.telegram_api import TOKEN as secret

    daemon = serve(
        *tiny_args(workdir, "--log-format", "json"),
        env={"BRANDBOT_TELEGRAM__TOKEN": secret, "BRANDBOT_WECHAT__APP_SECRET": "wx-sekrit",
             "BRANDBOT_TELEGRAM_API_URL": fake_telegram + "/bot"},
    ).wait_ready()
    daemon.chat(f"my token is {secret}")  # a fan pasting it: logged turns must not show it
    _, health, _ = daemon.request("GET", "/healthz")
    _, metrics, _ = daemon.request("GET", "/metrics")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    for blob in (daemon.output, health.decode(), metrics.decode()):
        assert secret not in blob and "wx-sekrit" not in blob
    assert "channel telegram: on" in daemon.output
    for line in daemon.lines:  # --log-format json: every line is one JSON object
        assert json.loads(line)["level"]


# -- hot reload ----------------------------------------------------------------------------


@pytest.mark.slow
def test_an_edit_reloads_and_a_broken_edit_keeps_the_old_persona(serve, workdir):
    # How fast (the README's "within about a second") is measured by bench/reload_latency.py,
    # not here: a loaded machine made a wall-clock assertion flaky.
    persona = workdir / "personas" / "tiny.yaml"
    # As in production: a prefit child at start and at each reload.
    daemon = serve(*tiny_args(workdir), env={"BRANDBOT_PREFIT": "on"}).wait_ready()
    assert "9点到21点" in texts(daemon.chat("几点开门"))

    edit(persona, "每天9点到21点", "每天8点到22点")
    assert poll(lambda: "8点到22点" in texts(daemon.chat("几点开门")), timeout=15)
    daemon.wait_for_log(r"reloaded persona tiny")

    edit(persona, "default_language: zh", "default_language: xx")
    line = daemon.wait_for_log(r"tiny\.yaml:7:\d+: default_language", timeout=15)
    assert str(persona) in line
    daemon.wait_for_log(r"reload of persona tiny refused")
    assert "8点到22点" in texts(daemon.chat("几点开门"))  # the previous version stays live
    status, health = daemon.health()
    assert status == 200 and health["status"] == "degraded"
    assert health["reload"]["ok"] is False
    assert "default_language" in health["reload"]["failed"][0]["problems"][0]
    _, metrics, _ = daemon.request("GET", "/metrics")
    assert b'brandbot_reload_failures_total{persona="tiny"}' in metrics

    edit(persona, "default_language: xx", "default_language: zh")  # fixed: healthy again
    assert poll(lambda: daemon.health()[1]["reload"]["ok"], timeout=15)
    assert daemon.health()[1]["status"] == "ok"


def _symlink_loops(folder: Path) -> None:
    """a.yaml -> b -> a.yaml, and a folder link to its own parent."""
    (folder / "a.yaml").symlink_to("b")
    (folder / "b").symlink_to("a.yaml")
    (folder / "up").symlink_to("..", target_is_directory=True)


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
@pytest.mark.slow
def test_a_symlink_loop_in_personas_does_not_stop_hot_reload(serve, workdir, polling):
    persona = workdir / "personas" / "tiny.yaml"
    if polling:  # the loop is there from the start; polling stats every entry
        _symlink_loops(workdir / "personas")
    env = {"WATCHFILES_FORCE_POLLING": "1"} if polling else None
    daemon = serve(*tiny_args(workdir), env=env).wait_ready()
    if not polling:  # appears while watching: the change event names the loop
        _symlink_loops(workdir / "personas")
        # the loop's own change event first: the watcher names the loop once it has seen it
        daemon.wait_for_log(r"file watching: skipping .*a\.yaml")
    edit(persona, "每天9点到21点", "每天8点到22点")
    assert poll(lambda: "8点到22点" in texts(daemon.chat("几点开门")), timeout=20), daemon.output
    edit(persona, "每天8点到22点", "每天7点到23点")  # and again: the watcher is still alive
    assert poll(lambda: "7点到23点" in texts(daemon.chat("几点开门")), timeout=20), daemon.output
    status, health = daemon.health()
    assert status == 200 and health["status"] == "ok", health
    assert health["reload"]["ok"] is True
    assert health["reload"]["watcher"] == ("polling" if polling else "inotify")
    daemon.wait_for_log(r"file watching: skipping .*a\.yaml")
    loop_lines = [line for line in daemon.lines if "skipping" in line and "a.yaml" in line]
    assert len(loop_lines) == 1, loop_lines  # logged once, not at every event or poll
    assert "file watching failed" not in daemon.output


@pytest.mark.slow
def test_health_names_the_watcher_it_runs(serve, workdir):
    daemon = serve(*tiny_args(workdir)).wait_ready()
    assert daemon.health()[1]["reload"]["watcher"] == "inotify"
    off = serve(*tiny_args(workdir, "--no-reload")).wait_ready()
    assert off.health()[1]["reload"]["watcher"] == "off"


@pytest.mark.slow
def test_sighup_forces_a_reload_and_sigterm_exits_0_with_every_turn_logged(serve, workdir):
    persona = workdir / "personas" / "tiny.yaml"
    daemon = serve(*tiny_args(workdir, "--no-reload")).wait_ready()
    assert "9点到21点" in texts(daemon.chat("几点开门"))
    assert daemon.health()[1]["reload"]["watcher"] == "off"
    edit(persona, "每天9点到21点", "每天7点到23点")
    assert "9点到21点" in texts(daemon.chat("几点开门"))  # no watcher: still the old text
    daemon.signal(signal.SIGHUP)
    assert poll(lambda: "7点到23点" in texts(daemon.chat("几点开门")), timeout=20)
    # The one reload was the signal's: nothing watched the edit (not even late).
    daemon.wait_for_log(r"reloaded persona tiny .*\(SIGHUP\)")
    reloads = [line for line in daemon.lines if "reloaded persona" in line]
    assert len(reloads) == 1 and "(SIGHUP)" in reloads[0], reloads

    # SIGTERM in the middle of a burst: every answered request is in the log, exit 0.
    answered, stop, _ = burst(daemon, threads=8, prefix="term")
    assert poll(lambda: len(answered) >= 8, timeout=20), "the burst got no answers"
    daemon.signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert daemon.wait(timeout=12) == 0
    assert time.monotonic() - t0 < 10
    stop.set()
    assert answered, "no request was answered before SIGTERM"
    db = sqlite3.connect(workdir / "brandbot.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = count_logged(db, [m for m, _ in answered])
    assert all(logged[m] == 1 for m, _ in answered)
    assert "stopped cleanly" in daemon.output


def burst(daemon: ServeProcess, threads: int, prefix: str):
    """Concurrent keep-alive clients, each message with its own msg_id; returns the 200s."""
    answered: list[tuple[str, str]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=5)
        i = 0
        while not stop.is_set():
            i += 1
            msg_id, fan = f"{prefix}-{n}-{i}", f"{prefix}-fan-{n}"
            body = json.dumps({"text": "几点开门", "fan": fan, "msg_id": msg_id})
            try:
                conn.request("POST", "/api/chat", body=body,
                             headers={"Content-Type": "application/json", **API_HEADERS})
                response = conn.getresponse()
                response.read()
            except OSError:
                return  # the daemon went away
            if response.status == 200:
                with lock:
                    answered.append((msg_id, fan))

    clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(threads)]
    for thread in clients:
        thread.start()
    return answered, stop, clients


def count_logged(db: sqlite3.Connection, msg_ids: list[str]) -> dict[str, int]:
    rows = db.execute(
        "SELECT platform_msg_id, count(*) FROM messages WHERE direction = 'in' "
        "AND platform_msg_id IS NOT NULL GROUP BY platform_msg_id"
    ).fetchall()
    counts = dict(rows)
    return {m: counts.get(m, 0) for m in msg_ids}


@pytest.mark.slow
def test_sigkill_under_load_loses_no_answered_turn_and_conversations_continue(serve, workdir):
    daemon = serve(*tiny_args(workdir)).wait_ready()
    # A fan in the middle of a flow: the subscribe question waits for a yes/no.
    daemon.chat("你好", fan="kept")
    daemon.chat("我要订阅", fan="kept")
    db = sqlite3.connect(workdir / "brandbot.db")
    state = db.execute(
        "SELECT dialog_state FROM fans WHERE external_id = 'kept'"
    ).fetchone()[0]
    db.close()
    assert state == "confirm_subscribe"

    answered, stop, clients = burst(daemon, threads=16, prefix="kill")
    poll(lambda: len(answered) > 100, timeout=30)
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(timeout=10)
    stop.set()
    for thread in clients:  # each has noted its last answer (or seen the daemon go)
        thread.join(timeout=10)

    restarted = serve(*tiny_args(workdir)).wait_ready()
    db = sqlite3.connect(workdir / "brandbot.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = list(answered)
    logged = count_logged(db, [m for m, _ in done])
    assert len(done) > 100
    assert all(logged[m] == 1 for m, _ in done), "an answered request is missing or doubled"
    # A retried message (same msg_id) is answered from the log, not run again.
    msg_id, fan = done[0]
    restarted.chat("几点开门", fan=fan, msg_id=msg_id)
    assert count_logged(db, [msg_id])[msg_id] == 1
    # The fan's conversation continues from the state it had before the kill.
    restarted.chat("好的", fan="kept")
    row = db.execute(
        "SELECT state_before FROM messages m JOIN fans f ON f.id = m.fan_id "
        "WHERE f.external_id = 'kept' AND direction = 'in' ORDER BY m.id DESC LIMIT 1"
    ).fetchone()
    assert row[0] == state
    db.close()


# -- health and metrics ----------------------------------------------------------------------


def test_health_and_metrics(serve, workdir):
    daemon = serve(*tiny_args(workdir)).wait_ready()
    daemon.chat("几点开门")
    daemon.chat("asdkjh qwpoeiru")  # not understood: a fallback
    status, health = daemon.health()
    assert status == 200
    assert health["status"] == "ok" and health["database"]["ok"] is True
    assert health["personas"][0]["id"] == "tiny" and health["personas"][0]["version"] == 1
    assert health["uptime_s"] > 0
    status, raw, headers = daemon.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    metrics = raw.decode()
    for expected in (
        'brandbot_messages_in_total{channel="web",persona="tiny"} 2.0',
        'brandbot_messages_out_total{channel="web",persona="tiny"}',
        'brandbot_intents_total{intent="hours",persona="tiny"} 1.0',
        'brandbot_fallbacks_total{persona="tiny"} 1.0',
        "brandbot_handoffs_total",
        'brandbot_turn_seconds_bucket{channel="web",le="0.01"}',
        "brandbot_reloads_total",
        "brandbot_reload_failures_total",
        "brandbot_errors_total",
        'brandbot_persona_info{persona="tiny",version="1"} 1.0',
    ):
        assert expected in metrics, expected


def test_health_without_the_token_says_the_status_only(serve, workdir):
    daemon = serve(*tiny_args(workdir)).wait_ready()
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": METRICS_TOKEN},
                    {"Authorization": f"Basic {METRICS_TOKEN}"}):
        status, raw, _ = daemon.request("GET", "/healthz", headers=headers, auth=False)
        assert (status, json.loads(raw)) == (200, {"status": "ok"}), headers
        assert str(workdir) not in raw.decode() and "brandbot.db" not in raw.decode()
        status, raw, answer = daemon.request("GET", "/metrics", headers=headers, auth=False)
        assert status == 401 and b"brandbot_" not in raw and answer["www-authenticate"] == "Bearer"
    status, health = daemon.health()  # the operator, with the token: the details as before
    assert status == 200 and health["database"]["path"].endswith("brandbot.db")
    assert health["personas"][0]["file"].startswith(str(workdir))
    assert daemon.request("GET", "/metrics")[0] == 200
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert METRICS_TOKEN not in daemon.output  # never logged


@pytest.mark.slow
def test_metrics_without_a_token_is_open_on_loopback_only(serve, workdir):
    local = serve(*tiny_args(workdir), env={"BRANDBOT_METRICS_TOKEN": ""}).wait_ready()
    status, raw, _ = local.request("GET", "/metrics", auth=False)
    assert status == 200 and b"brandbot_messages_in_total" in raw
    assert local.health(auth=False) == (200, {"status": "ok"})  # details need a token
    local.signal(signal.SIGTERM)
    assert local.wait() == 0
    # Listening on every address (a container) without a token: refused, and the banner says so.
    exposed = serve(*tiny_args(workdir), "--host", "0.0.0.0",
                    env={"BRANDBOT_METRICS_TOKEN": ""}).wait_ready()
    status, raw, _ = exposed.request("GET", "/metrics", auth=False)
    assert status == 403 and b"BRANDBOT_METRICS_TOKEN" in raw and b"brandbot_" not in raw
    assert "/metrics refused" in exposed.output


def test_a_database_locked_by_another_process_never_stalls_the_daemon(serve, workdir):
    """Turns run on the event loop; one that would wait for the database goes to a thread."""
    daemon = serve(*tiny_args(workdir)).wait_ready()
    daemon.chat("你好")
    operator = sqlite3.connect(workdir / "brandbot.db", isolation_level=None,
                               check_same_thread=False)
    operator.execute("BEGIN IMMEDIATE")  # e.g. a long `brandbot broadcast` writing
    answers: list[dict] = []
    waiting = threading.Thread(target=lambda: answers.append(daemon.chat("几点开门")))
    waiting.start()
    try:
        # The turn found the database locked and went to a turn thread to wait…
        assert poll(lambda: "brandbot_turns_waited_total 1.0"
                    in daemon.request("GET", "/metrics")[1].decode(), timeout=20)
        assert answers == []  # …where it still waits for the database…
        # …but the daemon still answers everything else, long before the 30 s busy timeout
        # a blocked event loop would take (the request gives up after 10 s).
        status, health = daemon.health()
        assert status == 200
    finally:
        operator.execute("COMMIT")
        operator.close()
    waiting.join(timeout=10)
    assert answers and answers[0]["replies"], answers
    _, raw, _ = daemon.request("GET", "/metrics")
    assert "brandbot_turns_waited_total 1.0" in raw.decode()
    db = sqlite3.connect(workdir / "brandbot.db")
    assert db.execute("SELECT count(*) FROM messages WHERE direction = 'in'").fetchone()[0] == 2


# -- the log on a terminal -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fan_text_in_a_log_line_cannot_drive_the_terminal(fmt):
    import io
    import logging

    from bot.logsetup import MaskingFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter(fmt, []))
    logger = logging.getLogger(f"brandbot.test.escape.{fmt}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("fan %s said %s", "\x1b]0;owned\x07", "退款\x9b2J\u202e 🎉")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out
    assert "退款" in out and "🎉" in out
    if fmt == "json":
        assert json.loads(out)["msg"] == "fan \x1b]0;owned\x07 said 退款\x9b2J\u202e 🎉"


def test_a_line_feed_in_fan_text_cannot_forge_a_log_line():
    """A WeChat OpenID or fan name holding "\\n" must not start a line of its own in the text
    log (someone reading or grepping the log would take it for the daemon's)."""
    import io
    import logging

    from bot.logsetup import MaskingFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("text", []))
    logger = logging.getLogger("brandbot.test.forge")
    logger.addHandler(handler)
    logger.propagate = False
    forged = "oFan\n2026-12-06 03:00:00,000 ERROR brandbot.daemon: FORGED\r\nFORGED2"
    try:
        logger.warning("wechat: reply for %s not delivered", forged)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("turn failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith(("2026-12-06 03:00", "FORGED"))], lines
    assert "FORGED" in lines[0] + "".join(lines[1:3])  # still shown, indented under its line
    assert any(line.startswith("Traceback") for line in lines)  # tracebacks stay readable
