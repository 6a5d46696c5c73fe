"""EdgeClient against the emulator's real answers, over real sockets.

tests/test_client.py covers the client's transport corners against a scripted server
that answers whatever a test tells it.  Here the answers come from
``aioedge.testing.Emulator`` instead: its quota window, its throttle forms, its business
errors, its fault injection, its clock and its paging, and its records prove what ran.
Nothing here waits on the wall clock: the quota window runs on a clock that steps by a
fixed amount per request, the service's clock is a ``FakeClock``, and the one real delay
(a held-back answer) is far longer than the client's timeout.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from aioedge import (
    AlreadyExistsError,
    ApiError,
    AuthError,
    ConflictError,
    Credentials,
    EdgeClient,
    LimitExceededError,
    NotFoundError,
    RetryPolicy,
    ThrottledError,
    TransportError,
)
from aioedge._catalog import get_operation
from aioedge._cli import _print_error
from aioedge._protocol import build_request
from aioedge._signing import percent_encode
from aioedge.testing import Emulator, FakeClock

# Retries at once: the waits are the retry module's business, not these tests'.
FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0, max_delay=0.0, throttle_base_delay=0.0, throttle_min_delay=0.0
)
FORMS = {"http": (400, "Throttling.User"), "business": (200, "iot.common.HighFrequentDeny")}


def connect(emu: Emulator, **options: Any) -> EdgeClient:
    options.setdefault("retry", FAST)
    options.setdefault("rate_limit", False)  # let the emulator's quota do the refusing
    return EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint, **options)


class SteppingClock:
    """A quota clock that moves ``step`` seconds each time the service reads it.

    The service reads its quota clock once per request, so request k arrives at k·step:
    with a quota of 1 per second and a step of 0.6 s, a request right after an accepted
    one is throttled, and the one after that is accepted again.
    """

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def outcomes(emu: Emulator, action: str) -> list[str]:
    return [r.outcome for r in emu.requests if r.action == action]


# --------------------------------------------------------------------------- connections


def _connection_trace() -> tuple[aiohttp.TraceConfig, dict[str, int]]:
    """A TraceConfig counting new and reused pooled connections."""
    counts = {"created": 0, "reused": 0}
    trace = aiohttp.TraceConfig()

    async def created(session: Any, context: SimpleNamespace, params: Any) -> None:
        counts["created"] += 1

    async def reused(session: Any, context: SimpleNamespace, params: Any) -> None:
        counts["reused"] += 1

    trace.on_connection_create_end.append(created)
    trace.on_connection_reuseconn.append(reused)
    return trace, counts


async def test_sequential_calls_reuse_one_connection_to_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client's own session keeps one kept-alive connection to the emulator."""
    trace, counts = _connection_trace()
    real = aiohttp.ClientSession

    def traced_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        return real(*args, trace_configs=[trace], **kwargs)

    monkeypatch.setattr(aiohttp, "ClientSession", traced_session)
    async with Emulator(quotas=False) as emu, connect(emu) as client:
        for _ in range(5):
            await client.call("QueryEdgeInstance", {})
        await client.call("CreateEdgeInstance", {"Name": "reuse_1"})  # a POST, too
        session = client.session
    assert emu.stats()["QueryEdgeInstance"]["executed"] == 5
    assert counts == {"created": 1, "reused": 5}
    assert session is not None and session.closed


async def test_a_callers_session_is_reused_and_left_open() -> None:
    trace, counts = _connection_trace()
    async with (
        Emulator(quotas=False) as emu,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
    ):
        async with connect(emu, session=session) as client:
            for _ in range(4):
                await client.call("QueryEdgeInstance", {})
        assert not session.closed  # the caller's session outlives the client
    assert counts == {"created": 1, "reused": 3}


# --------------------------------------------------------------------------- secrets

# An STS token with characters percent-encoding changes, so its three forms differ.
STS_TOKEN = "CAIS+sts/token=value"
STS_SECRET = "emulator-sts-secret"


def _forms(secret: str) -> list[str]:
    return [secret, percent_encode(secret), percent_encode(percent_encode(secret))]


