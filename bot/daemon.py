"""``brandbot serve``: one long-lived process hosting the channels, the web server and reloads.

Lifecycle (one asyncio loop; Telegram and WeChat adapters join the same loop later)::

    load settings ─ open the log (SQLite) ─ load personas ─ bind the socket ─ start channels
        ─ serve HTTP (uvicorn.Server, run by us, not uvicorn.run) ─ watch personas/ dialogs/
    SIGHUP          reload every persona now
    SIGTERM/SIGINT  stop accepting, finish requests and turns in flight, close the database, exit 0

HTTP: ``/``, ``POST /api/chat`` and ``GET /api/chat/pending`` (web channel, bot/channels/web.py),
``/healthz``, ``/metrics``.

Reloads validate a persona and its dialog completely (``load_brand``) in a worker thread, then
swap the brand in with ``Engine.set_brand``: turns in flight finish on the brand they started
with. An invalid edit is logged as ``path:line:col: field: problem`` and the previous version
stays live; ``/healthz`` shows the failed reload until a later one succeeds. Fans whose dialog
state disappeared are moved by the engine on their next turn (``state_migrations``, else the
initial state).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.logthrottle import limiter
from bot.redact import QUERY_SECRETS, SecretFilter
from bot.relations.store import StoreBusy, StoreFull, storage_full
from bot.tables import json_safe, terminal_safe

log = logging.getLogger("brandbot.daemon")
reload_log = logging.getLogger("brandbot.reload")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

# What to set to enable each channel that is off (printed at start).
_ENABLE_HINTS = {
    "web": "set web.enabled: true (BRANDBOT_WEB__ENABLED=true)",
    "telegram": "set BRANDBOT_TELEGRAM_TOKEN (from @BotFather) in the environment "
    "(docs/channels/telegram.md)",
    "wechat": "set BRANDBOT_WECHAT_TOKEN and BRANDBOT_WECHAT_APPID (+ BRANDBOT_WECHAT_SECRET, "
    "BRANDBOT_WECHAT_AES_KEY for safe mode; docs/channels/wechat.md)",
}


class StartupError(Exception):
    """The daemon cannot start; ``code`` is the exit status (2: configuration)."""

    def __init__(self, lines: list[str], code: int = EXIT_CONFIG):
        self.lines, self.code = lines, code
        super().__init__("\n".join(lines))


# -- logging ---------------------------------------------------------------------------------


class _MaskingFormatter(logging.Formatter):
    """Formats as text or JSON lines and replaces every secret value by ``***``."""

    def __init__(self, fmt: str, secrets: list[str]):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json = fmt == "json"
        # Patterns too: a WeChat access_token is fetched at run time (no settings value to
        # mask), and any logger may quote a URL that carries one.
        self.mask = SecretFilter(secrets, patterns=[QUERY_SECRETS])

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # One record, one line: a fan's line feed (a name, a plaintext WeChat OpenID) goes on
        # an indented line, so it cannot pass for a line of the daemon's own. (A traceback,
        # added after this, keeps its lines.)
        return terminal_safe(super().formatMessage(record), continuation="    ")

    def format(self, record: logging.LogRecord) -> str:
        if self.json:
            entry = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname,
                "logger": record.name,
                "msg": record.getMessage(),
            }
            if record.exc_info:
                entry["exc"] = self.formatException(record.exc_info)
            elif record.exc_text:  # already cleaned by a channel's SecretFilter
                entry["exc"] = record.exc_text
            text = json_safe(json.dumps(entry, ensure_ascii=False))
        else:  # a fan's words in a message must not drive the terminal showing the log
            text = terminal_safe(super().format(record), keep_newlines=True)
        return self.mask.redact(text)


def configure_logging(settings: Settings, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_MaskingFormatter(settings.log_format, settings.secrets()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # HTTP client libraries log URLs, and Telegram's carry the bot token
    # (docs/channels/protocol-notes.md T5).
    # transitions logs every callback at INFO: thousands of lines a second under load.
    for noisy in ("httpx", "httpcore", "urllib3", "watchfiles", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(
        logging.WARNING if settings.log_level == "INFO" else settings.log_level
    )


# -- state shown by /healthz -----------------------------------------------------------------


@dataclass
class PersonaState:
    ref: str  # what the settings named (id or path): reloads resolve it the same way
    channels: list[str]
    loaded_at: str = ""
    reload_error: list[str] = field(default_factory=list)
    failed_at: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Server:
    """Built lazily: uvicorn is imported only by ``serve``."""

    @staticmethod
    def make(config):
        import uvicorn

        class Server(uvicorn.Server):
            # We own the signals (SIGHUP reloads; SIGTERM must also stop the watcher and close
            # the database), so uvicorn must not install or re-raise its own.
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        return Server(config)


class Daemon:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.started_at = time.monotonic()
        self.ready_after: float | None = None
        self.stopping = False
        self.personas: dict[str, PersonaState] = {}
        self.channels: dict[str, Any] = {}
        self.desk = None  # the Telegram operator group (telegram.operator_group_id)
        self.server = None
        self.store = None
        self.engine = None
        self.scheduler = None  # runs the jobs table (bot/relations/jobs.py)
        self.executor: ThreadPoolExecutor | None = None
        self._group_waiters: list[asyncio.Future] | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._stop_event: asyncio.Event | None = None
        self._watch_stop: asyncio.Event | None = None
        self.watch_mode = "off"  # inotify, polling or failed once the watcher runs (/healthz)
        self.watch_error: str | None = None
        self._watch_skipped: set[str] = set()  # paths the watcher skips, each logged once
        self.url = ""
        self._write_fault: str | None = None  # why the log cannot be written (disk full)
        self._refused_while_full = 0

    # -- startup ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the log and load the personas (synchronous; raises StartupError)."""
        from bot.brand import load_brand
        from bot.engine import Engine
        from bot.errors import BrandbotError, ConfigError
        from bot.metrics import Metrics
        from bot.nlu.prefit import prefit
        from bot.relations import Store

        s = self.settings
        brands = {}
        # Fit the matchers in a child process so this long-lived one never holds scipy (~80 MB).
        prefit([entry.persona for entry in s.personas])
        for index, entry in enumerate(s.personas):
            try:
                brand = load_brand(entry.persona)
            except ConfigError as exc:
                raise StartupError(
                    [*map(str, exc.problems),
                     f"persona {entry.persona!r} is invalid ({len(exc.problems)} problem(s)); "
                     "fix the lines above (brandbot check shows them too)"],
                    EXIT_FAILURE,
                ) from None
            except BrandbotError as exc:
                raise StartupError(
                    [f"personas[{index}].persona: {exc}; fix the id or path in the settings"]
                ) from None
            if brand.id in brands:
                raise StartupError(
                    [f"personas[{index}].persona: persona {brand.id!r} is listed twice; "
                     "list each persona once with all its channels"]
                )
            brands[brand.id] = brand
            self.personas[brand.id] = PersonaState(entry.persona, list(entry.channels), _now())
        try:
            self.store = Store(s.db, synchronous=s.db_synchronous)
            self.store.checkpoint_in_background()
        except Exception as exc:  # noqa: BLE001 - sqlite3 and OS errors alike
            raise StartupError(
                [f"db: cannot open the database {s.db!r}: {exc}; set --db or db: to a writable "
                 "file path"]
            ) from None
        self.metrics = Metrics()
        self.engine = Engine(self.store, brands)
        for brand in brands.values():
            self.metrics.set_persona(brand.id, brand.persona.version)
        # Personas, matrices and modules live as long as the process: keep them out of the cyclic
        # GC's scans, which otherwise show up as 10-30 ms pauses in p99 under load.
        gc.collect()
        gc.freeze()
        if s.engine_threads:
            self.executor = ThreadPoolExecutor(s.engine_threads, thread_name_prefix="turn")

    def _bind(self) -> socket.socket:
        s = self.settings
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are
        # TCP, and without it Nagle + delayed ACKs add ~40 ms to every keep-alive response.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((s.host, s.port))
        except OSError as exc:
            sock.close()
            raise StartupError(
                [f"port: cannot listen on {s.host}:{s.port}: {exc.strerror}; choose another "
                 "--port (or port: / BRANDBOT_PORT) or stop what uses it"]
            ) from None
        sock.set_inheritable(False)
        return sock

    def _build_app(self):
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from bot.channels.web import WebChannel, web_security
        from bot.http_protocol import TIMED_OUT_KEY

        routes = [
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
        ]
        web_personas = [p for p, st in self.personas.items() if "web" in st.channels]
        if self.settings.web.enabled and web_personas:
            web = WebChannel(
                self.run_turn,
                web_personas,
                self.persona_info,
                store=self.store,
                max_body_bytes=self.settings.web.max_body_bytes,
                max_text_chars=self.settings.web.max_text_chars,
                cookie_secure=self.settings.web.cookie_secure,
                on_rejected=lambda status: self.metrics.errors.labels(f"http_{status}").inc(),
                **web_security(self.settings.web, self.settings.db),
            )
            self.channels["web"] = web
            routes.extend(web.routes())
        routes.extend(self._telegram_routes())
        routes.extend(self._wechat_routes())

        async def internal_error(request: Request, exc: Exception) -> Response:
            # One traceback per kind of failure and path per interval, however many requests
            # hit it; the wrapper below keeps uvicorn from logging it a second time.
            where = f"{request.method} {request.url.path}"
            limiter.log(log, logging.ERROR, f"internal:{where}:{type(exc).__name__}",
                        "internal error on %s", where, exc_info=exc)
            self.metrics.errors.labels("internal").inc()
            request.scope["brandbot.handled"] = True
            return JSONResponse({"error": "internal error"}, status_code=500)

        async def client_abort(request: Request, exc: Exception) -> Response:
            # The client went away before its body arrived: nothing of ours failed. (Or the read
            # timeout closed it: counted as read_timeout already.)
            if not request.scope.get(TIMED_OUT_KEY):
                self.metrics.errors.labels("client_abort").inc()
            log.debug("client went away during %s %s", request.method, request.url.path)
            return Response(status_code=400)  # nobody is left to read it

        from starlette.requests import ClientDisconnect

        app = Starlette(routes=routes, exception_handlers={ClientDisconnect: client_abort,
                                                           Exception: internal_error})

        async def served(scope, receive, send) -> None:
            try:
                await app(scope, receive, send)
            except Exception:
                # Starlette re-raises what its 500 handler answered, for the server to log
                # again: internal_error logged it already (rate-limited).
                if not scope.get("brandbot.handled"):
                    raise

        return served

    def _persona_for(self, channel: str, enabled: bool, serves: str) -> str | None:
        """The persona a one-persona channel serves, or None when it is off or unused."""
        personas = [p for p, st in self.personas.items() if channel in st.channels]
        if not (enabled and personas):
            return None
        if len(personas) > 1:
            log.warning("%s: %s serves one persona; using %s", channel, serves, personas[0])
        return personas[0]

    def _telegram_routes(self) -> list:
        """Hold the Telegram channel when a token is set; its webhook route if it has one."""
        t = self.settings.telegram
        persona = self._persona_for("telegram", t.enabled, "one bot token")
        if persona is None:
            return []
        from bot.channels.telegram import TelegramChannel, TelegramConfigError

        try:
            channel = TelegramChannel(
                self.engine,
                persona,
                t.token.get_secret_value(),
                base_url=t.api_url,
                webhook_url=t.webhook_url,
                webhook_secret=t.webhook_secret.get_secret_value() if t.webhook_secret else None,
                run_turn=self.run_turn,
                operator_group_id=t.operator_group_id,
            )
        except TelegramConfigError as exc:
            raise StartupError([f"telegram: {exc}"]) from None
        self.channels["telegram"] = channel
        channel.write_fault = self.write_fault
        if t.operator_group_id is not None:
            from bot.channels.telegram_desk import TelegramDesk

            self.desk = TelegramDesk(self.engine, t.operator_group_id, self.deliver)
            channel.desk = self.desk.on_operator
        return channel.routes()

    def _wechat_routes(self) -> list:
        """Hold the WeChat channel when a token and AppID are set; its GET/POST routes."""
        w = self.settings.wechat
        persona = self._persona_for("wechat", w.enabled, "one account")
        if persona is None:
            return []
        from bot.channels.wechat import WeChatChannel, WeChatChannelSettings, WeChatConfigError

        try:
            # The settings already merged file and environment: don't read the environment again.
            settings = WeChatChannelSettings.from_section(w, environ={})
            channel = WeChatChannel(
                self.run_turn,
                persona,
                settings,
                store=self.store,
                on_rejected=lambda status: self.metrics.errors.labels(f"http_{status}").inc(),
            )
        except WeChatConfigError as exc:
            raise StartupError([f"wechat: {exc}"]) from None
        self.channels["wechat"] = channel
        return channel.routes()

    # -- scheduled work: durable jobs, no cron (bot/relations/jobs.py, bot/scheduled.py) -------

    async def _start_jobs(self) -> None:
        """Plan the recurring and calendar jobs (idempotent) and bind their handlers.

        Planning writes to the log: in a thread, so the loop never waits for the write lock.
        """
        from bot import scheduled
        from bot.engine import utc_now
        from bot.relations.jobs import Scheduler

        self.scheduler = Scheduler(self.store, secrets=self.settings.secrets())
        scheduled.register(self.scheduler, self)
        now = utc_now()
        await asyncio.to_thread(scheduled.plan_recurring, self.store, now)
        for brand in list(self.engine.brands.values()):
            await asyncio.to_thread(scheduled.plan_calendar, self.store, brand.persona, now)

    async def _plan_calendar(self, brand) -> None:
        """After a reload: schedule the topics the new version added or moved."""
        if self.scheduler is None:
            return
        from bot import scheduled
        from bot.engine import utc_now

        try:
            await asyncio.to_thread(scheduled.plan_calendar, self.store, brand.persona, utc_now())
            self.scheduler.wake()
        except Exception:  # noqa: BLE001 - planned again at the next reload or restart
            log.exception("could not plan the calendar of %s", brand.id)

    async def _relations_once(self, now=None) -> None:
        """Hand abandoned handoffs back to the bot (the ``handoff_expire`` job, every minute)."""
        from bot.engine import utc_now
        from bot.scheduled import expire_handoffs

        now = now or utc_now()
        for item in await asyncio.to_thread(expire_handoffs, self.engine, now):
            await self.deliver(item.fan, item.persona, item.replies)
        if self.desk is not None:
            await self.desk.reconcile()

    async def deliver(self, fan, persona: str, replies) -> str | None:
        """Send messages a fan did not just ask for through their channel; None, or why not."""
        channel = self.channels.get(fan.channel)
        if channel is None:
            return f"the {fan.channel} channel is not running in this daemon"
        not_sent = await channel.send(fan, replies, persona=persona)
        return None if not_sent is None else not_sent.reason

    # -- turns -------------------------------------------------------------------------------

    async def run_turn(self, inbound, persona: str):
        """Run one engine turn on the event loop; in a turn thread when it would have to wait.

        A turn is ~0.2 ms of CPU under the GIL: handing it to a thread costs more than it saves
        (bench/README.md). But it must not block the loop waiting for the database: then
        ``StoreBusy`` comes back before anything was done. A thread of ours holding the
        connection (briefly) is waited for here, asynchronously, and the turn retried on the
        loop; another process holding the write lock (perhaps for long), or a wait beyond
        ``BUSY_RETRY_SECONDS``, sends the turn to a turn thread that may wait.
        ``engine_threads: 0`` keeps every turn on the loop, waiting there if it must.
        """
        start = time.perf_counter()
        try:
            if self.executor is None:
                turn = self.engine.handle_turn(inbound, persona)
            else:
                turn = await self._turn_on_loop(inbound, persona)
                if turn is None:
                    self.metrics.turns_waited.inc()
                    loop = asyncio.get_running_loop()
                    turn = await loop.run_in_executor(
                        self.executor, self.engine.handle_turn, inbound, persona
                    )
        except Exception as exc:
            if not storage_full(exc):
                raise
            raise self._not_logged(inbound, persona, exc) from exc
        if self._write_fault is not None and turn.outcome is not None:  # None: read, not written
            self._writes_work_again()
        self.metrics.observe_turn(inbound.fan.channel, persona, time.perf_counter() - start, turn)
        if self.desk is not None:
            self.desk.after_turn(inbound, persona, turn)
        return turn.replies

    BUSY_RETRY_SECONDS = 0.05

    async def _turn_on_loop(self, inbound, persona: str):
        """The turn, run on the loop in a commit group; None if it has to wait in a thread."""
        delay, waited = 0.0005, 0.0
        while True:
            try:
                self._join_group()
                turn = self.engine.handle_turn(inbound, persona, wait=False)
            except StoreBusy as busy:
                if busy.process or waited >= self.BUSY_RETRY_SECONDS:
                    return None
                await asyncio.sleep(delay)
                waited, delay = waited + delay, min(delay * 2, 0.01)
                continue
            await self._group_committed()
            return turn

    def _join_group(self) -> None:
        """Open the commit group this loop iteration's turns join, if it is not open yet.

        The group (``Store.open_group``) is opened by the first turn of an iteration and
        committed by a callback that runs after every turn already scheduled in it, so a burst
        of requests shares one COMMIT. StoreBusy if the group cannot open.
        """
        if self._group_waiters is None:
            self.store.open_group()
            self._group_waiters = []
            asyncio.get_running_loop().call_soon(self._flush_group)

    def _group_committed(self) -> asyncio.Future:
        """Resolved once the group is committed; each turn awaits its own (cancelling one
        request cancels nobody else's) before its replies go out. Called right after the turn,
        in the same step as :meth:`_join_group`: the group is still open."""
        committed = asyncio.get_running_loop().create_future()
        self._group_waiters.append(committed)
        return committed

    def _flush_group(self) -> None:
        waiters, self._group_waiters = self._group_waiters or [], None
        try:
            self.store.commit_group()
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error: every turn fails
            if not storage_full(exc):  # a full disk: each turn's run_turn reports it
                limiter.log(log, logging.ERROR, "group_commit",
                            "could not commit the turns of this moment: %s", exc)
            for committed in waiters:
                if not committed.done():
                    committed.set_exception(exc)
        else:
            for committed in waiters:
                if not committed.done():
                    committed.set_result(None)

    # -- a log that cannot be written (disk full) ---------------------------------------------

    def write_fault(self) -> str | None:
        """Why turns cannot be logged right now (the disk is full), or None: /healthz shows
        it. Set by a turn that hit SQLITE_FULL, cleared by the next turn that was logged."""
        return self._write_fault

    def _not_logged(self, inbound, persona: str, exc: BaseException) -> StoreFull:
        """A turn could not be logged: count it, log it (once per interval), and say so with
        an apology in the persona's voice (``unavailable``, else ``error``)."""
        self.metrics.errors.labels("storage_full").inc()
        self._refused_while_full += 1
        cause = next((e for e in _chain(exc) if isinstance(e, sqlite3.Error)), exc)
        if self._write_fault is None:
            self._write_fault = f"{_now()}: cannot write the database: {cause}"
        limiter.log(
            log, logging.ERROR, "storage_full",
            "cannot write the database %s (%s): turns are refused with 503 so that platforms "
            "retry them; free disk space, nothing else is needed", self.settings.db, cause,
        )
        brand = self.engine.brand(persona)
        key = "unavailable" if "unavailable" in brand.persona.replies else "error"
        text, language = brand.voice.render(
            key, inbound.language or brand.persona.default_language,
            fan_name=inbound.display_name, memory={}, rng=self.engine.rng,
        )
        from bot.messages import Reply

        return StoreFull(str(cause), [Reply(text, key, language)])

    def _writes_work_again(self) -> None:
        limiter.reset("storage_full")
        log.warning("the database can be written again; %d turn(s) were refused while it "
                    "was full", self._refused_while_full)
        self._write_fault, self._refused_while_full = None, 0

    def persona_info(self, persona: str) -> dict[str, Any]:
        p = self.engine.brand(persona).persona
        return {
            "id": p.id,
            "version": p.version,
            "name": dict(p.identity.name) if isinstance(p.identity.name, dict)
            else {p.default_language: str(p.identity.name)},
            "languages": list(p.languages),
            "default_language": p.default_language,
        }

    # -- health and metrics ------------------------------------------------------------------

    def _db_check(self) -> str | None:
        # The writer must be open (total_changes raises on a closed connection) and the file
        # readable. Read on the read connection: a turn thread waiting for another process's
        # write lock holds the writer's, and the database is still healthy.
        try:
            _ = self.store.conn.total_changes
            self.store.read("SELECT count(*) FROM sqlite_master")
            return None
        except Exception as exc:  # noqa: BLE001 - closed, locked, corrupt, gone
            return f"{type(exc).__name__}: {exc}"

    async def healthz(self, request):
        from starlette.responses import JSONResponse

        try:
            error = await asyncio.wait_for(asyncio.to_thread(self._db_check), timeout=2.0)
        except TimeoutError:
            error = "the database did not answer within 2 s"
        failed = {pid: st for pid, st in self.personas.items() if st.reload_error}
        write_fault = self.write_fault()
        body = {
            "status": "stopping" if self.stopping else
            ("unavailable" if error else
             ("degraded" if failed or write_fault or self.watch_mode == "failed" else "ok")),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "personas": [
                {
                    "id": pid,
                    "version": self.engine.brand(pid).persona.version,
                    "channels": [c for c in st.channels if c in self.channels],
                    "loaded_at": st.loaded_at,
                    "file": self.engine.brand(pid).persona_path,
                }
                for pid, st in self.personas.items()
            ],
            "database": {"ok": error is None and write_fault is None, "path": self.settings.db}
            | ({"error": error} if error else {})
            | ({"write_error": write_fault} if write_fault else {}),
            "reload": {
                "enabled": self.settings.reload,
                "ok": not failed and self.watch_mode != "failed",
                "watcher": self.watch_mode,
                "failed": [
                    {"persona": pid, "at": st.failed_at, "problems": st.reload_error}
                    for pid, st in failed.items()
                ],
            } | ({"watcher_error": self.watch_error} if self.watch_error else {}),
            "channels": sorted(self.channels),
        }
        status = 503 if (error or self.stopping) else 200
        if not self._operator(request):  # paths and problems are for the operator only
            body = {"status": body["status"]}
        return JSONResponse(body, status_code=status)

    def _metrics_token(self) -> str | None:
        token = self.settings.metrics_token
        return token.get_secret_value() or None if token is not None else None

    def _operator(self, request) -> bool:
        """The request carries ``Authorization: Bearer <metrics_token>`` (none configured: no)."""
        import hmac

        token = self._metrics_token()
        if token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode())

    def metrics_open_without_token(self) -> bool:
        """/metrics needs no token only with none configured and a loopback-only listener.

        In a container the daemon must listen on 0.0.0.0 (127.0.0.1 there is unreachable from
        the published port), so a non-loopback listener without a token refuses /metrics
        rather than show it to whoever reaches the port.
        """
        import ipaddress

        if self._metrics_token() is not None:
            return False
        try:
            return ipaddress.ip_address(self.settings.host).is_loopback
        except ValueError:
            return self.settings.host == "localhost"

    async def metrics_endpoint(self, request):
        from starlette.responses import Response

        if not (self.metrics_open_without_token() or self._operator(request)):
            configured = self._metrics_token() is not None
            why = ("send Authorization: Bearer <metrics_token>" if configured else
                   f"the daemon listens on {self.settings.host}: set metrics_token "
                   "(BRANDBOT_METRICS_TOKEN) to read /metrics (docs/deploy.md)")
            return Response(f"/metrics: {why}\n", status_code=401 if configured else 403,
                            media_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"} if configured else None)
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    # -- reload ------------------------------------------------------------------------------

    def watch_dirs(self) -> list[Path]:
        dirs: list[Path] = []
        for pid in self.personas:
            brand = self.engine.brand(pid)
            for file in (brand.persona_path, brand.dialog_path):
                folder = Path(file).resolve().parent
                if folder not in dirs:
                    dirs.append(folder)
        return dirs

    async def reload(self, reason: str, changed: set[Path] | None = None) -> None:
        """Reload the personas whose files changed (all when ``changed`` is None)."""
        from bot.brand import load_brand
        from bot.errors import BrandbotError, ConfigError
        from bot.nlu.prefit import prefit

        assert self._reload_lock is not None
        async with self._reload_lock:
            for pid, state in self.personas.items():
                current = self.engine.brand(pid)
                files = {Path(current.persona_path).resolve(), Path(current.dialog_path).resolve()}
                if changed is not None and not (files & changed) and not state.reload_error:
                    continue
                try:
                    await asyncio.to_thread(prefit, [state.ref])
                    brand = await asyncio.to_thread(load_brand, state.ref)
                    if brand.id != pid:
                        raise BrandbotError(
                            f"{brand.persona_path}: id: the persona id changed from {pid!r} to "
                            f"{brand.id!r}; fans are keyed by it: change it back, or restart "
                            "to serve it as a new persona"
                        )
                except ConfigError as exc:
                    self._reload_failed(pid, state, [str(p) for p in exc.problems], reason)
                    continue
                except Exception as exc:  # noqa: BLE001 - unreadable file, vanished dialog...
                    self._reload_failed(pid, state, [str(exc)], reason)
                    continue
                previous = current.persona.version
                self.engine.set_brand(brand)
                await self._plan_calendar(brand)
                state.loaded_at, state.reload_error, state.failed_at = _now(), [], None
                self.metrics.reloads.labels(pid).inc()
                self.metrics.set_persona(pid, brand.persona.version, previous)
                reload_log.info(
                    "reloaded persona %s version %s (%s)", pid, brand.persona.version, reason
                )

    def _reload_failed(self, pid: str, state: PersonaState, problems: list[str],
                       reason: str) -> None:
        state.reload_error, state.failed_at = problems, _now()
        self.metrics.reload_failures.labels(pid).inc()
        for problem in problems:
            reload_log.error("%s", problem)
        reload_log.error(
            "reload of persona %s refused (%s, %d problem(s)); version %s stays live",
            pid, reason, len(problems), self.engine.brand(pid).persona.version,
        )

    def _resolve_changed(self, path: str) -> Path:
        """The real file behind a changed path; a symlink loop is skipped (logged once)."""
        try:
            return Path(path).resolve(strict=False)
        except (RuntimeError, OSError) as exc:  # RuntimeError: Python 3.11's "Symlink loop"
            self._skip_once(path, exc)
            return Path(os.path.abspath(path))

    def _skip_once(self, path: str, exc: BaseException) -> None:
        if path not in self._watch_skipped:
            self._watch_skipped.add(path)
            reload_log.warning("file watching: skipping %s (%s)", path, exc)

    async def _watch(self) -> None:
        """Reload on edits: inotify (watchfiles), else our own polling of the YAML files.

        ``self.watch_mode`` ("inotify", "polling", "failed") is what /healthz reports. Polling
        is ours, not watchfiles': its poller gives up on the whole folder at the first entry
        it cannot stat (a symlink loop: ELOOP), and hot reload would be gone until a restart.
        """
        import watchfiles

        dirs = self.watch_dirs()

        def yaml_only(change, path: str) -> bool:
            return path.endswith((".yaml", ".yml"))

        if os.environ.get("WATCHFILES_FORCE_POLLING") not in ("1", "true"):
            self.watch_mode = "inotify"
            try:
                async for changes in watchfiles.awatch(
                    *dirs,
                    watch_filter=yaml_only,
                    debounce=self.settings.reload_debounce_ms,
                    step=min(50, self.settings.reload_debounce_ms),
                    stop_event=self._watch_stop,
                    recursive=False,
                ):
                    await self._reload_changed({self._resolve_changed(p) for _, p in changes})
                return
            except Exception as exc:  # noqa: BLE001 - inotify limits and the like
                reload_log.warning("file watching failed (%s); polling instead", exc)
        self.watch_mode = "polling"
        try:
            await self._poll_yaml(dirs)
        except Exception as exc:  # noqa: BLE001 - shown by /healthz; SIGHUP still reloads
            self.watch_mode, self.watch_error = "failed", f"{type(exc).__name__}: {exc}"
            reload_log.error("file watching failed: %s; reload with SIGHUP", exc)

    async def _reload_changed(self, changed: set[Path]) -> None:
        names = ", ".join(sorted(p.name for p in changed))
        await self.reload(f"changed: {names}", changed)

    async def _poll_yaml(self, dirs: list[Path], interval: float = 0.3) -> None:
        """Every ``interval`` s, compare each folder's YAML files (size, mtime, inode)."""

        def snapshot() -> dict[Path, tuple[int, int, int]]:
            seen = {}
            for folder in dirs:
                try:
                    entries = list(os.scandir(folder))
                except OSError as exc:  # the folder itself is gone: try again next round
                    self._skip_once(str(folder), exc)
                    continue
                for entry in entries:
                    if not entry.name.endswith((".yaml", ".yml")):
                        continue
                    try:
                        st = entry.stat()  # follows symlinks: ELOOP for a loop
                    except OSError as exc:
                        self._skip_once(entry.path, exc)
                        continue
                    seen[Path(entry.path)] = (st.st_size, st.st_mtime_ns, st.st_ino)
            return seen

        before = await asyncio.to_thread(snapshot)
        while not self._watch_stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._watch_stop.wait(), timeout=interval)
                return
            now = await asyncio.to_thread(snapshot)
            changed = {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)}
            before = now
            if changed:
                await self._reload_changed({self._resolve_changed(str(p)) for p in changed})

    # -- run ---------------------------------------------------------------------------------

    async def run(self) -> int:
        import uvicorn

        from bot.http_protocol import CoalescingHttpProtocol, OverCapLogLimit

        loop = asyncio.get_running_loop()
        self._reload_lock = asyncio.Lock()
        self._stop_event = asyncio.Event()
        self._watch_stop = asyncio.Event()
        sock = self._bind()
        app = self._build_app()
        errors = self.metrics.errors
        protocol = CoalescingHttpProtocol.with_limits(
            self.settings.read_timeout,
            on_read_timeout=errors.labels("read_timeout").inc,
            on_write_timeout=errors.labels("write_timeout").inc,
            on_over_cap=errors.labels("over_capacity").inc,
        )
        uvicorn_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, OverCapLogLimit) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(OverCapLogLimit())
        config = uvicorn.Config(
            app,
            http=protocol,
            limit_concurrency=self.settings.max_connections,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=self.settings.web.trusted_proxies,
            timeout_graceful_shutdown=self.settings.shutdown_timeout,
            timeout_keep_alive=5,
        )
        self.server = _Server.make(config)
        for sig, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.request_reload),
        ):
            loop.add_signal_handler(sig, handler, sig)

        serving = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.005)
        if serving.done():  # failed to start; its exception says why
            await serving
            return EXIT_FAILURE
        for name, channel in self.channels.items():
            try:
                await channel.start()
            except ValueError as exc:  # a refused token, an unreachable platform API
                log.error("%s: %s", name, exc)
                self.server.should_exit = True
                with contextlib.suppress(Exception):
                    await serving
                for started in self.channels.values():
                    with contextlib.suppress(Exception):
                        await started.stop()
                self.close()
                return EXIT_CONFIG
        if self.desk is not None:
            await self.desk.start(self.channels["telegram"].app.bot)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        watcher = asyncio.create_task(self._watch()) if self.settings.reload else None
        await self._start_jobs()
        ticker = asyncio.create_task(self.scheduler.loop())
        self.ready_after = time.monotonic() - self.started_at
        self._banner()
        try:
            await serving
        finally:
            # uvicorn has stopped accepting and finished the requests in flight.
            if self.desk is not None:
                await self.desk.stop()
            for channel in self.channels.values():
                await channel.stop()
            self._watch_stop.set()
            ticker.cancel()
            with contextlib.suppress(BaseException):
                await ticker
            if watcher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(watcher, timeout=2)
            if self.executor is not None:
                await asyncio.to_thread(self.executor.shutdown, wait=True)
            self.close()
        log.info("stopped cleanly")
        return EXIT_OK

    def close(self) -> None:
        if self.store is not None:
            # Waits for a turn still writing; closing the last connection folds the WAL back.
            self.store.close()
            self.store = None

    def request_stop(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.stopping:
            log.warning("%s again: not waiting for requests in flight any more", name)
            self.server.force_exit = True
            return
        log.info("%s: stopping (finishing requests in flight)", name)
        self.stopping = True
        self.server.should_exit = True

    def request_reload(self, sig: int) -> None:
        reload_log.info("SIGHUP: reloading every persona")
        asyncio.get_running_loop().create_task(self.reload("SIGHUP"))

    def _banner(self) -> None:
        s = self.settings
        from bot import __version__

        lines = [f"brandbot {__version__} serving on {self.url}"]
        for pid, st in self.personas.items():
            brand = self.engine.brand(pid)
            on = [c for c in st.channels if s.channel_enabled(c)] or ["no enabled channel"]
            lines.append(
                f"  persona {pid} v{brand.persona.version} ({brand.persona_path}; dialog "
                f"{brand.dialog_path}) on {', '.join(on)}"
            )
        lines.append(f"  database {Path(s.db).resolve()} (WAL, synchronous={s.db_synchronous})")
        for name in ("web", "telegram", "wechat"):
            if name == "web" and name in self.channels:
                lines.append(f"  channel {name}: on, chat page {self.url}, API POST "
                             f"{self.url}api/chat")
            elif name == "wechat" and name in self.channels:
                wx = self.channels[name].settings
                lines.append(
                    f"  channel wechat: on, {self.url.rstrip('/')}{wx.path} ({wx.encryption} mode, "
                    f"{'verified' if wx.verified else 'unverified'} account)"
                )
            elif name == "telegram" and name in self.channels:
                tg = self.channels[name]
                desk = (f", operator group {tg.operator_group_id}"
                        if tg.operator_group_id is not None else "")
                lines.append(f"  channel telegram: on, @{tg.bot_username} by {tg.mode}{desk}")
            elif s.channel_enabled(name):
                lines.append(f"  channel {name}: configured, but this version has no {name} "
                             "adapter yet; not started")
            else:
                lines.append(f"  channel {name}: off; to enable, {_ENABLE_HINTS[name]}")
        if s.reload:
            dirs = ", ".join(str(d) for d in self.watch_dirs())
            lines.append(f"  reload: watching {dirs} (SIGHUP forces a reload)")
        else:
            lines.append("  reload: off (SIGHUP still reloads)")
        lines.append(f"  health {self.url}healthz, metrics {self.url}metrics")
        if self._metrics_token() is not None:
            lines.append("  /metrics and /healthz details: Authorization: Bearer <metrics_token>")
        elif not self.metrics_open_without_token():
            lines.append(f"  /metrics refused: listening on {s.host} without metrics_token "
                         "(set BRANDBOT_METRICS_TOKEN); /healthz shows the status only")
        else:
            lines.append("  /healthz shows the status only; set metrics_token for the details")
        lines.append(f"ready in {self.ready_after:.2f} s")
        for line in lines:
            log.info("%s", line)


def _chain(exc: BaseException | None):
    """``exc`` and what caused it, outermost first."""
    seen = 0
    while exc is not None and seen < 10:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def _loop_factory():
    """uvloop when installed (uvicorn[standard] brings it): a faster loop, same semantics."""
    if os.environ.get("BRANDBOT_ASYNCIO_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve(settings: Settings, echo: Callable[[str], None] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status."""
    configure_logging(settings)
    daemon = Daemon(settings)
    try:
        daemon.open()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(daemon.run())
    except StartupError as exc:
        for line in exc.lines:
            log.error("%s", line)
        daemon.close()
        return exc.code
