"""Root cause first: the first snapshot that failed on its own, told apart from its fallout.

Pure tests on hand-built trees (ties, subtasks without snapshots, several failing
subtasks), then the watcher against the emulator's failing rollout: the ``final`` event,
``watcher.outcome``, the text tree and the HTML all name the culprit and its whole message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import pytest

from aioedge import EdgeClient
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import DeploymentState, LogEntry, WatchOutcome, render_text
from aioedge.watch._cause import failure_cause, failure_roles
from aioedge.watch._render import render_html
from aioedge.watch._state import SnapshotState, TaskState, final_event

LONG = (
    "dispatch failed: download failed: disk full on /var/lib/edge while writing "
    "driver_code.zip (needed 182 MB, 12 MB free); free space or grow the volume and retry"
)


def entry(stage: int, ms: int, message: str, *, level: str = "ERROR", code: str = "1") -> LogEntry:
    return LogEntry(stage=stage, timestamp=ms, level=level, code=code, message=message)


def snap(sid: str, status: int, *log: LogEntry, stage: int = 16, name: str = "") -> SnapshotState:
    return SnapshotState(
        snapshot_id=sid,
        resource_id=f"res-{sid}",
        resource_name=name or f"name-{sid}",
        resource_type="device_config",
        stage=stage,
        status=status,
        log=log,
    )


def tree(*tasks: TaskState, status: int = 3) -> DeploymentState:
    return DeploymentState(deployment_id="d" * 32, status=status, tasks=tasks)


def test_the_earliest_failure_is_the_cause_and_its_siblings_are_stopped() -> None:
    culprit = snap("s2", 3, entry(24, 2_000, LONG), stage=24, name="sensor_03")
    # The emulator's (and the service's) fallout: failed at the same moment, naming it.
    fallout = [
        snap("s1", 3, entry(16, 2_000, "stopped: res-s2 failed")),
        snap("s3", 3, entry(8, 2_000, "stopped: res-s2 failed"), stage=8),
    ]
    state = tree(
        TaskState(
            task_id="t1", gateway_id="gw1", status=3, snapshots=(fallout[0], culprit, fallout[1])
        )
    )
    cause = failure_cause(state)
    assert cause is not None
    assert (cause.snapshot_id, cause.task_id, cause.gateway_id) == ("s2", "t1", "gw1")
    assert cause.message == LONG and cause.code == "1" and cause.stage == 24
    assert cause.describe().startswith(
        "sensor_03 (device_config) at dispatching on gateway gw1: code=1: dispatch failed"
    )
    assert failure_roles(state) == {
        ("t1", "s1"): "stopped",
        ("t1", "s2"): "cause",
        ("t1", "s3"): "stopped",
    }
    # The final event carries it all, for JSON and for the terminal's last line.
    final = final_event(state)
    assert (final.reason, final.failed_snapshot, final.message) == ("snapshot_failed", "s2", LONG)
    assert final.resource_name == "sensor_03" and final.stage == 24
    line = str(final)
    assert "sensor_03 (device_config) at dispatching on gateway gw1" in line and LONG in line
    assert json.loads(json.dumps(final.to_dict()))["failed_snapshot"] == "s2"
    # The cause itself serialises field by field, in declaration order.
    assert json.dumps(cause.to_dict()) == json.dumps(
        {
            "task_id": "t1",
            "gateway_id": "gw1",
            "snapshot_id": "s2",
            "resource_id": "res-s2",
            "resource_name": "sensor_03",
            "resource_type": "device_config",
            "stage": 24,
            "code": "1",
            "message": LONG,
            "time": 2.0,
            "logged": True,
        }
    )


def test_time_decides_before_the_listing_order() -> None:
    late = snap("a", 3, entry(16, 5_000, "late"))
    early = snap("b", 3, entry(8, 1_000, "early"), stage=8)
    state = tree(TaskState(task_id="t", status=3, snapshots=(late, early)))
    assert failure_cause(state).snapshot_id == "b"  # type: ignore[union-attr]
    assert failure_roles(state)[("t", "a")] == "stopped"


def test_across_subtasks_the_first_is_the_cause_the_others_failed_on_their_own() -> None:
    t1 = TaskState(task_id="t1", status=3, snapshots=(snap("x", 3, entry(16, 9_000, "second")),))
    t2 = TaskState(
        task_id="t2",
        status=3,
        snapshots=(
            snap("y", 3, entry(8, 3_000, "first")),
            snap("z", 3, entry(8, 3_000, "stopped: res-y failed")),
        ),
    )
    t3 = TaskState(task_id="t3", status=2, snapshots=(snap("ok", 2, stage=32),))
    state = tree(t1, t2, t3)
    assert failure_cause(state).message == "first"  # type: ignore[union-attr]
    assert failure_roles(state) == {
        ("t1", "x"): "failed",
        ("t2", "y"): "cause",
        ("t2", "z"): "stopped",
    }


def test_a_failure_without_a_log_or_a_snapshot_still_names_a_culprit() -> None:
    bare = tree(
        TaskState(task_id="t", gateway_id="g", stage=8, status=3, snapshots=(snap("s", 3),))
    )
    cause = failure_cause(bare)
    assert cause is not None and cause.snapshot_id == "s" and not cause.logged
    assert "no error message" in cause.message
    empty = tree(TaskState(task_id="t", gateway_id="g", stage=8, status=3))
    final = final_event(empty)
    assert final.reason == "task_failed" and final.failed_snapshot is None
    assert "subtask t at assembling on gateway g" in str(final)
    assert final_event(tree(status=3)).reason == "failed"
    assert final_event(tree(status=2)).reason == "completed"
    assert (
        failure_cause(tree(TaskState(task_id="t", status=1, snapshots=(snap("s", 1),)), status=1))
        is None
    )


def test_the_tree_marks_the_cause_with_its_whole_message_and_the_fallout_as_stopped() -> None:
    culprit = snap("s2", 3, entry(24, 2_000, LONG), stage=24, name="sensor_03")
    stopped = snap("s1", 3, entry(16, 2_000, "stopped: res-s2 failed"))
    state = tree(TaskState(task_id="t1", status=3, snapshots=(stopped, culprit)))
    for width in (80, 160):
        text = render_text(state, width=width)
        rows = text.splitlines()
        assert all(len(r) <= width for r in rows)
        assert "⊘ stopped" in text and "✘ root cause" in text
        # The message is whole, over as many lines as it takes.
        joined = " ".join(r.split("↳ ", 1)[-1].lstrip("│ ").strip() for r in rows[3:])
        assert LONG in joined, text
    ascii_text = render_text(state, width=80, ascii=True)
    assert ascii_text.isascii() and "x root cause" in ascii_text and "/ stopped" in ascii_text
    page = render_html(state)
    assert "aioedge-root-cause" in page and "root cause" in page
    assert LONG in page.replace("&#x27;", "'")
    assert "stopped (its subtask failed)" in page


# --------------------------------------------------------------------------- emulator


@pytest.fixture
async def emulated() -> AsyncIterator[tuple[Emulator, EdgeClient, FakeClock]]:
    clock = FakeClock()
    async with (
        Emulator(clock=clock, quotas=False, stage_seconds=2.0, seed=3) as emu,
        EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=False,
            clock=clock,
            quota_scope=emu.endpoint,
        ) as client,
    ):
        yield emu, client, clock


async def test_a_failing_rollout_reports_its_root_cause_everywhere(
    emulated: tuple[Emulator, EdgeClient, FakeClock],
) -> None:
    emu, client, clock = emulated
    inst = (await client.create_edge_instance(name="line_7")).instance_id
    await client.bind_gateway_to_edge_instance(instance_id=inst, iot_id="line7gw")
    devices = [f"sensor{n}" for n in range(6)]
    found = await client.call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
    driver_id = found["Data"]["DriverList"][0]["DriverId"]
    await client.call("BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver_id})
    await client.call(
        "BatchBindDeviceToEdgeInstanceWithDriver",
        {"InstanceId": inst, "DriverId": driver_id, "IotIds": devices},
    )
    await client.call(
        "BatchSetEdgeInstanceDeviceConfig",
        {
            "InstanceId": inst,
            "DeviceConfigs": [{"IotId": d, "Content": "{}"} for d in devices],
        },
    )
    emu.fail_deployment_at(devices[3], stage=24, message=LONG)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await anyio.sleep(0)

    watcher = client.deploy(
        inst, poll_interval=0.25, max_poll_interval=0.25, sleep=sleep, clock=clock, wall_clock=clock
    )
    events = [e async for e in watcher]
    final = events[-1]
    assert final.kind == "final" and final.outcome == "failed"
    assert final.reason == "snapshot_failed" and final.resource_id == devices[3]
    assert final.message is not None and LONG in final.message
    outcome = watcher.outcome
    assert isinstance(outcome, WatchOutcome) and outcome == "failed"
    assert outcome.failed_snapshot == final.failed_snapshot and outcome.message == final.message
    assert repr(outcome).startswith("WatchOutcome('failed', reason='snapshot_failed'")
    state = watcher.state
    assert state is not None
    roles = failure_roles(state)
    assert list(roles.values()).count("cause") == 1
    assert set(roles.values()) == {"cause", "stopped"}  # every other failure is fallout
    assert state.failure is not None and state.failure.snapshot_id == final.failed_snapshot


@pytest.mark.parametrize(
    ("completed", "modified", "ended"),
    [(7_000, 5_000, 7.0), (None, 5_000, 5.0), (0, 5_000, 0.0), (None, None, None)],
)
def test_when_it_ended_is_one_rule_for_ranking_the_cause_and_dating_it(
    completed: int | None, modified: int | None, ended: float | None
) -> None:
    # "When it ended" is GmtCompleted, else GmtModified (0 is a time, not a missing one):
    # a failed subtask without snapshots is ranked by that time and reported with it, and
    # the deployment's final event is dated by the same rule.
    lone = TaskState(task_id="t1", status=3, completed_ms=completed, modified_ms=modified)
    assert lone.ended_at == ended
    state = DeploymentState(
        deployment_id="d" * 32,
        status=3,
        tasks=(lone,),
        completed_ms=completed,
        modified_ms=modified,
        observed_at=9.5,
    )
    cause = failure_cause(state)
    assert cause is not None and cause.time == ended
    assert state.ended_at == ended
    assert final_event(state).time == (9.5 if ended is None else ended)