async def test_the_emulator_quotes_the_token_in_its_string_to_sign_as_the_service_does() -> None:
    async with (
        Emulator(quotas=False, credentials=("STS.key", STS_SECRET, STS_TOKEN)) as emu,
        aiohttp.ClientSession() as session,
    ):
        request = build_request(
            get_operation("QueryEdgeInstance"),
            {},
            endpoint=emu.endpoint,
            access_key_id="STS.key",
            access_key_secret="not-the-secret",
            region_id="cn-shanghai",
            timestamp=time.time(),
            nonce="n-1",
            security_token=STS_TOKEN,
        )
        async with session.post(request.url, data=request.body, headers=request.headers) as resp:
            body = await resp.json()
    assert body["Code"] == "SignatureDoesNotMatch"
    assert "server string to sign is:POST&%2F&" in body["Message"]
    assert percent_encode(percent_encode(STS_TOKEN)) in body["Message"]


async def test_a_rejected_signature_shows_neither_token_nor_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong_secret = "client-side-wrong-secret"
    creds = Credentials("STS.key", wrong_secret, security_token=STS_TOKEN)
    async with Emulator(quotas=False, credentials=("STS.key", STS_SECRET, STS_TOKEN)) as emu:
        with caplog.at_level(logging.DEBUG, logger="aioedge"):
            async with EdgeClient(
                credentials=creds, endpoint=emu.endpoint, retry=FAST, rate_limit=False
            ) as client:
                with pytest.raises(AuthError) as info:
                    await client.call("QueryEdgeInstance", {})
    err = info.value
    assert err.code == "SignatureDoesNotMatch"
    # Still the service's text, with its string-to-sign to diff, the token masked.
    assert "server string to sign is:POST&%2F&" in err.message
    assert "SecurityToken%3D***" in err.message
    cli = io.StringIO()
    _print_error(err, cli)
    assert cli.getvalue().startswith("error: SignatureDoesNotMatch: ")
    assert len(cli.getvalue().splitlines()) == 1
    shown = {
        "str": str(err),
        "repr": repr(err),
        "message": err.message,
        "body": repr(err.body),
        "cli": cli.getvalue(),
        "logs": caplog.text,
    }
    assert "aioedge.request_sent" in caplog.text  # the debug lines were written
    for where, text in shown.items():
        for secret in [*_forms(STS_TOKEN), *_forms(wrong_secret)]:
            assert secret not in text, (where, secret)


# --------------------------------------------------------------------------- throttling


@pytest.mark.parametrize("style", ["http", "business"])
async def test_each_throttle_form_is_a_throttled_error(style: str) -> None:
    # quota_scale 0.01: one request per second for every Action; a clock that never moves.
    async with (
        Emulator(quota_scale=0.01, throttle_style=style, quota_clock=FakeClock(0.0)) as emu,
        connect(emu, retry=None) as client,
    ):
        await client.call("QueryEdgeInstance", {})
        with pytest.raises(ThrottledError) as caught:
            await client.call("QueryEdgeInstance", {})
    err = caught.value
    assert (err.http_status, err.code) == FORMS[style]
    assert (err.action, err.attempts) == ("QueryEdgeInstance", 1)
    throttled = [r for r in emu.requests if r.outcome == "throttled"]
    assert [r.request_id for r in throttled] == [err.request_id]
    assert emu.stats()["QueryEdgeInstance"]["executed"] == 1


@pytest.mark.parametrize("style", ["http", "business"])
async def test_a_throttled_mutation_is_retried_and_runs_once(style: str) -> None:
    # A throttled call was not executed, so even a mutating one may be repeated.
    async with (
        Emulator(quota_scale=0.01, throttle_style=style, quota_clock=SteppingClock(0.6)) as emu,
        connect(emu) as client,
    ):
        first = await client.call("CreateEdgeInstance", {"Name": "first"})
        second = await client.call("CreateEdgeInstance", {"Name": "second"})
        listed = await client.call("QueryEdgeInstance", {"PageSize": 30})
    # Arrivals 0.6 (accepted), 1.2 (throttled: 0.6 is in the last second), 1.8 (accepted).
    assert outcomes(emu, "CreateEdgeInstance") == ["executed", "throttled", "executed"]
    assert [e.params["Name"] for e in emu.executions if e.action == "CreateEdgeInstance"] == [
        "first",
        "second",
    ]
    ids = {i["InstanceId"] for i in listed["Data"]["InstanceList"]}
    assert ids == {first["InstanceId"], second["InstanceId"]}
    nonces = [r.nonce for r in emu.requests]
    assert len(set(nonces)) == len(nonces)  # every attempt signed anew


