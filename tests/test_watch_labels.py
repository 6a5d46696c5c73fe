"""Every view of a deployment says the same thing the same way.

How a resource is named (``sensor_03 (device_config)``), the root cause's one line, when a
log entry's code is shown, and how snapshots are counted done / failed / stopped each have
one rule; these tests hold every view to it (``str(event)``, the tree, ``repr(state)``,
the HTML, the live display's log lines, a stall's "last change", the rollout lines).
Hand-built trees and events, and a monitor's table against the emulator.
"""

from __future__ import annotations

import html

import anyio
import pytest

from aioedge import EdgeClient
from aioedge._live import _note
from aioedge._rollout import RolloutEvent
from aioedge._rollout_cli import _line
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import (
    DeploymentEvent,
    DeploymentMonitor,
    DeploymentState,
    LogEntry,
    render_text,
)
from aioedge.watch._cause import FailureCause, failure_cause
from aioedge.watch._events import resource_label
from aioedge.watch._notebook import monitor_html
from aioedge.watch._render import events_html, render_html
from aioedge.watch._state import SnapshotState, TaskState, final_event
from aioedge.watch._tracker import describe_change

# (name, resource id, type) -> how people read it
LABELS = [
    (("sensor_03", "res-1", "device_config"), "sensor_03 (device_config)"),
    ((None, "res-1", "device_config"), "res-1 (device_config)"),
    (("driver", "res-1", "driver"), "driver"),  # the type is not said twice
    (("a\nb\x1b[31m", "res-1", "driver"), "a\\nb\\x1b[31m (driver)"),
]


@pytest.mark.parametrize(("parts", "label"), LABELS)
def test_every_view_names_a_resource_the_same_way(
    parts: tuple[str | None, str, str], label: str
) -> None:
    name, rid, kind = parts
    assert resource_label(name, rid, "snap-1", kind) == label
    moved = DeploymentEvent(
        kind="snapshot",
        deployment_id="dep",
        task_id="t1",
        snapshot_id="snap-1",
        resource_id=rid,
        resource_name=name,
        resource_type=kind,
        previous_stage=8,
        stage=16,
        previous_status=1,
        status=1,
    )
    logged = DeploymentEvent(
        kind="log",
        deployment_id="dep",
        snapshot_id="snap-1",
        resource_id=rid,
        resource_name=name,
        resource_type=kind,
        log=LogEntry(stage=16, level="INFO", message="packed"),
        message="packed",
    )
    assert f"snapshot snap-1 {label}: assembling → packaging" in str(moved)
    # A stall's "last change" names it as str(event) does (stage names, not numbers).
    assert describe_change(moved) == f"snapshot snap-1 {label} stage assembling → packaging"
    assert f" {label} INFO: packed" in _note(logged)  # the live display's log line
    assert f"<td>{html.escape(label)} <code" in events_html([logged])
    cause = FailureCause(
        task_id="t1",
        snapshot_id="snap-1",
        resource_id=rid,
        resource_name=name,
        resource_type=kind,
        message="m",
    )
    assert cause.resource == label  # control characters escaped here too
    state = DeploymentState(
        deployment_id="dep",
        status=1,
        tasks=(
            TaskState(
                task_id="t1",
                snapshots=(
                    SnapshotState(
                        snapshot_id="snap-1",
                        resource_id=rid,
                        resource_name=name,
                        resource_type=kind,
                        stage=16,
                        status=1,
                    ),
                ),
            ),
        ),
    )
    assert f"─ {label} " in render_text(state, width=120)
    assert f"<td style='padding-left:2em'>{html.escape(label)}<br>" in render_html(state)


def test_a_snapshot_named_by_nothing_but_its_id_keeps_its_type() -> None:
    event = DeploymentEvent(
        kind="snapshot",
        deployment_id="dep",
        snapshot_id="snap-1",
        resource_type="driver",
        status=1,
        previous_status=0,
    )
    assert str(event).endswith("snapshot snap-1 (driver): not started → processing")


def failed_state(code: str | None) -> DeploymentState:
    """A subtask of three: sensor_03 fails first, its siblings are stopped with it."""

    def snap(sid: str, name: str, status: int, *log: LogEntry) -> SnapshotState:
        return SnapshotState(
            snapshot_id=sid,
            resource_id=f"res-{sid}",
            resource_name=name,
            resource_type="device_config",
            stage=24,
            status=status,
            log=log,
        )

    error = LogEntry(stage=24, timestamp=2_000, level="ERROR", code=code, message="disk\nfull")
    fallout = LogEntry(stage=24, timestamp=3_000, level="ERROR", message="stopped: res-s2 failed")
    return DeploymentState(
        deployment_id="d" * 32,
        status=3,
        tasks=(
            TaskState(
                task_id="t1",
                gateway_id="gw1",
                status=3,
                stage=24,
                snapshots=(
                    snap("s1", "drv", 2),
                    snap("s2", "sensor_03", 3, error),
                    snap("s3", "sensor_04", 3, fallout),
                    snap("s4", "sensor_05", 3, fallout),
                ),
            ),
        ),
    )


