"""uvicorn's HTTP protocol, sending each response in one write.

uvicorn (httptools) writes a response's status line and headers as soon as the app starts the
response, and the body in a second ``transport.write``: two system calls and, with TCP_NODELAY
(which the daemon needs, see ``Daemon._bind``), two TCP segments for every small reply. The
client wakes up twice.

:class:`CoalescingHttpProtocol` hands uvicorn a transport that gathers what is written during one
event-loop callback and sends it in one ``write`` from the next: head and body leave together,
as waitress, nginx and most servers send them. Everything else is uvicorn's own code.
``tests/test_http_protocol.py`` checks the one write per response; the gain is measured by
``bench/wechat_load.py --only bare`` against ``--only bare --bare-one-write`` (bench/README.md).

It also bounds how long a client may take to send a request (**read timeout**): uvicorn times
out idle keep-alive connections, but not a request whose headers or body never finish, so a
thousand clients trickling bodies held a thousand sockets (and file descriptors) for ever and
nobody else was served. From a connection's first byte (and each later request's) until its body
is complete (or from any byte after a response, blank lines included), the client has
``read_timeout`` seconds; then it gets ``408`` (if nothing was
answered yet) and the connection is closed. The connection cap is uvicorn's own
``limit_concurrency`` (a ``503`` over it; the daemon sets it from ``max_connections``); at the
cap, kept-alive connections waiting idle are closed first to make room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.logthrottle import limiter

__all__ = ["CoalescingHttpProtocol", "CoalescingTransport"]


class CoalescingTransport:
    """A transport whose writes within one loop callback are sent together."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what was gathered (nothing if the connection is already closing)."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        # is_closing, pause_reading, resume_reading, get_extra_info, abort, set_protocol...
        return getattr(self._transport, name)


_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"content-length: 15\r\nconnection: close\r\n\r\nRequest Timeout")
# Set in a request's scope when the read timeout ended it: not counted again as a client abort.
TIMED_OUT_KEY = "brandbot.read_timeout"


def _nothing() -> None:
    return None


class CoalescingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport` (``Config(http=...)``),
    with a read timeout when made by :meth:`with_read_timeout` (none by default)."""

    read_timeout: float | None = None
    on_read_timeout: Callable[[], None] = staticmethod(_nothing)
    on_write_timeout: Callable[[], None] = staticmethod(_nothing)
    on_over_cap: Callable[[], None] = staticmethod(_nothing)
    _read_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_limits(cls, read_timeout: float, *, on_read_timeout: Callable[[], None] | None = None,
                    on_over_cap: Callable[[], None] | None = None,
                    on_write_timeout: Callable[[], None] | None = None) -> type:
        """This protocol, closing requests not fully received within ``read_timeout`` seconds
        (and connections whose client takes no answer for as long: writing paused).
        ``on_read_timeout``, ``on_write_timeout`` and ``on_over_cap`` (a request refused with
        503 by uvicorn's ``limit_concurrency``) are called for each (metrics)."""
        return type(cls.__name__, (cls,), {
            "read_timeout": read_timeout,
            "on_read_timeout": staticmethod(on_read_timeout or _nothing),
            "on_write_timeout": staticmethod(on_write_timeout or _nothing),
            "on_over_cap": staticmethod(on_over_cap or _nothing),
        })

    def on_headers_complete(self) -> None:
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) >= limit:
            self._close_idle(len(self.connections) - limit + 1)
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            self.on_over_cap()  # uvicorn answers it 503 (its warning: see OverCapLogLimit)
        super().on_headers_complete()

    def _close_idle(self, wanted: int) -> None:
        """Close up to ``wanted`` kept-alive connections waiting idle for a next request.

        At the cap they serve nobody, yet uvicorn counts them: a new client would get 503 from
        a daemon with nothing to do (each browser keeps its connection ``timeout_keep_alive``
        seconds). Closing an idle keep-alive connection is always allowed (RFC 9112 9.6); the
        browser opens a new one. Connections with a request under way are left alone.
        """
        for other in list(self.connections):
            if wanted <= 0:
                return
            if other is self or getattr(other, "timeout_keep_alive_task", None) is None:
                continue
            other.timeout_keep_alive_task.cancel()
            other.timeout_keep_alive_task = None
            self.connections.discard(other)  # its connection_lost comes later
            other.transport.close()
            wanted -= 1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm_read_timer()

    def data_received(self, data: bytes) -> None:
        # Bytes after a response cancel uvicorn's keep-alive timeout, but blank lines before a
        # request line start no request (the parser skips them): without a timer here, one
        # CRLF kept a connection open for ever. Any byte between requests starts the clock.
        if self._read_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_read_timer()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:  # a later request on a kept-alive connection
            self._arm_read_timer()

    def on_message_complete(self) -> None:
        self._disarm_read_timer()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_timer()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        # The client takes nothing (its buffers are full): a slow reader (pipelined requests,
        # never read) would hold this connection and its request's task for ever.
        super().pause_writing()
        if self.read_timeout is not None and self._write_timer is None:
            self._write_timer = self.loop.call_later(self.read_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _write_timed_out(self) -> None:
        self._write_timer = None
        if self.transport.is_closing() and not self.flow.write_paused:
            return
        self.on_write_timeout()
        limiter.log(logging.getLogger("brandbot.http"), logging.WARNING, "write_timeout",
                    "a client took none of its answer for %g s; connection dropped",
                    self.read_timeout)
        self.transport.abort()  # close() would wait for the buffer to drain: for ever

    def _arm_read_timer(self) -> None:
        if self.read_timeout is not None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            # The request being answered arrived whole: the late one is a pipelined next
            # request. It is the one that ends: this answer still goes out, then the
            # connection closes (nothing more is read).
            cycle.keep_alive = False
            self.flow.pause_reading()
            self.on_read_timeout()
            limiter.log(logging.getLogger("brandbot.http"), logging.WARNING, "read_timeout",
                        "a client did not send its whole request within %g s; closed (408)",
                        self.read_timeout)
            return
        if cycle is not None and not cycle.response_complete:
            cycle.scope[TIMED_OUT_KEY] = True  # type: ignore[literal-required]
        if cycle is None or not cycle.response_started:
            self.transport.write(_TIMED_OUT)
        self.on_read_timeout()
        limiter.log(logging.getLogger("brandbot.http"), logging.WARNING, "read_timeout",
                    "a client did not send its whole request within %g s; closed (408)",
                    self.read_timeout)
        self.transport.close()



class OverCapLogLimit(logging.Filter):
    """On ``uvicorn.error``: its "Exceeded concurrency limit." (one per refused request) at most
    once per interval of the daemon's :data:`~bot.logthrottle.limiter`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Exceeded concurrency limit.":
            return limiter.allow("connection_cap") is not None
        return True
