"""Seeded fault injection: each kind, its counters, and the record of what ran."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aioedge import EdgeClient, RetryPolicy, TransportError
from aioedge._catalog import get_operation
from aioedge._errors import InvalidResponseError
from aioedge._protocol import parse_response
from aioedge.testing import Emulator, FaultSpec, parse_faults
from aioedge.testing._faults import FaultPlan, normalize_faults

from .test_emulator_support import Raw

_CONNECTION_ERRORS = (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    async with Emulator(quotas=False) as emu, aiohttp.ClientSession() as session:
        yield Raw(emu, session)


# --------------------------------------------------------------------------- specs


def test_fault_spec_strings() -> None:
    specs = parse_faults(
        "CreateEdgeInstance:lost:times=1, *:unavailable:rate=0.05,"
        "GetEdgeInstance:503=0.2:after=3,QueryEdgeInstance:slow:delay=0.5s,"
        "GetEdgeInstanceDeployment:truncated"
    )
    assert specs == (
        FaultSpec(kind="lost", action="CreateEdgeInstance", times=1),
        FaultSpec(kind="unavailable", action="*", rate=0.05),
        FaultSpec(kind="unavailable", action="GetEdgeInstance", rate=0.2, after=3),
        FaultSpec(kind="delay", action="QueryEdgeInstance", delay=0.5),
        FaultSpec(kind="malformed", action="GetEdgeInstanceDeployment"),
    )
    assert normalize_faults({"GetEdgeInstance": "reset:times=2"}) == (
        FaultSpec(kind="reset", action="GetEdgeInstance", times=2),
    )
    assert normalize_faults({"A": [FaultSpec(kind="lost")]}) == (
        FaultSpec(kind="lost", action="A"),
    )
    assert normalize_faults(["A:503", "B:lost"]) == (
        FaultSpec(kind="unavailable", action="A"),
        FaultSpec(kind="lost", action="B"),
    )
    assert normalize_faults(None) == ()


@pytest.mark.parametrize(
    ("alias", "kind"), [("503", "unavailable"), ("slow", "delay"), ("truncated", "malformed")]
)
def test_a_fault_spec_takes_the_kind_aliases(alias: str, kind: str) -> None:
    assert FaultSpec(kind=alias) == FaultSpec(kind=kind)
    assert FaultSpec(kind=alias).to_dict()["kind"] == kind
    assert parse_faults(f"A:{alias}") == (FaultSpec(kind=kind, action="A"),)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("GetEdgeInstance", "ACTION:KIND"),
        ("GetEdgeInstance:explode", "unknown fault kind"),
        ("GetEdgeInstance:lost:often", "key=value"),
        ("GetEdgeInstance:lost:rate=2", "rate"),
        ("GetEdgeInstance:lost:colour=red", "unknown fault option"),
        ("GetEdgeInstance:lost:times=-1", "times"),
    ],
)
def test_bad_fault_specs_are_refused(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_faults(text)


def test_fault_plans_are_seeded_and_count_their_rules() -> None:
    def draws(seed: int) -> list[bool]:
        plan = FaultPlan((FaultSpec(kind="unavailable", rate=0.5),), seed=seed)
        return [plan.pick("A", "pre") is not None for _ in range(64)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert 10 < sum(draws(1)) < 54
    plan = FaultPlan((FaultSpec(kind="lost", action="A", after=2, times=2),))
    assert [plan.pick("A", "post") is not None for _ in range(6)] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert plan.pick("B", "post") is None and plan.pick("A", "pre") is None
    [rule] = plan.describe()
    assert (rule["kind"], rule["seen"], rule["fired"]) == ("lost", 4, 2)


# --------------------------------------------------------------------------- each kind


async def test_unavailable_answers_503_before_execution(raw: Raw) -> None:
    raw.emu.set_faults("CreateEdgeInstance:503:times=1")
    first = await raw.call("CreateEdgeInstance", {"Name": "a"})
    assert (first.status, first.code) == (503, "ServiceUnavailable")
    assert set(first.body) >= {"RequestId", "Code", "Message"}
    assert raw.emu.executions == []
    assert (await raw.call("CreateEdgeInstance", {"Name": "a"})).ok
    [fault] = raw.emu.fault_log
    assert (fault.action, fault.kind, fault.executed) == (
        "CreateEdgeInstance",
        "unavailable",
        False,
    )
    assert fault.nonce == first.params["SignatureNonce"]
    stats = raw.emu.stats()["CreateEdgeInstance"]
    assert (stats["requests"], stats["faults"], stats["executed"]) == (2, 1, 1)


async def test_reset_drops_the_connection_before_execution(raw: Raw) -> None:
    raw.emu.set_faults([FaultSpec(kind="reset", action="CreateEdgeInstance", times=1)])
    with pytest.raises(_CONNECTION_ERRORS):
        await raw.call("CreateEdgeInstance", {"Name": "a"})
    assert raw.emu.executions == []
    assert [r.outcome for r in raw.emu.requests] == ["fault"]
    assert (await raw.call("CreateEdgeInstance", {"Name": "a"})).ok  # the server lives on


async def test_lost_executes_then_drops_the_connection(raw: Raw) -> None:
    raw.emu.set_faults({"CreateEdgeInstance": "lost:times=1"})
    with pytest.raises(_CONNECTION_ERRORS):
        await raw.call("CreateEdgeInstance", {"Name": "ghost"})
    assert [(e.action, e.params) for e in raw.emu.executions] == [
        ("CreateEdgeInstance", {"Name": "ghost"})
    ]
    listed = await raw.ok("QueryEdgeInstance", {})
    assert [i["Name"] for i in listed["Data"]["InstanceList"]] == ["ghost"]  # it did happen
    [fault] = raw.emu.fault_log
    assert (fault.kind, fault.executed) == ("lost", True)


async def test_malformed_bodies_are_truncated_json(raw: Raw) -> None:
    raw.emu.set_faults("GetEdgeInstance:malformed")
    iid = (await raw.ok("CreateEdgeInstance", {"Name": "a"}))["InstanceId"]
    params = raw.signed("GetEdgeInstance", {"InstanceId": iid})
    async with raw.session.post(
        raw.emu.endpoint + "/",
        data=params,
    ) as resp:
        body = await resp.read()
        status, headers = resp.status, dict(resp.headers)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)
    assert body.startswith(b'{"RequestId":')
    with pytest.raises(InvalidResponseError):
        parse_response(get_operation("GetEdgeInstance"), status, headers, body)
    assert raw.emu.fault_log[-1].executed is True
    assert raw.emu.executions[-1].action == "GetEdgeInstance"


async def test_delay_holds_the_answer_back_then_serves_it(raw: Raw) -> None:
    raw.emu.set_faults("QueryEdgeInstance:delay:delay=0.25:times=1")
    started = time.monotonic()
    answer = await raw.call("QueryEdgeInstance", {})
    assert time.monotonic() - started >= 0.25  # really held back
    assert answer.ok
    [fault] = raw.emu.fault_log
    # The request ran at once; only its answer waited.
    assert (fault.kind, fault.executed) == ("delay", True)
    assert fault.request_id == answer.body["RequestId"]
    assert [r.outcome for r in raw.emu.requests] == ["executed"]
    started = time.monotonic()
    assert (await raw.call("QueryEdgeInstance", {})).ok  # times=1: no more delay
    assert time.monotonic() - started < 0.25


async def test_a_delayed_request_runs_before_its_answer_is_held_back(raw: Raw) -> None:
    raw.emu.set_faults("CreateEdgeInstance:delay:delay=30")
    params = raw.signed("CreateEdgeInstance", {"Name": "slow"})
    request = asyncio.ensure_future(raw.send(params))
    try:
        # Executed while the answer is still held back, so a client that gives up on a
        # slow mutating call cannot assume it did not run.
        for _ in range(500):
            if raw.emu.executions:
                break
            await asyncio.sleep(0.01)
        assert [(e.action, e.nonce) for e in raw.emu.executions] == [
            ("CreateEdgeInstance", params["SignatureNonce"])
        ]
        assert not request.done()
        [fault] = raw.emu.fault_log
        assert (fault.kind, fault.executed) == ("delay", True)
    finally:
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request


async def test_a_delayed_refusal_is_recorded_as_not_executed(raw: Raw) -> None:
    raw.emu.set_faults("CreateEdgeInstance:delay:delay=0.01")
    refused = await raw.call("CreateEdgeInstance", {"Name": "has space"}, validate=False)
    assert refused.code == "iot.common.InvalidParam"
    forged = await raw.call("CreateEdgeInstance", {"Name": "x"}, secret="wrong")
    assert forged.code == "SignatureDoesNotMatch"
    assert [(f.kind, f.executed) for f in raw.emu.fault_log] == [
        ("delay", False),
        ("delay", False),
    ]
    assert raw.emu.executions == []


async def test_post_execution_faults_skip_requests_that_did_not_run(raw: Raw) -> None:
    raw.emu.set_faults("CreateEdgeInstance:lost:times=1")
    refused = await raw.call("CreateEdgeInstance", {"Name": "bad name"}, validate=False)
    assert refused.code == "iot.common.InvalidParam"  # answered: the fault waits
    forged = await raw.call("CreateEdgeInstance", {"Name": "x"}, secret="wrong")
    assert forged.code == "SignatureDoesNotMatch"
    assert raw.emu.fault_log == []
    with pytest.raises(_CONNECTION_ERRORS):
        await raw.call("CreateEdgeInstance", {"Name": "good"})


async def test_the_same_seed_injects_the_same_faults() -> None:
    async def run(seed: int) -> list[int]:
        async with (
            Emulator(quotas=False, seed=seed, faults="*:503=0.3") as emu,
            aiohttp.ClientSession() as session,
        ):
            raw = Raw(emu, session)
            return [(await raw.call("QueryEdgeInstance", {})).status for _ in range(30)]

    first, second = await run(3), await run(3)
    assert first == second
    assert set(first) == {200, 503}


async def test_clearing_faults(raw: Raw) -> None:
    raw.emu.set_faults("*:503")
    assert (await raw.call("QueryEdgeInstance", {})).status == 503
    raw.emu.clear_faults()
    assert (await raw.call("QueryEdgeInstance", {})).ok


async def test_a_lost_mutating_call_is_not_repeated_by_the_client() -> None:
    """The record of executions proves the client never ran a mutation twice."""
    async with (
        Emulator(
            quotas=False, faults="CreateEdgeInstance:lost:times=1,QueryEdgeInstance:503:times=2"
        ) as emu,
        EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=False,
            retry=RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002),
        ) as client,
    ):
        with pytest.raises(TransportError) as caught:
            await client.call("CreateEdgeInstance", {"Name": "once"})
        assert caught.value.maybe_executed is True
        assert [e.action for e in emu.executions] == ["CreateEdgeInstance"]
        # A read-only call is retried through 503s and runs exactly once.
        body = await client.call("QueryEdgeInstance", {})
        assert [i["Name"] for i in body["Data"]["InstanceList"]] == ["once"]
        assert [e.action for e in emu.executions] == ["CreateEdgeInstance", "QueryEdgeInstance"]
        nonces = [e.nonce for e in emu.executions]
        assert len(set(nonces)) == len(nonces)
        assert emu.stats()["QueryEdgeInstance"]["faults"] == 2
