"""``/healthz`` and ``/metrics``: honest health for whoever runs the daemon, details for operators.

Without ``metrics_token`` ``/healthz`` shows the status only (paths and reload problems are for
the operator), and ``/metrics`` answers only on a loopback-only listener: in a container the
daemon listens on 0.0.0.0, and the metrics must not be shown to whoever reaches the port.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Callable

from bot.config import Settings
from bot.reloading import PersonaReloader


class Health:
    """The two endpoints, reading the daemon's parts (never changing them)."""

    def __init__(self, settings: Settings, *, store, engine, metrics,
                 reloader: PersonaReloader, write_fault: Callable[[], str | None],
                 channels: dict, is_stopping: Callable[[], bool], started_at: float):
        self.settings, self.store, self.engine, self.metrics = settings, store, engine, metrics
        self.reloader, self.write_fault, self.channels = reloader, write_fault, channels
        self.is_stopping, self.started_at = is_stopping, started_at

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
        personas, reloader = self.reloader.personas, self.reloader
        failed = reloader.failed()
        write_fault = self.write_fault()
        stopping = self.is_stopping()
        body = {
            "status": "stopping" if stopping else
            ("unavailable" if error else
             ("degraded" if failed or write_fault or reloader.watch_mode == "failed" else "ok")),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "personas": [
                {
                    "id": pid,
                    "version": self.engine.brand(pid).persona.version,
                    "channels": [c for c in st.channels if c in self.channels],
                    "loaded_at": st.loaded_at,
                    "file": self.engine.brand(pid).persona_path,
                }
                for pid, st in personas.items()
            ],
            "database": {"ok": error is None and write_fault is None, "path": self.settings.db}
            | ({"error": error} if error else {})
            | ({"write_error": write_fault} if write_fault else {}),
            "reload": {
                "enabled": self.settings.reload,
                "ok": not failed and reloader.watch_mode != "failed",
                "watcher": reloader.watch_mode,
                "failed": [
                    {"persona": pid, "at": st.failed_at, "problems": st.reload_error}
                    for pid, st in failed.items()
                ],
            } | ({"watcher_error": reloader.watch_error} if reloader.watch_error else {}),
            "channels": sorted(self.channels),
        }
        status = 503 if (error or stopping) else 200
        if not self.is_operator(request):  # paths and problems are for the operator only
            body = {"status": body["status"]}
        return JSONResponse(body, status_code=status)

    def metrics_token(self) -> str | None:
        token = self.settings.metrics_token
        return token.get_secret_value() or None if token is not None else None

    def is_operator(self, request) -> bool:
        """The request carries ``Authorization: Bearer <metrics_token>`` (none configured: no)."""
        token = self.metrics_token()
        if token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode())

    def metrics_open_without_token(self) -> bool:
        """/metrics needs no token only with none configured and a loopback-only listener."""
        if self.metrics_token() is not None:
            return False
        try:
            return ipaddress.ip_address(self.settings.host).is_loopback
        except ValueError:
            return self.settings.host == "localhost"

    async def metrics_endpoint(self, request):
        from starlette.responses import Response

        if not (self.metrics_open_without_token() or self.is_operator(request)):
            configured = self.metrics_token() is not None
            why = ("send Authorization: Bearer <metrics_token>" if configured else
                   f"the daemon listens on {self.settings.host}: set metrics_token "
                   "(BRANDBOT_METRICS_TOKEN) to read /metrics (docs/deploy.md)")
            return Response(f"/metrics: {why}\n", status_code=401 if configured else 403,
                            media_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"} if configured else None)
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    def banner_lines(self, url: str) -> list[str]:
        lines = [f"  health {url}healthz, metrics {url}metrics"]
        if self.metrics_token() is not None:
            lines.append("  /metrics and /healthz details: Authorization: Bearer <metrics_token>")
        elif not self.metrics_open_without_token():
            lines.append(f"  /metrics refused: listening on {self.settings.host} without "
                         "metrics_token (set BRANDBOT_METRICS_TOKEN); /healthz shows the status "
                         "only")
        else:
            lines.append("  /healthz shows the status only; set metrics_token for the details")
        return lines
