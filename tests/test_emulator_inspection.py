"""Inspection over unsigned HTTP, the threaded emulator, the command and the fixtures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aioedge import EdgeClient
from aioedge.testing import Emulator, EmulatorThread, FakeClock

from .test_emulator_support import Raw


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    async with Emulator(quotas=False, clock=FakeClock()) as emu, aiohttp.ClientSession() as session:
        yield Raw(emu, session)


async def _get(raw: Raw, path: str) -> Any:
    async with raw.session.get(raw.emu.endpoint + path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _send(raw: Raw, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with raw.session.request(method, raw.emu.endpoint + path, json=body) as resp:
        return resp.status, await resp.json()


async def _rollout(raw: Raw) -> tuple[str, str]:
    iid = (await raw.ok("CreateEdgeInstance", {"Name": "site"}))["InstanceId"]
    await raw.ok(
        "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw"}
    )
    dep = (await raw.ok("CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}))[
        "DeploymentId"
    ]
    return str(iid), str(dep)


async def test_http_inspection_mirrors_the_python_view(raw: Raw) -> None:
    iid, dep = await _rollout(raw)
    assert isinstance(raw.emu.clock, FakeClock)
    raw.emu.clock.advance(60)
    await raw.ok("GetEdgeInstance", {"InstanceId": iid})
    assert await _get(raw, "/_emulator/stats") == raw.emu.stats()
    executions = await _get(raw, "/_emulator/executions")
    assert [(e["action"], e["params"], e["nonce"]) for e in executions] == [
        tuple(e) for e in raw.emu.executions
    ]
    assert {e["code"] for e in executions} == {"Success"}
    requests = await _get(raw, "/_emulator/requests")
    assert [r["outcome"] for r in requests] == ["executed"] * 4
    assert await _get(raw, f"/_emulator/timeline/{dep}") == raw.emu.timeline(dep)
    info = await _get(raw, "/_emulator")
    assert info["access_key_id"] == raw.emu.credentials.access_key_id
    assert "secret" not in json.dumps(info).lower()
    status, _ = await _send(raw, "GET", "/_emulator/timeline/nope")
    assert status == 404


async def test_faults_over_http(raw: Raw) -> None:
    status, body = await _send(
        raw, "PUT", "/_emulator/faults", {"spec": "QueryEdgeInstance:503:times=1"}
    )
    assert status == 200 and body["rules"][0]["kind"] == "unavailable"
    assert (await raw.call("QueryEdgeInstance", {})).status == 503
    faults = await _get(raw, "/_emulator/faults")
    assert faults["rules"][0]["fired"] == 1
    assert [(f["action"], f["kind"], f["executed"]) for f in faults["log"]] == [
        ("QueryEdgeInstance", "unavailable", False)
    ]
    status, body = await _send(
        raw, "POST", "/_emulator/faults", {"rules": [{"kind": "unavailable", "action": "*"}]}
    )
    assert status == 200
    assert (await raw.call("GetEdgeInstance", {"InstanceId": "x"})).status == 503
    status, _ = await _send(raw, "DELETE", "/_emulator/faults")
    assert status == 200
    assert (await raw.call("QueryEdgeInstance", {})).ok
    status, body = await _send(raw, "PUT", "/_emulator/faults", {"spec": "X:explode"})
    assert status == 400 and "unknown fault kind" in body["error"]
    status, body = await _send(raw, "PUT", "/_emulator/faults", {"rules": [{"kind": "oops"}]})
    assert status == 400 and "unknown fault kind" in body["error"]


@pytest.mark.parametrize("kind", ["503", 503])
async def test_fault_rules_over_http_take_the_kind_aliases(raw: Raw, kind: object) -> None:
    rule = {"kind": kind, "action": "QueryEdgeInstance", "times": 1}
    status, body = await _send(raw, "PUT", "/_emulator/faults", {"rules": [rule]})
    assert status == 200, body
    assert body["rules"][0]["kind"] == "unavailable"
    assert (await raw.call("QueryEdgeInstance", {})).status == 503
    status, body = await _send(raw, "PUT", "/_emulator/faults", {"rules": [{"kind": "slow"}]})
    assert status == 200 and body["rules"][0]["kind"] == "delay"


async def test_a_fault_rule_for_an_unknown_action_is_refused_everywhere(raw: Raw) -> None:
    # A rule that could never strike would let a fault test pass without its fault.
    for body in ({"spec": "GetEdgeInstanc:503"}, {"rules": [{"kind": "lost", "action": "Nope"}]}):
        status, answer = await _send(raw, "PUT", "/_emulator/faults", body)
        assert status == 400 and "unknown Action" in answer["error"], answer
    assert "did you mean 'GetEdgeInstance'" in answer_for(raw.emu, "GetEdgeInstanc:503")
    with pytest.raises(ValueError, match="unknown Action 'Nope'"):
        Emulator(faults="Nope:lost")
    with pytest.raises(ValueError, match="unknown Action"):
        Emulator(faults={"GetEdgeInstanc": "503"})
    assert (await _get(raw, "/_emulator/faults"))["rules"] == []  # nothing half-applied
    raw.emu.set_faults("*:503:times=1,GetEdgeInstance:lost")  # "*" and real names still work
    assert [r["action"] for r in (await _get(raw, "/_emulator/faults"))["rules"]] == [
        "*",
        "GetEdgeInstance",
    ]


def answer_for(emu: Emulator, spec: str) -> str:
    try:
        emu.set_faults(spec)
    except ValueError as err:
        return str(err)
    raise AssertionError(f"{spec!r} was accepted")


async def test_devices_failures_and_reset_over_http(raw: Raw) -> None:
    status, device = await _send(
        raw,
        "POST",
        "/_emulator/devices",
        {"ProductKey": "pk", "DeviceName": "gw", "NodeType": "gateway"},
    )
    assert status == 201 and device["IotId"].endswith("000101")
    status, _ = await _send(
        raw, "POST", "/_emulator/devices", {"ProductKey": "pk", "DeviceName": "gw"}
    )
    assert status == 400  # already known
    status, _ = await _send(raw, "POST", "/_emulator/deployment-failures", {"stage": 8})
    assert status == 201
    iid = (await raw.ok("CreateEdgeInstance", {"Name": "site"}))["InstanceId"]
    await raw.ok("BindGatewayToEdgeInstance", {"InstanceId": iid, "IotId": device["IotId"]})
    dep = (await raw.ok("CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}))[
        "DeploymentId"
    ]
    assert isinstance(raw.emu.clock, FakeClock)
    raw.emu.clock.advance(60)
    timeline = await _get(raw, f"/_emulator/timeline/{dep}")
    assert timeline[-1] == {**timeline[-1], "kind": "deployment", "status": 3}
    status, body = await _send(raw, "POST", "/_emulator/deployment-failures", {"stage": 9})
    assert status == 400 and "stage" in body["error"]
    status, body = await _send(
        raw, "POST", "/_emulator/deployment-failures", {"stage": 8, "deployment_id": "nope"}
    )
    assert status == 404 and "nope" in body["error"]
    status, _ = await _send(raw, "POST", "/_emulator/reset")
    assert status == 200
    assert raw.emu.stats() == {} and raw.emu.executions == []
    assert (await raw.ok("QueryEdgeInstance", {}))["Data"]["Total"] == 0


def test_the_threaded_emulator_serves_synchronous_code() -> None:
    with EmulatorThread(quotas=False) as handle:
        with urllib.request.urlopen(handle.endpoint + "/_emulator/stats") as resp:
            assert json.loads(resp.read()) == {}
        assert handle.call(lambda emu: emu.add_device("pk", "dn")["DeviceName"]) == "dn"
        assert handle.stats() == {} and handle.executions() == []
        handle.reset()
        assert handle.call(lambda emu: emu.service.backend.devices) == {}
        endpoint = handle.endpoint
    with pytest.raises(OSError):  # stopped: nobody listens any more
        urllib.request.urlopen(endpoint + "/_emulator/stats", timeout=2)


def test_a_taken_port_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            Emulator.start_in_thread(port=port)


async def test_endpoint_needs_a_started_emulator() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not started"):
        _ = emu.endpoint
    assert "not started" in repr(emu)
    with pytest.raises(TypeError, match="Emulator"):
        Emulator(colour="blue")


def test_the_command_serves_until_terminated() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioedge.testing", "--port", "0", "--json", "--speed", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["endpoint"].startswith("http://127.0.0.1:")
        assert info["access_key_secret"]
        with urllib.request.urlopen(info["endpoint"] + "/_emulator", timeout=5) as resp:
            assert json.loads(resp.read())["speed"] == 50
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_the_command_refuses_bad_faults() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aioedge.testing", "--port", "0", "--faults", "X:explode"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown fault kind" in done.stderr


# --------------------------------------------------------------------------- the fixtures


@pytest.fixture
def edge_emulator_options() -> dict[str, Any]:
    return {"speed": 100.0, "quotas": False, "seed": 5}


@pytest.fixture
def edge_client_options() -> dict[str, Any]:
    return {"retry": None, "rate_limit": False}


async def test_the_plugin_fixtures(edge_emulator: Emulator, edge_client: EdgeClient) -> None:
    assert edge_emulator.options.speed == 100.0 and not edge_emulator.options.quotas
    created = await edge_client.call("CreateEdgeInstance", {"Name": "fixture"})
    got = await edge_client.call("GetEdgeInstance", {"InstanceId": created["InstanceId"]})
    assert got["Data"]["Name"] == "fixture"
    assert [e.action for e in edge_emulator.executions] == ["CreateEdgeInstance", "GetEdgeInstance"]


def test_the_threaded_fixture(edge_emulator_thread: EmulatorThread) -> None:
    assert edge_emulator_thread.emulator.options.seed == 5
    with urllib.request.urlopen(edge_emulator_thread.endpoint + "/_emulator", timeout=5) as resp:
        assert json.loads(resp.read())["seed"] == 5


async def test_a_real_time_rollout_at_speed_100(
    edge_client: EdgeClient, edge_emulator: Emulator
) -> None:
    """The real clock drives the rollout; speed=100 makes it take milliseconds."""
    iid = (await edge_client.call("CreateEdgeInstance", {"Name": "fast"}))["InstanceId"]
    await edge_client.call(
        "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "p", "DeviceName": "g"}
    )
    dep = (
        await edge_client.call(
            "CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}
        )
    )["DeploymentId"]
    for _ in range(200):
        data = (
            await edge_client.call(
                "GetEdgeInstanceDeployment", {"InstanceId": iid, "DeploymentId": dep}
            )
        )["Data"]
        if data["Status"] in (2, 3):
            break
        await asyncio.sleep(0.01)
    assert data["Status"] == 2
    assert edge_emulator.timeline(dep)[-1]["status"] == 2


async def test_a_stall_over_http_leaves_the_deployment_running(raw: Raw) -> None:
    status, _ = await _send(
        raw, "POST", "/_emulator/deployment-failures", {"stage": 8, "stall": True}
    )
    assert status == 201
    iid = (await raw.ok("CreateEdgeInstance", {"Name": "hangs"}))["InstanceId"]
    await raw.ok("BindGatewayToEdgeInstance", {"InstanceId": iid, "IotId": "gwhang"})
    dep = (await raw.ok("CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}))[
        "DeploymentId"
    ]
    assert isinstance(raw.emu.clock, FakeClock)
    raw.emu.clock.advance(600)
    timeline = await _get(raw, f"/_emulator/timeline/{dep}")
    deployment = [t for t in timeline if t["kind"] == "deployment"]
    assert deployment[-1]["status"] == 1  # still running, ten minutes on
    assert max(t["stage"] or 0 for t in timeline if t["kind"] == "task") == 8


def test_the_emulator_options_are_explicit_keywords() -> None:
    import inspect

    params = inspect.signature(Emulator).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert {"faults", "speed", "seed", "fleet", "token_lifetime"} <= set(params)
    # Every field of the options is a keyword, and no keyword is left unused.
    from dataclasses import fields

    from aioedge.testing._service import EmulatorOptions

    assert {f.name for f in fields(EmulatorOptions)} == set(params)
