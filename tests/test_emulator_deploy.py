"""The deployment simulation: the pure schedule, then rollouts over HTTP on a fake clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from aioedge.testing import Emulator, EmulatorOptions, FakeClock
from aioedge.testing._deploy import (
    STAGES,
    DeploymentView,
    Failure,
    Plan,
    Resource,
    SnapshotPlan,
    TaskPlan,
    build_schedule,
)

from .test_emulator_support import Raw, keys_match_spec

D = 1000  # one stage, in ms, for the pure tests


def _plan(*snapshots_per_task: int) -> Plan:
    tasks = []
    for t, count in enumerate(snapshots_per_task):
        snaps = tuple(
            SnapshotPlan(
                snapshot_id=f"s{t}{i}",
                resource=Resource(
                    resource_id=f"r{i}", resource_name=f"res{i}", resource_type="driver"
                ),
            )
            for i in range(count)
        )
        tasks.append(TaskPlan(task_id=f"t{t}", gateway_id=f"g{t}", snapshots=snaps))
    return Plan(deployment_id="dep", tasks=tuple(tasks))


def _path(
    events: list[Any], kind: str, task: str | None, snap: str | None
) -> list[tuple[Any, ...]]:
    return [
        (e.stage, e.status)
        for e in events
        if (e.kind, e.task_id, e.snapshot_id) == (kind, task, snap)
    ]


# --------------------------------------------------------------------------- pure schedule


def test_a_snapshot_walks_every_stage_and_logs_each() -> None:
    events = build_schedule(_plan(2), created_ms=0, stage_ms=D)
    assert [e.time_ms for e in events] == sorted(e.time_ms for e in events)
    assert _path(events, "snapshot", "t0", "s00") == [
        (0, 0),
        (0, 1),
        (8, 1),
        (16, 1),
        (24, 1),
        (32, 2),
    ]
    messages = [e.log["message"] for e in events if e.snapshot_id == "s00" and e.log]
    assert messages == [
        "init success",
        "assembly success",
        "package success",
        "dispatch success",
        "download success",
    ]
    assert _path(events, "deployment", None, None) == [(None, 0), (None, 1), (None, 2)]
    task = _path(events, "task", "t0", None)
    assert task[0] == (0, 0) and task[-1] == (32, 2)
    assert [stage for stage, _ in task] == sorted(stage for stage, _ in task)
    # Initial states come first; the deployment ends last, after its subtask.
    assert {e.status for e in events[:4]} == {0} and events[0].kind == "deployment"
    assert (events[-2].kind, events[-1].kind) == ("task", "deployment")
    assert events[-1].time_ms == max(e.time_ms for e in events)


def test_log_entries_have_the_documented_fields() -> None:
    view = DeploymentView(build_schedule(_plan(1), created_ms=5_000, stage_ms=D))
    entries = json.loads(view.log("t0", "s00", 10**9))
    assert [e["stage"] for e in entries] == list(STAGES)
    assert all(
        set(e) == {"resourceId", "code", "stage", "level", "message", "resourceType", "timestamp"}
        for e in entries
    )
    assert {(e["resourceId"], e["resourceType"], e["level"], e["code"]) for e in entries} == {
        ("r0", "DRIVER", "INFO", "0")
    }
    assert json.loads(view.log("t0", "s00", 5_000)) == []  # appeared, not yet started


def test_a_subtask_follows_its_slowest_snapshot() -> None:
    events = build_schedule(_plan(3), created_ms=0, stage_ms=D)
    view = DeploymentView(events)
    for e in events:
        if e.kind != "task" or e.status == 0:
            continue
        states = [view.state("snapshot", "t0", f"s0{i}", e.time_ms)[1] for i in range(3)]
        assert e.stage == min(s.stage for s in states if s is not None)


def test_an_injected_failure_fails_its_snapshot_subtask_and_deployment() -> None:
    events = build_schedule(
        _plan(2, 1), created_ms=0, stage_ms=D, failure=Failure(stage=16, resource_id="r1")
    )
    failed = [e for e in events if e.status == 3]
    assert [(e.kind, e.task_id, e.snapshot_id, e.stage) for e in failed] == [
        ("snapshot", "t0", "s01", 16),
        ("snapshot", "t0", "s00", 16),  # its sibling ends with it
        ("task", "t0", None, 16),
        ("deployment", None, None, None),
    ]
    assert failed[0].log is not None and failed[0].log["level"] == "ERROR"
    assert failed[0].log["message"] == "package failed: injected failure"
    # The sibling goes no further and ends at once, saying why; the other gateway's
    # subtask still finishes.
    assert failed[1].log == {**failed[1].log, "level": "ERROR", "message": "stopped: r1 failed"}
    assert len({e.time_ms for e in failed[:3]}) == 1
    assert _path(events, "snapshot", "t0", "s00")[-2:] == [(16, 1), (16, 3)]
    assert _path(events, "task", "t1", None)[-1] == (32, 2)
    assert events[-1].kind == "deployment" and events[-1].status == 3


@pytest.mark.parametrize("stage", STAGES)
def test_failure_at_every_stage(stage: int) -> None:
    events = build_schedule(_plan(1), created_ms=0, stage_ms=D, failure=Failure(stage=stage))
    path = _path(events, "snapshot", "t0", "s00")
    assert path[-1] == (stage, 3)
    assert [s for s, _ in path[1:-1]] == [s for s in STAGES if s < stage]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("resource", ["r0", "r1", "r2"])
def test_a_failed_subtask_ends_every_snapshot_it_had_not_finished(
    stage: int, resource: str
) -> None:
    plan = _plan(3, 2)
    events = build_schedule(
        plan, created_ms=0, stage_ms=D, failure=Failure(stage=stage, resource_id=resource)
    )
    view = DeploymentView(events)
    end = events[-1].time_ms
    culprit = next(e for e in events if e.kind == "snapshot" and e.status == 3)
    fail_time = culprit.time_ms
    assert (culprit.snapshot_id, culprit.stage) == (f"s0{resource[1]}", stage)
    for t in plan.tasks:
        for snap in t.snapshots:
            first, last = view.state("snapshot", t.task_id, snap.snapshot_id, end)
            assert first is not None and last is not None
            assert last.status in (2, 3), (snap.snapshot_id, last)  # nothing left running
            if last.status == 2 or snap.snapshot_id == culprit.snapshot_id:
                continue
            # Stopped at the failure, at the stage it had reached, with an ERROR entry.
            assert (last.task_id, last.time_ms) == ("t0", fail_time)
            path = _path(events, "snapshot", t.task_id, snap.snapshot_id)
            assert path[-1] == (path[-2][0], 3)
            entries = json.loads(view.log(t.task_id, snap.snapshot_id, end))
            assert entries[-1] == {
                "resourceId": snap.resource.resource_id,
                "code": "1",
                "stage": last.stage,
                "level": "ERROR",
                "message": f"stopped: {resource} failed",
                "resourceType": "DRIVER",
                "timestamp": fail_time,
            }
    # At the failure's time: the failing snapshot, the stopped ones, then the subtask.
    at_failure = [
        (e.kind, e.snapshot_id) for e in events if e.time_ms == fail_time and e.status == 3
    ]
    assert at_failure[0] == ("snapshot", culprit.snapshot_id)
    assert at_failure[-1][0] in ("task", "deployment")
    assert _path(events, "task", "t0", None)[-1] == (stage, 3)
    assert _path(events, "task", "t1", None)[-1] == (32, 2)
    # A snapshot that had not started when its subtask failed ends too, at stage 0.
    if stage == 0 and resource == "r0":
        assert _path(events, "snapshot", "t0", "s02") == [(0, 0), (0, 3)]


def test_snapshots_that_had_finished_keep_their_success() -> None:
    events = build_schedule(
        _plan(3), created_ms=0, stage_ms=D, failure=Failure(stage=32, resource_id="r2")
    )
    finals = {e.snapshot_id: e.status for e in events if e.kind == "snapshot"}
    assert finals == {"s00": 2, "s01": 2, "s02": 3}


def test_a_failure_on_a_subtask_without_resources() -> None:
    events = build_schedule(_plan(0), created_ms=0, stage_ms=D, failure=Failure(stage=8))
    assert _path(events, "task", "t0", None)[-1] == (8, 3)
    assert events[-1].status == 3


def test_a_failure_needs_an_existing_resource_and_stage() -> None:
    with pytest.raises(ValueError, match="no snapshot"):
        build_schedule(
            _plan(1), created_ms=0, stage_ms=D, failure=Failure(stage=8, resource_id="x")
        )
    with pytest.raises(ValueError, match="stage"):
        Failure(stage=12)


def test_a_failure_can_pick_its_gateway_and_snapshot() -> None:
    plan = _plan(2, 2, 2)
    events = build_schedule(
        plan, created_ms=0, stage_ms=D, failure=Failure(stage=24, gateway_id="g2", resource_id="r1")
    )
    failed = [(e.kind, e.task_id, e.snapshot_id, e.stage) for e in events if e.status == 3]
    assert failed == [
        ("snapshot", "t2", "s21", 24),
        ("snapshot", "t2", "s20", 24),  # stopped with it
        ("task", "t2", None, 24),
        ("deployment", None, None, None),
    ]
    for task in ("t0", "t1"):  # the other gateways' subtasks finish
        assert _path(events, "task", task, None)[-1] == (32, 2)
    # A gateway alone: its first snapshot.
    only_gateway = build_schedule(
        plan, created_ms=0, stage_ms=D, failure=Failure(stage=8, gateway_id="g1")
    )
    first_failed = next(e for e in only_gateway if e.status == 3)
    assert (first_failed.task_id, first_failed.snapshot_id) == ("t1", "s10")
    assert Failure(stage=8, gateway_id="g1").locate(plan) == ("t1", "s10")
    assert Failure(stage=8, gateway_id="g9").fits(plan) is False
    with pytest.raises(ValueError, match="no subtask for gateway 'g9'"):
        build_schedule(plan, created_ms=0, stage_ms=D, failure=Failure(stage=8, gateway_id="g9"))
    with pytest.raises(ValueError, match="on gateway 'g0'"):
        Failure(stage=8, gateway_id="g0", resource_id="r7").locate(plan)


def test_closing_fails_whatever_has_not_ended() -> None:
    events = build_schedule(_plan(2), created_ms=0, stage_ms=D, closed_ms=2 * D)
    assert all(e.time_ms <= 2 * D for e in events)
    last = {(e.kind, e.task_id, e.snapshot_id): e for e in events}
    assert {e.status for e in last.values()} == {3}
    closed = [e for e in events if e.log and e.log["message"] == "deployment closed"]
    assert len(closed) == 2
    done = build_schedule(_plan(2), created_ms=0, stage_ms=D)
    assert build_schedule(_plan(2), created_ms=0, stage_ms=D, closed_ms=10**9) == done


def test_the_schedule_is_a_pure_function_of_its_inputs() -> None:
    a = build_schedule(_plan(2, 3), created_ms=7, stage_ms=D, failure=Failure(stage=24))
    b = build_schedule(_plan(2, 3), created_ms=7, stage_ms=D, failure=Failure(stage=24))
    assert a == b
    fast = build_schedule(_plan(1), created_ms=0, stage_ms=D // 50)
    slow = build_schedule(_plan(1), created_ms=0, stage_ms=D)
    assert fast[-1].time_ms * 50 == slow[-1].time_ms


def test_speed_sets_the_stage_length() -> None:
    assert EmulatorOptions(speed=1.0).stage_ms == 2000
    assert EmulatorOptions(speed=50.0).stage_ms == 40
    assert EmulatorOptions(speed=4.0, stage_seconds=1.0).stage_ms == 250
    with pytest.raises(ValueError, match="speed"):
        EmulatorOptions(speed=0)


# --------------------------------------------------------------------------- over HTTP


@dataclass
class Site:
    raw: Raw
    clock: FakeClock
    instance: str
    driver: str
    device: str


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    clock = FakeClock()
    async with Emulator(quotas=False, clock=clock) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        iid = (await raw.ok("CreateEdgeInstance", {"Name": "plant", "Spec": "20"}))["InstanceId"]
        for gw in ("gw1", "gw2"):
            await raw.ok(
                "BindGatewayToEdgeInstance",
                {"InstanceId": iid, "ProductKey": "pk", "DeviceName": gw},
            )
        did = (
            await raw.ok(
                "CreateEdgeDriver",
                {"DriverName": "Modbus1", "DriverProtocol": "modbus", "Runtime": "c"},
            )
        )["DriverId"]
        await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
        await raw.ok(
            "SetEdgeInstanceDriverConfigs",
            {"InstanceId": iid, "DriverId": did, "Configs": [{"Format": "JSON", "Content": "{}"}]},
        )
        dev = "sensor0000000000000000000101"
        await raw.ok(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": did, "IotIds": [dev]},
        )
        await raw.ok(
            "BatchSetEdgeInstanceDeviceConfig",
            {"InstanceId": iid, "DeviceConfigs": [{"IotId": dev, "Content": '{"a":1}'}]},
        )
        yield Site(raw, clock, iid, did, dev)


async def _deploy(site: Site, kind: str = "deploy") -> str:
    body = await site.raw.ok(
        "CreateEdgeInstanceDeployment", {"InstanceId": site.instance, "Type": kind}
    )
    return str(body["DeploymentId"])


async def _get(site: Site, deployment_id: str) -> dict[str, Any]:
    body = await site.raw.ok(
        "GetEdgeInstanceDeployment", {"InstanceId": site.instance, "DeploymentId": deployment_id}
    )
    keys_match_spec(body, "GetEdgeInstanceDeployment")
    return dict(body["Data"])


async def _latest(site: Site) -> tuple[int | None, str | None]:
    data = (await site.raw.ok("GetEdgeInstance", {"InstanceId": site.instance}))["Data"]
    return data.get("LatestDeploymentStatus"), data.get("LatestDeploymentType")


async def test_a_rollout_from_creation_to_success(site: Site) -> None:
    dep = await _deploy(site)
    data = await _get(site, dep)
    assert data["Status"] == 0 and data["Type"] == "deploy"
    assert data["Description"] == f"deploy_{data['GmtCreateTimestamp']}"
    assert len(data["TaskList"]) == 2  # one subtask per gateway
    for task in data["TaskList"]:
        kinds = sorted(s["ResourceType"] for s in task["ResourceSnapshotList"])
        assert kinds == ["device_config", "driver", "driver_config"]
        assert all(s["Log"] == "[]" and s["Stage"] == 0 for s in task["ResourceSnapshotList"])
    assert await _latest(site) == (0, "deploy")
    site.clock.advance(1.5)
    data = await _get(site, dep)
    assert data["Status"] == 1 and "GmtCompleted" not in data
    assert await _latest(site) == (1, "deploy")
    snap = data["TaskList"][0]["ResourceSnapshotList"][0]
    assert snap["Status"] == 1 and json.loads(snap["Log"])[0]["message"] == "init success"
    site.clock.advance(60)
    data = await _get(site, dep)
    assert data["Status"] == 2 and data["GmtCompletedTimestamp"] >= data["GmtCreateTimestamp"]
    for task in data["TaskList"]:
        assert (task["Stage"], task["Status"]) == (32, 2)
        for s in task["ResourceSnapshotList"]:
            assert (s["Stage"], s["Status"], s["OperateType"]) == (32, 2, 0)
            assert [e["stage"] for e in json.loads(s["Log"])] == list(STAGES)
    assert await _latest(site) == (2, "deploy")


async def test_polled_state_always_matches_the_timeline(site: Site) -> None:
    dep = await _deploy(site)
    polls: list[tuple[int, dict[str, Any]]] = []
    for _ in range(60):
        polls.append((site.raw.emu.now_ms(), await _get(site, dep)))
        site.clock.advance(0.25)
    timeline = site.raw.emu.timeline(dep)
    assert timeline[0]["kind"] == "deployment" and timeline[0]["status"] == 0
    assert [t["timestamp_ms"] for t in timeline] == sorted(t["timestamp_ms"] for t in timeline)
    assert set(timeline[0]) == {
        "kind",
        "deployment_id",
        "task_id",
        "snapshot_id",
        "stage",
        "status",
        "timestamp_ms",
    }
    for now, data in polls:
        latest: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
        for t in timeline:
            if t["timestamp_ms"] <= now:
                latest[(t["kind"], t["task_id"], t["snapshot_id"])] = t
        assert latest[("deployment", None, None)]["status"] == data["Status"]
        for task in data["TaskList"]:
            expect = latest[("task", task["TaskId"], None)]
            assert (expect["stage"], expect["status"]) == (task["Stage"], task["Status"])
            for s in task["ResourceSnapshotList"]:
                expect = latest[("snapshot", task["TaskId"], s["SnapshotId"])]
                assert (expect["stage"], expect["status"]) == (s["Stage"], s["Status"])
                logged = [e["stage"] for e in json.loads(s["Log"])]
                assert logged == [
                    t["stage"]
                    for t in timeline
                    if t["snapshot_id"] == s["SnapshotId"]
                    and t["timestamp_ms"] <= now
                    and t["status"] != 0
                ]
    assert polls[-1][1]["Status"] == 2


async def test_one_running_deployment_per_instance(site: Site) -> None:
    dep = await _deploy(site)
    assert (
        await site.raw.fail(
            "CreateEdgeInstanceDeployment", {"InstanceId": site.instance, "Type": "deploy"}
        )
        == "iot.edge.deploySheetAlreadyExist"
    )
    assert (
        await site.raw.fail("DeleteEdgeInstance", {"InstanceId": site.instance})
        == "iot.edge.deploySheetAlreadyExist"
    )
    site.clock.advance(60)
    assert (await _get(site, dep))["Status"] == 2
    assert await _deploy(site) != dep


async def test_an_instance_without_gateway_cannot_deploy(site: Site) -> None:
    bare = (await site.raw.ok("CreateEdgeInstance", {"Name": "bare"}))["InstanceId"]
    assert (
        await site.raw.fail("CreateEdgeInstanceDeployment", {"InstanceId": bare, "Type": "deploy"})
        == "iot.edge.InstanceHasNoGateway"
    )
    assert (
        await site.raw.fail(
            "CreateEdgeInstanceDeployment", {"InstanceId": "nope", "Type": "deploy"}
        )
        == "iot.edge.InstanceNotExist"
    )


def _failed_and_stopped(task: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A failed subtask's snapshot that failed, and those stopped with it (all status 3)."""
    ended = [s for s in task["ResourceSnapshotList"] if s["Status"] == 3]
    stopped = [s for s in ended if json.loads(s["Log"])[-1]["message"].startswith("stopped: ")]
    [failed] = [s for s in ended if s not in stopped]
    return failed, stopped


