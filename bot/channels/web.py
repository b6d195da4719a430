"""The web chat: a page at ``/`` and its JSON endpoint ``POST /api/chat``.

``POST /api/chat`` takes ``{"text": ..., "fan": ID, "msg_id": ID, "ref": CODE, "name": NAME,
"lang": "zh"|"en", "persona": ID}`` (only ``text`` is required) and answers
``{"fan": ID, "persona": ID, "replies": [{"text": ..., "key": ..., "language": ...}]}``.
Without ``fan`` the fan id comes from the ``brandbot_fan`` cookie, else a new one is made and
set in that cookie. ``msg_id`` makes a retried request idempotent (the engine answers a repeated
id from the log). Errors are JSON ``{"error": ...}`` with 400, 404 or 413.

The page (``static/``) is plain HTML + vanilla JS: no build step. It is the same channel as the
others: same engine, same log, channel name ``web``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.messages import FanRef, Inbound, Reply

CHANNEL = "web"
COOKIE = "brandbot_fan"
_FAN_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_SHORT = 128  # msg_id, ref, name
_OUTBOX_LIMIT = 20

log = logging.getLogger("brandbot.web")

# (inbound, persona id) -> replies; provided by the daemon, which runs the engine turn.
RunTurn = Callable[[Inbound, str], Awaitable[list[Reply]]]

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


def _static(name: str) -> bytes:
    return resources.files("bot.channels").joinpath("static", name).read_bytes()


class WebChannel:
    """Serves the chat page and ``POST /api/chat``; ``send`` queues for the fan's next visit."""

    name = CHANNEL

    def __init__(
        self,
        run_turn: RunTurn,
        personas: list[str],
        persona_info: Callable[[str], dict[str, Any]],
        *,
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
        self._outbox: dict[tuple[str, str], deque[Reply]] = defaultdict(
            lambda: deque(maxlen=_OUTBOX_LIMIT)
        )
        self._files = {
            "chat.html": (_static("chat.html"), "text/html; charset=utf-8"),
            "chat.js": (_static("chat.js"), "text/javascript; charset=utf-8"),
            "chat.css": (_static("chat.css"), "text/css; charset=utf-8"),
        }
        self.running = False

    # -- the Channel protocol ----------------------------------------------------------------

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        # Requests in flight are finished by the web server's graceful shutdown.
        self.running = False

    async def send(self, fan: FanRef, replies: list[Reply], persona: str | None = None) -> None:
        """A web page cannot be pushed to: keep the messages for the fan's next reply."""
        self._outbox[(persona or self.personas[0], fan.external_id)].extend(replies)

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page, methods=["GET", "HEAD"]),
            Route("/static/{name}", self.static, methods=["GET", "HEAD"]),
            Route("/api/persona", self.persona, methods=["GET"]),
            Route("/api/chat", self.chat, methods=["POST"]),
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
        pid = request.query_params.get("persona") or self.personas[0]
        if pid not in self.personas:
            served = ", ".join(self.personas)
            return self._error(404, f"unknown persona; this chat serves: {served}")
        return JSONResponse(self.persona_info(pid))

    async def chat(self, request: Request) -> Response:
        try:
            data = await self._read_json(request)
            inbound, persona, new_cookie = self._inbound(request, data)
        except BadRequest as exc:
            self.on_rejected(exc.status)
            return self._error(exc.status, exc.message)
        replies = await self.run_turn(inbound, persona)
        pending = self._outbox.pop((persona, inbound.fan.external_id), None)
        if pending:
            replies = [*pending, *replies]
        response = JSONResponse(
            {
                "fan": inbound.fan.external_id,
                "persona": persona,
                "replies": [
                    {"text": r.text, "key": r.key, "language": r.language} for r in replies
                ],
            }
        )
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

    # -- parsing -----------------------------------------------------------------------------

    async def _read_json(self, request: Request) -> dict[str, Any]:
        # Any Content-Type: the body must be JSON either way (curl -d sends a form type).
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_body_bytes:
                    raise BadRequest(413, f"body over {self.max_body_bytes} bytes")
            except ValueError:
                raise BadRequest(400, "invalid Content-Length") from None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BadRequest(413, f"body over {self.max_body_bytes} bytes")
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks).decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadRequest(400, 'the body must be JSON: {"text": "..."}') from None
        if not isinstance(data, dict):
            raise BadRequest(400, 'the body must be a JSON object: {"text": "..."}')
        return data

    def _inbound(self, request: Request, data: dict[str, Any]) -> tuple[Inbound, str, bool]:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest(400, '"text" must be a non-empty string')
        if len(text) > self.max_text_chars:
            raise BadRequest(413, f'"text" over {self.max_text_chars} characters')
        persona = _opt_str(data, "persona") or self.personas[0]
        if persona not in self.personas:
            raise BadRequest(404, f"unknown persona; this chat serves: {', '.join(self.personas)}")
        fan = _opt_str(data, "fan")
        new_cookie = False
        if fan is None:
            cookie = request.cookies.get(COOKIE)
            if cookie and _FAN_ID.match(cookie):
                fan = cookie
            else:
                fan, new_cookie = "w-" + secrets.token_urlsafe(12), True
        elif not _FAN_ID.match(fan):
            raise BadRequest(400, '"fan" must be 1-64 characters of A-Z a-z 0-9 . _ : @ -')
        lang = _opt_str(data, "lang")
        if lang not in (None, "zh", "en"):
            raise BadRequest(400, '"lang" must be "zh" or "en"')
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

    @staticmethod
    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)


def _opt_str(data: dict[str, Any], key: str, *, repair: bool = False) -> str | None:
    """An optional short string field; ids must be valid text, a display name is repaired."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadRequest(400, f'"{key}" must be a string')
    if len(value) > _SHORT:
        raise BadRequest(400, f'"{key}" over {_SHORT} characters')
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        if repair:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        raise BadRequest(400, f'"{key}" is not valid Unicode text') from None
    return value

