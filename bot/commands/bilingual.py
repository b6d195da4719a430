"""Compatibility for code written before bot/i18n.py: ``say(zh, en, language)``.

New code marks the English text with ``_`` from :mod:`bot.i18n` (gettext catalogs); this
wrapper stays only so branches written against it keep working.
"""

from __future__ import annotations

from bot import i18n
from bot.errors import operator_language as ui_language

__all__ = ["say", "ui_language"]


def say(zh: str, en: str, language: str | None = None) -> str:
    """The catalog's (or else the given) Chinese text when Chinese is chosen, else ``en``."""
    if language is not None and not i18n.is_chinese(language):
        return en
    if language is None and not i18n.is_chinese():
        return en
    return i18n.pick(en, zh) if i18n.is_chinese() else zh