async def test_an_armed_failure_fails_the_next_deployment(site: Site) -> None:
    site.raw.emu.fail_deployment_at(resource_id=site.device, stage=16)
    dep = await _deploy(site)
    site.clock.advance(60)
    data = await _get(site, dep)
    assert data["Status"] == 3
    failed_task, other_task = sorted(data["TaskList"], key=lambda t: t["Status"], reverse=True)
    assert (failed_task["Status"], failed_task["Stage"]) == (3, 16)
    assert (other_task["Status"], other_task["Stage"]) == (2, 32)  # only the first one fails
    failed, stopped = _failed_and_stopped(failed_task)
    assert (failed["ResourceId"], failed["Stage"]) == (site.device, 16)
    last = json.loads(failed["Log"])[-1]
    assert (last["level"], last["stage"]) == ("ERROR", 16)
    # The driver and its config had not finished: they ended with the subtask.
    assert sorted(s["ResourceType"] for s in stopped) == ["driver", "driver_config"]
    for snap in stopped:
        entry = json.loads(snap["Log"])[-1]
        assert entry["message"] == f"stopped: {site.device} failed"
        assert (entry["level"], entry["stage"]) == ("ERROR", snap["Stage"])
        assert entry["timestamp"] == last["timestamp"]
    assert all(s["Status"] == 2 for s in other_task["ResourceSnapshotList"])
    assert await _latest(site) == (3, "deploy")
    # The failure was used up: the next deployment succeeds.
    again = await _deploy(site)
    site.clock.advance(60)
    assert (await _get(site, again))["Status"] == 2


