"""A local fake of the WeChat Official Account API over real HTTP, for tests and the bench.

wechatpy's ``WeChatClient`` (through brandbot's ``TokenOwner``) is pointed at it with the API
base URL (``fake.api_url``, like ``BRANDBOT_WECHAT_API_URL``), so the real client, requests and
our code run unmodified; only Tencent's servers are replaced.

Endpoints (semantics: docs/channels/protocol-notes.md W7, W8, W9):

* ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` → a new token
  (``expires_in`` 7200); a wrong AppID/secret → 40125. Tokens stay valid until
  :meth:`FakeWeChat.expire_tokens` (then 42001, or 40001 with ``code=40001``).
* ``POST /cgi-bin/message/custom/send`` (text), ``POST /cgi-bin/message/custom/typing``;
* ``POST /cgi-bin/qrcode/create`` → ``ticket``, ``url``, ``expire_seconds``;
* ``POST /cgi-bin/menu/create`` (checked against WeChat's limits: 40016 buttons, 40018/40025
  name bytes, 40019 key bytes, 40023 sub-buttons, 40017 type), ``GET /cgi-bin/menu/get``
  (46003 when there is none), ``GET /cgi-bin/menu/delete``; the menu is ``fake.menu``;
* a missing or unknown ``access_token`` → 40001 (41001 when absent);
* ``fake.date_offset = -600`` before ``with``: its HTTP ``Date`` header runs 10 minutes behind;
* injectable errors: ``fake.fail("message/custom/send", 45047, times=1)`` (``times=None``: every
  call) — 40001/42001 (token errors), 45015/45047 (reply window / quota), 48001, -1...;
  ``NOT_JSON`` answers HTTP 200 with an HTML page instead (a proxy or gateway in the way);
* every call is recorded in ``calls`` (endpoint, query, JSON body, errcode, monotonic time).

It runs uvicorn in a thread with its own event loop, so both blocking callers (the QR code
command) and the channel's worker threads can reach it: ``with FakeWeChat() as fake: ...``.
Its access log is off: the token endpoint's query string holds the AppSecret.

:class:`Pusher` is the other half of WeChat: it builds the signed (and, in safe mode,
encrypted with wechatpy's ``WeChatCrypto``) pushes WeChat sends to a server, and opens replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import uvicorn
from defusedxml.ElementTree import fromstring
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto

APP_ID = "wx1234567890abcdef"
APP_SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "brandbotToken42"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"
ACCOUNT = "gh_0123456789ab"
NOT_JSON = 1_000_000  # fake.fail(endpoint, NOT_JSON): an HTML page with HTTP 200, not an answer
_ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40014: "invalid access_token",
    41001: "access_token missing",
    42001: "access_token expired",
    40125: "invalid appsecret",
    40164: "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6570-fake",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    43004: "require subscribe",
    48001: "api unauthorized",
    -1: "system error",
}


@dataclass
class Call:
    endpoint: str
    query: dict[str, str]
    body: dict[str, Any] | None
    errcode: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    endpoint: str
    errcode: int
    times: int | None  # None: every call


class FakeWeChat:
    def __init__(self, app_id: str = APP_ID, secret: str = APP_SECRET, delay: float = 0.0):
        self.app_id, self.secret, self.delay = app_id, secret, delay
        self.calls: list[Call] = []
        self.tokens: dict[str, int] = {}  # token -> 0 (valid) or the errcode it now gets
        self.menu: dict[str, Any] | None = None  # the custom menu (menu/create), None: none
        self._failures: list[_Failure] = []
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        # Seconds the fake's HTTP Date header is off from this machine's clock (a clock check).
        self.date_offset = 0.0

    # -- control ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    def fail(self, endpoint: str, errcode: int, times: int | None = 1) -> None:
        with self._lock:
            self._failures.append(_Failure(endpoint, errcode, times))

    def expire_tokens(self, code: int = 42001) -> None:
        """Every token issued so far is now refused with ``code`` (42001 expired, 40001...)."""
        with self._lock:
            for token in self.tokens:
                self.tokens[token] = code

    def sent(self, endpoint: str = "message/custom/send") -> list[Call]:
        """Successful calls to ``endpoint``."""
        with self._lock:
            return [c for c in self.calls if c.endpoint == endpoint and c.errcode == 0]

    def count(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.endpoint == endpoint)

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        """Poll ``predicate()`` until true or ``timeout`` (blocking; use from threads/sync)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return predicate()

    # -- HTTP ------------------------------------------------------------------------------

    def _record(self, endpoint: str, request: Request, body: dict | None, code: int,
                extra: dict | None = None) -> JSONResponse:
        with self._lock:
            self.calls.append(Call(endpoint, dict(request.query_params), body, code))
        if code == NOT_JSON:
            return HTMLResponse("<html><body>502 Bad Gateway</body></html>")
        if code:
            return JSONResponse({"errcode": code, "errmsg": _ERRMSG.get(code, "error")})
        return JSONResponse({"errcode": 0, "errmsg": "ok", **(extra or {})})

    def _injected(self, endpoint: str) -> int:
        with self._lock:
            for failure in self._failures:
                if failure.endpoint == endpoint and (failure.times is None or failure.times > 0):
                    if failure.times is not None:
                        failure.times -= 1
                    return failure.errcode
        return 0

    async def token(self, request: Request) -> JSONResponse:
        q = request.query_params
        if q.get("appid") != self.app_id or q.get("secret") != self.secret:
            return self._record("token", request, None, 40125)
        code = self._injected("token")
        if code:
            return self._record("token", request, None, code)
        token = f"FAKE-ACCESS-TOKEN-{next(self._serial):04d}-{time.monotonic_ns() % 10**9:09d}"
        with self._lock:
            self.tokens[token] = 0
        return self._record("token", request, None, 0,
                            {"access_token": token, "expires_in": 7200})

    async def api(self, request: Request) -> JSONResponse:
        endpoint = request.path_params["endpoint"]
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = await request.body()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            return self._record(endpoint, request, None, 47001)
        token = request.query_params.get("access_token")
        with self._lock:
            state = self.tokens.get(token) if token else None
        if token is None:
            return self._record(endpoint, request, body, 41001)
        if state is None:
            return self._record(endpoint, request, body, 40001)
        if state:
            return self._record(endpoint, request, body, state)
        code = self._injected(endpoint)
        if code:
            return self._record(endpoint, request, body, code)
        if endpoint == "qrcode/create":
            scene = body["action_info"]["scene"]
            scene = scene.get("scene_str", scene.get("scene_id"))
            ticket = f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xLz{next(self._serial)}=="
            extra = {"ticket": ticket, "url": f"http://weixin.qq.com/q/fake-{scene}"}
            if "expire_seconds" in body:
                extra["expire_seconds"] = body["expire_seconds"]
            return self._record(endpoint, request, body, 0, extra)
        if endpoint.startswith("menu/"):
            return self._menu(endpoint, request, body)
        if endpoint == "message/custom/send":
            content = (body or {}).get("text", {}).get("content", "")
            if len(content.encode("utf-8")) > 2048:
                return self._record(endpoint, request, body, 45002)
        return self._record(endpoint, request, body, 0)

    def _menu(self, endpoint: str, request: Request, body: dict | None) -> JSONResponse:
        """menu/create, menu/get, menu/delete, with WeChat's limits and error codes."""
        if endpoint == "menu/get":
            if self.menu is None:
                return self._record(endpoint, request, body, 46003)
            return self._record(endpoint, request, body, 0, {"menu": self.menu})
        if endpoint == "menu/delete":
            self.menu = None
            return self._record(endpoint, request, body, 0)
        code = _menu_error((body or {}).get("button"))
        if code == 0:
            self.menu = {"button": (body or {})["button"]}
        return self._record(endpoint, request, body, code)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FakeWeChat:
        app = Starlette(routes=[
            Route("/cgi-bin/token", self.token, methods=["GET"]),
            Route("/cgi-bin/{endpoint:path}", self.api, methods=["POST"]),
            Route("/cgi-bin/{endpoint:path}", self.api, methods=["GET"]),  # menu/get, delete
        ])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", log_level="warning"))
        if self.date_offset:
            app.add_middleware(_ShiftedDate, offset=self.date_offset)
            self._server.config.date_header = False  # the middleware writes Date instead
        self._server.capture_signals = contextlib.nullcontext

        def run() -> None:
            asyncio.run(self._server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name="fake-wechat", daemon=True)
        self._thread.start()
        if not self.wait_for(lambda: self._server.started, timeout=10):
            raise RuntimeError("the fake WeChat API did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)


class _ShiftedDate:
    """ASGI middleware: every response's Date header is ``offset`` seconds off the real time."""

    def __init__(self, app, offset: float):
        self.app, self.offset = app, offset

    async def __call__(self, scope, receive, send):
        from email.utils import formatdate

        async def send_shifted(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                date = formatdate(time.time() + self.offset, usegmt=True).encode()
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        await self.app(scope, receive, send_shifted)


def _menu_error(buttons: Any) -> int:
    """WeChat's errcode for a menu/create body (0: accepted)."""
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016
    for top in buttons:
        if len(str(top.get("name", "")).encode()) > 16:
            return 40018
        subs = top.get("sub_button")
        leaves = subs if subs else [top]
        if subs is not None and len(subs) > 5:
            return 40023
        for leaf in leaves:
            if leaf is not top and len(str(leaf.get("name", "")).encode()) > 60:
                return 40025
            if leaf.get("type") not in {"click", "view", "miniprogram", "scancode_push",
                                        "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                                        "pic_weixin", "location_select", "media_id",
                                        "view_limited", "article_id", "article_view_limited"}:
                return 40017
            if len(str(leaf.get("key", "")).encode()) > 128:
                return 40019
    return 0


# -- the push side ------------------------------------------------------------------------------


def xml_push(fields: dict[str, Any]) -> str:
    """A push body: strings in CDATA, ints bare (as WeChat writes them)."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{key}>{value}</{key}>")
        else:
            parts.append(f"<{key}><![CDATA[{value}]]></{key}>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_push(openid: str, content: str, msg_id: int, create_time: int | None = None,
              account: str = ACCOUNT) -> str:
    return xml_push({"ToUserName": account, "FromUserName": openid,
                     "CreateTime": create_time or int(time.time()), "MsgType": "text",
                     "Content": content, "MsgId": msg_id})


def event_push(openid: str, event: str, key: str | None = None,
               create_time: int | None = None, account: str = ACCOUNT,
               **extra: Any) -> str:
    fields: dict[str, Any] = {"ToUserName": account, "FromUserName": openid,
                              "CreateTime": create_time or int(time.time()),
                              "MsgType": "event", "Event": event}
    if key is not None:
        fields["EventKey"] = key
    fields.update(extra)
    return xml_push(fields)


class Pusher:
    """Signs (and encrypts) pushes as WeChat does; opens the replies."""

    def __init__(self, token: str = TOKEN, app_id: str = APP_ID, aes_key: str | None = None,
                 clock=time.time):
        self.token, self.app_id, self.aes_key, self.clock = token, app_id, aes_key, clock

    @staticmethod
    def signature(*parts: str) -> str:
        return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()

    def query(self, timestamp: str | None = None, nonce: str | None = None,
              token: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or str(secrets.randbelow(10**10))
        return {"signature": self.signature(token or self.token, timestamp, nonce),
                "timestamp": timestamp, "nonce": nonce}

    def plain(self, xml: str, **query: Any) -> tuple[dict[str, str], bytes]:
        return self.query(**query), xml.encode("utf-8")

    def encrypted(self, xml: str, *, aes_key: str | None = None, app_id: str | None = None,
                  account: str = ACCOUNT, compatible: bool = False,
                  **query: Any) -> tuple[dict[str, str], bytes]:
        """A safe-mode push: ``<ToUserName/><Encrypt/>`` and ``msg_signature`` in the query."""
        params = self.query(**query)
        crypto = WeChatCrypto(self.token, aes_key or self.aes_key, app_id or self.app_id)
        envelope = fromstring(crypto.encrypt_message(xml, params["nonce"], params["timestamp"]))
        encrypt = envelope.findtext("Encrypt")
        params.update(encrypt_type="aes", msg_signature=envelope.findtext("MsgSignature"))
        inner = xml[len("<xml>"):-len("</xml>")] if compatible else (
            f"<ToUserName><![CDATA[{escape(account)}]]></ToUserName>")
        return params, f"<xml>{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()

    def sign_encrypt(self, encrypt: str, **query: Any) -> tuple[dict[str, str], bytes]:
        """A push carrying ``encrypt`` as is (for corrupt-ciphertext tests), correctly signed."""
        params = self.query(**query)
        params.update(encrypt_type="aes", msg_signature=self.signature(
            self.token, params["timestamp"], params["nonce"], encrypt))
        return params, (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode()

    def open_reply(self, body: bytes, *, aes_key: str | None = None) -> dict[str, str]:
        """A passive reply's fields; an encrypted one is checked and decrypted first."""
        root = fromstring(body)
        if root.find("Encrypt") is not None:
            crypto = WeChatCrypto(self.token, aes_key or self.aes_key, self.app_id)
            xml = crypto.decrypt_message(
                body.decode(), root.findtext("MsgSignature"), root.findtext("TimeStamp"),
                root.findtext("Nonce"))
            root = fromstring(xml.encode("utf-8"))
        return {child.tag: child.text or "" for child in root}
