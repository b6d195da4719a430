"""The daemon's HTTP protocol: a response's head and body leave in one write."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.http_protocol import CoalescingHttpProtocol, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data):
        self.writes.append(bytes(data))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def get_write_buffer_size(self):
        return 0


def test_writes_of_one_callback_are_sent_together_and_close_sends_what_is_left():
    async def scenario():
        loop = asyncio.get_running_loop()
        raw = RecordingTransport()
        transport = CoalescingTransport(raw, loop)
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"hello")
        assert raw.writes == [] and transport.get_write_buffer_size() == 24
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]
        transport.write(b"bye")
        transport.close()
        assert raw.writes[-1] == b"bye" and raw.closed
        assert transport.is_closing()  # everything else is the real transport's

    asyncio.run(scenario())


class CountingProtocol(CoalescingHttpProtocol):
    """The daemon's protocol, counting the writes that reach the socket's transport."""

    writes: list[bytes] = []

    def connection_made(self, transport):
        outer = self

        class Counting:
            def write(self, data):
                outer.writes.append(bytes(data))
                transport.write(data)

            def __getattr__(self, name):
                return getattr(transport, name)

        super().connection_made(Counting())


def test_uvicorn_serves_whole_responses_over_it_each_in_one_write():
    async def hello(request):
        return PlainTextResponse("你好 " * 1000)

    app = Starlette(routes=[Route("/", hello)])
    CountingProtocol.writes = []

    async def scenario():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, http=CountingProtocol, log_config=None,
                                               lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        bodies = []
        for _ in range(3):  # keep-alive: several responses on one connection
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            bodies.append((await reader.readexactly(length)).decode())
        writer.close()
        server.should_exit = True
        await serving
        return bodies

    assert asyncio.run(scenario()) == ["你好 " * 1000] * 3
    # Head and body of each response reached the socket together: one write per response.
    writes = CountingProtocol.writes
    assert len(writes) == 3 and all(w.startswith(b"HTTP/1.1 200") for w in writes)
    assert all(w.endswith(("你好 " * 1000).encode()) for w in writes)