async def _gateways(site: Site) -> dict[str, str]:
    body = await site.raw.ok("QueryEdgeInstanceGateway", {"InstanceId": site.instance})
    return {g["DeviceName"]: g["IotId"] for g in body["GatewayList"]}


def _by_gateway(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["GatewayId"]: t for t in data["TaskList"]}


async def test_an_armed_failure_can_choose_the_gateway(site: Site) -> None:
    gateways = await _gateways(site)
    site.raw.emu.fail_deployment_at(
        resource_id=site.device, stage=24, gateway_id=gateways["gw2"], message="disk full"
    )
    dep = await _deploy(site)
    site.clock.advance(60)
    data = await _get(site, dep)
    assert data["Status"] == 3
    tasks = _by_gateway(data)
    assert (tasks[gateways["gw1"]]["Status"], tasks[gateways["gw1"]]["Stage"]) == (2, 32)
    failed_task = tasks[gateways["gw2"]]
    assert (failed_task["Status"], failed_task["Stage"]) == (3, 24)
    failed, stopped = _failed_and_stopped(failed_task)
    assert len(stopped) == 2
    assert (failed["ResourceId"], failed["Stage"]) == (site.device, 24)
    last = json.loads(failed["Log"])[-1]
    assert (last["level"], last["stage"]) == ("ERROR", 24) and "disk full" in last["message"]


