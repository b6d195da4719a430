"""The daemon's log: text or JSON lines, one record per line, every secret masked.

Why its own module: the formatter is security-sensitive (bot tokens, AppSecrets and a fan's
control characters all pass through it) and is tested on its own, without a daemon.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.config import Settings
from bot.redact import QUERY_SECRETS, SecretFilter
from bot.tables import json_safe, terminal_safe


class MaskingFormatter(logging.Formatter):
    """Formats as text or JSON lines and replaces every secret value by ``***``."""

    def __init__(self, fmt: str, secrets: list[str]):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json = fmt == "json"
        # Patterns too: a WeChat access_token is fetched at run time (no settings value to
        # mask), and any logger may quote a URL that carries one.
        self.mask = SecretFilter(secrets, patterns=[QUERY_SECRETS])

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # One record, one line: a fan's line feed (a name, a plaintext WeChat OpenID) goes on
        # an indented line, so it cannot pass for a line of the daemon's own. (A traceback,
        # added after this, keeps its lines.)
        return terminal_safe(super().formatMessage(record), continuation="    ")

    def format(self, record: logging.LogRecord) -> str:
        if self.json:
            entry = {
                "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname,
                "logger": record.name,
                "msg": record.getMessage(),
            }
            if record.exc_info:
                entry["exc"] = self.formatException(record.exc_info)
            elif record.exc_text:  # already cleaned by a channel's SecretFilter
                entry["exc"] = record.exc_text
            text = json_safe(json.dumps(entry, ensure_ascii=False))
        else:  # a fan's words in a message must not drive the terminal showing the log
            text = terminal_safe(super().format(record), keep_newlines=True)
        return self.mask.redact(text)


def configure_logging(settings: Settings, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(MaskingFormatter(settings.log_format, settings.secrets()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # HTTP client libraries log URLs, and Telegram's carry the bot token
    # (docs/channels/protocol-notes.md T5).
    # transitions logs every callback at INFO: thousands of lines a second under load.
    for noisy in ("httpx", "httpcore", "urllib3", "watchfiles", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(
        logging.WARNING if settings.log_level == "INFO" else settings.log_level
    )
