"""The Telegram channel: a persona's bot, by long polling or by webhook, in the daemon's loop.

One :class:`TelegramChannel` serves one persona through one bot token. It holds a
python-telegram-bot ``Application`` (composition, not inheritance) and drives its lifecycle by
hand — ``initialize → updater.start_polling → start`` and back — never ``run_polling``, which
would install signal handlers and close the daemon's event loop (docs/channels/protocol-notes.md
T4). ``allowed_updates`` is always passed explicitly: Telegram keeps the last setting otherwise.

Modes:

* **polling** (no ``webhook_url``): PTB's updater long-polls ``getUpdates``. Starting it deletes
  any webhook set on the same token (PTB always does): never point a development poller at the
  production token.
* **webhook** (``webhook_url`` and ``webhook_secret``): ``start`` calls ``setWebhook``; the daemon
  mounts :meth:`route` (``POST /telegram/webhook``) in its web server. A request without the
  right ``X-Telegram-Bot-Api-Secret-Token`` header gets 403 (constant-time comparison); a good one
  is queued and answered 200 at once.

What each update does (anything not listed is ignored, logged at DEBUG, and never raises):

==========================================  ======================================================
``/start`` (private chat)                    ``follow`` event: a new fan gets the welcome, a known
                                             one a greeting; ``/start CODE`` (a deep link
                                             ``t.me/<bot>?start=CODE``) carries ``ref=CODE``: the
                                             engine records the referral or campaign on first
                                             contact and logs a ``touch`` later
other commands (``/hours``)                  the words without the slash (``hours``), as text
text                                         a message turn
voice, audio, video note                     ``voice`` event (an in-voice "please type")
photo, sticker, animation, video, document,  ``media`` event (an in-voice acknowledgement);
location, venue, contact, dice, poll, ...    a caption is not read
callback query (inline button)               answered (stops the spinner), then a ``click`` event
                                             with ``key`` = the button's data (``menu_clicks``)
``my_chat_member`` → kicked / left           ``unfollow``: fan blocked and unsubscribed; no reply
``my_chat_member`` → member / admin          ``follow`` (unblocked); no reply — the client sends
                                             ``/start`` after "Restart", which greets
edited messages, channel posts, service      ignored: an edit was answered already; a channel is
messages (joins, pins), other update types   the brand's own broadcast; the rest is not for a
                                             persona. Only message, callback_query and
                                             my_chat_member are requested.
==========================================  ======================================================

**The operator group** (``operator_group_id``, optional): a forum supergroup where operators
answer handed-off fans, one topic per fan (:mod:`bot.channels.telegram_desk`). Every update from
that chat goes to the desk, never to the engine: the group is never a fan. A message in a topic
becomes an :class:`OperatorMessage`; anything else there is ignored.

In groups the bot answers only a message that mentions it (``@botname``, a text mention, or a
``/command@botname``) or replies to one of its messages; the group is one fan (its chat id), and
the reply quotes the message that addressed the bot.

Delivery guarantee: PTB confirms updates to Telegram when it fetches them (polling), and a
webhook is confirmed by our immediate 200, so an update being handled when the process dies is
lost (at-most-once per crash). An update whose turn cannot be logged (the disk is full) is held
in memory and tried again every few seconds until it is logged; meanwhile the webhook answers
503 to further updates, which Telegram keeps and delivers again. Repeated deliveries of one
``update_id`` never run a second turn: the channel remembers recent ids, and the engine answers
a known ``platform_msg_id`` from the log (after a restart its stored replies are sent again:
at-least-once for replies).
Outbound pacing, splitting, 429, 403 and retries: :mod:`bot.channels.telegram_sender`.

The bot token appears in every Bot API URL, which httpx logs at INFO; the channel installs a
filter on the httpx, httpcore and telegram loggers that replaces it (and the webhook secret)
with ``***`` in messages and tracebacks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import re
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Message, MessageEntity, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ContextTypes, ExtBot, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest

from bot.channels.background import BackgroundTasks
from bot.channels.base import NotSent, Refused, RunTurn, read_capped_body
from bot.channels.telegram_sender import Sender
from bot.logthrottle import limiter
from bot.messages import FanRef, Inbound, Reply
from bot.redact import SecretFilter
from bot.relations.store import StoreFull, iso

DEFAULT_NONE = BaseRequest.DEFAULT_NONE  # PTB's "not given" marker for timeouts

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The update types we ask Telegram for (explicitly, every time: the setting is sticky).
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
DEFAULT_API_URL = "https://api.telegram.org/bot"
# Updates handled at once (different chats; a chat's own updates always wait their turn).
UPDATES_IN_FLIGHT = 64

_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # deep-link payload alphabet (Bot API)
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # setWebhook secret_token alphabet
_VOICE = ("voice", "audio", "video_note")
_MEDIA = (
    "photo", "sticker", "animation", "video", "document", "location", "venue", "contact",
    "dice", "poll", "game", "story", "paid_media", "invoice", "checklist", "giveaway",
)
_GONE = {ChatMemberStatus.BANNED, ChatMemberStatus.LEFT}
_PRESENT = {ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER,
            ChatMemberStatus.RESTRICTED}
_SEEN_IDS = 50_000  # update ids remembered for dedupe (Telegram re-delivers within 24 h)
_MAX_WEBHOOK_BODY = 1_048_576
# An update whose turn could not be logged (disk full) is held and tried again, this often.
HOLD_RETRY_FIRST, HOLD_RETRY_MAX = 0.5, 5.0

log = logging.getLogger("brandbot.telegram")



class TelegramConfigError(ValueError):
    """The channel's settings cannot work; the message says what to change."""