async def test_a_failure_for_an_unknown_gateway_waits_for_it(site: Site) -> None:
    site.raw.emu.fail_deployment_at(stage=8, gateway_id="not-bound-here")
    dep = await _deploy(site)
    site.clock.advance(60)
    assert (await _get(site, dep))["Status"] == 2  # nothing to fail: it stays armed
    assert site.raw.emu.service.backend.pending_failure is not None


async def test_a_running_deployment_can_fail_on_a_chosen_gateway(site: Site) -> None:
    gateways = await _gateways(site)
    dep = await _deploy(site)
    site.clock.advance(1)
    with pytest.raises(ValueError, match="no subtask"):
        site.raw.emu.fail_deployment_at(stage=16, gateway_id="nope", deployment_id=dep)
    site.raw.emu.fail_deployment_at(stage=16, gateway_id=gateways["gw2"], deployment_id=dep)
    site.clock.advance(60)
    tasks = _by_gateway(await _get(site, dep))
    assert (tasks[gateways["gw1"]]["Status"], tasks[gateways["gw2"]]["Status"]) == (2, 3)
    assert tasks[gateways["gw2"]]["Stage"] == 16


async def test_failures_can_choose_the_gateway_over_http(site: Site) -> None:
    gateways = await _gateways(site)
    url = site.raw.emu.endpoint + "/_emulator/deployment-failures"
    failure = {"stage": 8, "gateway_id": gateways["gw2"], "resource_id": site.driver}
    async with site.raw.session.post(url, json=failure) as resp:
        assert resp.status == 201
    dep = await _deploy(site)
    site.clock.advance(60)
    tasks = _by_gateway(await _get(site, dep))
    assert (tasks[gateways["gw1"]]["Status"], tasks[gateways["gw2"]]["Status"]) == (2, 3)
    failed, stopped = _failed_and_stopped(tasks[gateways["gw2"]])
    assert (failed["ResourceId"], failed["Stage"]) == (site.driver, 8)
    assert len(stopped) == 2
    running = {"stage": 8, "gateway_id": "nope", "deployment_id": dep}
    async with site.raw.session.post(url, json=running) as resp:
        assert resp.status == 400 and "nope" in (await resp.json())["error"]


