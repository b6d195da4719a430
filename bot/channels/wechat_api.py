"""Outbound WeChat API calls: one access-token owner, the customer-service sender, QR codes.

wechatpy's ``WeChatClient`` is synchronous (requests): every call here is blocking and the
channel runs it with ``asyncio.to_thread``. Differences from wechatpy's defaults, and why
(docs/channels/protocol-notes.md W8, W10):

* ``auto_retry=False``: wechatpy's retry on 40001/40014/42001 recurses without bound (measured:
  188 token fetches in one call against a server that keeps saying 40001). :class:`TokenOwner`
  retries exactly once, after a *single-flight* refresh: of many threads that see the same stale
  token rejected, one fetches and the others reuse its token.
* The token URL is built from the configurable API base (upstream hard-codes api.weixin.qq.com)
  and fetched with a timeout (upstream has none).
* ``access_token`` and the AppSecret travel in query strings, which urllib3 logs at DEBUG:
  :func:`redact_logs` installs a filter replacing them (and every configured secret) with ``***``.

Customer-service quota (W7): a fan's message opens 5 sends within 48 h; a follow, scan or menu
click opens 3 within 1 minute (without shortening an open 48 h window). :class:`Quota` tracks
that per fan; a send outside the window or over the count is not attempted, and 45015/45047
from WeChat close the window. Nothing is retried except once after a token refresh.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.redact import SecretFilter

DEFAULT_API_URL = "https://api.weixin.qq.com/cgi-bin/"
QR_IMAGE_URL = "https://mp.weixin.qq.com/cgi-bin/showqrcode"
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
QUOTA_ERRORS = {
    45015: "outside the 48 h reply window, or the fan unfollowed",
    45047: "the customer-service quota for this fan's last message is used up",
    43004: "the fan does not follow the account",
    48001: "the account may not use this API (customer service needs a verified account)",
}
HTTP_TIMEOUT = 10.0

log = logging.getLogger("brandbot.wechat.api")
T = TypeVar("T")


# -- secrets out of logs --------------------------------------------------------------------------

_QUERY_SECRET = re.compile(r"(?i)((?:access_token|secret)=)[^&\s'\"]+")
_REDACTED_LOGGERS = (
    "urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry", "urllib3",
    "requests", "wechatpy", "wechatpy.client", "wechatpy.client.base",
    "brandbot.wechat", "brandbot.wechat.api",
)


_redactor = SecretFilter(patterns=[_QUERY_SECRET])


def redact_logs(*secrets: str | None) -> None:
    """Mask these values (and any ``access_token=``/``secret=`` query value) in the logs of
    urllib3, requests, wechatpy and this channel. Idempotent."""
    _redactor.add(*secrets)
    _redactor.install(_REDACTED_LOGGERS)


# -- errors ---------------------------------------------------------------------------------------


class WeChatAPIError(Exception):
    """An API call WeChat refused; ``errcode`` is WeChat's (None for HTTP/network errors)."""

    def __init__(self, errcode: int | None, message: str):
        self.errcode = errcode
        super().__init__(message)


def _describe(exc: Exception) -> WeChatAPIError:
    if isinstance(exc, WeChatClientException):
        code = exc.errcode
        if code is None:
            status = getattr(exc.response, "status_code", None)
            return WeChatAPIError(None, f"HTTP error {status} from the WeChat API")
        hint = QUOTA_ERRORS.get(int(code))
        msg = _redactor.redact(str(exc.errmsg))[:200]
        return WeChatAPIError(int(code), f"WeChat error {code}: {msg}" + (
            f" ({hint})" if hint else ""))
    if isinstance(exc, requests.RequestException):
        return WeChatAPIError(None, f"cannot reach the WeChat API: {network_reason(exc)}")
    return WeChatAPIError(None, f"WeChat API call failed: {type(exc).__name__}")


def network_reason(exc: requests.RequestException) -> str:
    """Why a request did not get an answer (DNS, refused, timeout...), never quoting the request.

    requests' own messages carry the request URL, whose query holds the AppSecret (token
    requests) or the access_token (every other call): they must not reach any output, so the
    reason is rebuilt from the exception's type and the host alone.
    """
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", None) or cause  # urllib3's MaxRetryError wraps the cause
    host = getattr(getattr(cause, "conn", None), "host", None) or getattr(
        getattr(exc, "request", None), "url", None)
    host = urlsplit(host).hostname if isinstance(host, str) and "://" in host else host
    where = f" ({host})" if isinstance(host, str) and host else ""
    if isinstance(exc, requests.ConnectTimeout):
        return f"connection timed out{where}"
    if isinstance(exc, requests.Timeout):
        return f"no answer in time{where}"
    if isinstance(cause, NameResolutionError):
        return f"DNS lookup failed{where}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS handshake failed{where}"
    if isinstance(cause, NewConnectionError):
        refused = isinstance(getattr(cause, "__context__", None), ConnectionRefusedError) or (
            "refused" in str(cause).lower())
        return f"connection refused{where}" if refused else f"cannot connect{where}"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed{where}"
    return type(exc).__name__


