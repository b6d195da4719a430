"""The HTTP load generator ``serve_load.py`` and ``wechat_load.py`` share.

C keep-alive connections on 127.0.0.1, each sending one request, reading the whole response
(Content-Length or chunked) and sending the next, until a deadline. Raw asyncio streams rather
than an HTTP client library: the client shares the two cores with the server it measures, and
a library's own per-request work would be measured as the server's latency.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

# (connection number, request number on it) -> the complete request bytes
NextRequest = Callable[[int, int], bytes]
# (status line, body) -> None if the answer is right, else a short description
Check = Callable[[bytes, bytes], str | None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The status line and the body of one HTTP/1.1 response."""
    status = await reader.readline()
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = b""
    while True:
        size = int((await reader.readline()).strip(), 16)
        body += (await reader.readexactly(size + 2))[:-2]
        if size == 0:
            return status, body


async def drive(port: int, connections: int, duration: float, next_request: NextRequest,
                check: Check) -> tuple[list[float], list[str], float]:
    """Latencies (s, sorted), the failed checks, and the elapsed time of one run."""
    lat: list[float] = []
    bad: list[str] = []
    start = time.perf_counter()
    stop_at = start + duration

    async def connection(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while time.perf_counter() < stop_at:
                n += 1
                request = next_request(number, n)
                t0 = time.perf_counter()
                writer.write(request)
                status, body = await read_response(reader)
                lat.append(time.perf_counter() - t0)
                problem = check(status, body)
                if problem is not None:
                    bad.append(problem)
        finally:
            writer.close()

    await asyncio.gather(*(connection(i) for i in range(connections)))
    elapsed = time.perf_counter() - start
    lat.sort()
    return lat, bad, elapsed


def percentile_ms(sorted_lat: list[float], p: float) -> float:
    """The p-th percentile of sorted latencies in seconds, in milliseconds."""
    return sorted_lat[min(len(sorted_lat) - 1, int(p / 100 * len(sorted_lat)))] * 1000
