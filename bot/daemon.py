"""``brandbot serve``: one long-lived process hosting the channels, the web server and reloads.

Lifecycle (one asyncio loop; Telegram and WeChat adapters join the same loop later)::

    load settings ─ open the log (SQLite) ─ load personas ─ bind the socket ─ start channels
        ─ serve HTTP (uvicorn.Server, run by us, not uvicorn.run) ─ watch personas/ dialogs/
    SIGHUP          reload every persona now
    SIGTERM/SIGINT  stop accepting, finish requests and turns in flight, close the database, exit 0

HTTP: ``/``, ``POST /api/chat`` and ``GET /api/chat/pending`` (web channel, bot/channels/web.py),
``/healthz``, ``/metrics``.

This module owns the lifecycle and the composition; each part lives in its own module:
bot/logsetup.py (the masked log), bot/turn_runner.py (turns in commit groups, a full disk),
bot/reloading.py (reloads and file watching), bot/health.py (``/healthz``, ``/metrics``),
bot/channels/ (the adapters), bot/scheduled.py (the durable jobs that replace cron).
Fans whose dialog state disappeared in a reload are moved by the engine on their next turn
(``state_migrations``, else the initial state).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.clock import utc_now, utc_stamp
from bot.config import Settings
from bot.errors import StartupError
from bot.health import Health
from bot.logsetup import configure_logging
from bot.logthrottle import limiter
from bot.reloading import PersonaReloader, PersonaState, reload_log
from bot.turn_runner import TurnRunner

log = logging.getLogger("brandbot.daemon")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


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
        self._desk_channel = None  # the channel whose bot the desk posts with
        self.server = None
        self.store = None
        self.engine = None
        self.scheduler = None  # runs the jobs table (bot/relations/jobs.py)
        self.executor: ThreadPoolExecutor | None = None
        self.turns: TurnRunner | None = None  # runs the channels' turns (commit groups)
        self.reloader: PersonaReloader | None = None  # reloads edited personas, watches files
        self.health: Health | None = None  # /healthz and /metrics
        self._watch_stop: asyncio.Event | None = None
        self.url = ""

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
            self.personas[brand.id] = PersonaState(entry.persona, list(entry.channels), utc_stamp())
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
        self.turns = TurnRunner(self.engine, self.store, self.metrics, self.executor, s.db)
        self.reloader = PersonaReloader(self.engine, self.personas, self.metrics,
                                        debounce_ms=s.reload_debounce_ms,
                                        on_reloaded=self._plan_calendar)
        self.health = Health(s, store=self.store, engine=self.engine, metrics=self.metrics,
                             reloader=self.reloader, write_fault=self.write_fault,
                             channels=self.channels, is_stopping=lambda: self.stopping,
                             started_at=self.started_at)

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

        from bot.http_protocol import TIMED_OUT_KEY

        routes = [
            Route("/healthz", self.health.healthz, methods=["GET", "HEAD"]),
            Route("/metrics", self.health.metrics_endpoint, methods=["GET"]),
        ]
        routes.extend(self._channel_routes())

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

    def _channel_routes(self) -> list:
        """Build every enabled channel some persona answers on (bot/channels/registry.py);
        their routes. A channel served by one platform account serves the first persona."""
        from bot.channels.contract import ChannelConfigError, ChannelServices

        services = ChannelServices(
            run_turn=self.run_turn, persona_info=self.persona_info, store=self.store,
            engine=self.engine, deliver=self.deliver, write_fault=self.write_fault,
            on_rejected=lambda status: self.metrics.errors.labels(f"http_{status}").inc(),
            db=self.settings.db,
        )
        routes: list = []
        for kind, section in self.settings.channel_sections():
            personas = [p for p, st in self.personas.items() if kind.name in st.channels]
            if not (kind.enabled(section) and personas):
                continue
            if kind.one_persona and len(personas) > 1:
                log.warning("%s: one account serves one persona; using %s", kind.name,
                            personas[0])
                personas = personas[:1]
            try:
                channel = kind.create(section, personas, services)
            except ChannelConfigError as exc:
                raise StartupError(exc.lines) from None
            self.channels[kind.name] = channel
            desk = getattr(channel, "operator_desk", None)
            if desk is not None:  # the Telegram operator group
                self.desk, self._desk_channel = desk, channel
            routes.extend(channel.routes())
        return routes

    # -- scheduled work: durable jobs, no cron (bot/relations/jobs.py, bot/scheduled.py) -------

    async def _start_jobs(self) -> None:
        """Plan the recurring and calendar jobs (idempotent) and bind their handlers.

        Planning writes to the log: in a thread, so the loop never waits for the write lock.
        """
        from bot import scheduled
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

        try:
            await asyncio.to_thread(scheduled.plan_calendar, self.store, brand.persona, utc_now())
            self.scheduler.wake()
        except Exception:  # noqa: BLE001 - planned again at the next reload or restart
            log.exception("could not plan the calendar of %s", brand.id)

    async def _relations_once(self, now=None) -> None:
        """Hand abandoned handoffs back to the bot (the ``handoff_expire`` job, every minute)."""
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

    # -- turns (bot/turn_runner.py) ------------------------------------------------------------

    async def run_turn(self, inbound, persona: str):
        """Run one turn for a channel (logged, in a commit group); returns its replies."""
        turn = await self.turns.run(inbound, persona)
        if self.desk is not None:
            self.desk.after_turn(inbound, persona, turn)
        return turn.replies

    def write_fault(self) -> str | None:
        """Why turns cannot be logged right now (the disk is full), or None."""
        return self.turns.write_fault() if self.turns is not None else None

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

    # -- reload (bot/reloading.py) ---------------------------------------------------------

    def watch_dirs(self) -> list[Path]:
        return self.reloader.watch_dirs()

    async def reload(self, reason: str, changed: set[Path] | None = None) -> None:
        """Reload the personas whose files changed (all when ``changed`` is None)."""
        await self.reloader.reload(reason, changed)

    # -- run ---------------------------------------------------------------------------------

    async def run(self) -> int:
        import uvicorn

        from bot.http_protocol import CoalescingHttpProtocol, OverCapLogLimit

        loop = asyncio.get_running_loop()
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
            await self.desk.start(self._desk_channel.app.bot)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        watcher = (asyncio.create_task(self.reloader.watch(self._watch_stop))
                   if self.settings.reload else None)
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
        for kind, section in s.channel_sections():
            if kind.name in self.channels:
                lines.append(f"  {self.channels[kind.name].banner(self.url)}")
            elif kind.enabled(section):
                lines.append(f"  channel {kind.name}: configured, but no persona answers on it "
                             "(add it to a persona's channels); not started")
            else:
                lines.append(f"  channel {kind.name}: off; to enable, {kind.enable_hint}")
        if s.reload:
            dirs = ", ".join(str(d) for d in self.watch_dirs())
            lines.append(f"  reload: watching {dirs} (SIGHUP forces a reload)")
        else:
            lines.append("  reload: off (SIGHUP still reloads)")
        lines.extend(self.health.banner_lines(self.url))
        lines.append(f"ready in {self.ready_after:.2f} s")
        for line in lines:
            log.info("%s", line)


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
