"""The WeChat Official Account (公众号) channel: pushes in; passive replies, customer service out.

One :class:`WeChatChannel` serves one persona through one account. The daemon mounts
:meth:`WeChatChannel.routes` (``GET`` and ``POST`` on ``settings.path``, default ``/wechat``) and
calls ``start``/``stop``. Protocol facts: docs/channels/protocol-notes.md (WeChat, W1-W10);
operator guide: docs/channels/wechat.md.

A push, step by step:

1. ``signature`` over token/timestamp/nonce, in constant time, with a freshness window
   (``max_clock_skew``, 300 s): else **403**, nothing read. A body over ``max_body_bytes``:
   **413**. (GET: the same check, then ``echostr`` is echoed — plaintext in every mode.)
   In plain and compatible mode that signature does not cover the body, so each signed
   (timestamp, nonce) is accepted once (:mod:`~bot.channels.wechat_replay`): the same pair with
   the same fields is WeChat's retry; with other fields, **403**. A new pair is in the store
   before the push has any effect (a crash right after it cannot reopen the URL).
2. ``encrypt_type=aes``: ``msg_signature`` checked and ``Encrypt`` decrypted with the current
   EncodingAESKey, then the previous one (rotation); the reply is encrypted with the key that
   worked. Another AppID or a bad ``msg_signature``: **403**; a ciphertext no key opens: **400**.
   A plaintext push while the channel is in ``safe`` mode: **403**.
3. The XML is parsed with expat, refusing what defusedxml refuses (no DTD, no entities: **400**),
   as are invalid UTF-8, a root other than ``<xml>``, a missing ``FromUserName``/``MsgType``/
   ``CreateTime`` (**400**). A JSON push (the console's data format set to JSON) gets **400**
   and a log line saying to set XML.
4. What it means (:func:`read_push`; anything else is answered with an empty body, no turn):

   =========================================  ================================================
   ``text``                                   a message turn (dedupe key ``MsgId``)
   ``voice`` with ``Recognition``             the recognised text, as a message turn
   ``voice`` without it                       ``voice`` event: an in-voice "I can't listen yet"
   ``image``/``video``/``shortvideo``/        ``media`` event (``{"type": ...}``, never the
   ``location``/``link``/``file``/unknown     coordinates or URLs): an in-voice acknowledgement
   event ``subscribe``                        ``follow`` (welcome); ``EventKey=qrscene_X`` adds
                                              ``ref=X``: referral/campaign on first contact
   event ``SCAN`` (already following)         ``follow`` with ``ref`` = the scene: logged as a
                                              ``touch`` (or the referral if new to us), greeted
   event ``unsubscribe``                      ``unfollow`` (blocked, unsubscribed), then the
                                              fan's personal data is forgotten (privacy.py);
                                              from a plaintext push (unauthenticated): only
                                              after ``unfollow_grace`` and unless the fan
                                              writes first (wechat_unfollow.py)
   event ``CLICK``, ``scancode_waitmsg``      ``click`` with ``key`` = ``EventKey``
                                              (``menu_clicks`` in the persona)
   ``VIEW``, ``LOCATION`` (auto-reported),    no turn, empty body (a link opened, a position we
   job-finish and unknown events              do not keep, reports for the operator)
   =========================================  ================================================

   Events are deduplicated by ``FromUserName:CreateTime:Event``.
5. The 5-second rule: the turn runs; if its replies are ready within ``reply_budget`` (4 s,
   counted from the request's arrival) they are the passive reply, joined into one message and
   split to :data:`~bot.channels.wechat_reply.MAX_TEXT_BYTES` (the first piece passively, the rest
   through customer service). Otherwise the answer is an empty body (WeChat then does not retry)
   and the replies go out through ``message/custom/send`` when the account is ``verified``,
   within the fan's quota (bot/channels/wechat_api.py); what is not sent (unverified account,
   quota, API unreachable) is logged and recorded as a ``not_delivered`` event on the fan.
6. Retries: WeChat re-sends a push it got no answer to. A re-sent id never runs a second turn:
   while the turn runs, retries wait for the same turn; afterwards the engine answers the id from
   the log (identical replies). A push whose replies went to customer service gets an empty body.
   A push that could not be logged (the disk is full) gets **503**, never an empty 200, so WeChat
   pushes it again; once space returns the retry is logged and answered like a first push.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.channels import wechat_unfollow
from bot.channels.background import BackgroundTasks
from bot.channels.base import NotSent, Refused, RunTurn, read_capped_body
from bot.channels.wechat_api import (
    DEFAULT_API_URL,
    QRCode,
    Quota,
    SendResult,
    TokenOwner,
    create_qrcode,
    redact_logs,
    send_texts,
)
from bot.channels.wechat_crypto import (
    PushCrypto,
    PushRejected,
    check_aes_key,
    check_signature,
    parse_xml,
)
from bot.channels.wechat_replay import ReplayGuard
from bot.channels.wechat_replay import digest as push_digest
from bot.channels.wechat_reply import JOIN, split_text, text_reply
from bot.config import ENV_ALIASES, WeChatSettings
from bot.logthrottle import limiter
from bot.messages import FanRef, Inbound, Reply
from bot.relations.store import StoreFull, iso, log_event

CHANNEL = "wechat"

_TOKEN = re.compile(r"^[A-Za-z0-9]{3,32}$")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MEDIA = ("image", "video", "shortvideo", "location", "link", "file")
_IGNORED_EVENTS = {
    "view": "a menu link was opened",
    "view_miniprogram": "a menu mini-program was opened",
    "location": "an automatic location report (not kept)",
    "templatesendjobfinish": "a template message delivery report",
    "masssendjobfinish": "a mass-send report",
    "scancode_push": "a menu scan handled by the client",
    "pic_sysphoto": "a menu photo (the image message follows)",
    "pic_photo_or_album": "a menu photo (the image message follows)",
    "pic_weixin": "a menu photo (the image message follows)",
    "location_select": "a menu location (the location message follows)",
}
_RECENT = 20_000  # push ids remembered as handed to customer service / forgotten
_JSON_HINT_EVERY = 60.0
UNFOLLOW_CHECK_EVERY = 60.0  # seconds between two looks for deferred unfollows that are due
NOT_DELIVERED = "not_delivered"  # the event recorded on a fan when an answer could not be sent

log = logging.getLogger("brandbot.wechat")



class WeChatConfigError(ValueError):
    """The channel's settings cannot work; the message says what to change."""


