"""Keep secrets out of logs: one filter every channel and the daemon share.

Bot tokens travel in Telegram's request URLs and WeChat's ``access_token`` in query strings, and
HTTP client libraries log those URLs (httpx at INFO, urllib3 at DEBUG). A :class:`SecretFilter`
attached to those loggers rewrites each record's message and traceback, replacing known secret
values and secret-looking query parameters with ``***`` before any handler formats it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
# Query parameters that carry secrets whatever their value: WeChat's access_token (fetched at run
# time, so in no settings list) and AppSecret (``secret=`` in the token request).
QUERY_SECRETS = re.compile(r"(?i)((?:access_token|secret)=)[^&\s'\"]+")
# Values shorter than this are not masked: "***" everywhere a 2-letter secret occurs helps no one.
MIN_SECRET_CHARS = 4


class SecretFilter(logging.Filter):
    """Masks ``values`` and every match of ``patterns`` (group 1 is kept) in log records."""

    def __init__(self, values: Iterable[str | None] = (), patterns: Iterable[re.Pattern] = ()):
        super().__init__("brandbot-secrets")
        self._values: list[str] = []
        self.patterns = list(patterns)
        self.add(*values)

    def add(self, *values: str | None) -> None:
        fresh = {v for v in values if v and len(v) >= MIN_SECRET_CHARS} - set(self._values)
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted({*self._values, *fresh}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for pattern in self.patterns:
            text = pattern.sub(r"\1" + MASK, text)
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not hide the record
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks of client errors carry request URLs: keep only the cleaned text.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def install(self, logger_names: Iterable[str]) -> list[logging.Logger]:
        """Attach to these loggers (idempotent); returns them for :meth:`uninstall`."""
        loggers = [logging.getLogger(name) for name in logger_names]
        for logger in loggers:
            if self not in logger.filters:
                logger.addFilter(self)
        return loggers

    def uninstall(self, loggers: Iterable[logging.Logger]) -> None:
        for logger in loggers:
            logger.removeFilter(self)
