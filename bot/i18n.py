"""The operator's language: every CLI message, help text and error through gettext catalogs.

Our operators read Chinese first; developers, CI and logs usually run in an English or C
locale. English is the source language: a message is marked with :func:`gettext` (``_``) and
its English text is the msgid, so English output is the code's own text. Translations live in
``bot/locale/<lang>/LC_MESSAGES/brandbot.po`` (compiled to ``.mo``, shipped in the package;
docs/i18n.md has the ``pybabel`` workflow): ``zh_CN`` (Simplified) and ``zh_TW``
(Traditional, for zh_TW/zh_HK locales).

The language is chosen once per command run: ``--lang`` on the ``brandbot`` group (or a
command's own ``--lang``), else the locale — LC_ALL, then LC_MESSAGES, then LANG, the first
one set wins, as in every POSIX tool (``zh_CN.UTF-8`` → zh_CN, ``zh_TW``/``zh_HK`` → zh_TW,
anything else → English). Until a command chooses, messages are English (what library code,
tests and the daemon's logs expect).

Click builds its help texts when bot/cli.py is imported, before any language is known, so
:func:`localize_commands` gives each command and option a ``help`` that translates when the
help is printed. Click's own words ("Usage:", "Options:",
"Error: …") come from its own small catalog (``click.po``, the same folders): click ships no
translations and calls the process-wide ``gettext``, so :func:`_install_click_catalog` points
the ``_`` of click's modules at ours.
"""

from __future__ import annotations

import gettext as _gettext
import inspect
import os
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path

DOMAIN = "brandbot"
CLICK_DOMAIN = "click"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "zh_CN", "zh_TW")
LANG_CHOICES = ("zh", "zh_CN", "zh_TW", "en")  # what --lang accepts ("zh" is zh_CN)
_TRADITIONAL = ("zh_tw", "zh_hk", "zh_mo", "zh_hant")

_state = {"language": "en"}


def normalize(value: str | None) -> str:
    """``zh_CN``, ``zh_TW`` or ``en`` for a locale or language name (``zh_HK.UTF-8`` → zh_TW)."""
    name = (value or "").strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    if not name.startswith("zh"):
        return "en"
    return "zh_TW" if name.startswith(_TRADITIONAL) else "zh_CN"


def locale_language(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale asks for: LC_ALL, else LC_MESSAGES, else LANG (first set)."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return normalize(value)
    return "en"


def set_language(language: str | None = None) -> str:
    """Choose the language of messages (None: from the locale); returns it (zh_CN/zh_TW/en)."""
    _state["language"] = normalize(language) if language else locale_language()
    return _state["language"]


def language() -> str:
    """The language chosen for this run: ``zh_CN``, ``zh_TW`` or ``en``."""
    return _state["language"]


def is_chinese(lang: str | None = None) -> bool:
    return (normalize(lang) if lang else _state["language"]) != "en"


def short_language(lang: str | None = None) -> str:
    """``zh`` or ``en``: for helpers that only tell Chinese from English (fan replies)."""
    return "zh" if is_chinese(lang) else "en"


@cache
def translations(lang: str, domain: str = DOMAIN) -> _gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English: none, msgids are the text)."""
    if lang == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(domain, LOCALE_DIR, languages=[lang], fallback=True)


def gettext(message: str) -> str:
    """``message`` in the chosen language (English: itself)."""
    return translations(_state["language"]).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_state["language"]).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the chosen language, for a msgid that needs a context to translate."""
    return translations(_state["language"]).pgettext(context, message)


def columns(*names: str) -> list[str]:
    """Table column names in the chosen language (catalog context ``column``; bot/i18n_extract
    extracts the literal names given here)."""
    return [pgettext("column", name) for name in names]


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the conventional name of the no-op marker
    """Mark a message for extraction without translating it here (tables of texts)."""
    return message


def pick(en: str, zh: str) -> str:
    """Compatibility for texts written as an (English, Chinese) pair outside the catalog:
    the catalog's translation of ``en`` when it has one, else ``zh`` (as Traditional for
    zh_TW), else ``en``. New code marks ``en`` with ``_`` instead."""
    lang = _state["language"]
    if lang == "en":
        return en
    found = translations(lang).gettext(en)
    if found != en:
        return found
    return to_traditional(zh) if lang == "zh_TW" else zh


