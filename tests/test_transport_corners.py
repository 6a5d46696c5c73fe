"""Transport corners: those a real server cannot provoke reliably, via aioresponses; a body
cut off on the wire, via a raw asyncio server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aioresponses import aioresponses

from aioedge import EdgeClient, InvalidResponseError, RetryPolicy, TransportError
from aioedge._protocol import PreparedRequest
from aioedge._transport import what_failed

from .support import TEST_CREDS

ENDPOINT = "https://iot.cn-shanghai.aliyuncs.com"
URL = re.compile(r"^https://iot\.cn-shanghai\.aliyuncs\.com/.*$")
FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


def client() -> EdgeClient:
    return EdgeClient(credentials=TEST_CREDS, rate_limit=False, retry=FAST)


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
    ],
    ids=["disconnected", "truncated-payload", "reset"],
)
async def test_ambiguous_failure_never_repeats_a_mutating_call(exc: Exception) -> None:
    with aioresponses() as mock:
        mock.post(URL, exception=exc, repeat=True)
        async with client() as c:
            with pytest.raises(TransportError) as info:
                await c.call("BindDriverToEdgeInstance", {"InstanceId": "i", "DriverId": "d"})
        calls = sum(len(v) for v in mock.requests.values())
    assert info.value.maybe_executed is True
    assert calls == 1


async def test_ambiguous_failure_retries_a_read_until_attempts_run_out() -> None:
    # (answers with a body are covered against real servers in test_client.py; this
    # aioresponses release cannot build response objects for the installed aiohttp)
    with aioresponses() as mock:
        mock.post(URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        async with client() as c:
            with pytest.raises(TransportError) as info:
                await c.call("GetEdgeInstance", {"InstanceId": "x"})
        calls = sum(len(v) for v in mock.requests.values())
    assert calls == 3 and info.value.attempts == 3


async def test_transport_error_text_carries_no_signature() -> None:
    with aioresponses() as mock:
        mock.get(URL, exception=aiohttp.ClientOSError(104, "reset for https://x/?Signature=abc"))
        async with EdgeClient(
            credentials=TEST_CREDS, rate_limit=False, retry=None, method="GET"
        ) as c:
            with pytest.raises(TransportError) as info:
                await c.call("GetEdgeInstance", {"InstanceId": "x"})
    assert "Signature=abc" not in str(info.value)


# --------------------------------------------------------------------------- cut-off bodies


@dataclass
class RawServer:
    """Answers every request with ``head`` + ``body`` and then closes the connection."""

    head: bytes = b""
    body: bytes = b""
    requests: int = 0
    endpoint: str = ""
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    srv = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            srv.bodies.append(await reader.readexactly(int(length[1]) if length else 0))
            srv.requests += 1
            writer.write(srv.head + srv.body)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    srv.endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield srv
    finally:
        server.close()
        await server.wait_closed()


def _cut_off(srv: RawServer, status: str, body: bytes, *, announced: int) -> None:
    srv.body = body
    srv.head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"x-acs-request-id: REQ-CUT\r\nContent-Length: {announced}\r\n\r\n"
    ).encode()


PARTIAL = b'{"RequestId": "REQ-CUT", "Success": true, "Data": {"InstanceId": "i-123'


async def test_cut_off_body_carries_status_and_snippet_and_is_not_repeated(
    raw_server: RawServer,
) -> None:
    _cut_off(raw_server, "200 OK", PARTIAL, announced=500)
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=raw_server.endpoint, rate_limit=False, retry=FAST
    ) as c:
        with pytest.raises(InvalidResponseError) as info:
            await c.call("BindDriverToEdgeInstance", {"InstanceId": "i", "DriverId": "d"})
    err = info.value
    assert err.http_status == 200 and err.request_id == "REQ-CUT"
    assert f"after {len(PARTIAL)} of 500 bytes" in str(err)
    assert '"InstanceId": "i-123' in str(err)  # a snippet of what arrived
    assert err.action == "BindDriverToEdgeInstance"
    assert raw_server.requests == 1  # it may have run: a mutating call is never repeated
    assert b"test-secret-value-123" not in raw_server.bodies[0]


async def test_cut_off_body_that_parses_is_still_not_a_success(raw_server: RawServer) -> None:
    # The bytes that arrived are valid JSON with Success true, but the wire promised more.
    complete = json.dumps({"RequestId": "R", "Success": True, "Data": {}}).encode()
    _cut_off(raw_server, "200 OK", complete, announced=len(complete) + 100)
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=raw_server.endpoint, rate_limit=False, retry=FAST
    ) as c:
        with pytest.raises(InvalidResponseError) as info:
            await c.call("GetEdgeInstance", {"InstanceId": "x"})
    assert info.value.http_status == 200
    assert raw_server.requests == 3  # read-only: retried until the attempts ran out
    assert info.value.attempts == 3


async def test_cut_off_503_body_does_not_count_as_not_executed(raw_server: RawServer) -> None:
    # A complete 503 answer is "refused before the work started"; a cut-off one proves nothing.
    _cut_off(raw_server, "503 Service Unavailable", b"<html>unavail", announced=300)
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=raw_server.endpoint, rate_limit=False, retry=FAST
    ) as c:
        with pytest.raises(InvalidResponseError) as info:
            await c.call("CreateEdgeInstance", {"Name": "n1"})
    assert info.value.http_status == 503 and "<html>unavail" in str(info.value)
    assert raw_server.requests == 1


def _connector_error() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


@pytest.mark.parametrize(
    ("exc", "message", "maybe_executed"),
    [
        (_connector_error(), "cannot connect to api.test: ", False),
        (aiohttp.ConnectionTimeoutError(), "timed out connecting to api.test", False),
        (aiohttp.ServerTimeoutError(), "GetEdgeInstance timed out waiting for the answer", True),
        (asyncio.TimeoutError(), "GetEdgeInstance timed out waiting for the answer", True),
        (
            aiohttp.ServerDisconnectedError(),
            "GetEdgeInstance: connection failed after sending (ServerDisconnectedError: ",
            True,
        ),
    ],
    ids=["refused", "connect-timeout", "read-timeout", "asyncio-timeout", "disconnected"],
)
def test_what_failed_says_whether_the_service_may_have_run_it(
    exc: BaseException, message: str, maybe_executed: bool
) -> None:
    """The one table from aiohttp's failures to ours: a connection never made ran nothing; a
    failure once the request may have left may have run it (a mutating call is not repeated)."""
    request = PreparedRequest("GetEdgeInstance", "POST", "https://api.test/", b"", {}, "n")
    text, maybe = what_failed(exc, request)
    assert text.startswith(message)
    assert maybe is maybe_executed
