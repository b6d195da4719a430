"""Shared fixtures: real personas, real dialogs, real SQLite files — nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.brand import load_brand
from bot.engine import Engine
from bot.relations import Store

# Fitted matchers are cached on disk (bot/nlu/fitcache.py); tests use a cache of their own so
# they neither read a developer's cache nor leave files in it. Subprocesses inherit it, and so
# do pytest-xdist's workers: the first process of a run makes it, the workers share it (entries
# are content-addressed and written by atomic rename), so each persona is fitted once a run.
_RUN_CACHE = "PYTEST_BRANDBOT_CACHE_DIR"
os.environ.setdefault(_RUN_CACHE, tempfile.mkdtemp(prefix="brandbot-test-cache-"))
os.environ["BRANDBOT_CACHE_DIR"] = os.environ[_RUN_CACHE]
# Daemons opened in this process fit in it (bot/nlu/prefit.py): after the first fit the cache
# is warm, and a prefit child per test (~0.5 s of Python start-up) would save no memory here.
# Served daemons (subprocesses, clean_environ) still prefit as in production.
os.environ["BRANDBOT_PREFIT"] = "off"

def clean_environ() -> dict[str, str]:
    """The environment without brandbot settings, except the tests' own matcher cache."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("BRANDBOT_") or k == "BRANDBOT_CACHE_DIR"}


def clear_brandbot_env(monkeypatch) -> None:
    """Drop BRANDBOT_* settings for one test (the tests' matcher cache and prefit stay)."""
    for key in set(os.environ) - set(clean_environ()) - {"BRANDBOT_PREFIT"}:
        monkeypatch.delenv(key)


# The web API key the test daemons get: tests that name a fan ("fan": ...) speak as a site
# embedding the API server-side (bot/channels/web_identity.py).
TEST_API_KEY = "test-api-key-not-a-secret-0123"
API_HEADERS = {"Authorization": f"Bearer {TEST_API_KEY}"}

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "personas" / "tiny.yaml"


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(scope="session")
def tiny_brand():
    return load_brand(str(TINY))


@pytest.fixture(scope="session")
def demo_brand():
    return load_brand("laowang-kitchen")


@pytest.fixture(scope="session")
def laowang(demo_brand):
    """The Chinese demo persona's understander (the NLU tests ask it message by message)."""
    return demo_brand.understander


@pytest.fixture(scope="session")
def northbound():
    """The English-first demo persona's understander."""
    return load_brand("northbound-coffee").understander


@pytest.fixture
def fresh_db(tmp_path):
    store = Store(tmp_path / "brandbot.db")
    yield store
    store.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tiny_engine(fresh_db, tiny_brand, clock):
    return Engine(fresh_db, tiny_brand, clock=clock, seed=1)


@pytest.fixture
def fake_telegram():
    """The fake Bot API (tests/fakes/telegram_api.py) as a process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    port = int(re.match(r"port (\d+)", line).group(1))
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    """A Daemon opened in process on the tiny persona (no server): drive its app directly."""
    from bot.config import load_settings
    from bot.daemon import Daemon

    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BRANDBOT_WEB__API_KEY", TEST_API_KEY)
    settings = load_settings(None, personas=[str(TINY)], db=str(tmp_path / "web.db"))
    d = Daemon(settings)
    d.open()
    yield d
    d.close()
    if d.executor:
        d.executor.shutdown()


@pytest.fixture
def client(daemon):
    """Starlette's test client on the daemon's app (web chat, health, metrics), holding the
    API key (tests name their fans); a browser-like client is ``TestClient(client.app)``."""
    from starlette.testclient import TestClient

    with TestClient(daemon._build_app(), headers=API_HEADERS) as c:
        yield c


def run_async(coro, timeout: float = 60):
    """Each test is one asyncio.run: fakes, the library and our channel share its loop."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def serve_asgi(app):
    """Serve an ASGI app on a free loopback port, as the daemon serves its routes."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off",
                                           access_log=False))
    server.capture_signals = contextlib.nullcontext
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.002)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
