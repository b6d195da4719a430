"""The Channel contract every adapter fulfils.

A channel receives platform traffic, turns it into :class:`~bot.messages.Inbound`, runs
``Engine.handle`` and delivers the replies; proactive messages (newsletters, operator replies)
go out through :meth:`Channel.send`. The engine never knows which channel it serves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.messages import FanRef, Inbound, Reply

# How a channel runs one engine turn: the daemon's (metrics, turn threads) or a test's.
RunTurn = Callable[[Inbound, str], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class NotSent:
    """Proactive messages a channel did not send, and why (the operator desk shows it)."""

    skipped: int
    reason: str


class Channel(Protocol):
    name: str

    async def start(self) -> None:
        """Begin receiving (open sockets, start polling); return once running."""

    async def stop(self) -> None:
        """Stop receiving and finish deliveries in flight."""

    async def send(self, fan: FanRef, replies: list[Reply], persona: str | None = None):
        """Deliver messages the fan did not just ask for (newsletters, operator replies).

        Returns None when all were sent or queued, or a result whose ``skipped`` (how many were
        not sent) and ``reason`` say why — :class:`NotSent`, or WeChat's ``SendResult``.
        """