async def test_a_running_deployment_can_be_made_to_fail(site: Site) -> None:
    dep = await _deploy(site)
    site.clock.advance(2.5)
    with pytest.raises(ValueError, match="past stage"):
        site.raw.emu.fail_deployment_at(stage=0, deployment_id=dep)
    before = site.raw.emu.timeline(dep)
    site.raw.emu.fail_deployment_at(resource_id=site.driver, stage=24, deployment_id=dep)
    assert site.raw.emu.timeline(dep) == before  # the past is unchanged
    site.clock.advance(60)
    assert (await _get(site, dep))["Status"] == 3
    with pytest.raises(KeyError):
        site.raw.emu.fail_deployment_at(stage=8, deployment_id="nope")
    with pytest.raises(ValueError, match="stage"):
        site.raw.emu.fail_deployment_at(stage=10)
    with pytest.raises(ValueError, match="stage must be one of"):
        site.raw.emu.stall_deployment_at(stage=10)


async def test_close_stops_a_running_deployment(site: Site) -> None:
    assert (
        await site.raw.fail("CloseEdgeInstanceDeployment", {"InstanceId": site.instance})
        == "iot.edge.deploySheetNotExist"
    )
    dep = await _deploy(site)
    site.clock.advance(3)
    await site.raw.ok("CloseEdgeInstanceDeployment", {"InstanceId": site.instance})
    data = await _get(site, dep)
    assert data["Status"] == 3 and data["GmtCompletedTimestamp"] == site.raw.emu.now_ms()
    assert {t["Status"] for t in data["TaskList"]} == {3}
    site.clock.advance(60)
    assert await _get(site, dep) == data  # nothing moves after the close
    assert (
        await site.raw.fail("CloseEdgeInstanceDeployment", {"InstanceId": site.instance})
        == "iot.edge.deploySheetAlreadyFinish"
    )
    assert await _deploy(site)  # closed: a new one may start


