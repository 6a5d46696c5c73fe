"""Transport corners a real server cannot provoke reliably, via aioresponses."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aioresponses import aioresponses

from aioedge import EdgeClient, RetryPolicy, TransportError

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
