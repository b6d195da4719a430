"""Fetching Telegram updates without stalling on one the library cannot read.

python-telegram-bot parses a whole ``getUpdates`` batch at once; :class:`TolerantBot` parses
each update alone so one bad update cannot hold back the others (bot/channels/telegram.py uses
it for polling).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.ext import ExtBot
from telegram.request import BaseRequest

log = logging.getLogger("brandbot.telegram")

DEFAULT_NONE = BaseRequest.DEFAULT_NONE  # PTB's "not given" marker for timeouts


class TolerantBot(ExtBot):
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