# -- reading updates --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """What an update means for the engine, and what to do with the replies."""

    chat_id: int
    inbound: Inbound
    deliver: bool = True  # send the turn's replies
    reply_to: int | None = None  # quote this message (groups)
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorMessage:
    """What an operator wrote in a forum topic of the operator group."""

    thread_id: int
    text: str | None  # None: not text (a photo...)
    author: str  # "@username" or the name, for the log
    message_id: int
    command: str | None = None  # "done" for /done


def read_update(update: Update, *, bot_id: int, bot_username: str,
                operator_group: int | None = None) -> Incoming | OperatorMessage | str:
    """Turn an update into an :class:`Incoming` (a fan's turn), an :class:`OperatorMessage`
    (``operator_group`` set), or say (a short reason) why it is ignored."""
    uid = str(update.update_id)
    if operator_group is not None:
        chat = update.effective_chat
        if chat is not None and chat.id == operator_group:
            return _read_operator(update)
    if update.my_chat_member is not None:
        change = update.my_chat_member
        new, old = change.new_chat_member.status, change.old_chat_member.status
        fan = FanRef(CHANNEL, str(change.chat.id))
        if new in _GONE:
            event = "unfollow"
        elif new in _PRESENT and old in _GONE:
            event = "follow"
        else:
            return "my_chat_member without a block or unblock"
        name = change.chat.title or change.from_user.full_name
        return Incoming(change.chat.id, Inbound(fan, kind="event", event=event,
                                                platform_msg_id=uid, display_name=name),
                        deliver=False)
    if update.callback_query is not None:
        query = update.callback_query
        if not query.data:
            return "callback query without data (a game)"
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        return Incoming(
            chat_id,
            Inbound(FanRef(CHANNEL, str(chat_id)), kind="event", event="click",
                    payload={"key": query.data[:64]}, platform_msg_id=uid,
                    display_name=query.from_user.full_name),
            language_code=query.from_user.language_code,
        )
    if update.message is None:
        for kind in ("edited_message", "channel_post", "edited_channel_post"):
            if getattr(update, kind, None) is not None:
                return kind
        return "update type not handled"
    return _read_message(update.message, uid, bot_id, bot_username)


def _read_operator(update: Update) -> OperatorMessage | str:
    message = update.message
    if message is None:
        return "operator group: not a new message"
    if message.from_user is None or message.from_user.is_bot:
        return "operator group: message from a bot"
    if not message.is_topic_message or message.message_thread_id is None:
        return "operator group: message outside a topic"
    user = message.from_user
    author = f"@{user.username}" if user.username else user.full_name
    command = None
    if message.text:
        word = message.text.split(maxsplit=1)[0]
        if word.startswith("/"):
            command = word[1:].partition("@")[0].lower() or None
    return OperatorMessage(message.message_thread_id, message.text, author,
                           message.message_id, command)


