"""Where a printed link points: the web chat's public address and the Telegram bot's username.

Shared by `brandbot campaign create|qr` and `brandbot fan link`.
"""

from __future__ import annotations

import click

from bot.commands.common import fail, load_settings_or_fail
from bot.i18n import _


def link_options(command):
    """--telegram-bot, --web-url and --config: where a printed link points (see link_targets)."""
    command = click.option("--config", "-c", help="Settings file, as for `brandbot serve`.")(
        command)
    command = click.option("--web-url", help="Public address of the web chat (default: "
                           "public_url from the settings).")(command)
    return click.option("--telegram-bot", help="The bot's @username (default: "
                        "telegram.bot_username, else asked with getMe).")(command)


def link_targets(config: str | None, telegram_bot: str | None, web_url: str | None, *,
                 need_telegram: bool = False, need_web: bool = False) -> tuple[str | None, str]:
    """The bot's username and the web chat's public address for links: the flags, else the
    settings (telegram.bot_username, public_url), else the bot's getMe; a note on stderr (or
    exit 1 when the link asked for needs it) when one is unknown."""
    settings = None
    if telegram_bot is None or web_url is None:
        settings = load_settings_or_fail(config, None)
    if web_url is None:
        web_url = settings.public_url
        if web_url is None:
            if need_web:
                fail(_("set public_url (brandbot.yaml or BRANDBOT_PUBLIC_URL) to the address "
                       "fans reach the web chat at, or pass --web-url; a printed QR code of "
                       "127.0.0.1 opens nothing"))
            click.echo(_("note: public_url is not set; web links point at this machine "
                         "(http://127.0.0.1:8080/)"), err=True)
            web_url = "http://127.0.0.1:8080/"
    if telegram_bot is None:
        telegram_bot = settings.telegram.bot_username or _bot_username_from_getme(settings)
        if telegram_bot is None and need_telegram:
            fail(_("the bot's username is unknown: set telegram.bot_username "
                   "(BRANDBOT_TELEGRAM_BOT_USERNAME) or BRANDBOT_TELEGRAM_TOKEN, or pass "
                   "--telegram-bot"))
    return telegram_bot, web_url


def _bot_username_from_getme(settings) -> str | None:
    """Ask Telegram who the configured token belongs to (None without a token or an answer)."""
    import asyncio

    from telegram import Bot
    from telegram.error import TelegramError

    from bot.channels.telegram import DEFAULT_API_URL

    if not settings.telegram.enabled:
        return None

    async def ask() -> str | None:
        bot = Bot(settings.telegram.token.get_secret_value(),
                  base_url=(settings.telegram.api_url or DEFAULT_API_URL).rstrip("/"))
        try:
            return (await bot.get_me()).username
        finally:
            await bot.shutdown()

    try:
        return asyncio.run(ask())
    except TelegramError as exc:
        click.echo(_("note: Telegram getMe failed ({error}); no Telegram link").format(
            error=exc.message), err=True)
        return None
