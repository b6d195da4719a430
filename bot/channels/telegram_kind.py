"""Telegram as the settings, the planner and the daemon know it (bot/channels/telegram.py runs it).

Its settings section (``telegram:``) and short environment names, the deep link that carries a
campaign code (``t.me/<bot>?start=<code>``), and its newsletter outlet: the channel's own paced
Sender (about 30 messages/s, 429 and 403 handled). A bot may message a fan any time: no window,
no quota.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.channels.contract import ChannelConfigError, ChannelKind, ChannelServices

if TYPE_CHECKING:
    from bot.relations.broadcast import Item
    from bot.relations.store import Store


class TelegramSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(None, description="Bot token from @BotFather.")
    api_url: str | None = Field(
        None, description="Bot API base URL (python-telegram-bot's base_url); default Telegram's."
    )
    webhook_url: str | None = Field(
        None, description="Public HTTPS URL of /telegram/webhook; without it the bot long-polls."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="X-Telegram-Bot-Api-Secret-Token; required with webhook_url."
    )
    operator_group_id: int | None = Field(
        None, description="Forum supergroup where operators answer handoffs (one topic per fan)."
    )
    bot_username: str | None = Field(
        None, description="The bot's @username, for campaign links (default: asked with getMe)."
    )

    @property
    def enabled(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value())


class TelegramKind(ChannelKind):
    name = "telegram"
    settings_model = TelegramSettings
    env_aliases = {
        "BRANDBOT_TELEGRAM_TOKEN": "token",
        "BRANDBOT_TELEGRAM_API_URL": "api_url",
        "BRANDBOT_TELEGRAM_WEBHOOK_URL": "webhook_url",
        "BRANDBOT_TELEGRAM_WEBHOOK_SECRET": "webhook_secret",
        "BRANDBOT_TELEGRAM_OPERATOR_GROUP": "operator_group_id",
        "BRANDBOT_TELEGRAM_BOT_USERNAME": "bot_username",
    }
    enable_hint = ("set BRANDBOT_TELEGRAM_TOKEN (from @BotFather) in the environment "
                   "(docs/channels/telegram.md)")
    one_persona = True  # one bot token
    mask_invalid_values = True

    def create(self, section: TelegramSettings, personas: list[str],
               services: ChannelServices):
        from bot.channels.telegram import TelegramChannel, TelegramConfigError

        try:
            channel = TelegramChannel(
                services.engine,
                personas[0],
                section.token.get_secret_value(),
                base_url=section.api_url,
                webhook_url=section.webhook_url,
                webhook_secret=(section.webhook_secret.get_secret_value()
                                if section.webhook_secret else None),
                run_turn=services.run_turn,
                operator_group_id=section.operator_group_id,
            )
        except TelegramConfigError as exc:
            raise ChannelConfigError([f"telegram: {exc}"]) from None
        channel.write_fault = services.write_fault
        if section.operator_group_id is not None:
            from bot.channels.telegram_desk import TelegramDesk

            channel.operator_desk = TelegramDesk(services.engine, section.operator_group_id,
                                                 services.deliver)
            channel.desk = channel.operator_desk.on_operator
        return channel

    def outlet(self, section: TelegramSettings, store: Store, persona: str, *,
               rate: float | None = 30.0):
        if not section.enabled:
            return "telegram is not configured: set BRANDBOT_TELEGRAM_TOKEN"
        return TelegramOutlet(store, persona, section.token.get_secret_value(), section.api_url,
                              overall_rate=rate)

    def campaign_link(self, code: str, targets: Mapping[str, Any]) -> str:
        bot = targets.get("telegram_bot")
        if not bot:
            return "(set telegram.bot_username or BRANDBOT_TELEGRAM_TOKEN for this link)"
        return f"https://t.me/{bot.lstrip('@')}?start={quote(code)}"


class _Recorder:
    """Stands in for ``telegram.Bot`` inside the channel's Sender: remembers each chat's outcome."""

    def __init__(self, bot: Any):
        self.bot = bot
        self.ok: Counter[int] = Counter()
        self.errors: dict[int, str] = {}

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
        try:
            result = await self.bot.send_message(chat_id, text, **kwargs)
        except Exception as exc:
            self.errors[chat_id] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
            raise
        self.ok[chat_id] += 1
        return result


class TelegramOutlet:
    """Newsletters through the Telegram channel's own Sender (pacing, 429, 403, retries).

    ``overall_rate`` is Telegram's ~30 messages/s; ``None`` is for a local fake only.
    A 403 marks the fan blocked (and unsubscribed) in the log, like the daemon does.
    """

    name = "telegram"
    reach = TelegramKind.reach

    def __init__(self, store: Store, persona: str, token: str, api_url: str | None = None, *,
                 overall_rate: float | None = 30.0, backoff: float = 0.5,
                 clock: Callable[[], datetime] | None = None):
        self.store, self.persona, self.token = store, persona, token
        self.api_url = api_url
        self.overall_rate, self.backoff = overall_rate, backoff
        self.clock = clock
        self.bot: Any = None
        self.sender: Any = None
        self.recorder: _Recorder | None = None
        self.forbidden: set[int] = set()

    async def start(self) -> None:
        if self.bot is not None:
            return
        from telegram import Bot
        from telegram.request import HTTPXRequest

        from bot.channels.telegram import DEFAULT_API_URL
        from bot.channels.telegram_sender import Sender

        self.bot = Bot(self.token, base_url=self.api_url or DEFAULT_API_URL,
                       request=HTTPXRequest(connection_pool_size=64))
        await self.bot.initialize()
        self.recorder = _Recorder(self.bot)
        self.sender = Sender(self.recorder, overall_rate=self.overall_rate, per_chat_rate=None,
                             backoff=self.backoff, max_in_flight=32,
                             on_forbidden=self._forbidden, retry_timeouts=False)

    async def _forbidden(self, chat_id: int, description: str) -> None:
        self.forbidden.add(chat_id)
        from bot.clock import utc_now
        from bot.relations.store import iso

        now = (self.clock or utc_now)()
        self.store.mark_blocked(self.persona, "telegram", str(chat_id), True,
                                f"telegram 403: {description}", iso(now))

    async def deliver(self, items: list[Item]) -> dict[int, tuple[str, str | None]]:
        from bot.channels.telegram_sender import split_text

        assert self.sender is not None and self.recorder is not None
        out: dict[int, tuple[str, str | None]] = {}
        expected: dict[int, tuple[int, int]] = {}
        for item in items:
            try:
                chat = int(item.external_id)
            except ValueError:
                out[item.delivery_id] = ("failed", f"not a Telegram chat id: {item.external_id}")
                continue
            self.recorder.ok.pop(chat, None)
            self.recorder.errors.pop(chat, None)
            expected[item.delivery_id] = (chat, len(split_text(item.text)))
            self.sender.enqueue(chat, [item.text])
        await self.sender.join()
        for delivery_id, (chat, parts) in expected.items():
            if self.recorder.ok[chat] >= parts:
                out[delivery_id] = ("sent", None)
            elif chat in self.forbidden or chat in self.sender.blocked:
                out[delivery_id] = ("failed", "blocked the bot (403); fan marked blocked")
            elif self.recorder.errors.get(chat, "").startswith("TimedOut"):
                out[delivery_id] = ("unknown", "timed out: it may have arrived, so it is not "
                                    "sent again")
            else:
                out[delivery_id] = ("failed", self.recorder.errors.get(chat, "not sent"))
        return out

    async def close(self) -> None:
        if self.sender is not None:
            await self.sender.close()
        if self.bot is not None:
            await self.bot.shutdown()
        self.bot = self.sender = None