# -- settings -------------------------------------------------------------------------------------


class WeChatChannelSettings(WeChatSettings):
    """One account's settings as the channel runs with them.

    Every setting is declared once, in :class:`bot.config.WeChatSettings` (the daemon's
    ``wechat:`` section: name, default, range, environment variable); this adds what the channel
    needs on top: a token and an AppID (3-32 letters or digits), AES keys that work, the
    combinations that make sense (each failure a :class:`WeChatConfigError` naming the variable
    to set), ``encryption`` resolved, and ``max_clock_skew`` (not a settings key). Secrets stay
    ``SecretStr`` (masked in ``repr``); :func:`plain` gives their values.

    ``encryption`` defaults to ``safe`` when ``aes_key`` is set, else ``plain``. ``compatible``
    accepts both plaintext and encrypted pushes (the console's 兼容模式, for migrating).
    """

    model_config = ConfigDict(frozen=True)

    max_clock_skew: float = 300.0  # seconds a signed timestamp stays fresh
    # Seconds before an unauthenticated (plaintext) unsubscribe is carried out: the fan is
    # forgotten then, unless a push from them undoes it first (bot/channels/wechat_unfollow.py).
    unfollow_grace: float = 86_400.0

    def __init__(self, **values: Any) -> None:
        if not values.get("encryption"):
            values["encryption"] = "safe" if plain(values.get("aes_key")) else "plain"
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise WeChatConfigError(_explain(exc)) from None
        self._check()

    def _check(self) -> None:
        if not _TOKEN.match(plain(self.token) or ""):
            raise WeChatConfigError(
                "wechat token: 3-32 letters or digits, the same as the console's Token "
                "(基本配置 → 服务器配置); set BRANDBOT_WECHAT_TOKEN"
            )
        if not self.app_id:
            raise WeChatConfigError("wechat app_id: set BRANDBOT_WECHAT_APPID (开发者ID AppID)")
        aes_key, previous = plain(self.aes_key), plain(self.previous_aes_key)
        if self.encryption != "plain" and not aes_key:
            raise WeChatConfigError(
                f"wechat encryption {self.encryption}: set BRANDBOT_WECHAT_AES_KEY (EncodingAESKey)"
            )
        for name, value in (("aes_key", aes_key), ("previous_aes_key", previous)):
            if value:
                try:
                    check_aes_key(value, f"wechat {name}")
                except ValueError as exc:
                    raise WeChatConfigError(f"{exc}; set BRANDBOT_WECHAT_{name.upper()}") from None
        if previous and not aes_key:
            raise WeChatConfigError("wechat previous_aes_key needs aes_key (the current key)")
        if not self.path.startswith("/"):
            raise WeChatConfigError(f"wechat path: must start with '/' (got {self.path!r})")
        if self.verified and not plain(self.app_secret):
            raise WeChatConfigError(
                "wechat verified: customer-service sends need the AppSecret; set "
                "BRANDBOT_WECHAT_SECRET"
            )
        if not self.api_url.startswith(("http://", "https://")):
            raise WeChatConfigError("wechat api_url: an http(s) URL, e.g. " + DEFAULT_API_URL)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> WeChatChannelSettings | None:
        """Settings from ``BRANDBOT_WECHAT_*``; None when the token or AppID is not set.

        ``TOKEN``, ``APPID``, ``SECRET``, ``AES_KEY`` (safe mode when set), ``PREVIOUS_AES_KEY``,
        ``ENCRYPTION``, ``VERIFIED`` (1/true/yes/on), ``PATH``, ``API_URL``, ``REPLY_BUDGET``,
        ``MAX_BODY_BYTES``, ``KEEP_AGGREGATES`` (the names of ``bot.config.ENV_ALIASES``).
        """
        return cls._build({**_env_values(environ), **overrides})

    @classmethod
    def from_section(cls, section: Any, environ: Mapping[str, str] | None = None,
                     **overrides: Any) -> WeChatChannelSettings | None:
        """Settings from the daemon's ``wechat:`` settings section (any object with these field
        names; ``SecretStr`` values are unwrapped), overridden by the ``BRANDBOT_WECHAT_*``
        variables of :meth:`from_env`. None when neither gives a token and an AppID."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = getattr(section, name, None) if section is not None else None
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            if value is not None and value != "":
                values[name] = value
        return cls._build({**values, **_env_values(environ), **overrides})

    @classmethod
    def _build(cls, values: dict[str, Any]) -> WeChatChannelSettings | None:
        if not values.get("token") or not values.get("app_id"):
            return None
        return cls(**values)

    def secrets(self) -> list[str]:
        """Values the daemon's log filter must mask."""
        values = (self.token, self.app_secret, self.aes_key, self.previous_aes_key)
        return [s for s in map(plain, values) if s]