def to_traditional(text: str) -> str:
    """Simplified → Traditional (Taiwan phrases), with OpenCC (a dependency already)."""
    return _opencc().convert(text)


@lru_cache(maxsize=1)
def _opencc():
    import opencc

    return opencc.OpenCC("s2twp")


# -- click: help texts built at import time ----------------------------------------------------


class _TranslatedHelp:
    """Mixed into a command's or option's class by :func:`localize_commands`: ``help`` is
    stored as its msgid and read back translated, as a real ``str`` (click runs regexes and
    string methods on it), in the language chosen by the time it is shown."""

    __slots__ = ()  # no layout of its own: an existing object's class can become this

    @property
    def help(self) -> str | None:
        msgid = self.__dict__.get("_help_msgid")
        if not msgid:
            return msgid
        found = gettext(msgid)  # click's own options (--version) are in click's catalog
        return found if found != msgid else _click_gettext(msgid)

    @help.setter
    def help(self, value: str | None) -> None:
        self.__dict__["_help_msgid"] = help_msgid(value) if value else value


class _TranslatedCommandHelp(_TranslatedHelp):
    """Also the one-line summary in command lists: None in English (click computes it from
    the help as before); in Chinese the first sentence of the translation (click's summary
    cuts at ". " and would keep a whole Chinese paragraph)."""

    __slots__ = ()

    @property
    def short_help(self) -> str | None:
        own = self.__dict__.get("_short_help")
        if own is not None or _state["language"] == "en":
            return own
        msgid = self.__dict__.get("_help_msgid")
        translated = gettext(msgid) if msgid else ""
        if not translated or translated == msgid:
            return None
        return _summary(translated)

    @short_help.setter
    def short_help(self, value: str | None) -> None:
        self.__dict__["_short_help"] = value


SUMMARY_WIDTH = 50  # terminal columns of a command's summary in a Chinese command list


def _summary(translated: str) -> str:
    """The first sentence; when too wide, its longest start that ends at a clause mark
    (，：、（) and fits, else cut with …"""
    from bot.tables import display_width, truncate

    first = " ".join(re.split(r"\n\s*\n", translated.strip(), maxsplit=1)[0].split())
    text = re.split(r"(?<=[。；！？])", first, maxsplit=1)[0].rstrip("。；！？")
    if display_width(text) <= SUMMARY_WIDTH:
        return text
    cuts = [i for i in (m.start() for m in re.finditer(r"[，：、（]", text))
            if i >= 4 and display_width(text[:i]) <= SUMMARY_WIDTH
            and text[:i].count("（") == text[:i].count("）")]  # not inside a bracket
    return text[:cuts[-1]] if cuts else truncate(text, SUMMARY_WIDTH)


@cache
def _translated_class(cls: type, mixin: type) -> type:
    return type(cls.__name__, (cls, mixin), {"__module__": cls.__module__})


def help_msgid(text: str) -> str:
    """The msgid of a help text: as click shows it (``inspect.cleandoc``), docstrings too."""
    return inspect.cleandoc(text)


def _translate_help_of(obj, mixin: type) -> None:
    if isinstance(obj, _TranslatedHelp):
        return
    values = {name: obj.__dict__.pop(name) for name in ("help", "short_help")
              if name in obj.__dict__}
    obj.__class__ = _translated_class(type(obj), mixin)
    for name, value in values.items():
        setattr(obj, name, value)


def localize_commands(command) -> None:
    """Make the help of ``command``, its options and its subcommands translate when shown."""
    import click

    _translate_help_of(command, _TranslatedCommandHelp)
    for param in command.params:
        if "help" in param.__dict__:
            _translate_help_of(param, _TranslatedHelp)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            localize_commands(sub)


def all_help_texts(command) -> list[str]:
    """Every help msgid under ``command`` (the tests check each has a translation)."""
    import click

    found = [command.__dict__.get("_help_msgid")]
    found += [p.__dict__.get("_help_msgid") for p in command.params]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found += all_help_texts(sub)
    return [text for text in found if text]


def _click_gettext(message: str) -> str:
    return translations(_state["language"], CLICK_DOMAIN).gettext(message)


def _click_ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_state["language"], CLICK_DOMAIN).ngettext(singular, plural, n)


