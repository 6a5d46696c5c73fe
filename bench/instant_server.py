"""A local HTTP/1.1 server that answers every request at once with a fixed success body.

The floor for the overhead benchmarks: raw asyncio protocol, keep-alive, no signature
checks, no parsing beyond the header block and ``Content-Length``.  It runs in its own
process so its CPU time never counts against the client being measured.

    python bench/instant_server.py --port 0     # prints {"endpoint": "http://127.0.0.1:N"}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

from aioedge._catalog import get_operation

_BODY = json.dumps(get_operation("GetEdgeInstance").sample_response, separators=(",", ":")).encode(
    "utf-8"
)
_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json;charset=utf-8\r\n"
    b"x-acs-request-id: 3CC6E7A3-6B5F-4A6E-9E1C-4D57A1F0B8A2\r\n"
    b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n"
)
_KEEP = _HEAD + b"Connection: keep-alive\r\n\r\n" + _BODY
_CLOSE = _HEAD + b"Connection: close\r\n\r\n" + _BODY


class _Instant(asyncio.Protocol):
    """Answers each complete request as soon as its body has arrived."""

    def __init__(self) -> None:
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data
        transport = self._transport
        assert transport is not None
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            length = 0
            pos = head.find(b"content-length:")
            if pos >= 0:
                stop = head.find(b"\r\n", pos)
                length = int(head[pos + 15 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buf) < total:
                break
            buf = buf[total:]
            if b"connection: close" in head:
                transport.write(_CLOSE)
                transport.close()
                buf = b""
                break
            transport.write(_KEEP)
        self._buf = buf


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Instant, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"endpoint": f"http://{host}:{bound}", "pid": os.getpid()}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
