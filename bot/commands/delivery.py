"""Delivering from the command line: one fan's messages through their channel, and why not.

Used by ``brandbot handoff`` (end, reply, expire) and ``brandbot broadcast``; secrets (the bot
token, the AppSecret) never reach the text it prints.
"""

from __future__ import annotations

import re

from bot.commands.common import now


def secrets_of(settings) -> list[str]:
    """The settings' secret values (bot token, AppSecret...), for masking error text."""
    values = []
    for section in (settings.telegram, settings.wechat):
        for name in ("token", "app_secret", "aes_key", "previous_aes_key"):
            value = getattr(section, name, None)
            value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            if value:
                values.append(str(value))
    return values


# Telegram's request URLs embed the bot token (…/bot<id>:<secret>/getMe).
BOT_TOKEN = re.compile(r"(bot)\d+:[A-Za-z0-9_-]+")


def why_failed(exc: BaseException, secrets: list[str]) -> str:
    """One line saying why sending stopped: which API could not be reached and how; never a
    secret (the bot token travels in Telegram's URLs, the AppSecret in WeChat's)."""
    from bot.redact import SecretFilter

    try:
        from telegram.error import InvalidToken, NetworkError
    except ImportError:  # pragma: no cover - python-telegram-bot is a dependency
        InvalidToken = NetworkError = ()  # type: ignore[assignment]  # noqa: N806
    redact = SecretFilter(secrets, patterns=[BOT_TOKEN]).redact
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    detail = redact(text.splitlines()[0])[:200]
    if isinstance(exc, InvalidToken):
        return "the Telegram API refused the bot token: check BRANDBOT_TELEGRAM_TOKEN"
    if isinstance(exc, NetworkError):
        return f"cannot reach the Telegram API ({detail})"
    return f"{type(exc).__name__}: {detail}"


def why_failed_zh(exc: BaseException) -> str:
    try:
        from telegram.error import InvalidToken, NetworkError
    except ImportError:  # pragma: no cover
        InvalidToken = NetworkError = ()  # type: ignore[assignment]  # noqa: N806
    if isinstance(exc, InvalidToken):
        return "Telegram 拒绝了机器人令牌"
    if isinstance(exc, NetworkError):
        return "无法连接 Telegram API"
    return "发送出错"


def push(settings, store, persona_id: str, row, replies) -> tuple[str, str | None]:
    """Deliver ``replies`` to one fan through their channel, as the CLI can (see _push_many)."""
    return push_many(settings, store, [(persona_id, row, replies)])[0]


def push_many(settings, store, items) -> list[tuple[str, str | None]]:
    """Deliver each ``(persona, fan row, replies)``: (status, why not) per item, in order.

    Telegram and WeChat by their APIs, with each persona's senders built and started once;
    web chat fans through the log's outbox, which the daemon hands to the fan's page (its next
    message, or its poll a few seconds later).
    """
    import asyncio
    import contextlib

    from bot.relations import outbox
    from bot.relations.broadcast import CANNOT_PUSH, Item, outlets_from_settings

    async def run() -> list[tuple[str, str | None]]:
        built: dict[str, tuple[dict, dict]] = {}
        started: list = []
        results = []
        try:
            for persona_id, row, replies in items:
                if row["channel"] == outbox.CHANNEL:
                    outbox.enqueue(store, row["id"], replies, now())
                    results.append(("queued", None))
                    continue
                if persona_id not in built:
                    built[persona_id] = outlets_from_settings(settings, store, persona_id,
                                                              rate=30.0)
                outlets, missing = built[persona_id]
                outlet = outlets.get(row["channel"])
                if outlet is None:
                    why = CANNOT_PUSH.get(row["channel"]) or missing.get(row["channel"]) or (
                        f"no {row['channel']} sender")
                    results.append(("failed", why))
                    continue
                status: tuple[str, str | None] = ("sent", None)
                try:
                    if outlet not in started:
                        started.append(outlet)
                        await outlet.start()
                    for n, reply in enumerate(replies):
                        status = (await outlet.deliver(
                            [Item(n, row["id"], row["external_id"], reply.text)]))[n]
                        if status[0] != "sent":
                            break
                except Exception as exc:  # noqa: BLE001 - reported as not delivered, and why
                    status = ("failed", why_failed(exc, secrets_of(settings)))
                results.append(status)
        finally:
            for outlet in started:
                with contextlib.suppress(Exception):
                    await outlet.close()
        return results

    return asyncio.run(run())
