"""An identity service that hiccups: a transient CredentialsError is retried, not fatal.

When the key runs out while STS (or the ECS metadata service, or a credentials URI) is
unreachable, failing or throttling, nothing can be sent to Link IoT Edge: the call is
retried like a 503 refused before execution (a mutating one too) and a watch polls again.
Against the emulator's identity side over real sockets; time is a ``FakeClock``.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import anyio
import pytest

from aioedge import (
    CallInfo,
    CredentialsError,
    EdgeClient,
    RamRoleArnProvider,
    URICredentialsProvider,
)
from aioedge._retry import set_testing
from aioedge._sts import HttpAnswer, hiccup, parse_credentials_answer, parse_sts_answer
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import WatchRetry

ROLE = "acs:ram::1234567890:role/edge-deployer"
QUERY = ("QueryEdgeInstance", {"PageSize": 10, "CurrentPage": 1})


def fake_clock() -> FakeClock:
    return FakeClock(float(int(time.time())))  # whole seconds: STS writes them


def answer(status: int, code: str | None) -> HttpAnswer:
    body = {"RequestId": "R-1"} if code is None else {"RequestId": "R-1", "Code": code}
    return HttpAnswer(status=status, body=json.dumps(body).encode())


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (503, "ServiceUnavailable", True),
        (500, "InternalError", True),
        (502, None, True),
        (429, None, True),
        (400, "Throttling.User", True),
        (400, "InvalidParameter", False),
        (403, "NoPermission", False),
        (404, "EntityNotExist.Role", False),
    ],
)
def test_which_refusals_are_the_identity_services_passing_trouble(
    status: int, code: str | None, transient: bool
) -> None:
    assert hiccup(status, code or f"HTTP{status}") is transient
    for parse in (parse_sts_answer, parse_credentials_answer):
        with pytest.raises(CredentialsError) as info:
            parse(answer(status, code), source="STS AssumeRole")
        assert info.value.transient is transient
        assert info.value.retry_after is None  # a provider's backoff is the provider's


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_identity_service_is_transient_with_the_providers_backoff() -> None:
    clock = FakeClock(1_800_000_000.0)
    provider = URICredentialsProvider(f"http://127.0.0.1:{free_port()}/creds", clock=clock)
    with pytest.raises(CredentialsError) as first:
        await provider.get_credentials()
    assert first.value.code == "ConnectionError" and first.value.transient
    assert first.value.retry_after == 1.0  # no key at all: the first backoff, 1 s
    clock.advance(0.25)
    with pytest.raises(CredentialsError) as again:  # within the backoff: not asked again
        await provider.get_credentials()
    assert again.value.transient and again.value.retry_after == pytest.approx(0.75)
    assert provider.failures == 1


class Retries:
    """A hook that records why each retry is made and moves the fake clock past the wait
    the error asked for (the client's own sleep is zero under ``set_testing``)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.reasons: list[str | None] = []

    def on_retry(self, info: CallInfo) -> None:
        self.reasons.append(info.reason)
        self.clock.advance(2.0)


async def test_a_passing_sts_outage_at_expiry_is_retried_for_a_mutating_call() -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False) as emu:
        provider = RamRoleArnProvider(
            ROLE, source=emu.credentials, sts_endpoint=emu.sts_endpoint, clock=clock
        )
        hook = Retries(clock)
        client = EdgeClient(
            credentials=provider,
            endpoint=emu.endpoint,
            rate_limit=False,
            clock=clock,
            hooks=[hook],
        )
        async with client:
            await client.call(*QUERY)
            # The key is refused as expired just as STS answers 503 once.
            emu.identity.expire_keys()
            emu.identity.set_fault("unavailable", times=1)
            with set_testing(True):
                body = await client.call("CreateEdgeInstance", {"Name": "through-the-outage"})
            assert body["Success"] is True
            created = [e for e in emu.executions if e.action == "CreateEdgeInstance"]
            assert len(created) == 1  # run once: neither refusal ran it
            assert hook.reasons == ["expired_token", "credentials"]
            assert provider.failures == 1 and provider.refreshes == 2
            assert emu.identity.fault is None  # the outage passed by itself

            # An outage that lasts: the call ends with the transient error, nothing ran.
            emu.identity.expire_keys()
            emu.identity.set_fault("unavailable")
            hook.reasons.clear()
            with set_testing(True), pytest.raises(CredentialsError) as info:
                await client.call("CreateEdgeInstance", {"Name": "never-sent"})
            assert info.value.transient and info.value.code == "ServiceUnavailable"
            assert hook.reasons == ["expired_token"] + ["credentials"] * 3  # five attempts
            names = [e.params.get("Name") for e in emu.executions]
            assert "never-sent" not in names


async def test_a_watch_polls_through_a_passing_sts_outage() -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, stage_seconds=1.0, seed=5) as emu:
        provider = RamRoleArnProvider(
            ROLE, source=emu.credentials, sts_endpoint=emu.sts_endpoint, clock=clock
        )
        client = EdgeClient(
            credentials=provider, endpoint=emu.endpoint, rate_limit=False, clock=clock
        )
        async with client:
            inst = (await client.call("CreateEdgeInstance", {"Name": "w"}))["InstanceId"]
            await client.call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": "wgw"})
            dep = (
                await client.call(
                    "CreateEdgeInstanceDeployment", {"InstanceId": inst, "Type": "deploy"}
                )
            )["DeploymentId"]

            async def sleep(seconds: float) -> None:
                clock.advance(seconds)  # the watch's waits move time on
                await anyio.sleep(0)

            watcher = client.watch_deployment(
                inst,
                dep,
                poll_interval=0.1,
                max_poll_interval=0.5,
                retry=WatchRetry(initial=0.01, max_errors=3),
                clock=clock,
                wall_clock=clock,
                sleep=sleep,
            )
            events: list[Any] = []
            with set_testing(True):
                async for event in watcher:
                    events.append(event)
                    if len(events) == 1:  # the key runs out just as STS fails once
                        emu.identity.expire_keys()
                        emu.identity.set_fault("unavailable", times=1)
    errors = [e for e in events if e.kind == "poll_error"]
    assert len(errors) == 1, [e.kind for e in events]
    (error,) = errors
    assert error.error == "CredentialsError"
    assert (error.message or "").startswith(f"STS AssumeRole ({ROLE}): ServiceUnavailable")
    assert error.retry_in == 1.0  # the provider's backoff, above the watch's own 0.01 s
    assert events[-1].kind == "final" and events[-1].outcome == "succeeded"
    assert provider.failures == 1 and provider.refreshes == 2


async def test_the_emulators_identity_fault_can_pass_by_itself() -> None:
    clock = fake_clock()
    async with Emulator(quotas=False, clock=clock) as emu:
        with pytest.raises(ValueError, match="times"):
            emu.identity.set_fault("unavailable", times=0)
        emu.identity.set_fault("unavailable", times=2)
        provider = URICredentialsProvider(emu.credentials_uri, clock=clock)
        for _ in range(2):
            assert emu.identity.uri()[0] == 503
        assert emu.identity.fault is None
        assert (await provider.get_credentials()).access_key_id
