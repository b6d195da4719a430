"""Chinese or English for operator-facing command output: Chinese when LANG/LC_ALL say zh.

Our operators are Chinese-speaking marketing people; developers and CI usually run with an
English (or C) locale. ``LC_ALL`` wins over ``LANG``, as in every POSIX tool.
"""

from __future__ import annotations

import os


def ui_language(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    locale = env.get("LC_ALL") or env.get("LANG") or ""
    return "zh" if locale.lower().startswith("zh") else "en"


def say(zh: str, en: str, language: str | None = None) -> str:
    """The ``zh`` text for a Chinese locale (or ``language='zh'``), else the ``en`` one."""
    return zh if (language or ui_language()) == "zh" else en
