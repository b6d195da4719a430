"""The channel contract: what a channel must say about itself, and what it must do.

A channel comes in two halves, so that reading the settings never imports a platform library:

* a :class:`ChannelKind` — light, imported whenever settings are read: the channel's name, its
  settings section (a pydantic model; ``SecretStr`` fields are its secrets), the short
  environment names it accepts (``BRANDBOT_TELEGRAM_TOKEN``), the hint printed when it is off,
  its reach rules for newsletters (:class:`Reach`), the campaign link that carries a code to a
  first contact, and three factories: the running adapter, the newsletter outlet and nothing
  else. Kinds are listed in :mod:`bot.channels.registry`; ``Settings``, the daemon, the
  broadcast planner and campaign links iterate that list instead of naming channels.
* a :class:`ChannelAdapter` — the running channel the kind builds for ``brandbot serve``: its
  Starlette routes, ``start``/``stop``, proactive ``send`` and its banner line.

docs/channels/adding-a-channel.md walks through adding one.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, SecretStr

from bot.channels.base import NotSent, RunTurn
from bot.messages import FanRef, Reply

if TYPE_CHECKING:
    from bot.relations.broadcast import Outlet
    from bot.relations.store import Store


class ChannelConfigError(ValueError):
    """A channel's settings cannot work; ``lines`` name the setting and the fix each."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class Reach:
    """When a channel may message a fan who did not just write (newsletters, operators).

    ``window``: only within this long after the fan's last message (WeChat: 48 hours), else
    skipped with ``window_reason``. ``quota``: at most this many such messages per fan message
    (WeChat: 5), else skipped with ``quota_reason``. No window and no quota: any time
    (Telegram; the web chat's outbox). The broadcast planner reads these; it names no channel.
    """

    window: timedelta | None = None
    window_reason: str = ""
    quota: int | None = None
    quota_reason: str = ""


ANY_TIME = Reach()


@dataclass(frozen=True, slots=True)
class ChannelServices:
    """What the daemon lends a channel it builds (never the daemon itself).

    ``run_turn``: one logged engine turn (metrics, commit group, turn threads). ``persona_info``:
    a persona's public card (name, languages). ``store``: the relationship log, as the fan
    directory (find a fan, mark one blocked, the outbox). ``engine``: persona lookup
    (``engine.brand(id)``) and turns outside a request (an operator's ``/done``). ``deliver``:
    send through whichever channel a fan is on (operator replies). ``write_fault``: why the log
    cannot be written now, or None. ``on_rejected``: count a refused request by HTTP status.
    ``db``: the database path (files kept beside it).
    """

    run_turn: RunTurn
    persona_info: Callable[[str], dict[str, Any]]
    store: Store
    engine: Any
    deliver: Callable[[FanRef, str, list[Reply]], Awaitable[str | None]]
    write_fault: Callable[[], str | None]
    on_rejected: Callable[[int], None]
    db: str


@runtime_checkable
class ChannelAdapter(Protocol):
    """A running channel in ``brandbot serve``."""

    name: str

    def routes(self) -> list:
        """The Starlette routes it serves (webhooks, pages); [] when it serves none."""

    async def start(self) -> None:
        """Begin receiving (open sockets, start polling); return once running. ValueError (a
        refused token, an unreachable platform) stops the daemon with its message."""

    async def stop(self) -> None:
        """Stop receiving and finish deliveries in flight."""

    async def send(self, fan: FanRef, replies: list[Reply], persona: str | None = None
                   ) -> NotSent | None:
        """Deliver messages the fan did not just ask for (operator replies, topics).

        None when all were sent or queued, else what was not sent and why (:class:`NotSent`,
        or a subclass-compatible result with ``skipped`` and ``reason``). A reply's text is
        what every channel can show; richer parts a channel cannot show are degraded to text by
        :func:`reply_texts`.
        """

    def banner(self, url: str) -> str:
        """The line ``brandbot serve`` prints at start: ``channel NAME: on, ...``."""


def reply_texts(replies: list[Reply]) -> list[str]:
    """What a text-only channel sends for ``replies``: one text each, in order.

    The place where a reply becomes plain text, so that richer replies (quick replies, images)
    added to :class:`~bot.messages.Reply` later degrade here once for every text-only channel,
    while a channel that can show them reads the reply itself. Proactive sends use it now; the
    answers to a turn (each channel's request path) still read ``reply.text`` and switch to it
    when a reply first carries more than text.
    """
    return [reply.text for reply in replies]


class ChannelKind:
    """One channel as the settings, the planner and the daemon know it (see the module doc).

    Subclasses set the class attributes and implement :meth:`create`; :meth:`outlet` and
    :meth:`campaign_link` are optional (a channel that cannot push has no outlet).
    """

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    # Short environment names, besides the nested BRANDBOT_<NAME>__<KEY>: variable -> key.
    env_aliases: ClassVar[Mapping[str, str]] = {}
    enable_hint: ClassVar[str] = ""
    # A channel served by one platform account serves one persona (the first that lists it).
    one_persona: ClassVar[bool] = False
    # Invalid values in this section are never echoed in settings errors (a pasted secret).
    mask_invalid_values: ClassVar[bool] = False
    reach: ClassVar[Reach | None] = ANY_TIME  # None: cannot push at all

    def enabled(self, section: Any) -> bool:
        """Whether ``section`` (this kind's settings) turns the channel on."""
        return bool(getattr(section, "enabled", False))

    def secret_fields(self) -> list[str]:
        """The settings keys holding secrets: the ``SecretStr`` fields of the section."""
        return [name for name, field in self.settings_model.model_fields.items()
                if _is_secret(field.annotation)]

    def secrets(self, section: Any) -> list[str]:
        """The secret values set in ``section`` (the log filter masks them)."""
        values = (getattr(section, name, None) for name in self.secret_fields())
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    def create(self, section: Any, personas: list[str],
               services: ChannelServices) -> ChannelAdapter:
        """The running adapter for ``personas`` (one of them when :attr:`one_persona`);
        :class:`ChannelConfigError` when the settings cannot work."""
        raise NotImplementedError

    def outlet(self, section: Any, store: Store, persona: str, *,
               rate: float | None = 30.0) -> Outlet | str:
        """The newsletter outlet for ``persona``, or why there is none (shown in dry runs)."""
        return f"{self.name} cannot send newsletters"

    def campaign_link(self, code: str, targets: Mapping[str, Any]) -> str | None:
        """Where ``code`` can be put on this channel (``targets``: ``web_url``,
        ``telegram_bot``...), or None when the channel carries no codes."""
        return None


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def env_alias_values(aliases: Mapping[str, str],
                     environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """The short environment names that are set: ``{key: (variable, raw value)}``.

    The one reader of ``BRANDBOT_TELEGRAM_TOKEN``-style names: the settings (bot/config.py)
    and the WeChat commands' own settings (``WeChatChannelSettings.from_env``) both use it.
    An empty variable counts as not set.
    """
    env = os.environ if environ is None else environ
    return {key: (variable, env[variable]) for variable, key in aliases.items()
            if env.get(variable)}
