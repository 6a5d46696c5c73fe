"""Clock-skew correction: adopt the service's clock from ``Date`` and retry once, never loop.

A real HTTP server on 127.0.0.1 (ScriptServer) answers ``InvalidTimeStamp.Expired`` with a
``Date`` header.  When the service's clock keeps disagreeing, the call must fail after exactly
one correction: two requests, then the typed error.
"""

from __future__ import annotations

import asyncio
from email.utils import formatdate
from typing import Any

import pytest
from aiohttp import web

from aioedge import AuthError, EdgeClient, RetryPolicy
from aioedge._retry import set_testing

from .support import TEST_CREDS, ScriptServer

SERVER_NOW = 1_900_000_000.0


def _drifting_server() -> Any:
    """Answers every request as skewed; each Date an hour later than the last (drifting)."""
    calls = 0

    def answer(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response(
            {"Code": "InvalidTimeStamp.Expired", "Message": "skewed", "RequestId": "R"},
            status=400,
            headers={"Date": formatdate(SERVER_NOW + 3600 * calls, usegmt=True)},
        )

    return answer


def _client(srv: ScriptServer, **kw: Any) -> EdgeClient:
    return EdgeClient(
        credentials=TEST_CREDS,
        endpoint=srv.endpoint,
        rate_limit=False,
        retry=RetryPolicy(max_attempts=5),  # would retry anything retryable
        clock=lambda: 1_000_000_000.0,
        **kw,
    )


@pytest.mark.parametrize("action", ["GetEdgeInstance", "DeleteEdgeInstance"])
async def test_a_clock_that_stays_skewed_fails_after_one_correction(
    script_server: ScriptServer, action: str
) -> None:
    script_server.default = _drifting_server()
    with set_testing(True):
        async with _client(script_server) as client:
            with pytest.raises(AuthError) as info:
                # A regression would loop for ever: bound it, so it fails instead of hanging.
                await asyncio.wait_for(client.call(action, {"InstanceId": "x"}), 10)
    assert info.value.code == "InvalidTimeStamp.Expired"
    assert len(script_server.requests) == 2  # the first, then one retry with the service's clock
    first, second = script_server.requests
    assert first.params["Timestamp"].startswith("2001-09-09")
    assert second.params["Timestamp"] == "2030-03-17T18:46:40Z"  # the first Date adopted
    assert first.params["SignatureNonce"] != second.params["SignatureNonce"]


async def test_each_call_gets_its_own_single_correction(script_server: ScriptServer) -> None:
    script_server.default = _drifting_server()
    with set_testing(True):
        async with _client(script_server) as client:
            for _ in range(2):
                with pytest.raises(AuthError):
                    await asyncio.wait_for(client.call("GetEdgeInstance", {"InstanceId": "x"}), 10)
    assert len(script_server.requests) == 4  # two per call, no more
