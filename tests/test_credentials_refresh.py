"""Keys that refresh, against the emulator's STS, ECS metadata and credentials URI.

Everything runs over real sockets on 127.0.0.1.  Time is a ``FakeClock`` shared by the
emulator (which issues the keys and refuses expired ones), the providers (which decide
when to refresh) and the client (which signs): a run of many key lifetimes takes as long
as its requests do, and every count is deterministic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

import aioedge
from aioedge import (
    AuthError,
    Credentials,
    CredentialsError,
    EcsRamRoleProvider,
    EdgeClient,
    OIDCRoleArnProvider,
    RamRoleArnProvider,
    URICredentialsProvider,
)
from aioedge._errors import one_line
from aioedge._protocol import secret_forms
from aioedge._providers import RefreshingProvider
from aioedge._retry import set_testing
from aioedge._sts import HttpAnswer, parse_sts_answer
from aioedge.testing import Emulator, FakeClock

# The library's own files: frames from anywhere else (this test's own among them) are not its.
PACKAGE = Path(aioedge.__file__).resolve().parent


def in_package(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(PACKAGE)


ROLE = "acs:ram::1234567890:role/edge-deployer"
OIDC_PROVIDER = "acs:ram::1234567890:oidc-provider/ack-rrsa-c1"
QUERY = ("QueryEdgeInstance", {"PageSize": 10, "CurrentPage": 1})


def fake_clock() -> FakeClock:
    # Whole seconds: STS writes Expiration to the second.
    return FakeClock(float(int(time.time())))


def token_file(tmp_path: Path, token: str = "oidc-token-0001") -> Path:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return path


Factory = Callable[[Emulator, FakeClock, Path], RefreshingProvider]


def oidc(emu: Emulator, clock: FakeClock, tmp: Path) -> RefreshingProvider:
    return OIDCRoleArnProvider(
        ROLE, OIDC_PROVIDER, token_file(tmp), sts_endpoint=emu.sts_endpoint, clock=clock
    )


def ram_role(emu: Emulator, clock: FakeClock, tmp: Path) -> RefreshingProvider:
    return RamRoleArnProvider(
        ROLE, source=emu.credentials, sts_endpoint=emu.sts_endpoint, clock=clock
    )


def ecs(emu: Emulator, clock: FakeClock, tmp: Path) -> RefreshingProvider:
    return EcsRamRoleProvider(endpoint=emu.metadata_endpoint, clock=clock)


def uri(emu: Emulator, clock: FakeClock, tmp: Path) -> RefreshingProvider:
    return URICredentialsProvider(emu.credentials_uri, clock=clock)


ISSUED_AS = {oidc: "AssumeRoleWithOIDC", ram_role: "AssumeRole", ecs: "metadata", uri: "uri"}


def client_for(emu: Emulator, provider: Any, clock: FakeClock, **kw: Any) -> EdgeClient:
    return EdgeClient(
        credentials=provider,
        endpoint=emu.endpoint,
        rate_limit=False,
        clock=clock,
        quota_scope=emu.endpoint,
        **kw,
    )


async def setup_instance(client: EdgeClient, name: str) -> str:
    call = client.call
    inst = str((await call("CreateEdgeInstance", {"Name": name}))["InstanceId"])
    await call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": f"{name}gw"})
    found = await call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
    driver = found["Data"]["DriverList"][0]["DriverId"]
    await call("BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver})
    return inst


# --------------------------------------------------------------------------- long runs


LIFETIME = 4.0  # seconds of the fake clock
STEP = 0.5
RUN = 40.0  # ten lifetimes
CALLERS = 8


@pytest.mark.parametrize("make", [oidc, ram_role, ecs, uri], ids=lambda f: f.__name__)
async def test_many_lifetimes_with_concurrent_calls_and_a_watch(
    make: Factory, tmp_path: Path
) -> None:
    clock = fake_clock()
    async with Emulator(
        clock=clock, quotas=False, token_lifetime=LIFETIME, stage_seconds=1.0, seed=3
    ) as emu:
        provider = make(emu, clock, tmp_path)
        async with client_for(emu, provider, clock) as client:
            inst = await setup_instance(client, "run")
            dep = (
                await client.call(
                    "CreateEdgeInstanceDeployment", {"InstanceId": inst, "Type": "deploy"}
                )
            )["DeploymentId"]
            start = clock()
            refreshes_before = provider.refreshes
            answered = 0

            async def poll_sleep(seconds: float) -> None:
                await anyio.sleep(0.001)  # the main loop moves the clock

            watcher = client.watch_deployment(
                inst,
                dep,
                poll_interval=0.1,
                max_poll_interval=0.1,
                clock=clock,
                wall_clock=clock,
                sleep=poll_sleep,
            )
            events: list[Any] = []

            async def watch() -> None:
                async for event in watcher:
                    events.append(event)

            async def one_call(i: int) -> None:
                nonlocal answered
                if i % 2:
                    body = await client.call(*QUERY)
                else:
                    body = await client.call("GetEdgeInstance", {"InstanceId": inst})
                assert body["Success"] is True
                answered += 1

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                while clock() - start < RUN:
                    async with anyio.create_task_group() as calls:
                        for i in range(CALLERS):
                            calls.start_soon(one_call, i)
                    clock.advance(STEP)
            refreshes = provider.refreshes - refreshes_before

    steps = math.ceil(RUN / STEP)
    assert answered == steps * CALLERS  # every call answered
    assert events and events[-1].kind == "final" and events[-1].outcome == "succeeded"
    assert emu.identity.expired_refusals == 0  # no call ever met an expired key
    # One refresh per half lifetime (the Expiration is whole seconds: a little more),
    # never one per caller.
    expected = RUN / (LIFETIME / 2)
    assert expected * 0.8 <= refreshes <= expected * 1.3 + 1, refreshes
    assert emu.identity.issued[ISSUED_AS[make]] == provider.refreshes
    assert provider.failures == 0


async def test_oidc_token_file_rotation_mid_run(tmp_path: Path) -> None:
    clock = fake_clock()
    path = token_file(tmp_path, "token-generation-1")
    async with Emulator(clock=clock, quotas=False, token_lifetime=LIFETIME) as emu:
        provider = OIDCRoleArnProvider(
            ROLE, OIDC_PROVIDER, str(path), sts_endpoint=emu.sts_endpoint, clock=clock
        )
        async with client_for(emu, provider, clock) as client:
            for step in range(40):
                if step == 20:  # the kubelet writes a new token
                    path.write_text("token-generation-2\n")
                await asyncio.gather(*(client.call(*QUERY) for _ in range(4)))
                clock.advance(STEP)
    presented = [r.oidc_token for r in emu.identity.records if r.kind == "AssumeRoleWithOIDC"]
    assert all(r.outcome == "issued" for r in emu.identity.records)
    first, second = presented.index("token-generation-1"), presented.index("token-generation-2")
    assert first == 0 and second > 0
    # Every refresh after the rotation read the new file; none before it did.
    assert set(presented[:second]) == {"token-generation-1"}
    assert set(presented[second:]) == {"token-generation-2"}
    assert emu.identity.expired_refusals == 0


# --------------------------------------------------------------------------- ECS metadata


async def test_metadata_service_that_only_speaks_imdsv2() -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, imds_v1=False, ecs_role_name="EdgeRole") as emu:
        provider = EcsRamRoleProvider(endpoint=emu.metadata_endpoint, clock=clock)
        async with client_for(emu, provider, clock) as client:
            assert (await client.call(*QUERY))["Success"] is True
        # A v1 request (no session token) is refused by this service.
        async with aiohttp.ClientSession() as session:
            url = emu.metadata_endpoint + "/latest/meta-data/ram/security-credentials/EdgeRole"
            async with session.get(url) as resp:
                assert resp.status == 403
    kinds = [(r.kind, r.outcome, r.imds_token) for r in emu.identity.records]
    assert kinds[0] == ("metadata-token", "issued", False)
    assert ("metadata", "listed", True) in kinds  # the role was discovered with the token
    assert ("metadata", "issued", True) in kinds
    assert provider.role_name == "EdgeRole"
    v1 = [r.outcome for r in emu.identity.records if r.kind == "metadata" and not r.imds_token]
    assert v1 == ["HTTP403"]  # only the plain request above, refused


async def test_imdsv1_fallback_and_its_refusal() -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, imds_v2=False) as emu:
        provider = EcsRamRoleProvider("EcsRamRole", endpoint=emu.metadata_endpoint, clock=clock)
        async with client_for(emu, provider, clock) as client:
            assert (await client.call(*QUERY))["Success"] is True
        assert ("metadata", "issued", False) in [
            (r.kind, r.outcome, r.imds_token) for r in emu.identity.records
        ]
        strict = EcsRamRoleProvider(
            "EcsRamRole", endpoint=emu.metadata_endpoint, disable_imds_v1=True, clock=clock
        )
        async with client_for(emu, strict, clock) as client:
            with pytest.raises(CredentialsError) as info:
                await client.call(*QUERY)
    msg = str(info.value)
    assert "ECS metadata" in msg and "IMDSv1 is disabled" in msg and "HTTP 404" in msg
    assert "\n" not in msg
    # The environment switch does the same.
    env_strict = EcsRamRoleProvider(env={"ALIBABA_CLOUD_IMDSV1_DISABLED": "true"})
    assert env_strict.disable_imds_v1


# --------------------------------------------------------------------------- STS down


async def test_sts_down_while_the_key_is_valid_then_past_expiry(tmp_path: Path) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, token_lifetime=100) as emu:
        provider = oidc(emu, clock, tmp_path)
        async with client_for(emu, provider, clock) as client:
            await client.call(*QUERY)
            key = provider._current
            assert key is not None and provider.refreshes == 1
            emu.identity.set_fault("unavailable")
            # Past the refresh point (50 s left of 100), before expiry: no failure, the old
            # key signs, and the refresh is retried with a backoff, not on every call.
            clock.advance(55)
            for _ in range(30):
                assert (await client.call(*QUERY))["Success"] is True
                clock.advance(1)
            assert provider._current is key
            assert 3 <= provider.failures <= 10, provider.failures
            used = {e.access_key_id for e in emu.execution_log}
            assert used == {key.access_key_id}
            # Past expiry: a clear error naming the source, the code and the RequestId;
            # nothing is sent with the expired key.  The client retries it (STS may be back
            # soon; no backoff waited here), each retry meeting the provider's backoff.
            clock.advance(20)
            sent = len(emu.requests)
            asked = len(emu.identity.records)
            with set_testing(True), pytest.raises(CredentialsError) as info:
                await client.call(*QUERY)
            assert len(emu.identity.records) == asked + 1  # one STS request, five attempts
            err = info.value
            assert err.transient and err.retry_after is not None and 0 < err.retry_after <= 10
            assert err.code == "ServiceUnavailable" and err.request_id
            assert str(err).startswith(f"STS AssumeRoleWithOIDC ({ROLE}): ServiceUnavailable")
            assert f"RequestId {err.request_id}" in str(err)
            assert err.source == f"STS AssumeRoleWithOIDC ({ROLE})"
            assert len(emu.requests) == sent
            # Until the backoff is over, callers get the same answer without a new request.
            asked = len(emu.identity.records)
            with set_testing(True), pytest.raises(CredentialsError):
                await client.call(*QUERY)
            assert len(emu.identity.records) == asked
            # STS is back: the next call after the backoff gets a new key.
            emu.identity.set_fault(None)
            clock.advance(11)
            assert (await client.call(*QUERY))["Success"] is True
            assert provider._current is not key
    assert emu.identity.expired_refusals == 0


# --------------------------------------------------------------------------- expired answers


async def test_expired_answer_refreshes_and_resends_once_mutations_included(
    tmp_path: Path,
) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False) as emu:
        provider = ram_role(emu, clock, tmp_path)
        async with client_for(emu, provider, clock) as client:
            await client.call(*QUERY)
            assert provider.refreshes == 1
            # The service revokes the key early (the provider still thinks it fresh).
            assert emu.identity.expire_keys() == 1
            body = await client.call("CreateEdgeInstance", {"Name": "after-expiry"})
            assert body["Success"] is True
            created = [e for e in emu.executions if e.action == "CreateEdgeInstance"]
            assert len(created) == 1  # refused before execution, sent once more, ran once
            assert emu.identity.expired_refusals == 1 and provider.refreshes == 2
            # Many calls refused with the same key share one refresh.
            emu.identity.expire_keys()
            results = await asyncio.gather(*(client.call(*QUERY) for _ in range(12)))
            assert all(r["Success"] for r in results)
            assert provider.refreshes == 3
            assert emu.identity.expired_refusals == 13
            # reset() forgets the identity side's records; the keys it issued stay valid.
            emu.identity.set_fault("unavailable")
            emu.reset()
            assert emu.identity.records == [] and emu.identity.expired_refusals == 0
            assert emu.identity.fault is None and not emu.identity.issued
            assert (await client.call(*QUERY))["Success"] is True
            assert provider.refreshes == 3


async def test_an_expired_answer_is_resent_only_once() -> None:
    clock = fake_clock()

    class Stubborn:
        """A provider of the user's own whose refresh hands back the same key."""

        def __init__(self, key: Credentials) -> None:
            self.key = key
            self.refreshed = 0

        async def get_credentials(self) -> Credentials:
            return self.key

        async def refresh(self, *, stale: Credentials | None = None) -> Credentials:
            assert stale == self.key
            self.refreshed += 1
            return self.key

    async with Emulator(clock=clock, quotas=False) as emu:
        stubborn = Stubborn(emu.identity.issue("user"))
        async with client_for(emu, stubborn, clock) as client:
            emu.identity.expire_keys()
            with pytest.raises(AuthError) as info:
                await client.call("CreateEdgeInstance", {"Name": "never"})
        assert info.value.code == "InvalidSecurityToken.Expired"
        assert info.value.attempts == 2 and stubborn.refreshed == 1
        assert emu.identity.expired_refusals == 2 and emu.executions == []