async def test_both_throttle_forms_in_one_call_are_retried_to_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # "alternate": the first refusal is HTTP 400 Throttling.User, the second HTTP 200
    # HighFrequentDeny.  A step of 0.4 s keeps the window full for two attempts.
    async with (
        Emulator(
            quota_scale=0.01, throttle_style="alternate", quota_clock=SteppingClock(0.4)
        ) as emu,
        connect(emu) as client,
    ):
        await client.call("QueryEdgeInstance", {})  # 0.4: accepted
        with caplog.at_level(logging.INFO, logger="aioedge"):
            await client.call("QueryEdgeInstance", {})  # 0.8, 1.2 throttled; 1.6 accepted
    assert outcomes(emu, "QueryEdgeInstance") == ["executed", "throttled", "throttled", "executed"]
    assert emu.stats()["QueryEdgeInstance"]["throttled"] == 2
    retries = [
        r.getMessage() for r in caplog.records if "aioedge.retry_scheduled" in r.getMessage()
    ]
    assert len(retries) == 2
    assert "Throttling.User" in retries[0] and "iot.common.HighFrequentDeny" in retries[1]


async def test_throttling_that_does_not_stop_exhausts_the_retries() -> None:
    async with (
        Emulator(quota_scale=0.01, throttle_style="business", quota_clock=FakeClock(0.0)) as emu,
        connect(emu) as client,
    ):
        await client.call("CreateEdgeInstance", {"Name": "only"})
        with pytest.raises(ThrottledError) as caught:
            await client.call("CreateEdgeInstance", {"Name": "never"})
    assert caught.value.attempts == FAST.max_attempts
    assert outcomes(emu, "CreateEdgeInstance") == ["executed"] + ["throttled"] * 3
    assert [e.params["Name"] for e in emu.executions] == ["only"]


# --------------------------------------------------------------------------- business errors


async def _site(client: EdgeClient) -> dict[str, str]:
    iid = (await client.call("CreateEdgeInstance", {"Name": "plant", "Spec": 10}))["InstanceId"]
    did = (
        await client.call(
            "CreateEdgeDriver",
            {"DriverName": "Modbus1", "DriverProtocol": "modbus", "Runtime": "c"},
        )
    )["DriverId"]
    return {"instance": iid, "driver": did}


# (what to call, given the site) → the class and code the client must raise
_BUSINESS: list[tuple[str, Any, type[ApiError], str]] = [
    (
        "GetEdgeInstance",
        lambda s: {"InstanceId": "F3APY0tPLhmgGtx0"},
        NotFoundError,
        "iot.edge.InstanceNotExist",
    ),
    (
        "GetEdgeDriverVersion",
        lambda s: {"DriverId": s["driver"], "DriverVersion": "9.9.9"},
        NotFoundError,
        "iot.edge.DriverVersionNotExist",
    ),
    (
        "CreateEdgeInstance",
        lambda s: {"Name": "plant"},
        AlreadyExistsError,
        "iot.edge.InstanceNameExist",
    ),
    (
        "BindDriverToEdgeInstance",
        lambda s: {"InstanceId": s["instance"], "DriverId": s["driver"]},
        AlreadyExistsError,
        "iot.edge.DriverAlreadyBindToInstance",
    ),
    (
        "DeleteEdgeInstance",
        lambda s: {"InstanceId": s["instance"]},
        ConflictError,
        "iot.edge.InstanceHasDriver",
    ),
    (
        "CreateEdgeInstanceDeployment",
        lambda s: {"InstanceId": s["instance"], "Type": "deploy"},
        ConflictError,
        "iot.edge.InstanceHasNoGateway",
    ),
]


@pytest.mark.parametrize(
    ("action", "params", "cls", "code"), _BUSINESS, ids=[row[3] for row in _BUSINESS]
)
async def test_business_errors_keep_their_code_and_request_id(
    action: str, params: Any, cls: type[ApiError], code: str
) -> None:
    async with Emulator(quotas=False) as emu, connect(emu) as client:
        site = await _site(client)
        await client.call(
            "BindDriverToEdgeInstance", {"InstanceId": site["instance"], "DriverId": site["driver"]}
        )
        before = len(emu.execution_log)
        with pytest.raises(cls) as caught:
            await client.call(action, params(site))
    err = caught.value
    assert type(err) is cls
    assert (err.code, err.http_status, err.action, err.attempts) == (code, 200, action, 1)
    assert err.message  # the service's ErrorMessage
    # It ran, once (a business answer is final: never retried), and its RequestId is kept.
    [ran] = emu.execution_log[before:]
    assert (ran.action, ran.code, ran.request_id) == (action, code, err.request_id)