def _read_message(message: Message, uid: str, bot_id: int, bot_username: str) -> Incoming | str:
    chat = message.chat
    group = chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
    if chat.type == ChatType.CHANNEL:
        return "channel message"
    if message.from_user is not None and message.from_user.is_bot:
        return "message from a bot"
    text = message.text
    if group and not _addressed(message, bot_id, bot_username):
        return "group message not addressed to the bot"
    user = message.from_user
    name = chat.title if group else (user.full_name if user else None)
    lang = user.language_code if user else None
    fan = FanRef(CHANNEL, str(chat.id))
    reply_to = message.message_id if group else None

    def event(name_: str, payload: dict[str, Any] | None = None) -> Incoming:
        inbound = Inbound(fan, kind="event", event=name_, payload=payload or {},
                          platform_msg_id=uid, display_name=name)
        return Incoming(chat.id, inbound, reply_to=reply_to, language_code=lang)

    if text is not None:
        command, args = _command(message, bot_username)
        if command is False:
            return "command for another bot"
        if command == "start":
            code = args.strip()
            if code and not _PAYLOAD.match(code):
                log.info("telegram: ignoring a malformed /start payload from chat %s", chat.id)
                code = ""
            inbound = Inbound(fan, text=text[:200], kind="event", event="follow",
                              payload={"ref": code} if code else {}, platform_msg_id=uid,
                              display_name=name)
            return Incoming(chat.id, inbound, reply_to=reply_to, language_code=lang)
        if command:
            text = f"{command} {args.strip()}".strip()
        elif group:
            text = _strip_mentions(text, bot_username)
        if not text.strip():
            return "empty text"
        return Incoming(chat.id, Inbound(fan, text=text, platform_msg_id=uid,
                                         display_name=name), reply_to=reply_to)
    for kind in _VOICE:
        if getattr(message, kind, None):
            return event("voice", {"type": kind})
    for kind in _MEDIA:
        if getattr(message, kind, None):
            return event("media", {"type": kind})
    return "service message"


def _command(message: Message, bot_username: str) -> tuple[str | bool | None, str]:
    """``("start", " CODE")`` for ``/start CODE``; False: for another bot; None: no command."""
    text = message.text or ""
    entity = next(
        (e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0),
        None,
    )
    if entity is None:
        return None, text
    word = message.parse_entity(entity)[1:]
    command, _, target = word.partition("@")
    if target and target.lower() != bot_username.lower():
        return False, ""
    return command.lower(), message.text[len(message.parse_entity(entity)):]


