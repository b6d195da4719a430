"""The one secret filter shared by the channels and the daemon."""

from __future__ import annotations

import logging
import re

from bot.redact import SecretFilter


def test_values_and_query_secrets_are_masked_in_messages_and_tracebacks(caplog):
    secret = SecretFilter(["123456:AAF-token"], [re.compile(r"((?:access_token)=)[^&\s]+")])
    logger = logging.getLogger("test.redact")
    secret.install(["test.redact"])
    try:
        with caplog.at_level(logging.DEBUG, logger="test.redact"):
            logger.info("GET https://api/bot%s/getMe?access_token=%s", "123456:AAF-token", "tok9")
            try:
                raise RuntimeError("failed url https://api/bot123456:AAF-token/sendMessage")
            except RuntimeError:
                logger.exception("send failed")
    finally:
        secret.uninstall([logger])
    text = caplog.text
    assert "123456:AAF-token" not in text and "tok9" not in text
    assert "bot***/getMe?access_token=***" in text
    assert "RuntimeError: failed url https://api/bot***/sendMessage" in text


def test_short_values_are_not_masked_and_longest_wins():
    secret = SecretFilter(["ab", "abcdef", "abcdefgh"])
    assert secret.redact("ab abcdefgh abcdef") == "ab *** ***"
