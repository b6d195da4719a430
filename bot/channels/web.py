"""The web chat: a page at ``/`` and its JSON API under ``/api/``.

``POST /api/chat`` takes ``{"text": ..., "msg_id": ID, "ref": CODE, "name": NAME,
"lang": "zh"|"en", "persona": ID}`` (only ``text`` is required) and answers
``{"fan": ID, "persona": ID, "replies": [{"text": ..., "key": ..., "language": ...}]}``.
The fan is the one in the signed ``brandbot_fan`` cookie (:mod:`bot.channels.web_identity`);
``GET /`` and ``GET /api/persona`` issue one to a browser that has none, so the page holds its
fan before its first message and a retried first message stays one turn of one fan. A request
with no valid cookie gets a new fan and the cookie with the answer. A caller-chosen ``"fan"``
(field, or query parameter) is accepted only with ``Authorization: Bearer <web.api_key>``:
401 without it. ``msg_id`` makes a retried request idempotent (the engine answers a repeated id
from the log). A browser's POST made by another site's page is refused (403,
:func:`_same_site_only`). Errors are JSON ``{"error": ...}`` with 400, 401, 403, 404, 413 or
429 (with ``Retry-After``; limits in :mod:`bot.channels.web_limits`); 503 (with ``Retry-After``
and the persona's ``unavailable`` apology in ``replies``) when the message could not be logged
(disk full): nothing was kept, so send it again later with the same ``msg_id``.

A page cannot be pushed to: what is sent to a web fan unasked (:meth:`WebChannel.send`, and
``brandbot handoff reply`` from another process) waits in the log's ``outbox`` table
(:mod:`bot.relations.outbox`) and comes, each with its ``"id"``, before the replies of the fan's
next message and with ``GET /api/chat/pending?persona=ID``, which the page polls every few
seconds. It keeps coming until the page acknowledges it (``POST /api/chat/ack {"ids": [...]}``):
at least once, and the page shows each id once.

The page (``static/``) is plain HTML + vanilla JS: no build step. It is the same channel as the
others: same engine, same log, channel name ``web``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.base import NotSent, Refused, RunTurn, header, read_capped_body
from bot.channels.web_identity import (
    COOKIE,
    COOKIE_MAX_AGE,
    FAN_ID,
    SECURE_COOKIE,
    WebIdentity,
    cookie_secret,
)
from bot.channels.web_limits import TOO_MANY, Throttled, WebRateLimits
from bot.messages import LANGUAGES, FanRef, Inbound, Reply, storable_text
from bot.relations import outbox
from bot.relations.store import StoreFull

CHANNEL = "web"
_SHORT = 128  # msg_id, ref, name
RETRY_AFTER_SECONDS = 30  # a 503 while the log cannot be written (disk full)
_MAX_ACK = 100  # ids in one acknowledgement
_MAX_ID = 2**63 - 1  # an outbox id is an SQLite INTEGER: a larger one cannot be one
CROSS_SITE = ("另一个网站发来的请求被拒绝。A request from another site is refused: post from the "
              "chat page itself (or without a browser's Origin, from a server).")

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


def web_security(web: Any, db: str) -> dict[str, Any]:
    """The ``identity`` and ``limits`` keyword arguments of :class:`WebChannel` from the
    ``web`` settings section (the cookie secret kept beside the database ``db`` when unset)."""
    configured = web.cookie_secret.get_secret_value() if web.cookie_secret else None
    try:
        secret = cookie_secret(configured, db)
    except (OSError, ValueError) as exc:
        from bot.errors import StartupError

        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError([f"web.cookie_secret: {reason}; set web.cookie_secret "
                            "(BRANDBOT_WEB__COOKIE_SECRET) or fix the database folder"]) from None
    return {
        "identity": WebIdentity(secret, web.api_key.get_secret_value() if web.api_key else None),
        "limits": WebRateLimits(
            messages_per_fan=web.messages_per_fan,
            messages_per_ip=web.messages_per_ip,
            requests_per_ip=web.requests_per_ip,
            new_fans_per_ip=web.new_fans_per_ip,
            exempt=web.rate_limit_exempt,
        ),
    }


class WebChannel:
    """Serves the chat page and the ``/api/chat`` endpoints; ``send`` queues in the log's outbox.

    ``store`` is the relationship log (:class:`bot.relations.Store`) holding the outbox;
    ``identity`` signs and reads the fan cookie and checks the API key (default: a secret for
    this process only, no API key); ``limits`` are the rate limits (default: none).
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
        identity: WebIdentity | None = None,
        limits: WebRateLimits | None = None,
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
        self.identity = identity or WebIdentity(cookie_secret(None, ":memory:"))
        self.limits = limits or WebRateLimits()
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

    def _waiting(self, persona: str, fan: str) -> list[dict[str, Any]]:
        # One read beside the writer, on the loop: nearly every request finds nothing.
        return [_reply(r, ident) for ident, r in outbox.waiting(self.store, persona, fan)]

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page, methods=["GET", "HEAD"]),
            Route("/static/{name}", self.static, methods=["GET", "HEAD"]),
            Route("/api/persona", self.persona, methods=["GET"]),
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/chat/pending", self.pending, methods=["GET"]),
            Route("/api/chat/ack", self.ack, methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        body, media = self._files["chat.html"]
        response = Response(body, media_type=media,
                            headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"})
        return self._ensure_cookie(request, response)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._files or name == "chat.html":
            return _ApiJSON({"error": "not found"}, status_code=404)
        body, media = self._files[name]
        return Response(body, media_type=media, headers={**_SECURITY_HEADERS,
                                                         "Cache-Control": "no-cache"})

    async def persona(self, request: Request) -> Response:
        """Names and greeting labels for the page: ``?persona=ID`` or the first web persona.
        The page asks before anything else, so it also hands out the fan cookie."""
        try:
            self._throttle(self.limits.request(_address(request)))
            pid = self._persona(request.query_params.get("persona"))
        except Refused as exc:
            return self._refused(exc)
        return self._ensure_cookie(request, _ApiJSON(self.persona_info(pid)))

    async def chat(self, request: Request) -> Response:
        address = _address(request)
        try:
            self._throttle(self.limits.request(address))
            _same_site_only(request)
            data = await self._read_json(request)
            inbound, persona, new_cookie, trusted = self._inbound(request, data)
            if new_cookie:
                self._throttle(self.limits.new_fan(address))
            self._throttle(self.limits.message(address, inbound.fan.external_id,
                                               trusted=trusted))
        except Refused as exc:
            return self._refused(exc)
        try:
            replies = await self.run_turn(inbound, persona)
        except StoreFull as full:  # not logged (disk full): the page may send it again later
            return _ApiJSON(
                {"error": "the chat cannot keep messages right now; send it again later",
                 **_body(inbound.fan.external_id, persona, [*map(_reply, full.replies)])},
                status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        waiting = self._waiting(persona, inbound.fan.external_id)
        response = _ApiJSON(
            _body(inbound.fan.external_id, persona, [*waiting, *map(_reply, replies)]))
        if new_cookie:
            self._set_cookie(request, response, inbound.fan.external_id)
        return response

    async def pending(self, request: Request) -> Response:
        """``GET /api/chat/pending?persona=ID``: every message still unacknowledged."""
        try:
            self._throttle(self.limits.request(_address(request)))
            persona = self._persona(_opt_str(request.query_params, "persona"))
            fan, _ = self._fan(request, request.query_params)
        except Refused as exc:
            return self._refused(exc)
        if fan is None:  # no conversation yet: nothing can wait for this page
            return _ApiJSON(_body(None, persona, []))
        return _ApiJSON(_body(fan, persona, self._waiting(persona, fan)))

    async def ack(self, request: Request) -> Response:
        """``POST /api/chat/ack {"ids": [...], "persona": ID}``: the page showed these."""
        try:
            self._throttle(self.limits.request(_address(request)))
            _same_site_only(request)
            data = await self._read_json(request, example='{"ids": [1, 2]}')
            persona = self._persona(_opt_str(data, "persona"))
            fan, _ = self._fan(request, data)
            ids = data.get("ids")
            if (not isinstance(ids, list) or len(ids) > _MAX_ACK
                    or not all(isinstance(i, int) and not isinstance(i, bool)
                               and 1 <= i <= _MAX_ID for i in ids)):
                raise Refused(400, f'"ids" must be a list of at most {_MAX_ACK} message ids')
        except Refused as exc:
            return self._refused(exc)
        if fan is None or not ids:
            return _ApiJSON({"acknowledged": 0})
        marked = await asyncio.to_thread(
            outbox.acknowledge, self.store, persona, fan, ids, datetime.now(UTC))
        return _ApiJSON({"acknowledged": marked})

    # -- identity and limits -----------------------------------------------------------------

    def _fan(self, request: Request, data: Any) -> tuple[str | None, bool]:
        """The fan this request speaks for, and whether the caller holds the API key.

        A ``fan`` field or parameter needs the key (401 without it, 403 when none is set);
        otherwise the signed cookie's fan, or None.
        """
        fan = _fan_id(data)
        if fan is None:
            return self.identity.cookie_fan(request.cookies, _cookie_name(request)), False
        if not self.identity.api_key_set:
            raise Refused(403, '"fan" is not accepted here: no web.api_key is set; the page '
                               "keeps its fan in a cookie")
        if not self.identity.key_matches(header(request, b"authorization")):
            raise Refused(401, '"fan" needs the API key: Authorization: Bearer <web.api_key>')
        return fan, True

    def _ensure_cookie(self, request: Request, response: Response) -> Response:
        """Give a browser without a valid fan cookie one (its fan exists from its first message),
        unless its address is over ``web.new_fans_per_ip``: the page is still served, and its
        first message gets the 429."""
        if (self.identity.cookie_fan(request.cookies, _cookie_name(request)) is None
                and self.limits.new_fan(_address(request)) is None):
            self._set_cookie(request, response, self.identity.new_fan())
        return response

    def _set_cookie(self, request: Request, response: Response, fan: str) -> None:
        # Secure also whenever the request came over HTTPS: directly, or through a proxy in
        # web.trusted_proxies that said so (X-Forwarded-Proto; uvicorn believes no one else).
        response.set_cookie(
            _cookie_name(request),
            self.identity.cookie_value(fan),
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=self.cookie_secure or request.url.scheme == "https",
        )

    @staticmethod
    def _throttle(throttled: Throttled | None) -> None:
        if throttled is not None:
            raise _TooMany(throttled)

    def _refused(self, exc: Refused) -> _ApiJSON:
        self.on_rejected(exc.status)
        response = self._error(exc.status, exc.reason)
        if isinstance(exc, _TooMany):
            response.headers["Retry-After"] = str(exc.retry_after)
        elif exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    # -- parsing -----------------------------------------------------------------------------

    async def _read_json(self, request: Request, example: str = '{"text": "..."}'
                         ) -> dict[str, Any]:
        # Any Content-Type: the body must be JSON either way (curl -d sends a form type).
        body = await read_capped_body(request, self.max_body_bytes)  # Refused: 400/413
        try:
            data = json.loads(body.decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refused(400, f"the body must be JSON: {example}") from None
        if not isinstance(data, dict):
            raise Refused(400, f"the body must be a JSON object: {example}")
        return data

    def _inbound(self, request: Request, data: dict[str, Any]
                 ) -> tuple[Inbound, str, bool, bool]:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Refused(400, '"text" must be a non-empty string')
        if len(text) > self.max_text_chars:
            raise Refused(413, f'"text" over {self.max_text_chars} characters')
        persona = self._persona(_opt_str(data, "persona"))
        fan, trusted = self._fan(request, data)
        new_cookie = fan is None
        if fan is None:
            fan = self.identity.new_fan()
        lang = _opt_str(data, "lang")
        if lang is not None and lang not in LANGUAGES:
            raise Refused(400, '"lang" must be "zh" or "en"')
        ref = _opt_str(data, "ref")
        inbound = Inbound(
            FanRef(CHANNEL, fan),
            text=text,
            payload={"ref": ref} if ref else {},
            platform_msg_id=_opt_str(data, "msg_id"),
            display_name=_display_name(_opt_str(data, "name", repair=True)),
            language=lang,
        )
        return inbound, persona, new_cookie, trusted

    def _persona(self, pid: str | None) -> str:
        """The persona asked for (the first web persona when none is); 404 if not served here."""
        if not pid:
            return self.personas[0]
        if pid not in self.personas:
            raise Refused(404, f"unknown persona; this chat serves: {', '.join(self.personas)}")
        return pid

    @staticmethod
    def _error(status: int, message: str) -> _ApiJSON:
        return _ApiJSON({"error": message}, status_code=status)


class _ApiJSON(JSONResponse):
    """A JSON answer of the API, never stored by a cache: a shared cache (a CDN or an nginx
    ``proxy_cache`` put in front) keyed by URL would hand one fan's operator replies
    (``/api/chat/pending``) or fan cookie (``/api/persona``) to the next visitor."""

    def __init__(self, content: Any, status_code: int = 200,
                 headers: dict[str, str] | None = None):
        super().__init__(content, status_code=status_code,
                         headers={"Cache-Control": "no-store", **(headers or {})})


class _TooMany(Refused):
    """429: over a rate limit; ``retry_after`` seconds until one more is let through."""

    def __init__(self, throttled: Throttled):
        super().__init__(429, TOO_MANY)
        self.retry_after = throttled.retry_after


def _cookie_name(request: Request) -> str:
    """``__Host-brandbot_fan`` over HTTPS (directly, or as a trusted proxy says), else
    ``brandbot_fan`` (a browser refuses a __Host- cookie without Secure, which needs HTTPS)."""
    return SECURE_COOKIE if request.url.scheme == "https" else COOKIE


def _same_site_only(request: Request) -> None:
    """403 for a browser's request made by another site's page (a form or a no-CORS fetch
    posting a JSON body as text/plain: the body is read whatever its Content-Type).

    SameSite=Lax keeps the fan cookie off a cross-site POST, but such a post still made a new
    fan and replaced the visitor's cookie, and a sibling subdomain (same *site*) got the cookie
    sent. Browsers say who asked: ``Sec-Fetch-Site`` (anything but same-origin, or none: a typed
    address), else ``Origin`` (its host must be this request's Host). A client with neither
    (curl, a server) is not a browser acting for another site.
    """
    site = header(request, b"sec-fetch-site")
    if site is not None:
        if site.strip().lower() not in ("same-origin", "none"):
            raise Refused(403, CROSS_SITE)
        return
    origin = header(request, b"origin")
    if origin is None:
        return
    try:
        origin_host = urlsplit(origin.strip()).hostname
        host = urlsplit("//" + (header(request, b"host") or "")).hostname
    except ValueError:  # "http://[::1" and such
        origin_host = host = None
    if origin_host is None or origin_host != host:  # "null": a sandboxed or opaque origin
        raise Refused(403, CROSS_SITE)


def _address(request: Request) -> str | None:
    """The client's address (nginx's X-Forwarded-For when it comes through the local proxy)."""
    return request.client.host if request.client else None


def _reply(reply: Reply, ident: int | None = None) -> dict[str, Any]:
    shown = {"text": reply.text, "key": reply.key, "language": reply.language}
    if ident is not None:  # an outbox message: the page acknowledges it by this id
        shown["id"] = ident
    return shown


def _body(fan: str | None, persona: str, replies: list[dict[str, Any]]) -> dict[str, Any]:
    return {"fan": fan, "persona": persona, "replies": replies}


def _fan_id(data: Any) -> str | None:
    """The ``fan`` field or query parameter, if given: 400 unless it is a valid fan id."""
    fan = _opt_str(data, "fan")
    if fan is not None and not FAN_ID.fullmatch(fan):
        raise Refused(400, '"fan" must be 1-64 characters of A-Z a-z 0-9 . _ : @ -')
    return fan


# C0/C1 controls (newlines, NUL, ESC) and the bidi embedding/override/isolate marks; not the
# joiners emoji need (U+200D) nor variation selectors.
_NAME_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]+")
_NAME_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def _display_name(name: str | None) -> str | None:
    """A fan-chosen name as one plain line: it titles the operators' topic (``name · web ·
    #id``), where a bidi override could make one fan pass for another fan, channel or number
    and a newline or NUL could keep the topic from being opened."""
    if name is None:
        return None
    return " ".join(_NAME_CONTROLS.sub(" ", _NAME_BIDI.sub("", name)).split()) or None


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
            return storable_text(value)
        raise Refused(400, f'"{key}" is not valid Unicode text') from None
    return value