async def test_a_key_that_is_expired_when_issued_is_an_error() -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, token_lifetime=1e-9) as emu:
        provider = URICredentialsProvider(emu.credentials_uri, clock=clock)
        err = await _before_any_iot_request(emu, provider, clock)
    assert str(err).startswith("credentials URI (http://127.0.0.1:")
    assert "the new key expired already" in str(err) and "is the clock right?" in str(err)


async def test_fixed_expired_credentials_raise_auth_error_at_once() -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False) as emu:
        # Known to be expired: refused before anything is sent.
        stale = Credentials("AK", "SK", security_token="tok", expiration=clock() - 1)
        async with client_for(emu, stale, clock) as client:
            with pytest.raises(AuthError) as info:
                await client.call(*QUERY)
            assert info.value.code == "InvalidSecurityToken.Expired"
            assert "tok" not in str(info.value)
        assert emu.requests == []
        # Expired on the service's side only: the service's answer, at once, not resent.
        issued = emu.identity.issue("test")
        fixed = Credentials(
            issued.access_key_id, issued.access_key_secret, security_token=issued.security_token
        )
        async with client_for(emu, fixed, clock) as client:
            assert (await client.call(*QUERY))["Success"] is True
            emu.identity.expire_keys()
            with pytest.raises(AuthError) as info:
                await client.call(*QUERY)
            assert info.value.code == "InvalidSecurityToken.Expired"
            assert info.value.attempts == 1
            assert issued.security_token not in str(info.value)