# -- the token owner ------------------------------------------------------------------------------


class _Client(WeChatClient):
    """wechatpy's client with our base URL and our token owner (no auto-retry)."""

    def __init__(self, owner: TokenOwner, app_id: str, secret: str, api_url: str):
        super().__init__(app_id, secret, timeout=owner.timeout, auto_retry=False)
        self.API_BASE_URL = api_url
        self._owner = owner

    @property
    def access_token(self) -> str:  # wechatpy reads this for every call
        return self._owner.token()

    def fetch_access_token(self) -> dict[str, Any]:  # pragma: no cover - not used by wechatpy
        return self._owner.refresh(None)


class TokenOwner:
    """The one holder of an account's access_token; thread-safe, single-flight refresh."""

    def __init__(self, app_id: str, secret: str, api_url: str = DEFAULT_API_URL,
                 clock: Callable[[], float] = time.monotonic, timeout: float = HTTP_TIMEOUT):
        if not api_url.endswith("/"):
            api_url += "/"
        self.app_id, self.api_url = app_id, api_url
        self.timeout = timeout
        self._secret = secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.client = _Client(self, app_id, secret, api_url)
        redact_logs(secret)

    def __repr__(self) -> str:
        return f"TokenOwner(app_id={self.app_id!r}, api_url={self.api_url!r})"

    def token(self) -> str:
        """A valid token, fetched when missing or within 5 minutes of expiry."""
        token = self._token
        if token is not None and self._clock() < self._expires_at:
            return token
        return self.refresh(token)["access_token"]

    def refresh(self, stale: str | None) -> dict[str, Any]:
        """Fetch a new token unless another thread already replaced ``stale``."""
        with self._lock:
            if self._token is not None and self._token != stale and (
                self._clock() < self._expires_at
            ):
                return {"access_token": self._token}
            unreachable = None
            try:
                response = self.client._http.get(
                    self.api_url + "token",
                    params={"grant_type": "client_credential", "appid": self.app_id,
                            "secret": self._secret},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                # Its message and traceback quote the URL, AppSecret included: keep neither.
                unreachable = network_reason(exc)
            if unreachable is not None:  # raised outside the except: no chained original
                raise WeChatAPIError(
                    None, f"access_token request failed: cannot reach the WeChat API: "
                    f"{unreachable}")
            result = None
            if response.ok:
                with contextlib.suppress(ValueError):
                    result = response.json()
            if not isinstance(result, dict):  # raise_for_status() would quote the URL
                raise WeChatAPIError(
                    None, f"access_token request failed (HTTP {response.status_code})")
            if result.get("errcode"):
                raise WeChatAPIError(
                    int(result["errcode"]),
                    f"access_token refused: WeChat error {result['errcode']}: "
                    f"{_redactor.redact(str(result.get('errmsg', '')))[:200]} (check the AppID, "
                    "the AppSecret and the account's IP whitelist)",
                )
            token = str(result["access_token"])
            redact_logs(token)
            expires_in = float(result.get("expires_in", 7200))
            # Refresh 5 minutes early: WeChat keeps the old token valid that long (W8).
            self._token = token
            self._expires_at = self._clock() + max(expires_in - 300, expires_in / 2)
            log.info("wechat: fetched a new access_token (valid %.0f s)", expires_in)
            return {"access_token": token}

    def call(self, fn: Callable[[WeChatClient], T]) -> T:
        """Run ``fn(client)``; on a token error refresh once (single-flight) and retry once.

        Every failure is a :class:`WeChatAPIError` raised outside the ``except`` that caught the
        client's exception, so no traceback carries the original (its URL holds the token)."""
        token = self.token()
        ok, result = self._attempt(fn)
        if ok:
            return result
        if isinstance(result, WeChatAPIError) and result.errcode in TOKEN_ERRORS:
            log.warning("wechat: access_token rejected (error %s); refreshing once",
                        result.errcode)
            self.refresh(token)
            ok, result = self._attempt(fn)
            if ok:
                return result
        raise result

    def _attempt(self, fn: Callable[[WeChatClient], T]) -> tuple[bool, Any]:
        """(True, the result) or (False, the :class:`WeChatAPIError` describing the failure)."""
        try:
            result = fn(self.client)
        except (WeChatClientException, requests.RequestException) as exc:
            return False, _describe(exc)
        if isinstance(result, requests.Response):
            # wechatpy hands back, as if it were the answer, a response it cannot read as JSON
            # (a gateway's or captive portal's page): nothing says WeChat did anything.
            return False, WeChatAPIError(
                None, f"the WeChat API answered HTTP {result.status_code} with something that "
                "is not JSON (a proxy or gateway in the way?)")
        return True, result


# -- the customer-service quota -------------------------------------------------------------------


@dataclass
class _Window:
    kind: str  # "message" (5 / 48 h) or "event" (3 / 1 min)
    until: float
    left: int


class Quota:
    """Customer-service sends still allowed per fan (OpenID), as WeChat counts them."""

    MESSAGE = (5, 48 * 3600.0)
    EVENT = (3, 60.0)

    def __init__(self, clock: Callable[[], float] = time.time, max_fans: int = 100_000):
        self._clock = clock
        self._max = max_fans
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def opened_by(self, openid: str, kind: str) -> None:
        """The fan did something: a message opens 5/48 h; follow, scan, click 3/1 min."""
        count, ttl = self.MESSAGE if kind == "message" else self.EVENT
        now = self._clock()
        with self._lock:
            current = self._windows.get(openid)
            if (kind != "message" and current is not None and current.kind == "message"
                    and current.until > now and current.left >= count):
                return  # an open 48 h window with more sends left stays
            self._windows[openid] = _Window(kind, now + ttl, count)
            self._windows.move_to_end(openid)
            while len(self._windows) > self._max:
                self._windows.popitem(last=False)

    def take(self, openid: str) -> str | None:
        """Use one send; None if allowed, else why not (for the log)."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(openid)
            if window is None or window.until <= now:
                return "outside the reply window (no message from the fan in the last 48 h)"
            if window.left <= 0:
                return "over the customer-service quota for the fan's last message"
            window.left -= 1
            return None

    def left(self, openid: str) -> int:
        with self._lock:
            window = self._windows.get(openid)
            return 0 if window is None or window.until <= self._clock() else window.left

    def close(self, openid: str) -> None:
        with self._lock:
            self._windows.pop(openid, None)


# -- sending --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendResult:
    sent: int
    skipped: int
    reason: str | None = None  # why the rest was not sent


def send_texts(owner: TokenOwner, quota: Quota, openid: str, texts: Iterable[str]) -> SendResult:
    """Send texts through ``message/custom/send`` within the fan's quota (blocking).

    Stops at the first refusal: a closed window or a spent quota will not open by retrying.
    """
    texts = list(texts)
    sent = 0
    for index, text in enumerate(texts):
        why = quota.take(openid)
        if why is not None:
            return _skipped(openid, texts, sent, index, why)
        try:
            owner.call(lambda client, t=text: client.message.send_text(openid, t))
        except WeChatAPIError as exc:
            if exc.errcode in (45015, 45047, 43004, 48001):
                quota.close(openid)  # the window will not open by trying again
            return _skipped(openid, texts, sent, index, str(exc))
        sent += 1
    return SendResult(sent, 0)


def _skipped(openid: str, texts: list[str], sent: int, index: int, why: str) -> SendResult:
    skipped = len(texts) - index
    log.warning("wechat: %d customer-service message(s) to %s not sent: %s",
                skipped, openid, why)
    return SendResult(sent, skipped, why)


# -- parametric QR codes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QRCode:
    scene: str
    permanent: bool
    url: str  # what the code encodes (render your own image from it)
    image_url: str  # WeChat's PNG of it
    ticket: str
    expire_seconds: int | None


def create_qrcode(owner: TokenOwner, scene: str, permanent: bool = False,
                  expire_seconds: int = 2_592_000) -> QRCode:
    """Create a parametric QR code whose scans carry ``scene`` (a referral or campaign code).

    Temporary codes last ``expire_seconds`` (at most 30 days); permanent ones never expire but
    an account has at most 100 000. Verified service accounts only: WeChat answers 48001
    otherwise, raised as :class:`WeChatAPIError` saying so.
    """
    from urllib.parse import quote

    if not 1 <= len(scene) <= 64:
        raise ValueError("the scene must be 1-64 characters (a referral or campaign code)")
    if not permanent and not 60 <= expire_seconds <= 2_592_000:
        raise ValueError("expire_seconds must be 60-2592000 (30 days) for a temporary code")
    data: dict[str, Any] = {
        "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": scene}},
    }
    if not permanent:
        data["expire_seconds"] = expire_seconds
    try:
        result = owner.call(lambda client: client.qrcode.create(data))
    except WeChatAPIError as exc:
        if exc.errcode == 48001:
            raise WeChatAPIError(
                48001,
                "WeChat refused to create a QR code (48001 api unauthorized): parametric QR "
                "codes need a verified service account (认证服务号); subscription accounts and "
                "unverified accounts cannot create them",
            ) from None
        raise
    ticket = str(result["ticket"])
    return QRCode(
        scene=scene,
        permanent=permanent,
        url=str(result.get("url", "")),
        image_url=f"{QR_IMAGE_URL}?ticket={quote(ticket, safe='')}",
        ticket=ticket,
        expire_seconds=None if permanent else int(result.get("expire_seconds", expire_seconds)),
    )