def plain(value: Any) -> str | None:
    """A secret's value (``SecretStr`` or ``str``); None when it is not set or empty."""
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value or None


# Friendlier words than pydantic's for the settings people get wrong.
_HINTS = {
    "reply_budget": "seconds, above 0 and below 5 (WeChat waits 5 s)",
    "max_body_bytes": "1024 to 1048576",
    "encryption": "{input!r} is not a mode; use plain, compatible or safe",
}


def _explain(exc: ValidationError) -> str:
    """The first error, as ``wechat <setting>: <what to do>`` (never showing a value)."""
    err = exc.errors(include_url=False)[0]
    name = ".".join(str(p) for p in err["loc"]) or "settings"
    hint = _HINTS.get(name, err["msg"]).replace("{input!r}", repr(err.get("input")))
    return f"wechat {name}: {hint}"


def _env_values(environ: Mapping[str, str] | None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for variable, (section, key) in ENV_ALIASES.items():
        raw = (env.get(variable) or "").strip() if section == CHANNEL else ""
        if not raw:
            continue
        annotation = WeChatSettings.model_fields[key].annotation
        kind = annotation if annotation in (bool, int, float) else str
        try:
            values[key] = raw.lower() in ("1", "true", "yes", "on") if kind is bool else kind(raw)
        except ValueError:
            raise WeChatConfigError(f"{variable}: not a {kind.__name__} ({raw!r})") from None
    return values


# -- reading pushes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """What a push means for the engine, and how to answer it."""

    inbound: Inbound
    openid: str
    account: str  # ToUserName: our gh_ id, the reply's FromUserName
    window: Literal["message", "event"] | None  # which customer-service window it opens
    answer: bool = True  # False: no reply wanted (unfollow)

    @property
    def key(self) -> str:
        return f"{self.openid}\0{self.inbound.platform_msg_id}"


def read_push(fields: Mapping[str, Any]) -> Incoming | str:
    """Turn a push's fields into an :class:`Incoming`, or say (briefly) why there is no turn.

    Raises :class:`PushRejected` (400) when a required field is missing or malformed.
    """
    openid, account = fields.get("FromUserName"), fields.get("ToUserName")
    msg_type, created = fields.get("MsgType"), fields.get("CreateTime")
    missing = [n for n, v in (("FromUserName", openid), ("ToUserName", account),
                              ("MsgType", msg_type), ("CreateTime", created)) if not v]
    if missing:
        raise PushRejected(400, f"push without {', '.join(missing)}")
    if not isinstance(openid, str) or not _OPENID.match(openid):
        raise PushRejected(400, "FromUserName is not an OpenID")
    if not isinstance(created, str) or not created.isdigit() or len(created) > 12:
        raise PushRejected(400, "CreateTime is not a Unix time")
    if not isinstance(msg_type, str) or not isinstance(account, str):
        raise PushRejected(400, "MsgType and ToUserName must be text")
    fan = FanRef(CHANNEL, openid)
    msg_type = msg_type.lower()

    if msg_type == "event":
        event = str(fields.get("Event") or "").lower()
        key = fields.get("EventKey")
        key = key if isinstance(key, str) else ""
        # EventKey too: two menu clicks in the same second are two different questions.
        uid = f"{openid}:{created}:{fields.get('Event') or ''}:{key}"

        def turn(name: str, payload: dict[str, Any] | None = None, *,
                 window: Literal["message", "event"] | None = "event",
                 answer: bool = True) -> Incoming:
            inbound = Inbound(fan, kind="event", event=name, payload=payload or {},
                              platform_msg_id=uid)
            return Incoming(inbound, openid, account, window, answer)

        if event == "subscribe":
            scene = key[len("qrscene_"):] if key.startswith("qrscene_") else ""
            return turn("follow", {"ref": scene[:64], "via": "qrcode"} if scene else None)
        if event == "scan":
            return turn("follow", {"ref": key[:64], "via": "scan"} if key else None)
        if event == "unsubscribe":
            return turn("unfollow", window=None, answer=False)
        if event in ("click", "scancode_waitmsg"):
            return turn("click", {"key": key[:128]})
        return _IGNORED_EVENTS.get(event, f"event {event[:40]!r} not handled")

    msg_id = fields.get("MsgId") or fields.get("MsgID")
    uid = str(msg_id) if msg_id else f"{openid}:{created}:{msg_type}"
    if msg_type == "text":
        text = fields.get("Content")
        if not isinstance(text, str) or not text.strip():
            return "empty text"
        return Incoming(Inbound(fan, text=text, platform_msg_id=uid), openid, account, "message")
    if msg_type == "voice":
        said = fields.get("Recognition")
        if isinstance(said, str) and said.strip():
            return Incoming(Inbound(fan, text=said.strip(), platform_msg_id=uid,
                                    payload={"via": "voice"}), openid, account, "message")
        inbound = Inbound(fan, kind="event", event="voice", platform_msg_id=uid,
                          payload={"type": "voice"})
        return Incoming(inbound, openid, account, "message")
    # Images, locations, links, video, files and types newer than this code: acknowledged in
    # voice. Only the type is kept: coordinates and URLs are personal data we do not need.
    kind = msg_type if msg_type in _MEDIA else "other"
    inbound = Inbound(fan, kind="event", event="media", platform_msg_id=uid,
                      payload={"type": kind})
    return Incoming(inbound, openid, account, "message")


# -- the channel ----------------------------------------------------------------------------------


@dataclass
class _Pending:
    task: asyncio.Task
    handed_off: bool = False


class WeChatChannel:
    """Serves one persona on one Official Account. See the module docstring for the rules."""

    name = CHANNEL

    def __init__(
        self,
        turns: Any,
        persona: str,
        settings: WeChatChannelSettings,
        *,
        store: Any = None,
        clock: Callable[[], float] = time.time,
        on_rejected: Callable[[int], None] | None = None,
    ):
        """``turns``: an :class:`~bot.engine.Engine` (turns run in a worker thread) or the
        daemon's ``run_turn(inbound, persona) -> replies`` coroutine function. ``store`` (the
        engine's by default) is where an unfollowing fan's data is forgotten."""
        if hasattr(turns, "handle_turn"):
            engine = turns
            store = store if store is not None else engine.store

            async def run_turn(inbound: Inbound, pid: str) -> list[Reply]:
                turn = await asyncio.to_thread(engine.handle_turn, inbound, pid)
                return turn.replies

            self.run_turn: RunTurn = run_turn
        elif callable(turns):
            self.run_turn = turns
        else:
            raise TypeError("turns must be an Engine or an async run_turn(inbound, persona)")
        self.persona = persona
        self.settings = settings
        self.store = store
        self.clock = clock
        self.on_rejected = on_rejected or (lambda status: None)
        redact_logs(*settings.secrets())
        self._token = plain(settings.token)
        aes_key, app_secret = plain(settings.aes_key), plain(settings.app_secret)
        self.crypto = (
            PushCrypto(self._token, settings.app_id, aes_key, plain(settings.previous_aes_key))
            if aes_key else None
        )
        self.owner = (
            TokenOwner(settings.app_id, app_secret, settings.api_url) if app_secret else None
        )
        self.quota = Quota(clock)
        # Plain and compatible mode: the signature does not cover the body (wechat_replay.py).
        self.replay = (ReplayGuard(settings.app_id, settings.max_clock_skew, clock, store)
                       if settings.encryption != "safe" else None)
        self._unfollows: set[str] = set()  # OpenIDs with a deferred unfollow pending
        self._unfollow_task: asyncio.Task | None = None
        self._pending: dict[str, _Pending] = {}
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._tasks = BackgroundTasks()
        self._json_hint_at = -_JSON_HINT_EVERY

    def __repr__(self) -> str:
        return f"WeChatChannel(persona={self.persona!r}, settings={self.settings!r})"

    # -- the Channel protocol ----------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to open: WeChat pushes to our routes. The access_token is fetched lazily."""
        s = self.settings
        log.info(
            "wechat: persona %s on %s (AppID %s, %s mode%s, %s account, reply budget %.1f s)",
            self.persona, s.path, s.app_id, s.encryption,
            ", previous key kept" if s.previous_aes_key else "",
            "verified" if s.verified else "unverified: passive replies only", s.reply_budget,
        )
        if self.replay is not None:
            log.info("wechat: %s mode cannot authenticate push bodies: each signed URL is "
                     "accepted once, and an unsubscribe is carried out after %.0f h unless the "
                     "fan writes again; use safe mode (docs/channels/wechat.md)",
                     s.encryption, s.unfollow_grace / 3600)
            await self.replay.start()
        if self.store is not None:
            # Also in safe mode: unfollows deferred before a switch from compatible mode.
            self._unfollows = await asyncio.to_thread(
                wechat_unfollow.pending, self.store, self.persona)
            if self.replay is not None or self._unfollows:
                self._unfollow_task = asyncio.get_running_loop().create_task(
                    self._unfollow_forever())

    async def stop(self, timeout: float = 8.0) -> None:
        """Finish turns and customer-service deliveries in flight (up to ``timeout``)."""
        if self._unfollow_task is not None:
            self._unfollow_task.cancel()
            await asyncio.gather(self._unfollow_task, return_exceptions=True)
            self._unfollow_task = None
        tasks = [*self._tasks, *(p.task for p in self._pending.values())]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("wechat: %d delivery(ies) cancelled at stop", len(pending))
        if self.replay is not None:
            await self.replay.stop()

    async def send(self, fan: FanRef, replies: list[Reply], persona: str | None = None
                   ) -> NotSent | None:
        """Send through the customer-service API, within the fan's quota (verified accounts).

        One account serves one persona, so ``persona`` is not needed. None when everything
        went, else what was not sent and why (the channel contract, bot/channels/base.py)."""
        texts = [p for r in replies for p in split_text(r.text)]
        if not texts:
            return None
        what = "a message the fan did not ask for (operator reply, notice)"
        if not self.settings.verified or self.owner is None:
            why = "the account is not verified (customer-service messages need verification)"
            await self._not_delivered(fan.external_id, what, len(texts), why)
            return NotSent(len(texts), why)
        result = await self._send_texts(fan.external_id, texts)
        if not result.skipped:
            return None
        why = result.reason or "not sent"
        await self._not_delivered(fan.external_id, what, result.skipped, why)
        return NotSent(result.skipped, why)

    async def _send_texts(self, openid: str, texts: list[str]) -> SendResult:
        """``send_texts`` in a thread; whatever goes wrong comes back as a :class:`SendResult`
        saying why (never an exception: a delivery task must not die unseen)."""
        try:
            return await asyncio.to_thread(send_texts, self.owner, self.quota, openid, texts)
        except Exception as exc:  # noqa: BLE001 - reported as not sent, with the reason
            why = f"sending failed: {type(exc).__name__}"
            log.warning("wechat: %d customer-service message(s) to %s not sent: %s",
                        len(texts), openid, why)
            return SendResult(0, len(texts), why)

    def qrcode(self, scene: str, permanent: bool = False) -> QRCode:
        """Create a parametric QR code for a referral/campaign code (blocking; for the CLI)."""
        return qrcode(self.settings, scene, permanent)

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        path = self.settings.path
        return [
            Route(path, self.verify, methods=["GET"]),
            Route(path, self.push, methods=["POST"]),
        ]

    async def verify(self, request: Request) -> Response:
        """The console's server check: echo ``echostr`` when the signature is right."""
        q = _query(request)
        try:
            self._check(q)
            echo = q.get("echostr")
            if not echo or len(echo) > 512:
                raise PushRejected(400, "missing or overlong echostr")
            # Its URL must not sign a push afterwards, not even after a restart.
            if self.replay is not None and self.replay.admit(
                    q.get("timestamp") or "", q.get("nonce") or "", push_digest({"GET": echo}),
                    authenticated=False):
                await self.replay.flush()
        except PushRejected as exc:
            return self._reject(exc, "verification")
        log.info("wechat: server verification answered (persona %s)", self.persona)
        return Response(echo, media_type="text/plain")

    async def push(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        q = _query(request)
        try:
            self._check(q)
            body = await read_capped_body(request, self.settings.max_body_bytes)
            fields, key_index, encrypted = self._open(body, q)
            first = self.replay is not None and self.replay.admit(
                q.get("timestamp") or "", q.get("nonce") or "", push_digest(fields),
                authenticated=encrypted)
            incoming = read_push(fields)
        except Refused as exc:
            return self._reject(exc, "push")
        if first:  # stored before it has any effect: a restart must not accept the URL again
            await self.replay.flush()
        if isinstance(incoming, str):
            log.debug("wechat: no turn for a push: %s", incoming)
            return _empty()
        if not encrypted and incoming.inbound.event == "unfollow":  # plain/compatible only
            # A retry (the same URL and fields) was deferred the first time; once the fan has
            # undone it by writing again, a late copy must not start the countdown anew.
            return await self._defer_unfollow(incoming) if first else _empty()
        if self._unfollows and incoming.openid in self._unfollows:
            await self._undo_unfollow(incoming.openid, int(fields["CreateTime"]))
        return await self._answer(incoming, q, key_index, encrypted, started)

    def _check(self, q) -> None:
        check_signature(
            self._token, q.get("signature"), q.get("timestamp"), q.get("nonce"),
            now=self.clock(), max_skew=self.settings.max_clock_skew,
        )

    def _open(self, body: bytes, q) -> tuple[dict[str, Any], int, bool]:
        """The push's fields, the key index that decrypted it, and whether it was encrypted."""
        if body.lstrip()[:1] in (b"{", b"["):
            now = time.monotonic()
            if now - self._json_hint_at >= _JSON_HINT_EVERY:
                self._json_hint_at = now
                log.error(
                    "wechat: received a JSON push; brandbot reads XML only. In the console "
                    "(设置与开发 → 基本配置 → 服务器配置, or 消息推送), set 数据格式 (data "
                    "format) to XML"
                )
            raise PushRejected(400, "JSON push (set the console's data format to XML)")
        encrypted = (q.get("encrypt_type") or "raw").lower() == "aes"
        mode = self.settings.encryption
        if not encrypted:
            if mode == "safe":
                raise PushRejected(403, "plaintext push refused: the channel is in safe mode")
            return parse_xml(body), 0, False
        if self.crypto is None:
            log.error("wechat: an encrypted push arrived but no EncodingAESKey is configured; "
                      "set BRANDBOT_WECHAT_AES_KEY (or the console back to plaintext mode)")
            raise PushRejected(403, "encrypted push without a configured EncodingAESKey")
        outer = parse_xml(body)
        encrypt = outer.get("Encrypt")
        xml, key_index = self.crypto.decrypt(
            encrypt if isinstance(encrypt, str) else None, q.get("msg_signature"),
            q.get("timestamp") or "", q.get("nonce") or "",
        )
        if key_index:
            log.info("wechat: push decrypted with the previous EncodingAESKey (rotation); "
                     "remove it once WeChat uses the new one")
        return parse_xml(xml), key_index, True

    def _reject(self, exc: Refused, what: str) -> Response:
        log.warning("wechat: %s refused (%d): %s", what, exc.status, exc.reason)
        self.on_rejected(exc.status)
        text = {400: "bad request", 403: "forbidden", 413: "too large"}.get(exc.status, "error")
        return Response(text, status_code=exc.status, media_type="text/plain")

    # -- turns and replies ---------------------------------------------------------------------

    async def _answer(self, incoming: Incoming, q, key_index: int, encrypted: bool,
                      started: float) -> Response:
        key = incoming.key
        state = self._recent.get(key)
        if state in ("customer-service", "forgotten"):
            return _empty()  # the replies went (or go) out another way; or the fan is gone
        pending = self._pending.get(key)
        if pending is None:
            if incoming.window is not None and state is None:
                self.quota.opened_by(incoming.openid, incoming.window)
            task = asyncio.create_task(self._turn(incoming))
            pending = self._pending[key] = _Pending(task)
            task.add_done_callback(lambda _t, k=key: self._pending.pop(k, None))
        loop = asyncio.get_running_loop()
        remaining = self.settings.reply_budget - (loop.time() - started)
        try:
            if not await _finished(loop, pending.task, max(remaining, 0.0)):
                raise TimeoutError
            replies = pending.task.result()
        except TimeoutError:
            if not pending.handed_off:
                pending.handed_off = True
                self._remember(key, "customer-service")
                self._spawn(self._deliver_late(incoming, pending.task))
            return _empty()
        except Exception as exc:  # noqa: BLE001 - the runner failed (the engine never raises)
            # Not logged (disk full; a lost commit): a non-200 makes WeChat push it again (3
            # tries in 15 s), never an empty 200 for a message we did not keep. A full disk is
            # logged by the daemon, once per interval.
            if not isinstance(exc, StoreFull):
                limiter.log(log, logging.ERROR, f"wechat-turn:{type(exc).__name__}",
                            "wechat: turn failed for %s", incoming.openid, exc_info=exc)
            return Response("service unavailable", status_code=503, media_type="text/plain")
        if pending.handed_off or not incoming.answer or not replies:
            return _empty()
        pieces = split_text(JOIN.join(r.text for r in replies))
        if not pieces:
            return _empty()
        if len(pieces) > 1 and state != "split":
            # Only the first piece fits a passive reply; a retry re-answers it, never the rest.
            self._remember(key, "split")
            self._spawn(self._deliver(incoming.openid, pieces[1:], "the rest of a long reply"))
        now = int(self.clock())
        xml = text_reply(incoming.openid, incoming.account, pieces[0], now)
        if encrypted:
            assert self.crypto is not None
            xml = self.crypto.encrypt_reply(xml, q.get("nonce") or "", str(now), key_index)
        return Response(xml, media_type="application/xml")

    async def _turn(self, incoming: Incoming) -> list[Reply]:
        replies = await self.run_turn(incoming.inbound, self.persona)
        if incoming.inbound.event == "unfollow":
            self.quota.close(incoming.openid)
            self._remember(incoming.key, "forgotten")
            await self._forget(incoming.openid)
            return []
        return replies

    # -- unsubscribes nobody signed (plain and compatible mode) ----------------------------------

    async def _defer_unfollow(self, incoming: Incoming) -> Response:
        """A plaintext unsubscribe may be forged: record it, carry it out when due."""
        openid = incoming.openid
        if self.store is None:
            log.error("wechat: an unsubscribe from %s cannot be deferred without a store; "
                      "ignored (pass store= to WeChatChannel)", openid)
            return _empty()
        self.quota.close(openid)  # nothing can be sent to someone who (perhaps) unfollowed
        due = self.clock() + self.settings.unfollow_grace
        received = iso(datetime.now(UTC))
        try:
            new = await asyncio.to_thread(
                wechat_unfollow.defer, self.store, self.persona, openid,
                incoming.inbound.platform_msg_id or "", received, due)
        except Exception:  # noqa: BLE001 - WeChat re-sends it (no answer in 5 s would be worse)
            log.exception("wechat: could not record an unsubscribe from %s", openid)
            return _empty()
        self._unfollows.add(openid)
        if new:
            log.warning(
                "wechat: unsubscribe from %s in a plaintext push (%s mode: nothing proves the "
                "body came from WeChat): the fan is forgotten in %.0f h unless they write "
                "again first", openid, self.settings.encryption,
                self.settings.unfollow_grace / 3600)
        return _empty()

    async def _undo_unfollow(self, openid: str, created: int) -> None:
        """A push made after the fan's pending unfollow: they still follow, so keep them."""
        try:
            undone = await asyncio.to_thread(
                wechat_unfollow.cancel, self.store, self.persona, openid, created)
        except Exception:  # noqa: BLE001 - the due run checks again
            log.exception("wechat: could not cancel the pending unfollow of %s", openid)
            return
        if undone:
            self._unfollows.discard(openid)
            log.warning("wechat: %s wrote again after an unsubscribe nobody signed: the "
                        "unsubscribe is cancelled, nothing was forgotten", openid)

    async def run_due_unfollows(self) -> int:
        """Carry out the deferred unfollows that are due: the unfollow turn (blocked,
        unsubscribed) then forgetting the fan. Returns how many."""
        if self.store is None:
            return 0
        done = 0
        rows = await asyncio.to_thread(wechat_unfollow.due, self.store, self.persona,
                                       self.clock())
        for openid, push_id in rows:
            # Claim it: a push from the fan may have undone it since it was read.
            if not await asyncio.to_thread(wechat_unfollow.cancel, self.store, self.persona,
                                           openid):
                continue
            self._unfollows.discard(openid)
            self.quota.close(openid)
            if await asyncio.to_thread(self.store.find_fan, self.persona, CHANNEL, openid) is None:
                continue  # forgotten meanwhile (`brandbot fan forget`): nothing left to do
            inbound = Inbound(FanRef(CHANNEL, openid), kind="event", event="unfollow",
                              platform_msg_id=push_id or None)
            try:
                await self.run_turn(inbound, self.persona)
            except Exception:  # noqa: BLE001 - forgetting matters more than the turn's log
                log.exception("wechat: the deferred unfollow turn of %s failed", openid)
            self._remember(f"{openid}\0{push_id}", "forgotten")
            await self._forget(openid)
            done += 1
        return done

    async def _unfollow_forever(self) -> None:
        while True:
            await asyncio.sleep(UNFOLLOW_CHECK_EVERY)
            try:
                await self.run_due_unfollows()
            except Exception:  # noqa: BLE001 - retried at the next check
                log.exception("wechat: deferred unfollows failed; retrying in %.0f s",
                              UNFOLLOW_CHECK_EVERY)

    async def _forget(self, openid: str) -> None:
        """WeChat's rule: delete what we hold about a fan who unfollows (privacy.py)."""
        if self.store is None:
            log.error("wechat: fan %s unfollowed but the channel has no store to forget them "
                      "in; pass store= to WeChatChannel", openid)
            return
        from bot.relations.privacy import forget_fan

        def forget() -> bool:
            fan = self.store.find_fan(self.persona, CHANNEL, openid)
            if fan is None:
                return False
            forget_fan(self.store, fan["id"], keep_aggregates=self.settings.keep_aggregates)
            return True

        try:
            if await asyncio.to_thread(forget):
                log.info("wechat: a fan unfollowed; their personal data was %s",
                         "anonymised" if self.settings.keep_aggregates else "deleted")
        except Exception:  # noqa: BLE001 - logged; the unfollow itself is recorded
            log.exception("wechat: could not forget an unfollowing fan")

    async def _deliver_late(self, incoming: Incoming, task: asyncio.Task) -> None:
        """A turn missed the passive-reply budget: send its replies through customer service."""
        try:
            replies = await task
        except Exception as exc:  # noqa: BLE001 - a full disk included: WeChat was answered
            limiter.log(log, logging.ERROR, f"wechat-late-turn:{type(exc).__name__}",
                        "wechat: late turn failed for %s", incoming.openid, exc_info=exc)
            return
        if not incoming.answer or not replies:
            return
        pieces = split_text(JOIN.join(r.text for r in replies))
        await self._deliver(incoming.openid, pieces, "a reply after the passive-reply budget")

    async def _deliver(self, openid: str, pieces: list[str], what: str) -> None:
        """Send through customer service; what is not sent is logged and recorded on the fan."""
        if not self.settings.verified or self.owner is None:
            why = ("the account is not verified, so only passive replies within 5 s are "
                   "possible")
            await self._not_delivered(openid, what, len(pieces), why)
            return
        result = await self._send_texts(openid, pieces)
        if result.sent:
            log.debug("wechat: %s sent to %s (%d message(s))", what, openid, result.sent)
        if result.skipped:
            await self._not_delivered(openid, what, result.skipped, result.reason or "not sent")

    async def _not_delivered(self, openid: str, what: str, count: int, why: str) -> None:
        """Log it, and record a ``not_delivered`` event on the fan (channel, what, how many,
        why) so that the log shows which answers never reached them."""
        log.warning("wechat: %s for %s not delivered (%d message(s)): %s", what, openid,
                    count, why)
        if self.store is None:
            return
        payload = {"channel": CHANNEL, "what": what, "messages": count, "reason": why}

        def record() -> None:
            fan = self.store.find_fan(self.persona, CHANNEL, openid)
            if fan is None:
                return
            with self.store.transaction() as conn:
                log_event(conn, fan["id"], NOT_DELIVERED, payload, iso(datetime.now(UTC)))

        try:
            await asyncio.to_thread(record)
        except Exception:  # noqa: BLE001 - the warning above says it already
            log.exception("wechat: could not record an undelivered reply for %s", openid)

    def _remember(self, key: str, state: str) -> None:
        self._recent[key] = state
        self._recent.move_to_end(key)
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    def _spawn(self, coro) -> None:
        self._tasks.start(coro)


async def _finished(loop: asyncio.AbstractEventLoop, task: asyncio.Task, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``task``; True if it is done. The task is never cancelled (no
    shield needed): ``asyncio.wait((task,), timeout=...)`` with one future, one timer and one
    callback, without its sets and checks (a third of its cost on this per-push path)."""
    if task.done():
        return True
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(timeout, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def _query(request: Request) -> Mapping[str, str]:
    """The query parameters, as ``request.query_params`` reads them (last value wins).

    WeChat's parameters (signature, timestamp, nonce, openid, encrypt_type, msg_signature) are
    never percent-encoded, so the common case is a plain split (a fifth of Starlette's cost); a
    query with ``%`` or ``+`` goes through Starlette's parser (``parse_qsl``), where these two
    characters are all that makes a difference."""
    raw: bytes = request.scope.get("query_string", b"")
    if b"%" in raw or b"+" in raw:
        return request.query_params
    params: dict[str, str] = {}
    for item in raw.decode("latin-1").split("&"):
        if item:
            name, _, value = item.partition("=")
            params[name] = value
    return params


def _empty() -> Response:
    """WeChat's "no reply": an empty 200 body (not an XML reply with empty content)."""
    return Response(b"", media_type="text/plain")


def qrcode(settings: WeChatChannelSettings, scene: str, permanent: bool = False) -> QRCode:
    """``brandbot wechat qrcode``: a parametric QR code whose scans carry ``scene``.

    Returns a :class:`~bot.channels.wechat_api.QRCode`; raises ``WeChatAPIError`` (48001 means
    the account is not a verified service account) or :class:`WeChatConfigError`.
    """
    app_secret = plain(settings.app_secret)
    if not app_secret:
        raise WeChatConfigError("QR codes need the AppSecret: set BRANDBOT_WECHAT_SECRET")
    if not settings.verified:
        raise WeChatConfigError(
            "parametric QR codes need a verified service account (认证服务号); if this account "
            "is one, set BRANDBOT_WECHAT_VERIFIED=true (wechat.verified: true)"
        )
    owner = TokenOwner(settings.app_id, app_secret, settings.api_url)
    return create_qrcode(owner, scene, permanent)


__all__ = [
    "CHANNEL", "Incoming", "WeChatChannel", "WeChatChannelSettings", "WeChatConfigError",
    "qrcode", "read_push",
]