async def test_a_key_the_service_refused_is_never_used_again(tmp_path: Path) -> None:
    """Refused as expired while STS is down: the callers refused with that key share one
    refresh (one STS request, not one each), and until its backoff is over the next calls
    get its error at once, without sending the refused key again or asking STS again."""
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, token_lifetime=3600) as emu:
        provider = oidc(emu, clock, tmp_path)
        async with client_for(emu, provider, clock) as client:
            await client.call(*QUERY)
            key = provider._current
            # Revoked early: by its Expiration the provider would keep it for another hour.
            emu.identity.expire_keys()
            emu.identity.set_fault("unavailable")
            with set_testing(True):  # each call retried at once, in the provider's backoff
                results = await asyncio.gather(
                    *(client.call(*QUERY) for _ in range(8)), return_exceptions=True
                )
            assert all(isinstance(r, CredentialsError) for r in results), results
            assert {r.code for r in results if isinstance(r, CredentialsError)} == {
                "ServiceUnavailable"
            }
            assert emu.identity.expired_refusals == 8
            asked = [r for r in emu.identity.records if r.kind == "AssumeRoleWithOIDC"]
            assert len(asked) == 2  # the first key, then one refresh for all eight
            sent = len(emu.requests)
            for _ in range(3):
                with set_testing(True), pytest.raises(CredentialsError) as info:
                    await client.call(*QUERY)
                assert info.value.code == "ServiceUnavailable"
            assert len(emu.requests) == sent and emu.identity.expired_refusals == 8
            assert len(emu.identity.records) == len(asked)
            # STS is back: after the backoff, a new key, and the call goes through.
            emu.identity.set_fault(None)
            clock.advance(11)
            assert (await client.call(*QUERY))["Success"] is True
            assert provider._current is not None and provider._current != key
            assert emu.identity.expired_refusals == 8


