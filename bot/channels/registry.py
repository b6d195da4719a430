"""The channels brandbot knows, in the order they are shown: one list everything iterates.

``Settings`` (a section and short environment names per channel), the daemon (construction,
routes, banner, enable hints), the broadcast planner (outlets and reach rules, through
``Settings.channel_sections``) and campaign links all read this list; none of them names a
channel. Importing it is cheap: each kind imports its platform library only when it builds an
adapter or an outlet.

A new channel is one :class:`~bot.channels.contract.ChannelKind` added to :data:`BUILTIN`
(docs/channels/adding-a-channel.md), or :func:`register`-ed at run time (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.channels.contract import ChannelKind
from bot.channels.telegram_kind import TelegramKind
from bot.channels.web_kind import WebKind
from bot.channels.wechat_kind import WeChatKind

BUILTIN: tuple[ChannelKind, ...] = (WebKind(), TelegramKind(), WeChatKind())

_kinds: dict[str, ChannelKind] = {kind.name: kind for kind in BUILTIN}
_listeners: list[Callable[[], None]] = []


def kinds() -> list[ChannelKind]:
    """Every registered channel kind, built-ins first."""
    return list(_kinds.values())


def names() -> list[str]:
    return list(_kinds)


def get(name: str) -> ChannelKind:
    """The kind called ``name``; KeyError naming the known ones otherwise."""
    try:
        return _kinds[name]
    except KeyError:
        raise KeyError(f"no channel {name!r}; known: {', '.join(_kinds)}") from None


def register(kind: ChannelKind) -> None:
    """Add a channel kind (the settings model is rebuilt to accept its section)."""
    if kind.name in _kinds:
        raise ValueError(f"channel {kind.name!r} is registered already")
    _kinds[kind.name] = kind
    _changed()


def unregister(name: str) -> None:
    """Remove a channel registered with :func:`register` (the built-ins stay)."""
    if any(kind.name == name for kind in BUILTIN):
        raise ValueError(f"channel {name!r} is built in")
    if _kinds.pop(name, None) is not None:
        _changed()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every register/unregister (bot.config rebuilds ``Settings``)."""
    _listeners.append(listener)


def _changed() -> None:
    for listener in _listeners:
        listener()


def campaign_links(code: str, **targets: Any) -> dict[str, str]:
    """Where ``code`` can be put, per channel that carries codes (``targets``: ``web_url``,
    ``telegram_bot``; see :meth:`ChannelKind.campaign_link`)."""
    from bot.relations.campaigns import links

    return links(code, kinds(), targets)


def sections(settings: Any) -> list[tuple[ChannelKind, Any]]:
    """Each registered kind with its section of ``settings``."""
    return [(kind, getattr(settings, kind.name)) for kind in kinds()]