def _install_click_catalog() -> None:
    """Click calls ``gettext.gettext`` (the process-wide domain, never loaded by us); its
    modules' ``_``/``ngettext`` then read ours, which is click.po for the chosen language."""
    import importlib

    for name in ("core", "exceptions", "formatting", "decorators", "types", "parser",
                 "termui", "utils"):
        try:
            module = importlib.import_module(f"click.{name}")
        except ImportError:  # pragma: no cover - a click without that module
            continue
        if hasattr(module, "_"):
            module._ = _click_gettext
        if hasattr(module, "ngettext"):
            module.ngettext = _click_ngettext


# -- click: help text wraps by terminal columns (a CJK character takes two) ----------------------

_WIDE = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_TOKENS = re.compile(f"[{_WIDE}]|[^\\s{_WIDE}]+|\\s+")
_NO_LINE_START = set("，。、；：？！）」』》〉】”’,.;:?!)")


def _has_wide(text: str) -> bool:
    return re.search(f"[{_WIDE}]", text) is not None


def _join_lines(lines: list[str]) -> str:
    """A paragraph's lines as one: a space between two words, none next to a CJK character."""
    out = ""
    for line in lines:
        if out and not (_has_wide(out[-1]) or _has_wide(line[0])):
            out += " "
        out += line
    return out


def _fill(text: str, width: int, first: str, rest: str) -> str:
    from bot.tables import display_width

    lines, line, used, prefix, space = [], "", 0, first, False
    for token in _TOKENS.findall(text):
        if token.isspace():
            space = bool(line)
            continue
        gap = 1 if space else 0
        size = display_width(token)
        room = width - display_width(prefix)
        if line and used + gap + size > room and token not in _NO_LINE_START:
            lines.append(prefix + line)
            prefix, line, used = rest, token, size
        else:
            line, used = line + " " * gap + token, used + gap + size
        space = False
    if line:
        lines.append(prefix + line)
    return "\n".join(lines)


def _wrap_text(text: str, width: int = 78, initial_indent: str = "",
               subsequent_indent: str = "", preserve_paragraphs: bool = False) -> str:
    """click's ``wrap_text`` for Chinese: widths in terminal columns, lines broken between CJK
    characters (never before a closing mark), no space where a line break joined two of them.
    In English (even a help with a Chinese line) click's own function wraps, as before."""
    if _state["language"] == "en" or not _has_wide(text):
        return _click_wrap_text(text, width, initial_indent, subsequent_indent,
                                preserve_paragraphs)
    text = text.expandtabs()
    if not preserve_paragraphs:
        return _fill(_join_lines(text.splitlines() or [""]), width, initial_indent,
                     subsequent_indent)
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0] == "\b":
            out.append("\n".join(subsequent_indent + line for line in lines[1:]))
        else:
            out.append(_fill(_join_lines(lines), width, initial_indent, subsequent_indent))
    return "\n\n".join(out)


def _install_click_wrapping() -> None:
    global _click_wrap_text
    import click.formatting

    if click.formatting.wrap_text is not _wrap_text:
        _click_wrap_text = click.formatting.wrap_text
        click.formatting.wrap_text = _wrap_text


_click_wrap_text = None
_install_click_catalog()
_install_click_wrapping()


def lang_option(**attrs):
    """``--lang`` for a command or group, taking effect as soon as it is parsed (``--lang zh
    --help`` is Chinese). Without it the locale decides, unless ``brandbot --lang`` chose
    already. The language before the command is restored when its context closes, so a
    command run in-process (tests, CliRunner) does not change later messages; under the
    ``brandbot`` group that group does it, after click has shown any usage error."""
    import click

    def choose(ctx, param, value):
        chosen = ctx.meta.get(_CHOSEN)
        if value or not chosen:
            if not getattr(ctx.find_root().command, "restores_language", False):
                previous = language()  # run on its own (tests): put it back when done
                ctx.call_on_close(lambda: set_language(previous))
            set_language(value)
        if value:
            ctx.meta[_CHOSEN] = True
        return value

    attrs.setdefault("help", N_("Language of the messages: zh (zh_CN), zh_TW or en "
                                "(default: from LC_ALL/LC_MESSAGES/LANG)."))
    return click.option("--lang", type=click.Choice(LANG_CHOICES),
                        is_eager=True, callback=choose, **attrs)


_CHOSEN = "bot.i18n.language_chosen"