async def test_unknown_deployments(site: Site) -> None:
    dep = await _deploy(site)
    other = (await site.raw.ok("CreateEdgeInstance", {"Name": "other"}))["InstanceId"]
    for instance, deployment in ((site.instance, "nope"), (other, dep)):
        assert (
            await site.raw.fail(
                "GetEdgeInstanceDeployment", {"InstanceId": instance, "DeploymentId": deployment}
            )
            == "iot.edge.deploySheetNotExist"
        )
    with pytest.raises(KeyError):
        site.raw.emu.timeline("nope")


async def test_history_pages_and_filters_by_time(site: Site) -> None:
    made: list[tuple[str, int]] = []
    for kind in ("deploy", "reset", "deploy"):
        made.append((await _deploy(site, kind), site.raw.emu.now_ms()))
        site.clock.advance(100)
    history = await site.raw.ok(
        "QueryEdgeInstanceHistoricDeployment", {"InstanceId": site.instance, "PageSize": "2"}
    )
    keys_match_spec(history, "QueryEdgeInstanceHistoricDeployment")
    data = history["Data"]
    assert data["Total"] == 3
    assert [d["DeploymentId"] for d in data["DeploymentList"]] == [made[2][0], made[1][0]]
    assert [d["Type"] for d in data["DeploymentList"]] == ["deploy", "reset"]
    assert all(d["Status"] == 2 for d in data["DeploymentList"])
    window = await site.raw.ok(
        "QueryEdgeInstanceHistoricDeployment",
        {"InstanceId": site.instance, "StartTime": str(made[1][1]), "EndTime": str(made[1][1])},
    )
    assert [d["DeploymentId"] for d in window["Data"]["DeploymentList"]] == [made[1][0]]
    reset = await _get(site, made[1][0])
    snaps = [s for t in reset["TaskList"] for s in t["ResourceSnapshotList"]]
    assert {s["OperateType"] for s in snaps} == {1}  # reset deletes resources


async def test_rollout_duration_follows_speed() -> None:
    clock = FakeClock()
    async with (
        Emulator(quotas=False, clock=clock, speed=4.0) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        iid = (await raw.ok("CreateEdgeInstance", {"Name": "solo"}))["InstanceId"]
        await raw.ok(
            "BindGatewayToEdgeInstance", {"InstanceId": iid, "IotId": "gw000000000000000000000101"}
        )
        dep = (await raw.ok("CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}))[
            "DeploymentId"
        ]
        clock.advance(60)
        data = (
            await raw.ok("GetEdgeInstanceDeployment", {"InstanceId": iid, "DeploymentId": dep})
        )["Data"]
        stage_ms = emu.options.stage_ms
        assert stage_ms == 500
        # A subtask without resources: start after half a stage, then four stages.
        assert (
            data["GmtCompletedTimestamp"] - data["GmtCreateTimestamp"]
            == stage_ms // 2 + 4 * stage_ms
        )
