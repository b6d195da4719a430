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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class CoalescingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport` (``Config(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
