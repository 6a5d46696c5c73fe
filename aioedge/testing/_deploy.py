"""The deployment simulation: a rollout computed as a schedule, read lazily at any time.

ERRATA (Deployments): a deployment has one subtask per bound gateway; each subtask has one
resource snapshot per bound driver, driver config and device config.  A snapshot walks
stages 0 → 8 → 16 → 24 → 32 with status 0 (not started) → 1 (processing) → 2 (succeeded)
or 3 (failed), appending one entry per stage to its ``Log`` (a JSON *string*).

The whole rollout is a pure function of its inputs (the plan, the creation time, the
length of a stage, an injected failure, a close time): :func:`build_schedule` returns
every transition with its time, and reading the deployment at ``now`` replays the
transitions up to ``now``.  No background task and no sleeping: the emulator's clock
drives it, so a test with a fake clock sees exactly the same rollout every time.

Timing, with ``D`` the length of one stage (``stage_seconds / speed``):

* at creation every object appears in its initial state (stage 0, status 0);
* at ``D/2`` the deployment and its subtasks start (status 1);
* snapshot ``j`` of subtask ``i`` starts ``i·D/10 + j·stagger`` later ("init success" at
  stage 0), then reaches stages 8, 16, 24 and 32 one ``D`` apart; 32 is success;
* a subtask follows its snapshots (its stage is the lowest of theirs); the deployment ends
  when every subtask has ended: 2 if all succeeded, else 3;
* when a snapshot fails, its subtask fails at once and the subtask's other snapshots that
  had not ended fail with it (status 3 at the stage they had reached, an ``ERROR`` log
  entry ``stopped: <resourceId> failed``): every snapshot of an ended deployment has ended.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STAGES",
    "DeploymentView",
    "Failure",
    "Plan",
    "Resource",
    "SnapshotPlan",
    "TaskPlan",
    "Transition",
    "build_schedule",
]

# The stages and the word each one's log entry says, in order; the last one is success.
_STEP_WORDS = {0: "init", 8: "assembly", 16: "package", 24: "dispatch", 32: "download"}
STAGES = tuple(_STEP_WORDS)
_FIRST_STAGE, _LAST_STAGE = STAGES[0], STAGES[-1]

# Order of transitions that share a timestamp: starts flow down (deployment, subtask,
# snapshot), completions flow up (snapshot, subtask, deployment).
_RANK_DEPLOYMENT_START = 0
_RANK_TASK_START = 1
_RANK_SNAPSHOT = 2
_RANK_TASK = 3
_RANK_DEPLOYMENT_END = 4

NOT_STARTED, RUNNING, SUCCEEDED, FAILED = 0, 1, 2, 3
FINAL = frozenset({SUCCEEDED, FAILED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """What a snapshot deploys: a driver, a driver's config or a device's config."""

    resource_id: str
    resource_name: str
    resource_type: str  # "driver" | "driver_config" | "device_config"


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotPlan:
    snapshot_id: str
    resource: Resource


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPlan:
    task_id: str
    gateway_id: str
    snapshots: tuple[SnapshotPlan, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    deployment_id: str
    tasks: tuple[TaskPlan, ...]
    operate_type: int = 0  # 0 deploy resources, 1 delete resources (Type=reset)


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """Make one snapshot fail (or, with ``stall=True``, hang) when it reaches ``stage``.

    ``gateway_id`` (a gateway's IotId) picks the subtask, ``resource_id`` the snapshot in
    it; either left None means the first one that fits.
    """

    stage: int
    resource_id: str | None = None
    gateway_id: str | None = None
    message: str = "injected failure"
    #: Hang instead of failing: the snapshot reaches ``stage`` (status 1, its log entry) and
    #: never moves again, so neither its subtask nor the deployment ever ends (a stall).
    stall: bool = False

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage}")

    def locate(self, plan: Plan) -> tuple[str, str | None]:
        """(task_id, snapshot_id) of ``plan`` that fails; snapshot None means a
        resource-less subtask.  ValueError if ``plan`` has no such subtask or snapshot."""
        task_id, snapshot_id = _failing_snapshot(plan, self)
        assert task_id is not None
        return task_id, snapshot_id

    def fits(self, plan: Plan) -> bool:
        """Whether ``plan`` has the subtask and snapshot this failure asks for."""
        try:
            self.locate(plan)
        except ValueError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one object; ``log`` is the Log entry it appends (snapshots only)."""

    time_ms: int
    rank: int
    kind: str  # "deployment" | "task" | "snapshot"
    task_id: str | None
    snapshot_id: str | None
    stage: int | None
    status: int
    log: dict[str, Any] | None = field(default=None, compare=False)

    def sort_key(self) -> tuple[int, int]:
        return (self.time_ms, self.rank)


class _Builder:
    """Transitions in the order they are added: sorted stably by :meth:`Transition.sort_key`,
    those that share a time and a rank stay in that order."""

    def __init__(self, events: Sequence[Transition] = ()) -> None:
        self.events: list[Transition] = list(events)

    def add(
        self,
        time_ms: int,
        rank: int,
        kind: str,
        task_id: str | None,
        snapshot_id: str | None,
        stage: int | None,
        status: int,
        log: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            Transition(time_ms, rank, kind, task_id, snapshot_id, stage, status, log)
        )


def _log_entry(
    res: Resource, stage: int, time_ms: int, *, level: str = "INFO", message: str | None = None
) -> dict[str, Any]:
    word = _STEP_WORDS[stage]
    return {
        "resourceId": res.resource_id,
        "code": "0" if level == "INFO" else "1",
        "stage": stage,
        "level": level,
        "message": message or f"{word} success",
        "resourceType": res.resource_type.upper(),
        "timestamp": time_ms,
    }


def _failing_snapshot(plan: Plan, failure: Failure | None) -> tuple[str | None, str | None]:
    """(task_id, snapshot_id) chosen to fail; snapshot None means a resource-less subtask."""
    if failure is None:
        return None, None
    tasks = [t for t in plan.tasks if failure.gateway_id in (None, t.gateway_id)]
    if not tasks:
        raise ValueError(
            f"deployment {plan.deployment_id} has no subtask for gateway {failure.gateway_id!r}"
        )
    for task in tasks:
        for snap in task.snapshots:
            if failure.resource_id is None or snap.resource.resource_id == failure.resource_id:
                return task.task_id, snap.snapshot_id
    if failure.resource_id is None:
        return tasks[0].task_id, None
    where = "" if failure.gateway_id is None else f" on gateway {failure.gateway_id!r}"
    raise ValueError(
        f"no snapshot of deployment {plan.deployment_id} deploys {failure.resource_id!r}{where}"
    )


def _stop_siblings(
    b: _Builder,
    task_id: str,
    lanes: Sequence[tuple[SnapshotPlan | None, Sequence[tuple[int, int, int, Any]]]],
    fail_time: int,
) -> None:
    """End the snapshots of a failed subtask that had not ended, when it failed.

    The documented statuses have no "cancelled": such a snapshot fails (status 3) at the
    stage it had reached, with an ``ERROR`` log entry naming the resource that failed, so
    a watcher sees every snapshot of a failed subtask end.  These are added after the
    failing snapshot's own transition, so at equal times that one is listed first.
    """
    culprit = next(
        (shown for shown, steps in lanes for step in steps if step[2] == FAILED),
        None,
    )
    cause = f"stopped: {culprit.resource.resource_id} failed" if culprit else "stopped"
    for shown, steps in lanes:
        if shown is None:
            continue
        stage, status = (steps[-1][1], steps[-1][2]) if steps else (_FIRST_STAGE, NOT_STARTED)
        if status in FINAL:
            continue
        log = _log_entry(shown.resource, stage, fail_time, level="ERROR", message=cause)
        b.add(fail_time, _RANK_SNAPSHOT, "snapshot", task_id, shown.snapshot_id, stage, FAILED, log)


def build_schedule(
    plan: Plan,
    *,
    created_ms: int,
    stage_ms: int,
    failure: Failure | None = None,
    closed_ms: int | None = None,
) -> list[Transition]:
    """Every transition of the rollout, in time order (see the module docstring)."""
    d = max(1, stage_ms)
    b = _Builder()
    b.add(created_ms, _RANK_DEPLOYMENT_START, "deployment", None, None, None, NOT_STARTED)
    for task in plan.tasks:
        b.add(created_ms, _RANK_TASK_START, "task", task.task_id, None, _FIRST_STAGE, NOT_STARTED)
    for task in plan.tasks:
        for snap in task.snapshots:
            b.add(
                created_ms,
                _RANK_SNAPSHOT,
                "snapshot",
                task.task_id,
                snap.snapshot_id,
                _FIRST_STAGE,
                NOT_STARTED,
            )
    start = created_ms + d // 2
    b.add(start, _RANK_DEPLOYMENT_START, "deployment", None, None, None, RUNNING)
    fail_task, fail_snap = _failing_snapshot(plan, failure)

    task_ends: list[tuple[int, int]] = []  # (time, final status)
    for i, task in enumerate(plan.tasks):
        t_start = start + i * (d // 10)
        b.add(t_start, _RANK_TASK_START, "task", task.task_id, None, _FIRST_STAGE, RUNNING)
        n = len(task.snapshots)
        stagger = min(3 * d // 10, (3 * d // 2) // max(n, 1))
        # Per snapshot: its own (time, stage, status, log) steps.  A resource-less subtask
        # advances on one virtual snapshot that is never shown.
        lanes: list[tuple[SnapshotPlan | None, list[tuple[int, int, int, dict[str, Any] | None]]]]
        lanes = []
        sources: Sequence[SnapshotPlan | None] = task.snapshots if task.snapshots else (None,)
        for j, lane in enumerate(sources):
            s0 = t_start + j * stagger
            if failure is None or task.task_id != fail_task:
                fails = False
            elif lane is None:
                fails = fail_snap is None
            else:
                fails = lane.snapshot_id == fail_snap
            steps: list[tuple[int, int, int, dict[str, Any] | None]] = []
            for k, stage in enumerate(STAGES):
                t = s0 + k * d
                if fails and failure is not None and stage == failure.stage and failure.stall:
                    log = _log_entry(lane.resource, stage, t) if lane is not None else None
                    steps.append((t, stage, RUNNING, log))
                    break  # and nothing more: the subtask and the deployment hang
                if fails and failure is not None and stage == failure.stage:
                    log = (
                        _log_entry(
                            lane.resource,
                            stage,
                            t,
                            level="ERROR",
                            message=f"{_STEP_WORDS[stage]} failed: {failure.message}",
                        )
                        if lane is not None
                        else None
                    )
                    steps.append((t, stage, FAILED, log))
                    break
                status = SUCCEEDED if stage == _LAST_STAGE else RUNNING
                log = _log_entry(lane.resource, stage, t) if lane is not None else None
                steps.append((t, stage, status, log))
            lanes.append((lane, steps))

        # A failure stops its subtask: sibling snapshots go no further.
        fail_time = min(
            (t for _, steps in lanes for (t, _, status, _) in steps if status == FAILED),
            default=None,
        )
        for shown, steps in lanes:
            steps[:] = [s for s in steps if fail_time is None or s[0] <= fail_time]
            if shown is None:
                continue
            for t, stage, status, entry in steps:
                b.add(
                    t,
                    _RANK_SNAPSHOT,
                    "snapshot",
                    task.task_id,
                    shown.snapshot_id,
                    stage,
                    status,
                    entry,
                )
        if fail_time is not None:
            _stop_siblings(b, task.task_id, lanes, fail_time)

        # The subtask follows its snapshots.
        state: dict[int, tuple[int, int]] = {
            idx: (_FIRST_STAGE, RUNNING) for idx in range(len(lanes))
        }
        merged = sorted(
            (
                (t, idx, stage, status)
                for idx, (_, steps) in enumerate(lanes)
                for (t, stage, status, _) in steps
            ),
        )
        last = (_FIRST_STAGE, RUNNING)
        end: tuple[int, int] | None = None
        pos = 0
        while pos < len(merged):
            t = merged[pos][0]
            while pos < len(merged) and merged[pos][0] == t:
                _, idx, stage, status = merged[pos]
                state[idx] = (stage, status)
                pos += 1
            failed = [st for st in state.values() if st[1] == FAILED]
            if failed:
                agg = (failed[0][0], FAILED)
            elif all(st[1] == SUCCEEDED for st in state.values()):
                agg = (_LAST_STAGE, SUCCEEDED)
            else:
                agg = (min(st[0] for st in state.values()), RUNNING)
            if agg != last:
                b.add(t, _RANK_TASK, "task", task.task_id, None, agg[0], agg[1])
                last = agg
            if agg[1] in FINAL:
                end = (t, agg[1])
                break
        if end is not None:
            task_ends.append(end)

    if plan.tasks and len(task_ends) == len(plan.tasks):
        t_end = max(t for t, _ in task_ends)
        ok = all(status == SUCCEEDED for _, status in task_ends)
        b.add(
            t_end, _RANK_DEPLOYMENT_END, "deployment", None, None, None, SUCCEEDED if ok else FAILED
        )

    events = sorted(b.events, key=Transition.sort_key)
    if closed_ms is not None:
        events = _close(plan, events, closed_ms)
    return events


def _close(plan: Plan, events: list[Transition], closed_ms: int) -> list[Transition]:
    """CloseEdgeInstanceDeployment at ``closed_ms``: whatever has not ended fails there."""
    kept = [e for e in events if e.time_ms <= closed_ms]
    latest: dict[tuple[str, str | None, str | None], Transition] = {}
    for e in kept:
        latest[(e.kind, e.task_id, e.snapshot_id)] = e
    dep = latest.get(("deployment", None, None))
    if dep is not None and dep.status in FINAL:
        return kept
    b = _Builder(kept)
    resources = {s.snapshot_id: s.resource for t in plan.tasks for s in t.snapshots}
    for key, e in list(latest.items()):
        if e.kind != "snapshot" or e.status in FINAL:
            continue
        stage = e.stage or _FIRST_STAGE
        res = resources[e.snapshot_id or ""]
        log = _log_entry(res, stage, closed_ms, level="ERROR", message="deployment closed")
        b.add(closed_ms, _RANK_SNAPSHOT, "snapshot", e.task_id, e.snapshot_id, stage, FAILED, log)
        del latest[key]
    for e in list(latest.values()):
        if e.kind == "task" and e.status not in FINAL:
            b.add(closed_ms, _RANK_TASK, "task", e.task_id, None, e.stage, FAILED)
    b.add(closed_ms, _RANK_DEPLOYMENT_END, "deployment", None, None, None, FAILED)
    return sorted(b.events, key=Transition.sort_key)


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class _Track:
    times: list[int]
    events: list[Transition]


class DeploymentView:
    """A schedule indexed per object, to read any object's state at any time quickly."""

    def __init__(self, events: Sequence[Transition]) -> None:
        self.events = list(events)
        self._tracks: dict[tuple[str, str | None, str | None], _Track] = {}
        for e in self.events:
            track = self._tracks.setdefault((e.kind, e.task_id, e.snapshot_id), _Track([], []))
            track.times.append(e.time_ms)
            track.events.append(e)

    def _upto(self, key: tuple[str, str | None, str | None], now_ms: int) -> list[Transition]:
        track = self._tracks.get(key)
        if track is None:
            return []
        return track.events[: bisect_right(track.times, now_ms)]

    def state(
        self, kind: str, task_id: str | None, snapshot_id: str | None, now_ms: int
    ) -> tuple[Transition | None, Transition | None]:
        """(first, latest) transition of one object up to ``now_ms``."""
        seen = self._upto((kind, task_id, snapshot_id), now_ms)
        if not seen:
            return None, None
        return seen[0], seen[-1]

    def log(self, task_id: str | None, snapshot_id: str | None, now_ms: int) -> str:
        entries = [e.log for e in self._upto(("snapshot", task_id, snapshot_id), now_ms) if e.log]
        return json.dumps(entries, separators=(",", ":"), ensure_ascii=False)

    def final(self, now_ms: int) -> Transition | None:
        """The deployment's final transition if it happened by ``now_ms``."""
        _, last = self.state("deployment", None, None, now_ms)
        return last if last is not None and last.status in FINAL else None

    def timeline(self, deployment_id: str, now_ms: int) -> list[dict[str, Any]]:
        return [
            {
                "kind": e.kind,
                "deployment_id": deployment_id,
                "task_id": e.task_id,
                "snapshot_id": e.snapshot_id,
                "stage": e.stage,
                "status": e.status,
                "timestamp_ms": e.time_ms,
            }
            for e in self.events
            if e.time_ms <= now_ms
        ]
