"""Chinese or English for operator-facing command output: Chinese when the locale says zh.

Our operators are Chinese-speaking marketing people; developers and CI usually run with an
English (or C) locale. The locale is read by :func:`bot.errors.operator_language` (LC_ALL, then
LC_MESSAGES, then LANG, as in every POSIX tool), the one place that decides it. Unlike
:func:`bot.errors.say`, which follows the language a command chose with ``set_language``,
:func:`say` here takes the language per call (commands with a ``--lang`` option pass it).
"""

from __future__ import annotations

from bot.errors import operator_language as ui_language

__all__ = ["say", "ui_language"]


def say(zh: str, en: str, language: str | None = None) -> str:
    """The ``zh`` text for a Chinese locale (or ``language='zh'``), else the ``en`` one."""
    return zh if (language or ui_language()) == "zh" else en