async def test_count_limits_and_running_deployments() -> None:
    clock = FakeClock()
    async with Emulator(quotas=False, clock=clock) as emu, connect(emu) as client:
        site = await _site(client)  # Spec 10, Lite: one gateway
        gateway = {"InstanceId": site["instance"], "ProductKey": "pk"}
        await client.call("BindGatewayToEdgeInstance", {**gateway, "DeviceName": "gw1"})
        with pytest.raises(LimitExceededError) as limit:
            await client.call("BindGatewayToEdgeInstance", {**gateway, "DeviceName": "gw2"})
        assert limit.value.code == "iot.edge.InstanceGatewayLimitation"
        deploy = {"InstanceId": site["instance"], "Type": "deploy"}
        await client.call("CreateEdgeInstanceDeployment", deploy)
        with pytest.raises(ConflictError) as busy:
            await client.call("CreateEdgeInstanceDeployment", deploy)
        assert busy.value.code == "iot.edge.deploySheetAlreadyExist"
        clock.advance(60)  # the first rollout ends: another may start
        await client.call("CreateEdgeInstanceDeployment", deploy)
    codes = [e.code for e in emu.execution_log if e.action == "CreateEdgeInstanceDeployment"]
    assert codes == ["Success", "iot.edge.deploySheetAlreadyExist", "Success"]
    assert busy.value.request_id == emu.execution_log[-2].request_id


# --------------------------------------------------------------------------- timeouts


async def test_a_read_whose_answer_is_held_back_is_retried() -> None:
    # The delay (10 s) is far longer than the client's timeout (0.3 s): the first attempt
    # always times out; the retry is answered at once (times=1).
    async with (
        Emulator(quotas=False, faults="GetEdgeInstance:slow:delay=10:times=1") as emu,
        connect(emu, timeout=0.3) as client,
    ):
        iid = (await client.call("CreateEdgeInstance", {"Name": "a"}))["InstanceId"]
        started = time.monotonic()
        got = await client.call("GetEdgeInstance", {"InstanceId": iid})
        waited = time.monotonic() - started
    assert got["Data"]["InstanceId"] == iid
    assert 0.3 <= waited < 10
    # The emulator ran the first attempt (only its answer was held back), then the retry.
    assert [e.action for e in emu.executions] == [
        "CreateEdgeInstance",
        "GetEdgeInstance",
        "GetEdgeInstance",
    ]
    [fault] = emu.fault_log
    assert (fault.kind, fault.executed) == ("delay", True)
    assert fault.request_id == emu.execution_log[1].request_id


async def test_a_mutation_whose_answer_is_held_back_may_have_run_and_is_not_repeated() -> None:
    async with (
        Emulator(quotas=False, faults="CreateEdgeInstance:slow:delay=10") as emu,
        connect(emu, timeout=0.3) as client,
    ):
        with pytest.raises(TransportError) as caught:
            await client.call("CreateEdgeInstance", {"Name": "maybe"})
        assert caught.value.maybe_executed is True
        assert (caught.value.action, caught.value.attempts) == ("CreateEdgeInstance", 1)
        # It did run, exactly once: the record shows it, and so does the service's state.
        assert [(e.action, e.params) for e in emu.executions] == [
            ("CreateEdgeInstance", {"Name": "maybe"})
        ]
        assert [(f.kind, f.executed) for f in emu.fault_log] == [("delay", True)]
        listed = await client.call("QueryEdgeInstance", {})
        assert [i["Name"] for i in listed["Data"]["InstanceList"]] == ["maybe"]
    assert emu.stats()["CreateEdgeInstance"]["requests"] == 1


# --------------------------------------------------------------------------- clock skew


@pytest.mark.parametrize("skew", [3600.0, -3600.0])
async def test_a_skewed_client_adopts_the_emulators_clock(skew: float) -> None:
    # The service's clock is an hour off ours: our first Timestamp is refused as expired,
    # the client takes the service's time from the Date header, and retries once.
    async with (
        Emulator(quotas=False, clock=FakeClock(time.time() + skew)) as emu,
        connect(emu, retry=None) as client,
    ):
        created = await client.call("CreateEdgeInstance", {"Name": "skewed"})
        got = await client.call("GetEdgeInstance", {"InstanceId": created["InstanceId"]})
    assert got["Data"]["Name"] == "skewed"
    assert outcomes(emu, "CreateEdgeInstance") == ["rejected", "executed"]
    # The correction is kept: the next call is accepted at once.
    assert outcomes(emu, "GetEdgeInstance") == ["executed"]
    # The mutation the service refused did not run: it ran once, after the correction.
    assert [e.action for e in emu.executions] == ["CreateEdgeInstance", "GetEdgeInstance"]


