"""The web chat: a page at ``/`` and its JSON endpoint ``POST /api/chat``.

``POST /api/chat`` takes ``{"text": ..., "fan": ID, "msg_id": ID, "ref": CODE, "name": NAME,
"lang": "zh"|"en", "persona": ID}`` (only ``text`` is required) and answers
``{"fan": ID, "persona": ID, "replies": [{"text": ..., "key": ..., "language": ...}]}``.
Without ``fan`` the fan id comes from the ``brandbot_fan`` cookie, else a new one is made and
set in that cookie. ``msg_id`` makes a retried request idempotent (the engine answers a repeated
id from the log). Errors are JSON ``{"error": ...}`` with 400, 404 or 413; 503 (with
``Retry-After`` and the persona's ``unavailable`` apology in ``replies``) when the message could
not be logged (disk full): nothing was kept, so send it again later with the same ``msg_id``.

A page cannot be pushed to: what is sent to a web fan unasked (:meth:`WebChannel.send`, and
``brandbot handoff reply`` from another process) waits in the log's ``outbox`` table
(:mod:`bot.relations.outbox`) and comes before the replies of the fan's next message, or with
``GET /api/chat/pending?fan=ID&persona=ID`` (the cookie when ``fan`` is absent), which the page
polls every few seconds: ``{"fan": ID, "persona": ID, "replies": [...]}``, each message once.

The page (``static/``) is plain HTML + vanilla JS: no build step. It is the same channel as the
others: same engine, same log, channel name ``web``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.base import NotSent, Refused, RunTurn, read_capped_body
from bot.messages import FanRef, Inbound, Reply
from bot.relations import outbox
from bot.relations.store import StoreFull

CHANNEL = "web"
COOKIE = "brandbot_fan"
_FAN_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_SHORT = 128  # msg_id, ref, name
RETRY_AFTER_SECONDS = 30  # a 503 while the log cannot be written (disk full)

log = logging.getLogger("brandbot.web")

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def _static(name: str) -> bytes:
    return resources.files("bot.channels").joinpath("static", name).read_bytes()


class WebChannel:
    """Serves the chat page and ``POST /api/chat``; ``send`` queues in the log's outbox.

    ``store`` is the relationship log (:class:`bot.relations.Store`) holding the outbox.
    """

    name = CHANNEL

    def __init__(
        self,
        run_turn: RunTurn,
        personas: list[str],
        persona_info: Callable[[str], dict[str, Any]],
        *,
        store: Any,
        max_body_bytes: int = 16_384,
        max_text_chars: int = 2_000,
        cookie_secure: bool = False,
        on_rejected: Callable[[int], None] | None = None,
    ):
        if not personas:
            raise ValueError("the web channel needs at least one persona")
        self.run_turn = run_turn
        self.personas = personas
        self.persona_info = persona_info
        self.max_body_bytes = max_body_bytes
        self.max_text_chars = max_text_chars
        self.cookie_secure = cookie_secure
        self.on_rejected = on_rejected or (lambda status: None)
        self.store = store
        self._files = {
            "chat.html": (_static("chat.html"), "text/html; charset=utf-8"),
            "chat.js": (_static("chat.js"), "text/javascript; charset=utf-8"),
            "chat.css": (_static("chat.css"), "text/css; charset=utf-8"),
        }

    # -- the Channel protocol ----------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to open: the daemon's web server serves :meth:`routes`."""

    async def stop(self) -> None:
        """Nothing to close: the web server's graceful shutdown finishes requests in flight."""

    async def send(self, fan: FanRef, replies: list[Reply], persona: str | None = None
                   ) -> NotSent | None:
        """A web page cannot be pushed to: queue the messages in the outbox for its next request.

        A fan the log does not know has nothing to attach them to (a web fan exists from their
        first message): :class:`NotSent`.
        """
        queued = await asyncio.to_thread(self._enqueue, fan, replies, persona or self.personas[0])
        return None if queued else NotSent(len(replies), "unknown web chat fan")

    def _enqueue(self, fan: FanRef, replies: list[Reply], persona: str) -> int:
        row = self.store.find_fan(persona, CHANNEL, fan.external_id)
        if row is None:
            log.warning("web: no fan %r for persona %s; %d message(s) not queued",
                        fan.external_id, persona, len(replies))
            return 0
        return outbox.enqueue(self.store, row["id"], replies, datetime.now(UTC))

    async def _take(self, persona: str, fan: str, msg_id: str | None = None) -> list[Reply]:
        # One read on the loop; nearly every request finds nothing new and needs no thread hop.
        taken, waiting = outbox.glance(self.store, persona, fan, msg_id)
        if not waiting:
            return taken
        return taken + await asyncio.to_thread(
            outbox.take, self.store, persona, fan, datetime.now(UTC), msg_id
        )

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page, methods=["GET", "HEAD"]),
            Route("/static/{name}", self.static, methods=["GET", "HEAD"]),
            Route("/api/persona", self.persona, methods=["GET"]),
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/chat/pending", self.pending, methods=["GET"]),
        ]

    async def page(self, request: Request) -> Response:
        body, media = self._files["chat.html"]
        return Response(body, media_type=media, headers=_SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._files or name == "chat.html":
            return JSONResponse({"error": "not found"}, status_code=404)
        body, media = self._files[name]
        return Response(body, media_type=media, headers={**_SECURITY_HEADERS,
                                                         "Cache-Control": "no-cache"})

    async def persona(self, request: Request) -> Response:
        """Names and greeting labels for the page: ``?persona=ID`` or the first web persona."""
        try:
            pid = self._persona(request.query_params.get("persona"))
        except Refused as exc:
            return self._error(exc.status, exc.reason)
        return JSONResponse(self.persona_info(pid))

    async def chat(self, request: Request) -> Response:
        try:
            data = await self._read_json(request)
            inbound, persona, new_cookie = self._inbound(request, data)
        except Refused as exc:
            self.on_rejected(exc.status)
            return self._error(exc.status, exc.reason)
        try:
            replies = await self.run_turn(inbound, persona)
        except StoreFull as full:  # not logged (disk full): the page may send it again later
            return JSONResponse(
                {"error": "the chat cannot keep messages right now; send it again later",
                 **_body(inbound.fan.external_id, persona, full.replies)},
                status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        pending = await self._take(persona, inbound.fan.external_id, inbound.platform_msg_id)
        response = JSONResponse(_body(inbound.fan.external_id, persona, [*pending, *replies]))
        if new_cookie:
            response.set_cookie(
                COOKIE,
                inbound.fan.external_id,
                max_age=365 * 24 * 3600,
                httponly=True,
                samesite="lax",
                secure=self.cookie_secure,
            )
        return response

    async def pending(self, request: Request) -> Response:
        """``GET /api/chat/pending?fan=ID&persona=ID``: waiting messages, each handed out once."""
        try:
            persona = self._persona(_opt_str(request.query_params, "persona"))
            fan = _fan_id(request.query_params) or _cookie_fan(request)
        except Refused as exc:
            self.on_rejected(exc.status)
            return self._error(exc.status, exc.reason)
        if fan is None:  # no conversation yet: nothing can wait for this page
            return JSONResponse(_body(None, persona, []))
        return JSONResponse(_body(fan, persona, await self._take(persona, fan)))

    # -- parsing -----------------------------------------------------------------------------

    async def _read_json(self, request: Request) -> dict[str, Any]:
        # Any Content-Type: the body must be JSON either way (curl -d sends a form type).
        body = await read_capped_body(request, self.max_body_bytes)  # Refused: 400/413
        try:
            data = json.loads(body.decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refused(400, 'the body must be JSON: {"text": "..."}') from None
        if not isinstance(data, dict):
            raise Refused(400, 'the body must be a JSON object: {"text": "..."}')
        return data

    def _inbound(self, request: Request, data: dict[str, Any]) -> tuple[Inbound, str, bool]:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Refused(400, '"text" must be a non-empty string')
        if len(text) > self.max_text_chars:
            raise Refused(413, f'"text" over {self.max_text_chars} characters')
        persona = self._persona(_opt_str(data, "persona"))
        fan = _fan_id(data) or _cookie_fan(request)
        new_cookie = fan is None
        if new_cookie:
            fan = "w-" + secrets.token_urlsafe(12)
        lang = _opt_str(data, "lang")
        if lang not in (None, "zh", "en"):
            raise Refused(400, '"lang" must be "zh" or "en"')
        ref = _opt_str(data, "ref")
        inbound = Inbound(
            FanRef(CHANNEL, fan),
            text=text,
            payload={"ref": ref} if ref else {},
            platform_msg_id=_opt_str(data, "msg_id"),
            display_name=_opt_str(data, "name", repair=True),
            language=lang,
        )
        return inbound, persona, new_cookie

    def _persona(self, pid: str | None) -> str:
        """The persona asked for (the first web persona when none is); 404 if not served here."""
        if not pid:
            return self.personas[0]
        if pid not in self.personas:
            raise Refused(404, f"unknown persona; this chat serves: {', '.join(self.personas)}")
        return pid

    @staticmethod
    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)


def _body(fan: str | None, persona: str, replies: list[Reply]) -> dict[str, Any]:
    return {
        "fan": fan,
        "persona": persona,
        "replies": [{"text": r.text, "key": r.key, "language": r.language} for r in replies],
    }


def _fan_id(data: Any) -> str | None:
    """The ``fan`` field or query parameter, if given: 400 unless it is a valid fan id."""
    fan = _opt_str(data, "fan")
    if fan is not None and not _FAN_ID.match(fan):
        raise Refused(400, '"fan" must be 1-64 characters of A-Z a-z 0-9 . _ : @ -')
    return fan


def _cookie_fan(request: Request) -> str | None:
    """The fan id in the page's cookie, when it holds a valid one."""
    cookie = request.cookies.get(COOKIE)
    return cookie if cookie and _FAN_ID.match(cookie) else None


def _opt_str(data: Any, key: str, *, repair: bool = False) -> str | None:
    """An optional short string field; ids must be valid text, a display name is repaired."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Refused(400, f'"{key}" must be a string')
    if len(value) > _SHORT:
        raise Refused(400, f'"{key}" over {_SHORT} characters')
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        if repair:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        raise Refused(400, f'"{key}" is not valid Unicode text') from None
    return value

