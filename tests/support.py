"""Shared fixtures: a scriptable local HTTP server for transport-level client tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from aioedge import (
    Credentials,
    CredentialsError,
    EdgeClient,
    RetryPolicy,
    URICredentialsProvider,
)
from aioedge._retry import set_testing
from aioedge.testing import Emulator, FakeClock

TEST_CREDS = Credentials("test-akid", "test-secret-value-123")

Handler = Callable[["Recorded"], web.StreamResponse | Any]


@dataclass
class Recorded:
    params: dict[str, str]
    peer: tuple[str, int]
    headers: dict[str, str]


@dataclass
class ScriptServer:
    """An aiohttp server on 127.0.0.1 whose answers a test scripts."""

    endpoint: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)  # consumed in order; then `default`
    default: Any = None

    @property
    def connections(self) -> set[tuple[str, int]]:
        return {r.peer for r in self.requests}

    def params(self, i: int = -1) -> dict[str, str]:
        return self.requests[i].params


def ok_body(**extra: Any) -> dict[str, Any]:
    return {"RequestId": "REQ-OK", "Success": True, "Code": "Success", **extra}


@pytest.fixture
async def script_server() -> AsyncIterator[ScriptServer]:
    srv = ScriptServer(default=ok_body(Data={}))

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.text()
        params = dict(parse_qsl(body, keep_blank_values=True)) if body else dict(request.query)
        peer = request.transport.get_extra_info("peername") if request.transport else ("?", 0)
        srv.requests.append(Recorded(params, tuple(peer[:2]), dict(request.headers)))
        answer = srv.answers.pop(0) if srv.answers else srv.default
        if callable(answer):
            answer = await answer(request) if _is_coro_fn(answer) else answer(request)
        if isinstance(answer, web.StreamResponse):
            return answer
        if isinstance(answer, tuple):
            status, payload = answer
        else:
            status, payload = 200, answer
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield srv
    finally:
        await runner.cleanup()


def _is_coro_fn(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


async def started_deployment(client: EdgeClient, name: str, gateway: str = "gw") -> tuple[str, str]:
    """An instance named ``name`` with a gateway, and its deployment just created."""
    inst = (await client.call("CreateEdgeInstance", {"Name": name}))["InstanceId"]
    await client.call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": gateway})
    created = await client.call(
        "CreateEdgeInstanceDeployment", {"InstanceId": inst, "Type": "deploy"}
    )
    return inst, created["DeploymentId"]


async def a_call_whose_expired_key_cannot_be_renewed(hooks: object) -> None:
    """With ``hooks`` told: one call that succeeds, then one the service refuses as expired
    (the key revoked early) whose renewal fails (the credentials URI stays unavailable: a
    transient CredentialsError, retried once more under a policy of three attempts, with no
    backoff), so it ends with a CredentialsError.  The emulator's identity side, over real
    sockets."""
    clock = FakeClock(1_800_000_000.0)
    async with Emulator(clock=clock, quotas=False) as emu:
        provider = URICredentialsProvider(emu.credentials_uri, clock=clock)
        client = EdgeClient(
            credentials=provider,
            endpoint=emu.endpoint,
            rate_limit=False,
            clock=clock,
            hooks=[hooks],
            retry=RetryPolicy(max_attempts=3),
        )
        async with client:
            await client.call("QueryEdgeInstance", {"PageSize": 10, "CurrentPage": 1})
            emu.identity.expire_keys()
            emu.identity.set_fault("unavailable")
            with set_testing(True), pytest.raises(CredentialsError) as caught:
                await client.call("QueryEdgeInstance", {"PageSize": 10, "CurrentPage": 1})
            assert caught.value.transient