async def test_a_skew_inside_the_tolerance_needs_no_correction() -> None:
    async with (
        Emulator(quotas=False, clock=FakeClock(time.time() + 600)) as emu,
        connect(emu, retry=None) as client,
    ):
        await client.call("QueryEdgeInstance", {})
    assert outcomes(emu, "QueryEdgeInstance") == ["executed"]


# --------------------------------------------------------------------------- paging


@pytest.fixture
async def seeded() -> AsyncIterator[tuple[Emulator, EdgeClient, dict[str, Any]]]:
    """An emulator with enough of everything to fill several pages of each paged Query."""
    clock = FakeClock()
    async with Emulator(quotas=False, clock=clock) as emu, connect(emu) as client:
        instances = [
            (await client.call("CreateEdgeInstance", {"Name": f"inst_{n:02d}"}))["InstanceId"]
            for n in range(15)
        ]
        iid = instances[0]
        drivers = [
            (
                await client.call(
                    "CreateEdgeDriver",
                    {"DriverName": f"Driver{n:02d}", "DriverProtocol": "modbus", "Runtime": "c"},
                )
            )["DriverId"]
            for n in range(15)
        ]
        for n in range(9):
            await client.call(
                "CreateEdgeDriverVersion",
                {"DriverId": drivers[0], "DriverVersion": f"1.0.{n}", "EdgeVersion": "2.4.0"},
            )
        for did in drivers:
            await client.call("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
        devices = [emu.add_device("pk", f"sensor{n:02d}")["IotId"] for n in range(15)]
        await client.call(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": drivers[0], "IotIds": devices[:10]},
        )
        await client.call(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": drivers[0], "IotIds": devices[10:]},
        )
        await client.call(
            "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw"}
        )
        for _ in range(9):
            await client.call("CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"})
            clock.advance(60)
        yield emu, client, {"InstanceId": iid, "DriverId": drivers[0]}


# Action, its filter parameters (from the seeded site), how many it lists, the id key.
_PAGED = [
    ("QueryEdgeInstance", (), 15, "InstanceId"),
    ("QueryEdgeDriver", ("Type",), 15, "DriverId"),
    ("QueryEdgeDriverVersion", ("DriverId",), 9, "DriverVersion"),
    ("QueryEdgeInstanceDriver", ("InstanceId",), 15, "DriverId"),
    ("QueryEdgeInstanceDevice", ("InstanceId",), 15, "IotId"),
    ("QueryEdgeInstanceHistoricDeployment", ("InstanceId",), 9, "DeploymentId"),
]


@pytest.mark.parametrize(("action", "keys", "count", "id_key"), _PAGED, ids=[p[0] for p in _PAGED])
@pytest.mark.parametrize("page_size", [4, 5])
async def test_paginate_walks_every_page_of_the_emulators_data(
    seeded: tuple[Emulator, EdgeClient, dict[str, Any]],
    action: str,
    keys: tuple[str, ...],
    count: int,
    id_key: str,
    page_size: int,
) -> None:
    emu, client, site = seeded
    params: dict[str, Any] = {k: site[k] for k in keys if k in site}
    if action == "QueryEdgeDriver":
        params["Type"] = 1
    # The whole list in one page is the reference: the service's own order.
    whole = await client.call(action, {**params, "PageSize": 30, "CurrentPage": 1})
    data = whole["Data"]
    expected = [item[id_key] for item in data[get_operation(action).items_key or ""]]
    assert len(expected) == data["Total"] == count
    before = emu.stats()[action]["executed"]
    walked = [
        item[id_key] async for item in client.paginate(action, {**params, "PageSize": page_size})
    ]
    assert walked == expected  # every item once, in order, across pages
    # One request per page, none after the last: 15 items of 5 end on a full page, which
    # Total (not an empty page) must stop.
    assert emu.stats()[action]["executed"] - before == math.ceil(count / page_size)
    pages = [int(e.params["CurrentPage"]) for e in emu.executions[-math.ceil(count / page_size) :]]
    assert pages == list(range(1, math.ceil(count / page_size) + 1))