# --------------------------------------------------------------------------- single flight


async def test_one_refresh_for_all_concurrent_callers(tmp_path: Path) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, token_lifetime=100) as emu:
        provider = oidc(emu, clock, tmp_path)
        keys = await asyncio.gather(*(provider.get_credentials() for _ in range(50)))
        assert len({k.access_key_id for k in keys}) == 1 and provider.refreshes == 1
        # Past the refresh point while still valid: one caller refreshes, the others
        # keep the old key meanwhile (never waiting on STS).
        clock.advance(60)
        keys = await asyncio.gather(*(provider.get_credentials() for _ in range(50)))
        assert provider.refreshes == 2
        assert 1 <= len({k.access_key_id for k in keys}) <= 2
        # Expired: every caller waits for the one refresh.
        clock.advance(200)
        keys = await asyncio.gather(*(provider.get_credentials() for _ in range(50)))
        assert provider.refreshes == 3 and len({k.access_key_id for k in keys}) == 1
    assert emu.identity.issued["AssumeRoleWithOIDC"] == 3


async def test_the_token_file_is_read_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read with anyio (a worker thread): the loop is never blocked by it."""
    clock = fake_clock()
    threads: list[str] = []
    real = Path.read_text

    def spy(self: Path, *args: Any, **kwargs: Any) -> str:
        import threading

        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", spy)
    async with Emulator(clock=clock, quotas=False) as emu:
        provider = oidc(emu, clock, tmp_path)
        await provider.get_credentials()
    import threading

    assert threads and threading.main_thread().name not in threads


# --------------------------------------------------------------------------- bad input


async def _before_any_iot_request(
    emu: Emulator, provider: Any, clock: FakeClock
) -> CredentialsError:
    async with client_for(emu, provider, clock) as client:
        with pytest.raises(CredentialsError) as info:
            await client.call(*QUERY)
    assert emu.stats() == {} and emu.requests == []  # no IoT request was sent
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("no_credentials", "the answer has no Credentials (RequestId "),
        ("bad_expiration", "malformed Expiration 'in an hour or so'"),
    ],
)
async def test_bad_sts_answers(tmp_path: Path, fault: str, expected: str) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False) as emu:
        emu.identity.set_fault(fault)
        err = await _before_any_iot_request(emu, oidc(emu, clock, tmp_path), clock)
    assert str(err).startswith(f"STS AssumeRoleWithOIDC ({ROLE}): ")
    assert expected in str(err)


@pytest.mark.parametrize("fault", ["no_credentials", "bad_expiration"])
async def test_bad_metadata_and_uri_answers(fault: str) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False) as emu:
        emu.identity.set_fault(fault)
        err = await _before_any_iot_request(emu, ecs(emu, clock, Path()), clock)
        assert str(err).startswith("ECS metadata (127.0.0.1:")
        err = await _before_any_iot_request(emu, uri(emu, clock, Path()), clock)
        assert str(err).startswith("credentials URI (http://127.0.0.1:")


async def test_unreadable_and_empty_token_files(tmp_path: Path) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False) as emu:
        missing = tmp_path / "no-such-token"
        provider = OIDCRoleArnProvider(
            ROLE, OIDC_PROVIDER, missing, sts_endpoint=emu.sts_endpoint, clock=clock
        )
        err = await _before_any_iot_request(emu, provider, clock)
        assert str(err) == (
            f"STS AssumeRoleWithOIDC ({ROLE}): cannot read the OIDC token file {missing} "
            "(FileNotFoundError: No such file or directory)"
        )
        empty = tmp_path / "empty"
        empty.write_text("\n")
        provider = OIDCRoleArnProvider(
            ROLE, OIDC_PROVIDER, empty, sts_endpoint=emu.sts_endpoint, clock=clock
        )
        err = await _before_any_iot_request(emu, provider, clock)
        assert "is empty" in str(err)
    assert emu.identity.records == []  # STS was not asked either


def test_half_configured_oidc_environment_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", ROLE)
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", OIDC_PROVIDER)
    monkeypatch.delenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", raising=False)
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CredentialsError) as info:
        EdgeClient()  # the default chain: fails when the client is built
    assert str(info.value) == (
        "OIDC (RRSA): ALIBABA_CLOUD_OIDC_TOKEN_FILE not set (ALIBABA_CLOUD_ROLE_ARN, "
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN are set); pass the value or set the variable"
    )


# --------------------------------------------------------------------------- secrets


async def test_secrets_never_reach_errors_logs_or_reprs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioedge")
    clock = fake_clock()
    oidc_token = "eyJhbGciOiJSUzI1NiJ9.the-pod-identity.sig"
    async with Emulator(clock=clock, quotas=False, token_lifetime=100) as emu:
        path = token_file(tmp_path, oidc_token)
        provider = OIDCRoleArnProvider(
            ROLE, OIDC_PROVIDER, path, sts_endpoint=emu.sts_endpoint, clock=clock
        )
        # A source key with a token of its own, for AssumeRole (role chaining).
        source = await provider.get_credentials()
        chained = RamRoleArnProvider(
            ROLE, source=provider, sts_endpoint=emu.sts_endpoint, clock=clock
        )
        texts: list[str] = [repr(provider), repr(chained), repr(source), str(source)]
        async with client_for(emu, chained, clock) as client:
            await client.call(*QUERY)
            texts.append(repr(client))
            emu.identity.set_fault("echo_secrets")
            # While the key is valid: logged, not raised.
            clock.advance(60)
            await client.call(*QUERY)
            # After expiry: raised.
            clock.advance(100)
            with pytest.raises(CredentialsError) as info:
                await client.call(*QUERY)
            texts.append(str(info.value))
            # What an error tracker records: every frame's locals, chained errors included.
            # (The library's frames: this test's own frame holds the token, of course.)
            rendered = traceback.TracebackException(
                type(info.value), info.value, info.value.__traceback__, capture_locals=True
            )
            frames = [
                f for f in rendered.stack if Path(f.filename).resolve().is_relative_to(PACKAGE)
            ]
            assert any(f.name == "_refresh_locked" for f in frames)
            texts.extend(repr(f.locals) for f in frames)
            assert rendered.__cause__ is None and rendered.__context__ is None
        for p in (provider,):
            with pytest.raises(CredentialsError) as info2:
                await p.refresh()
            texts.append(str(info2.value))
        assert "SignatureDoesNotMatch" in str(info.value)
    texts.append(caplog.text)
    texts.extend(str(r.__dict__) for r in caplog.records)
    secrets = [
        oidc_token,
        source.access_key_secret,
        source.security_token,
        *(k.access_key_secret for k in emu.service.gateway.keys.values()),
        *(k.security_token for k in emu.service.gateway.keys.values() if k.security_token),
    ]
    assert "credentials_refresh_failed" in caplog.text
    forms = [f for s in secrets for f in secret_forms(s)]
    for text in texts:
        for secret in forms:
            assert secret not in text


# --------------------------------------------------------------------------- the client


def test_an_sts_answer_keeps_its_key_out_of_reprs_and_errors() -> None:
    body = (
        b'{"RequestId": "R-1", "Credentials": {"AccessKeyId": "STS.k", '
        b'"AccessKeySecret": "answer-secret", "SecurityToken": "answer-token"}}'
    )
    answer = HttpAnswer(status=200, body=body, request_id="R-0")
    assert "answer-secret" not in repr(answer) and "R-0" in repr(answer)
    with pytest.raises(CredentialsError) as info:  # no Expiration: refused, named, masked
        parse_sts_answer(answer, source="STS AssumeRole (r)")
    assert str(info.value) == ("STS AssumeRole (r): Credentials has no Expiration (RequestId R-1)")
    assert info.value.request_id == "R-1"


def test_an_sts_refusal_is_one_line_with_its_control_characters_escaped() -> None:
    # An identity service's words reach terminals and logs: a line break or a terminal
    # escape in its Code or Message is shown escaped, as the watch shows a service's names.
    body = json.dumps(
        {"Code": "Bad\x1b[2JCode", "Message": "no\nway \x1b[31mred\x9b", "RequestId": "R-2"}
    ).encode()
    with pytest.raises(CredentialsError) as info:
        parse_sts_answer(HttpAnswer(status=400, body=body), source="STS AssumeRole (r)")
    assert str(info.value) == (
        "STS AssumeRole (r): Bad\\x1b[2JCode: no way \\x1b[31mred\\x9b (RequestId R-2)"
    )
    assert info.value.code == "Bad\x1b[2JCode"  # as the service sent it, for a program


def test_one_line_flattens_escapes_and_cuts() -> None:
    assert one_line("a\n\t b  c") == "a b c"
    assert one_line("x\x1b[0m\u2028y") == "x\\x1b[0m y"  # U+2028 is whitespace: one space
    assert one_line("x\x85\x07y") == "x \\x07y"
    assert one_line("abcdef", 4) == "abc…" and one_line("abcd", 4) == "abcd"
    assert one_line("\x07" * 3, 5) == "\\x07…"  # cut after escaping: the limit holds


async def test_every_attempt_signs_with_the_current_key(tmp_path: Path) -> None:
    clock = fake_clock()
    async with Emulator(clock=clock, quotas=False, token_lifetime=10) as emu:
        provider = uri(emu, clock, tmp_path)
        async with client_for(emu, provider, clock) as client:
            for _ in range(6):
                await client.call(*QUERY)
                clock.advance(5)
    used = [e.access_key_id for e in emu.execution_log]
    issued = [r.access_key_id for r in emu.identity.records if r.outcome == "issued"]
    assert used == issued  # one refresh per half lifetime, each key used as soon as issued
    assert len(set(used)) == 6


async def test_a_provider_of_the_users_own() -> None:
    clock = fake_clock()

    class Rotating:
        def __init__(self, keys: list[Credentials]) -> None:
            self.keys = keys
            self.asked = 0

        async def get_credentials(self) -> Credentials:
            self.asked += 1
            return self.keys[min(self.asked // 3, len(self.keys) - 1)]

    async with Emulator(clock=clock, quotas=False) as emu:
        a, b = emu.identity.issue("user"), emu.identity.issue("user")
        mine = Rotating([a, b])
        async with client_for(emu, mine, clock) as client:
            assert client.credentials is mine
            for _ in range(6):
                await client.call(*QUERY)
        assert [e.access_key_id for e in emu.execution_log] == [a.access_key_id] * 2 + [
            b.access_key_id
        ] * 4
        with pytest.raises(CredentialsError, match=r"must be aioedge\.Credentials"):
            EdgeClient(credentials=object())  # type: ignore[arg-type]


def test_one_provider_serves_one_event_loop_after_another() -> None:
    """A provider kept at module level outlives an ``asyncio.run()``: the next loop's
    callers still share one refresh (each loop gets its own lock)."""
    with Emulator.start_in_thread(quotas=False) as emu:
        provider = URICredentialsProvider(emu.endpoint + "/identity/credentials")

        async def contend() -> set[str]:
            keys = await asyncio.gather(*(provider.refresh() for _ in range(5)))
            return {k.access_key_id for k in keys}

        first = asyncio.run(contend())
        second = asyncio.run(contend())
    assert len(first) == 5 and len(second) == 5 and not first & second
    assert provider.refreshes == 10