ONE_LINE = "sensor_03 (device_config) at dispatching on gateway gw1: disk full"


@pytest.mark.parametrize("code", [None, "", "0"])
def test_every_view_tells_the_root_cause_in_the_same_words(code: str | None) -> None:
    state = failed_state(code)
    cause = failure_cause(state)
    assert cause is not None
    assert cause.describe() == ONE_LINE
    assert repr(state).endswith(f"; root cause {ONE_LINE}>")
    final = final_event(state)
    assert str(final).endswith(f" failed: {ONE_LINE}")
    assert final.culprit() == ONE_LINE.split(":")[0]
    escaped = html.escape(ONE_LINE)
    assert f"root cause: {escaped}</span>" in render_html(state)
    assert f"<td>{escaped}</td>" in events_html([final])
    rollout = RolloutEvent(
        kind="deployment", time=0.0, instance_id="i1", deployment_id="d" * 32, event=final
    )
    assert _line(rollout) == f"FAILED i1 deployment {'d' * 32} failed: {ONE_LINE}"


def test_a_code_worth_showing_is_shown_in_every_view_of_the_cause() -> None:
    state = failed_state("1")
    cause = failure_cause(state)
    assert cause is not None
    said = ONE_LINE.replace(": disk", ": code=1: disk")
    assert cause.describe() == said
    assert html.escape(said) in render_html(state)
    assert "↳ code=1: disk full\n" in render_text(state, width=100)


@pytest.mark.parametrize(("code", "shown"), [(None, None), ("", None), ("0", None), ("7", "7")])
def test_a_code_is_shown_only_when_it_is_not_that_of_success(
    code: str | None, shown: str | None
) -> None:
    entry = LogEntry(stage=16, level="ERROR", code=code, message="boom")
    event = DeploymentEvent(kind="log", deployment_id="dep", snapshot_id="s1", log=entry)
    text = str(event)
    assert ("code=" in text) == (shown is not None), text
    assert text.endswith(f"ERROR{f' code={shown}' if shown else ''}: boom")
    assert entry.shown_code == shown and entry.failed


def test_repr_and_the_tree_count_stopped_snapshots_apart_from_failed_ones() -> None:
    state = failed_state("1")
    counts = "1 task, 1/4 snapshots done, 1 failed, 2 stopped"
    assert f"failed: {counts};" in repr(state)
    assert f"({counts})" in render_text(state).splitlines()[0]
    assert f"&middot; {counts}<br>" in render_html(state)
    tally = state.tally()
    assert (tally.total, tally.done, tally.failed, tally.stopped) == (4, 1, 1, 2)
    assert str(tally) == counts


# --------------------------------------------------------------------------- emulator


async def test_the_monitor_table_says_the_cause_and_counts_as_the_tree_does() -> None:
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await anyio.sleep(0)

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
        inst = (await client.create_edge_instance(name="line_8")).instance_id
        await client.bind_gateway_to_edge_instance(instance_id=inst, iot_id="line8gw")
        found = await client.call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
        driver_id = found["Data"]["DriverList"][0]["DriverId"]
        await client.call("BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver_id})
        devices = [f"sensor{n}" for n in range(4)]
        await client.call(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": inst, "DriverId": driver_id, "IotIds": devices},
        )
        await client.call(
            "BatchSetEdgeInstanceDeviceConfig",
            {"InstanceId": inst, "DeviceConfigs": [{"IotId": d, "Content": "{}"} for d in devices]},
        )
        emu.fail_deployment_at(devices[2], stage=24, message="disk full")
        created = await client.call(
            "CreateEdgeInstanceDeployment", {"InstanceId": inst, "Type": "deploy"}
        )
        async with DeploymentMonitor(
            client, poll_interval=0.25, max_poll_interval=0.25, clock=clock, sleep=sleep
        ) as monitor:
            monitor.add(inst, created["DeploymentId"])
            with anyio.fail_after(60):
                events = [e async for e in monitor]
        assert events[-1].kind == "final" and events[-1].outcome == "failed"
        [state] = monitor.states().values()
        assert state is not None and state.failure is not None
        tally = state.tally()
        assert tally.failed == 1 and tally.stopped == tally.total - tally.done - 1
        table = monitor_html(monitor)
        assert f"<td>{html.escape(state.failure.describe())}</td>" in table
        assert f" {tally.done}/{tally.total}</td>" in table
        assert f"({tally})" in render_text(state).splitlines()[0]
