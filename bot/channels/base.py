"""Small pieces every channel adapter uses: the turn runner's type, :class:`NotSent`,
:class:`Refused` and capped request bodies.

A channel receives platform traffic, turns it into :class:`~bot.messages.Inbound`, runs a turn
and delivers the replies; proactive messages (newsletters, operator replies) go out through its
``send``. The engine never knows which channel it serves. The contract itself — what a channel
declares and what its adapter does — is :mod:`bot.channels.contract`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.messages import Inbound, Reply

if TYPE_CHECKING:
    from starlette.requests import Request

# How a channel runs one engine turn: the daemon's (metrics, turn threads) or a test's.
RunTurn = Callable[[Inbound, str], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class NotSent:
    """Proactive messages a channel did not send, and why (the operator desk shows it)."""

    skipped: int
    reason: str


class Refused(Exception):
    """A request refused: ``status`` is the HTTP answer, ``reason`` says why (for the log, and
    for the web chat's JSON error). Channels raise it, or a subclass, from their checks."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(reason)


def header(request: Request, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case, as ASGI gives it), as
    ``request.headers.get`` reads it, without building a ``Headers``."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_capped_body(request: Request, cap: int) -> bytes:
    """The request body, refused (:class:`Refused`, 413) once it is over ``cap`` bytes:
    at once when its Content-Length says so, else while it streams in (chunked bodies)."""
    declared = header(request, b"content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Refused(400, "invalid Content-Length")
        if int(declared) > cap:
            raise Refused(413, f"body over {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise Refused(413, f"body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