def _addressed(message: Message, bot_id: int, bot_username: str) -> bool:
    """A group message counts only if it mentions the bot or replies to it."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    mention = "@" + bot_username.lower()
    for entity, value in message.parse_entities().items():
        if entity.type == MessageEntity.MENTION and value.lower() == mention:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and value.lower().endswith(mention):
            return True
    for entity, value in message.parse_caption_entities().items():
        if entity.type == MessageEntity.MENTION and value.lower() == mention:
            return True
    return False


def _strip_mentions(text: str, bot_username: str) -> str:
    return re.sub(rf"@{re.escape(bot_username)}\b", " ", text, flags=re.IGNORECASE).strip()


# -- fetching updates -------------------------------------------------------------------------


class _TolerantBot(ExtBot):
    """``get_updates`` that skips an update PTB cannot parse instead of stalling on it.

    PTB 22.8 parses a whole ``getUpdates`` batch at once; one update it cannot read (a Bot API
    field newer than the library, say) raises, the Updater logs it without advancing the offset,
    and fetches the same batch again — forever. Here each update is parsed alone, and one that
    fails is logged and replaced by an empty ``Update`` with its id, so the offset moves on and
    the handler ignores it. Mirrors ``telegram.Bot.get_updates`` otherwise.
    """

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: Any = None,
        allowed_updates: Any = None,
        *,
        read_timeout: Any = DEFAULT_NONE,
        write_timeout: Any = DEFAULT_NONE,
        connect_timeout: Any = DEFAULT_NONE,
        pool_timeout: Any = DEFAULT_NONE,
        api_kwargs: dict[str, Any] | None = None,
    ) -> tuple[Update, ...]:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else (timeout or 0)
        base = self._request[0].read_timeout if read_timeout is DEFAULT_NONE else read_timeout
        data = {"timeout": timeout, "offset": offset, "limit": limit,
                "allowed_updates": allowed_updates}
        result = await self._post(
            "getUpdates", data, read_timeout=(base or 0) + seconds,
            write_timeout=write_timeout, connect_timeout=connect_timeout,
            pool_timeout=pool_timeout, api_kwargs=api_kwargs,
        )
        updates = []
        for raw in result or ():
            try:
                update = Update.de_json(raw, self)
            except Exception as exc:  # noqa: BLE001 - whatever the parser trips on
                kinds = [k for k in raw if k != "update_id"]
                log.error("telegram: update %s (%s) could not be read (%s: %s); skipped",
                          raw.get("update_id"), ", ".join(kinds), type(exc).__name__, exc)
                update = Update(raw["update_id"])
            self.insert_callback_data(update)
            updates.append(update)
        return tuple(updates)


# -- secrets in logs --------------------------------------------------------------------------


_REDACTED_LOGGERS = ("httpx", "httpcore", "telegram", "brandbot.telegram")


def _loggers() -> list[logging.Logger]:
    names = [n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in {"httpx", "httpcore", "telegram"}]
    return [logging.getLogger(n) for n in {*names, *_REDACTED_LOGGERS}]


# -- the channel ------------------------------------------------------------------------------


class TelegramChannel:
    """Serves one persona on one Telegram bot (see the module doc).

    ``engine`` is a :class:`bot.engine.Engine` (its ``store`` records blocks); turns run with
    ``run_turn`` if given (the daemon's, which counts metrics and picks the thread), else on the
    event loop. ``base_url`` is what PTB's ``base_url`` takes (the token is appended):
    ``https://api.telegram.org/bot`` by default, a self-hosted Bot API server or a local fake
    otherwise. Pacing: ``per_chat_rate``/``overall_rate`` messages per second (``None`` = off,
    for benchmarks against a fake only).
    """

    name = CHANNEL

    def __init__(
        self,
        engine: Any,
        persona_id: str,
        token: str,
        base_url: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        *,
        run_turn: RunTurn | None = None,
        webhook_path: str = WEBHOOK_PATH,
        poll_timeout: float = 10.0,
        per_chat_rate: float | None = 1.0,
        per_chat_burst: int = 3,
        overall_rate: float | None = 30.0,
        send_attempts: int = 5,
        send_backoff: float = 0.5,
        send_concurrency: int = 8,
        stop_timeout: float = 5.0,
        operator_group_id: int | None = None,
    ):
        if not token or ":" not in token:
            raise TelegramConfigError(
                "telegram token is missing or malformed (expected digits:letters from "
                "@BotFather); set BRANDBOT_TELEGRAM_TOKEN or remove the telegram channel"
            )
        if webhook_url and not webhook_secret:
            raise TelegramConfigError(
                "telegram.webhook_url is set without telegram.webhook_secret: anyone could post "
                "fake updates; set a secret of 1-256 characters A-Z a-z 0-9 _ -"
            )
        if webhook_secret and not _SECRET.match(webhook_secret):
            raise TelegramConfigError(
                "telegram.webhook_secret must be 1-256 characters from A-Z a-z 0-9 _ - "
                "(Telegram's rule for secret_token)"
            )
        engine.brand(persona_id)  # raises UnknownPersonaError naming the loaded ones
        self.engine = engine
        self.persona_id = persona_id
        self.base_url = (base_url or DEFAULT_API_URL).rstrip("/")
        self.webhook_url = webhook_url
        self.webhook_path = webhook_path
        self.poll_timeout = poll_timeout
        self.stop_timeout = stop_timeout
        self.stats: Counter[str] = Counter()
        self._token = token
        self._secret = webhook_secret
        self._run_turn = run_turn or self._turn_on_loop
        self.send_concurrency = send_concurrency
        self._sender_args = dict(per_chat_rate=per_chat_rate, per_chat_burst=per_chat_burst,
                                 overall_rate=overall_rate, max_attempts=send_attempts,
                                 backoff=send_backoff, max_in_flight=send_concurrency)
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._redact = SecretFilter([token, webhook_secret])
        self._redacted: list[logging.Logger] = []
        self._tasks = BackgroundTasks()
        self._chat_tails: dict[int | None, asyncio.Future] = {}
        self._in_flight: asyncio.Semaphore | None = None
        self.app: Application | None = None
        self.sender: Sender | None = None
        self.running = False
        self.bot_id = 0
        self.bot_username = ""
        self.operator_group_id = operator_group_id
        # Receives OperatorMessages from the operator group (a TelegramDesk's on_operator).
        self.desk: Callable[[OperatorMessage], Awaitable[None]] | None = None
        # Why the log cannot be written now (the daemon's write_fault), or None: while it says
        # something and an update is already held, the webhook answers 503 (Telegram retries).
        self.write_fault: Callable[[], str | None] | None = None
        self._held: set[int] = set()  # updates whose turn waits for the log to be writable

    def __repr__(self) -> str:  # never the token
        return (f"TelegramChannel(persona={self.persona_id!r}, {self.mode}, "
                f"bot=@{self.bot_username})")

    @property
    def mode(self) -> str:
        return "webhook" if self.webhook_url else "polling"

    # -- lifecycle -----------------------------------------------------------------------------

    def _build(self) -> Application:
        base = self.base_url
        file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base
        bot = _TolerantBot(
            self._token,
            base_url=base,
            base_file_url=file_base,
            # Sized to the sender's requests in flight plus headroom: httpcore scans every pooled
            # connection per request, and PTB's 256 made that scan a real cost (bench/README.md).
            request=HTTPXRequest(connection_pool_size=self.send_concurrency + 4),
            get_updates_request=HTTPXRequest(connection_pool_size=1),
        )
        # One update at a time keeps a fan's turns in order; replies go out concurrently.
        builder = Application.builder().bot(bot).concurrent_updates(False)
        if self.webhook_url:
            builder = builder.updater(None)
        app = builder.build()
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        return app

    async def start(self) -> None:
        """Connect (getMe), then poll or set the webhook; returns once updates are flowing."""
        if self.running:
            return
        self._install_redaction()
        app = self._build()
        for attempt in range(3):
            try:
                await app.initialize()
                break
            except InvalidToken:
                raise TelegramConfigError(
                    "Telegram refused the bot token (401/404); copy it again from @BotFather "
                    "into BRANDBOT_TELEGRAM_TOKEN"
                ) from None
            except NetworkError as exc:
                if attempt == 2:
                    raise TelegramConfigError(
                        f"cannot reach the Bot API at {self.base_url} ({exc.message}); check "
                        "the network or BRANDBOT_TELEGRAM_API_URL"
                    ) from None
                log.warning("telegram: getMe failed (%s); retrying", exc.message)
                await asyncio.sleep(0.5 * 2**attempt)
        self.app = app
        self.bot_id, self.bot_username = app.bot.id, app.bot.username
        self.sender = Sender(app.bot, on_forbidden=self._forbidden, **self._sender_args)
        # Fans refused by an earlier run (403) stay skipped until they write again.
        self.sender.blocked.update(await asyncio.to_thread(self._blocked_chats))
        if self.webhook_url:
            await app.bot.set_webhook(
                self.webhook_url, secret_token=self._secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            await app.updater.start_polling(
                timeout=self.poll_timeout,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
                error_callback=self._polling_error,
            )
        await app.start()
        self.running = True
        log.info("telegram: @%s serving persona %s by %s", self.bot_username, self.persona_id,
                 self.mode)

    async def stop(self) -> None:
        """Stop receiving, finish the updates already fetched, deliver what is queued, close."""
        if not self.running or self.app is None:
            return
        self.running = False
        app = self.app
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()  # one last getUpdates confirms what was fetched
            if app.running:
                await app.stop()  # drains the update queue: those turns run and queue replies
            while self._tasks:  # the updates' tasks, and what they start (callback answers)
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self.sender is not None:
                await self.sender.close(self.stop_timeout)
        finally:
            await app.shutdown()
            self._remove_redaction()
            log.info("telegram: @%s stopped", self.bot_username)

    async def send(self, fan: FanRef, replies: list[Reply], persona: str | None = None
                   ) -> NotSent | None:
        """Queue proactive messages (newsletters, operator replies) for a fan not blocked.

        Returns None when queued, or a :class:`NotSent` saying why nothing was sent (one bot
        serves one persona, so ``persona`` is not needed).
        """
        if fan.channel != CHANNEL:
            raise ValueError(f"{fan} is not a telegram fan")
        if self.sender is None:
            raise RuntimeError("the telegram channel is not started; await start() first")
        row = await asyncio.to_thread(
            self.engine.store.find_fan, self.persona_id, CHANNEL, fan.external_id
        )
        if row is not None and row["blocked"]:
            self.stats["skipped_blocked"] += 1
            log.info("telegram: fan %s blocked the bot; not sending", fan.external_id)
            return NotSent(len(replies), "the fan blocked the bot")
        if int(fan.external_id) in self.sender.blocked:
            return NotSent(len(replies), "the fan blocked the bot (403)")
        self.sender.enqueue(int(fan.external_id), [r.text for r in replies])
        return None

    async def idle(self) -> None:
        """Wait until every queued reply was sent (tests and benchmarks)."""
        if self.sender is not None:
            await self.sender.join()

    # -- webhook -------------------------------------------------------------------------------

    def route(self) -> Route:
        """``POST /telegram/webhook`` for the daemon's Starlette app (webhook mode)."""
        return Route(self.webhook_path, self.webhook, methods=["POST"])

    def routes(self) -> list[Route]:
        return [self.route()] if self.webhook_url else []

    async def webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        expected = self._secret or ""
        # compare_digest takes the same time wherever the first difference is.
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            self.stats["webhook_forbidden"] += 1
            return Response(status_code=403)
        if not self.running or self.app is None:
            return Response(status_code=503)  # Telegram retries later
        if self._held and self.write_fault is not None and self.write_fault():
            # The disk is full and an update is already held (it retries, so it notices when
            # space returns): Telegram keeps this one and delivers it again later.
            self.stats["webhook_unavailable"] += 1
            return Response(status_code=503)
        try:
            body = await read_capped_body(request, _MAX_WEBHOOK_BODY)
        except Refused as exc:
            return Response(status_code=exc.status)
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            self.stats["webhook_bad_request"] += 1
            return Response(status_code=400)
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception:  # noqa: BLE001 - a 4xx would make Telegram retry it forever
            log.exception("telegram: could not parse update %s; skipped", data["update_id"])
            self.stats["unparseable"] += 1
            return Response(status_code=200)
        await self.app.update_queue.put(update)
        return Response(status_code=200)

    # -- handling ------------------------------------------------------------------------------

    async def _on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Start handling ``update`` beside other chats' updates, after its own chat's.

        PTB calls this one update at a time (``concurrent_updates(False)``), so the place in its
        chat's line is taken in arrival order; the handling itself runs as a task, which lets
        the turns of different chats run in the same moment and share a commit. At most
        ``UPDATES_IN_FLIGHT`` are in progress; beyond that PTB waits here.
        """
        if not isinstance(update, Update):
            return
        if self._in_flight is None:
            self._in_flight = asyncio.Semaphore(UPDATES_IN_FLIGHT)
        await self._in_flight.acquire()
        chat = update.effective_chat.id if update.effective_chat is not None else None
        before = self._chat_tails.get(chat)
        done = asyncio.get_running_loop().create_future()
        self._chat_tails[chat] = done
        self._background(self._handle_in_order(update, chat, before, done))

    async def _handle_in_order(self, update: Update, chat: int | None,
                               before: asyncio.Future | None, done: asyncio.Future) -> None:
        try:
            if before is not None:
                await before
            await self._handle(update)
        except Exception as exc:
            self.stats["errors"] += 1
            limiter.log(log, logging.ERROR, f"telegram-update:{type(exc).__name__}",
                        "telegram: update %s failed", update.update_id, exc_info=exc)
        finally:
            done.set_result(None)
            if self._chat_tails.get(chat) is done:
                del self._chat_tails[chat]
            self._in_flight.release()

    async def _handle(self, update: Update) -> None:
        self.stats["updates"] += 1
        if update.update_id in self._seen:
            self.stats["duplicates"] += 1
            log.debug("telegram: update %s seen already; skipped", update.update_id)
            return
        self._seen[update.update_id] = None
        if len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)
        if update.callback_query is not None:
            self._background(self._answer_callback(update.callback_query.id))
        incoming = read_update(update, bot_id=self.bot_id, bot_username=self.bot_username,
                               operator_group=self.operator_group_id)
        if isinstance(incoming, OperatorMessage):
            self.stats["operator_messages"] += 1
            if self.desk is not None:
                await self.desk(incoming)
            return
        if isinstance(incoming, str):
            self.stats["ignored"] += 1
            log.debug("telegram: update %s ignored: %s", update.update_id, incoming)
            return
        inbound = incoming.inbound
        language = self._language(incoming.language_code) if inbound.kind == "event" else None
        if language:
            inbound = dataclasses.replace(inbound, language=language)
        assert self.sender is not None
        if inbound.event != "unfollow" and self.sender.unblock(incoming.chat_id):
            await asyncio.to_thread(self._mark_blocked, incoming.chat_id, False,
                                    "telegram_message")
        replies = await self._turn_kept(inbound, update.update_id)
        self.stats["turns"] += 1
        if inbound.event == "unfollow":
            self.sender.block(incoming.chat_id)
            return
        if incoming.deliver and replies:
            self.sender.enqueue(incoming.chat_id, [r.text for r in replies],
                                reply_to=incoming.reply_to)

    async def _turn_kept(self, inbound: Inbound, update_id: int) -> list[Reply]:
        """The turn; held and tried again while it cannot be logged (the disk is full).

        The update is confirmed to Telegram already (fetched, or answered 200), so it must not
        be dropped: it waits here (its chat's later updates wait behind it) and runs once the
        log takes writes again. Given up only when the channel stops (logged).
        """
        delay = HOLD_RETRY_FIRST
        try:
            while True:
                try:
                    return await self._run_turn(inbound, self.persona_id)
                except StoreFull:
                    if not self.running:
                        raise
                    if update_id not in self._held:
                        self._held.add(update_id)
                        self.stats["held"] += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, HOLD_RETRY_MAX)
        finally:
            self._held.discard(update_id)

    def _language(self, code: str | None) -> str | None:
        if not code:
            return None
        languages = self.engine.brand(self.persona_id).persona.languages
        prefix = code.split("-")[0].lower()
        return prefix if prefix in languages else None

    async def _turn_on_loop(self, inbound: Inbound, persona: str) -> list[Reply]:
        # ~0.25 ms of CPU: a thread hop costs more, and a CPU-bound thread makes the loop wait
        # for the GIL (bench/README.md "telegram").
        return self.engine.handle(inbound, persona)

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.app.bot.answer_callback_query(query_id)
        except TelegramError as exc:  # too old (>15 s) and the like: nothing to do
            log.debug("telegram: answerCallbackQuery failed: %s", exc.message)

    def _background(self, coro) -> None:
        self._tasks.start(coro)

    def _mark_blocked(self, chat_id: int, blocked: bool, reason: str) -> None:
        now = iso(datetime.now(UTC))
        self.engine.store.mark_blocked(self.persona_id, CHANNEL, str(chat_id), blocked, reason,
                                       now)

    def _blocked_chats(self) -> list[int]:
        rows = self.engine.store.read(
            "SELECT external_id FROM fans WHERE persona = ? AND channel = ? AND blocked = 1",
            (self.persona_id, CHANNEL),
        )
        return [int(r[0]) for r in rows if r[0].lstrip("-").isdigit()]

    async def _forbidden(self, chat_id: int, description: str) -> None:
        self.stats["blocked"] += 1
        await asyncio.to_thread(self._mark_blocked, chat_id, True, "telegram_403")

    def _polling_error(self, exc: TelegramError) -> None:
        # A plain function: PTB refuses a coroutine here (docs/channels/protocol-notes.md T4).
        self.stats["polling_errors"] += 1
        hint = ""
        if "Conflict" in type(exc).__name__:
            hint = ("; another process polls this token or a webhook is set (polling deletes "
                    "it only at start)")
        log.warning("telegram: polling failed (%s: %s)%s; retrying", type(exc).__name__,
                    exc.message, hint)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.stats["errors"] += 1
        log.error("telegram: error while handling an update: %r", context.error,
                  exc_info=context.error)

    # -- log redaction -------------------------------------------------------------------------

    def _install_redaction(self) -> None:
        # A logger's filters see only its own records, not its children's: attach to each.
        self._redacted = self._redact.install(logger.name for logger in _loggers())

    def _remove_redaction(self) -> None:
        self._redact.uninstall(self._redacted)
        self._redacted = []
