"""The deployment state tree and the pure diff between two polls.

Everything that decides *which* events a watcher emits lives here, with no I/O and no clock:
``DeploymentState.from_response(body)`` reads one GetEdgeInstanceDeployment answer (2.12.3),
``diff(previous, current)`` turns two of them into events, and ``apply(state, events)``
replays events over a state (so a checkpoint can be rebuilt from what was delivered, and so
the diff can be checked: replaying ``diff(a, b)`` over ``a`` gives ``b``, or
``carry_logs(a, b)`` when ``b``'s Log lost entries: a Log only grows).

Equality of states (``==``) compares what the watcher tracks: ids, resource names and types,
stage, status and log entries, with tasks and snapshots in any order.  Descriptions, the
``Gmt*`` times and the watcher's ``observed_at`` are carried along but not compared.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any, Literal, TypeVar

from .._models import LogEntry, parse_log
from .._wire import (
    FAILED,
    LAST_STAGE,
    PROCESSING,
    SUCCEEDED,
    int_or_none,
    is_final,
    ms_to_seconds,
    stamp,
    str_or_none,
)
from ._cause import FailureCause, FailureRole, failure_cause, failure_roles
from ._events import DeploymentEvent, EventKind, Outcome, status_name

__all__ = [
    "DeploymentState",
    "SnapshotState",
    "SnapshotTally",
    "TaskState",
    "apply",
    "carry_logs",
    "diff",
    "final_event",
    "implied_state",
    "parse_log",
]

_Change = Literal["appeared", "updated", "removed"]


# --------------------------------------------------------------------------- the tree


# A text field: a string, or a number's decimal text; anything else (a boolean, a list, an
# object) is unknown, as the response models read it (one rule: ``_wire.str_or_none``).
_str = str_or_none


def _id() -> Any:
    """The node's id: required, compared first (children are compared in id order)."""
    return field(metadata={"id": True})


def _wire(name: str, read: Callable[[Any], Any] = _str, *, compare: bool = True) -> Any:
    """A field read from the answer's key ``name`` with ``read`` (a string by default)."""
    return field(default=None, compare=compare, metadata={"wire": lambda raw: read(raw.get(name))})


def _ms(name: str) -> Any:
    """A ``Gmt*Timestamp`` field (ms, either spelling): carried along, not compared."""
    return field(default=None, compare=False, metadata={"wire": lambda raw: stamp(raw, name)})


def _many(of: type[Any], *, by_time: bool = False) -> Any:
    """A tuple of children (``SnapshotState``, ``TaskState``) or of ``LogEntry`` (by time)."""
    return field(default=(), metadata={"of": of, "by_time": by_time})


_FIELDS: dict[type[Any], tuple[Field[Any], ...]] = {}  # fields() per class, looked up once


def _fields(cls: type[Any]) -> tuple[Field[Any], ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = fields(cls)
    return found


_N = TypeVar("_N", bound="_Node")


class _Node:
    """What the three tree classes share, read from their fields: equality over the compared
    ones (children in any order), ``to_dict``/``from_dict`` and reading an answer's keys."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        key: list[Any] = []
        for f in _fields(type(self)):
            if not f.compare:
                continue
            value = getattr(self, f.name)
            if isinstance(f.metadata.get("of"), type) and issubclass(f.metadata["of"], _Node):
                value = tuple(sorted((child._key() for child in value), key=lambda k: k[0]))
            key.append(value)
        return tuple(key)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable tree; :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            out[f.name] = [v.to_dict() for v in value] if "of" in f.metadata else value
        return out

    @classmethod
    def from_dict(cls: type[_N], raw: Mapping[str, Any]) -> _N:
        """Read back what :meth:`to_dict` wrote."""
        kwargs: dict[str, Any] = {}
        for f in _fields(cls):
            if "id" in f.metadata:
                kwargs[f.name] = str(raw[f.name])
            elif "of" in f.metadata:
                items = (f.metadata["of"].from_dict(v) for v in raw.get(f.name) or ())
                by_time = f.metadata["by_time"]
                kwargs[f.name] = tuple(sorted(items, key=LogEntry.sort_key) if by_time else items)
            else:
                kwargs[f.name] = raw.get(f.name)
        return cls(**kwargs)

    @classmethod
    def _read(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The fields read straight from an answer's keys (``_wire``, ``_ms``)."""
        return {f.name: f.metadata["wire"](raw) for f in _fields(cls) if "wire" in f.metadata}

    # Every node has these (``_ms`` fields); declared here for ``ended_at``.
    completed_ms: int | None
    modified_ms: int | None

    @property
    def ended_at(self) -> float | None:
        """When it ended, in seconds since the epoch: ``GmtCompletedTimestamp``, else (no
        completion time in the answer) ``GmtModifiedTimestamp``, its last change; ``None``
        when the answer gives neither."""
        ms = self.completed_ms if self.completed_ms is not None else self.modified_ms
        return ms_to_seconds(ms)


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class SnapshotState(_Node):
    """One resource of a subtask (``ResourceSnapshotList[]``)."""

    snapshot_id: str = _id()
    resource_id: str | None = _wire("ResourceId")
    resource_name: str | None = _wire("ResourceName")
    resource_type: str | None = _wire("ResourceType")
    operate_type: int | None = _wire("OperateType", int_or_none)
    stage: int | None = _wire("Stage", int_or_none)
    status: int | None = _wire("Status", int_or_none)
    log: tuple[LogEntry, ...] = _many(LogEntry, by_time=True)
    log_problem: str | None = field(default=None, compare=False)
    created_ms: int | None = _ms("GmtCreate")
    modified_ms: int | None = _ms("GmtModified")
    completed_ms: int | None = _ms("GmtCompleted")

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any], index: int) -> SnapshotState:
        log, problem = parse_log(raw.get("Log"))
        sid = _str(raw.get("SnapshotId")) or _str(raw.get("ResourceId")) or f"#{index}"
        return cls(snapshot_id=sid, log=log, log_problem=problem, **cls._read(raw))


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class TaskState(_Node):
    """One subtask (one gateway) of a deployment (``TaskList[]``)."""

    task_id: str = _id()
    gateway_id: str | None = _wire("GatewayId")
    stage: int | None = _wire("Stage", int_or_none)
    status: int | None = _wire("Status", int_or_none)
    snapshots: tuple[SnapshotState, ...] = _many(SnapshotState)
    created_ms: int | None = _ms("GmtCreate")
    modified_ms: int | None = _ms("GmtModified")
    completed_ms: int | None = _ms("GmtCompleted")

    def snapshot(self, snapshot_id: str) -> SnapshotState | None:
        for snap in self.snapshots:
            if snap.snapshot_id == snapshot_id:
                return snap
        return None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any], index: int) -> TaskState:
        snaps = _unique(
            SnapshotState.from_wire(s, i)
            for i, s in enumerate(_list(raw.get("ResourceSnapshotList")))
        )
        tid = _str(raw.get("TaskId")) or _str(raw.get("GatewayId")) or f"#{index}"
        return cls(task_id=tid, snapshots=snaps, **cls._read(raw))


@dataclass(frozen=True, kw_only=True, slots=True)
class SnapshotTally:
    """How a deployment's snapshots stand, as every summary counts them: ``done`` succeeded;
    ``failed`` failed on their own (the root cause among them); ``stopped`` failed only
    because their subtask did (:func:`~aioedge.watch.failure_roles`), never also ``failed``."""

    tasks: int
    total: int
    done: int
    failed: int
    stopped: int

    def __str__(self) -> str:
        """``2 tasks, 0/7 snapshots done, 1 failed, 6 stopped`` (zero counts left out)."""
        text = f"{self.tasks} task{'s' if self.tasks != 1 else ''}, "
        text += f"{self.done}/{self.total} snapshots done"
        text += f", {self.failed} failed" if self.failed else ""
        return text + (f", {self.stopped} stopped" if self.stopped else "")


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class DeploymentState(_Node):
    """What one GetEdgeInstanceDeployment answer says about a deployment (2.12.3).

    ``observed_at`` (seconds since the epoch) is when the watcher received the answer; it
    dates the transitions the answer reveals when the service gives no ``Gmt*Timestamp``.
    """

    deployment_id: str = _id()
    status: int | None = _wire("Status", int_or_none)
    tasks: tuple[TaskState, ...] = _many(TaskState)
    instance_id: str | None = field(default=None, compare=False)
    type: str | None = _wire("Type", compare=False)
    description: str | None = _wire("Description", compare=False)
    created_ms: int | None = _ms("GmtCreate")
    modified_ms: int | None = _ms("GmtModified")
    completed_ms: int | None = _ms("GmtCompleted")
    observed_at: float | None = field(default=None, compare=False)

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        instance_id: str | None = None,
        deployment_id: str | None = None,
        observed_at: float | None = None,
    ) -> DeploymentState:
        """Read a GetEdgeInstanceDeployment body (or its ``Data``); lenient about types.

        ``deployment_id`` fills in a ``Data`` without ``DeploymentId``; ``ValueError`` if
        neither gives one.
        """
        data = body.get("Data", body)
        if not isinstance(data, Mapping):
            raise ValueError("GetEdgeInstanceDeployment answer has no Data object")
        dep_id = _str(data.get("DeploymentId")) or deployment_id
        if not dep_id:
            raise ValueError("GetEdgeInstanceDeployment answer has no DeploymentId")
        tasks = _unique(
            TaskState.from_wire(t, i) for i, t in enumerate(_list(data.get("TaskList")))
        )
        return cls(
            deployment_id=dep_id,
            tasks=tasks,
            instance_id=instance_id,
            observed_at=observed_at,
            **cls._read(data),
        )

    @property
    def is_final(self) -> bool:
        """Status 2 (succeeded) or 3 (failed): nothing will change any more.  Any other
        Status, or none, is still going on (``aioedge._wire.is_final``, for every reader)."""
        return is_final(self.status)

    @property
    def outcome(self) -> Outcome | None:
        """``"succeeded"``/``"failed"`` once final, else ``None``."""
        if self.status == SUCCEEDED:
            return "succeeded"
        if self.status == FAILED:
            return "failed"
        return None

    @property
    def failure(self) -> FailureCause | None:
        """The root cause once something failed (:func:`aioedge.watch.failure_cause`)."""
        return failure_cause(self)

    def task(self, task_id: str) -> TaskState | None:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        return None

    def snapshots(self) -> Iterator[tuple[TaskState, SnapshotState]]:
        for task in self.tasks:
            for snap in task.snapshots:
                yield task, snap

    def tally(self, roles: Mapping[tuple[str, str], FailureRole] | None = None) -> SnapshotTally:
        """The snapshots done, failed and stopped (:class:`SnapshotTally`), the one count the
        tree, ``repr()`` and the monitor's table show; ``roles`` is
        :func:`~aioedge.watch.failure_roles` of this state, when the caller has it already."""
        if roles is None:
            roles = failure_roles(self)
        total = done = failed = stopped = 0
        for task, snap in self.snapshots():
            total += 1
            if snap.status == SUCCEEDED:
                done += 1
            elif snap.status == FAILED:
                if roles.get((task.task_id, snap.snapshot_id)) == "stopped":
                    stopped += 1
                else:
                    failed += 1
        return SnapshotTally(
            tasks=len(self.tasks), total=total, done=done, failed=failed, stopped=stopped
        )

    def counts(self) -> Counter[int | None]:
        """How many snapshots are in each Status (for progress summaries)."""
        return Counter(snap.status for _task, snap in self.snapshots())

    # -- display ---------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from ._render import render_html

        return render_html(self)

    def render(self, width: int = 80) -> str:
        """The terminal tree of :func:`aioedge.watch.render_text`."""
        from ._render import render_text

        return render_text(self, width=width)

    def __str__(self) -> str:
        """The terminal tree, 80 columns wide: ``print(watcher.state)`` draws it."""
        return self.render()

    def __repr__(self) -> str:
        """One line: id, status, counts and the root cause (the tree is ``str()``; every
        field is in :meth:`to_dict`)."""
        text = f"<DeploymentState {self.deployment_id} {status_name(self.status)}: {self.tally()}"
        cause = self.failure
        if cause is not None:
            text += f"; root cause {cause.describe()[:200]}"
        return text + ">"


def _list(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _unique(items: Iterable[Any]) -> tuple[Any, ...]:
    """Keep the first object of each id (a repeated id would make the tree ambiguous)."""
    seen: set[str] = set()
    out = []
    for item in items:
        ident = item.snapshot_id if isinstance(item, SnapshotState) else item.task_id
        if ident not in seen:
            seen.add(ident)
            out.append(item)
    return tuple(out)


# --------------------------------------------------------------------------- diff


_Pair = tuple[int | None, int | None]  # (stage, status)


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What every event of one diff shares: the deployment's ids, and when the answer came."""

    deployment_id: str
    instance_id: str | None
    observed_at: float | None

    def event(self, kind: EventKind, **fields: Any) -> DeploymentEvent:
        """An event of this deployment: its ids, and ``fields``."""
        return DeploymentEvent(
            kind=kind, deployment_id=self.deployment_id, instance_id=self.instance_id, **fields
        )


def _when(ms: int | None, ctx: _Ctx) -> float | None:
    return ctx.observed_at if ms is None else ms_to_seconds(ms)


def diff(previous: DeploymentState | None, current: DeploymentState) -> list[DeploymentEvent]:
    """The events that lead from ``previous`` (``None``: nothing seen yet) to ``current``.

    Every object's own events come in the order they happened, and every transition
    event's ``previous_*`` is the state left by the one before it for that object, so the
    events replay exactly (see :func:`apply`).  Across objects the events are merged in time
    order; at equal times starts flow down (deployment, subtask, snapshot) and endings
    flow up (snapshot, subtask, deployment).  A new object is announced before its parts;
    the ``final`` event is last.

    A snapshot's Log is append-only: an entry of ``current`` is new when ``previous`` does
    not have it, and entries of ``previous`` that ``current`` lacks were lost from the
    answer, not undone (one ``warning`` says so).  Replaying the events over ``previous``
    then gives :func:`carry_logs` ``(previous, current)``, which is ``current`` whenever
    its Log lists all it listed before.
    """
    if previous is not None and previous.deployment_id != current.deployment_id:
        raise ValueError(
            f"cannot diff deployment {previous.deployment_id} against {current.deployment_id}"
        )
    instance_id = current.instance_id
    if instance_id is None and previous is not None:
        instance_id = previous.instance_id
    ctx = _Ctx(current.deployment_id, instance_id, current.observed_at)

    head: list[DeploymentEvent] = []
    streams: list[list[DeploymentEvent]] = []
    if previous is None or previous.status != current.status:
        dep_event = ctx.event(
            "deployment",
            status=current.status,
            previous_status=None if previous is None else previous.status,
            change="appeared" if previous is None else "updated",
            time=_when(current.modified_ms, ctx),
        )
        if previous is None:
            head.append(dep_event)  # announced before its parts
        else:
            streams.append([dep_event])

    before = {t.task_id: t for t in previous.tasks} if previous is not None else {}
    for task in current.tasks:
        streams.append(_diff_task(ctx, before.pop(task.task_id, None), task))
    for gone in before.values():
        # Children go first, so every object's end is told.
        streams.append(
            [
                *(
                    _removed("snapshot", ctx, gone.task_id, s.snapshot_id, s.stage, s.status)
                    for s in gone.snapshots
                ),
                _removed("task", ctx, gone.task_id, None, gone.stage, gone.status),
            ]
        )
    events = [*head, *heapq.merge(*streams, key=_merge_key(ctx.observed_at))]
    if current.is_final and (previous is None or not previous.is_final):
        events.append(final_event(current))
    return events


def _merge_key(observed_at: float | None) -> Callable[[DeploymentEvent], tuple[float, int]]:
    """Time first; at equal times the rank of the causal order (see :func:`diff`).

    An event dated only by our poll (no ``Gmt*Timestamp`` in the answer) has no real time:
    a start sorts before everything else, anything else after.
    """

    def key(event: DeploymentEvent) -> tuple[float, int]:
        ending = is_final(event.status)
        if event.kind == "deployment":
            rank = 4 if ending else 0
        elif event.kind == "task":
            rank = 3 if ending else 1
        else:
            rank = 2
        when = event.time
        if when is None or (when == observed_at and not event.inferred):
            return (-math.inf if rank < 2 else math.inf, rank)
        return (when, rank)

    return key


def final_event(state: DeploymentState, *, instance_id: str | None = None) -> DeploymentEvent:
    """The ``final`` event for a deployment in Status 2 or 3.

    A failed one names its root cause (:func:`failure_cause`): ``reason``
    ``"snapshot_failed"`` with ``failed_snapshot``, the resource, ``stage`` and the full
    ``message`` of the first snapshot that failed on its own (``"task_failed"`` for a
    subtask without a failed snapshot, ``"failed"`` when the tree says nothing).
    """
    ctx = _Ctx(state.deployment_id, state.instance_id or instance_id, state.observed_at)
    cause = failure_cause(state) if state.status == FAILED else None
    return ctx.event(
        "final",
        status=state.status,
        previous_status=state.status,
        outcome=state.outcome,
        time=state.observed_at if state.ended_at is None else state.ended_at,
        reason=_reason(state, cause),
        **({} if cause is None else _cause_fields(cause)),
    )


def _reason(state: DeploymentState, cause: FailureCause | None) -> str | None:
    if state.status == SUCCEEDED:
        return "completed"
    if state.status != FAILED:
        return None
    if cause is None:
        return "failed"
    return "task_failed" if cause.snapshot_id is None else "snapshot_failed"


def _cause_fields(cause: FailureCause) -> dict[str, Any]:
    return {
        "task_id": cause.task_id,
        "gateway_id": cause.gateway_id,
        "failed_snapshot": cause.snapshot_id,
        "resource_id": cause.resource_id,
        "resource_name": cause.resource_name,
        "resource_type": cause.resource_type,
        "stage": cause.stage,
        "message": cause.message,
    }


def _removed(
    kind: Literal["task", "snapshot"],
    ctx: _Ctx,
    task_id: str,
    snapshot_id: str | None,
    stage: int | None,
    status: int | None,
) -> DeploymentEvent:
    return ctx.event(
        kind,
        task_id=task_id,
        snapshot_id=snapshot_id,
        previous_stage=stage,
        previous_status=status,
        change="removed",
        time=ctx.observed_at,
    )


def _diff_task(ctx: _Ctx, prev: TaskState | None, task: TaskState) -> list[DeploymentEvent]:
    own: DeploymentEvent | None = None
    was: _Pair | None = None if prev is None else (prev.stage, prev.status)
    if was != (task.stage, task.status):
        own = ctx.event(
            "task",
            task_id=task.task_id,
            gateway_id=task.gateway_id,
            time=_when(task.modified_ms, ctx),
            **_move((task.stage, task.status), was),
        )
    before = {s.snapshot_id: s for s in prev.snapshots} if prev is not None else {}
    streams = [
        _diff_snapshot(ctx, task, before.pop(s.snapshot_id, None), s) for s in task.snapshots
    ]
    streams.extend(
        [_removed("snapshot", ctx, task.task_id, s.snapshot_id, s.stage, s.status)]
        for s in before.values()
    )
    if own is not None and own.change == "appeared":
        # A new subtask must exist before its snapshots.
        return [own, *heapq.merge(*streams, key=_merge_key(ctx.observed_at))]
    if own is not None:
        streams.append([own])
    # Each snapshot's own events stay in order; across snapshots, earliest first.
    return list(heapq.merge(*streams, key=_merge_key(ctx.observed_at)))


def _move(now: _Pair, was: _Pair | None) -> dict[str, Any]:
    """A transition's fields: to (stage, status) ``now`` from ``was`` (``None``: it appeared)."""
    before = None if was is None else was[0]
    return {
        "stage": now[0],
        "status": now[1],
        "previous_stage": before,
        "previous_status": None if was is None else was[1],
        "change": "appeared" if was is None else "updated",
        "backwards": before is not None and now[0] is not None and now[0] < before,
    }


def _new_entries(before: Sequence[LogEntry], after: Sequence[LogEntry]) -> list[LogEntry]:
    """Entries of ``after`` not in ``before`` (as multisets), in ``after``'s order."""
    seen = Counter(before)
    out = []
    for entry in after:
        if seen[entry] > 0:
            seen[entry] -= 1
        else:
            out.append(entry)
    return out


def _diff_snapshot(
    ctx: _Ctx, task: TaskState, prev: SnapshotState | None, snap: SnapshotState
) -> list[DeploymentEvent]:
    def about(kind: Literal["snapshot", "warning", "log"], **fields: Any) -> DeploymentEvent:
        """An event of this snapshot: where it stands in the tree, its resource, ``fields``."""
        return ctx.event(
            kind,
            task_id=task.task_id,
            snapshot_id=snap.snapshot_id,
            resource_id=snap.resource_id,
            resource_name=snap.resource_name,
            resource_type=snap.resource_type,
            **fields,
        )

    def transition(
        now: _Pair, was: _Pair | None, *, time: float | None, inferred: bool
    ) -> DeploymentEvent:
        return about(
            "snapshot",
            gateway_id=task.gateway_id,
            operate_type=snap.operate_type,
            time=time,
            inferred=inferred,
            **_move(now, was),
        )

    out: list[DeploymentEvent] = []
    entries = _new_entries(() if prev is None else prev.log, snap.log)
    # The Log only grows: entries told before and missing now were lost, not undone.
    lost = 0 if prev is None else len(prev.log) - (len(snap.log) - len(entries))
    problem = snap.log_problem or _lost_problem(lost)
    if problem and (prev is None or prev.log_problem != problem):
        out.append(
            about(
                "warning",
                message=f"malformed Log: {problem}" if snap.log_problem else problem,
                time=ctx.observed_at,
            )
        )
    running: _Pair | None = None if prev is None else (prev.stage, prev.status)
    observed: _Pair = (snap.stage, snap.status)
    observed_time = _when(snap.modified_ms, ctx)
    if running is None and entries and _order(_INITIAL) < _order(observed):
        # ERRATA, Deployments: every snapshot starts at Stage 0, Status 0; its Log shows
        # it moved on before we first saw it, so that start belongs to the story too.
        first = entries[0].time if snap.created_ms is None else ms_to_seconds(snap.created_ms)
        out.append(transition(_INITIAL, None, time=first, inferred=True))
        running = _INITIAL
    for entry in entries:
        implied = implied_state(entry)
        if implied is not None and running != observed:
            if _order(implied) >= _order(observed):
                # This entry reports the move to where the snapshot is now: that move was
                # observed, so it is not inferred; the entry dates it when nothing else does.
                when = observed_time
                if snap.modified_ms is None and entry.time is not None:
                    when = entry.time
                out.append(transition(observed, running, time=when, inferred=False))
                running = observed
            elif running is None or _order(implied) > _order(running):
                # A move that happened between two polls, read back from the Log.
                out.append(transition(implied, running, time=entry.time, inferred=True))
                running = implied
        if running is None:  # a log line needs its snapshot to exist first
            out.append(transition(observed, None, time=observed_time, inferred=False))
            running = observed
        out.append(
            about("log", stage=entry.stage, log=entry, message=entry.message, time=entry.time)
        )
    if running != observed:
        out.append(transition(observed, running, time=observed_time, inferred=False))
    return out


_INITIAL: _Pair = (0, 0)


def implied_state(entry: LogEntry) -> tuple[int, int] | None:
    """The (stage, status) a snapshot is in once it wrote ``entry``.

    ERRATA, Deployments: one entry per stage reached.  A success at the last stage means
    the snapshot succeeded (2), a failure entry that it failed (3) there; any other
    success means it is processing (1) at that stage.
    """
    if entry.stage is None:
        return None
    if entry.failed:
        return (entry.stage, FAILED)
    return (entry.stage, SUCCEEDED if entry.stage >= LAST_STAGE else PROCESSING)


def _order(pair: _Pair) -> tuple[int, int]:
    """Progress order of (stage, status): by stage, then not started < processing < ended."""
    stage, status = pair
    rank = -1 if status is None else min(status, 2)
    return (-1 if stage is None else stage, rank)


# --------------------------------------------------------------------------- apply


def apply(state: DeploymentState | None, events: Iterable[DeploymentEvent]) -> DeploymentState:
    """Replay transition and log events over ``state`` (``None``: start from nothing).

    Other kinds (``warning``, ``poll_error``, ``final``) change nothing.  Raises
    ``ValueError`` when an event refers to an object the state does not have.
    """
    dep: dict[str, Any] | None = None
    tasks: dict[str, dict[str, Any]] = {}
    if state is not None:
        dep = _own_fields(state)
        for t in state.tasks:
            tasks[t.task_id] = {
                **_own_fields(t),
                "snapshots": {
                    s.snapshot_id: {**_own_fields(s), "log": list(s.log)} for s in t.snapshots
                },
            }
    for ev in events:
        if ev.kind == "deployment":
            if dep is None:
                dep = _carried(DeploymentState, ev)
            dep["status"] = ev.status
            continue
        if ev.kind not in ("task", "snapshot", "log"):
            continue
        if dep is None:
            raise ValueError(f"{ev.kind} event before the deployment appeared")
        if ev.task_id is None:
            raise ValueError(f"{ev.kind} event without task_id")
        if ev.kind == "task":
            _replay(tasks, ev.task_id, TaskState, ev, snapshots={})
            continue
        snaps = _need(tasks, ev.task_id, "task")["snapshots"]
        if ev.snapshot_id is None:
            raise ValueError(f"{ev.kind} event without snapshot_id")
        if ev.kind == "log":
            if ev.log is not None:
                _need(snaps, ev.snapshot_id, "snapshot")["log"].append(ev.log)
        else:
            _replay(snaps, ev.snapshot_id, SnapshotState, ev, log=[])
    if dep is None:
        raise ValueError("no state and no deployment event to start from")
    built = tuple(
        TaskState(
            **{k: v for k, v in t.items() if k != "snapshots"},
            snapshots=tuple(
                SnapshotState(
                    **{k: v for k, v in s.items() if k != "log"},
                    log=tuple(sorted(s["log"], key=LogEntry.sort_key)),
                )
                for s in t["snapshots"].values()
            ),
        )
        for t in tasks.values()
    )
    return DeploymentState(**dep, tasks=built)


def _own_fields(node: _Node) -> dict[str, Any]:
    """A node's fields but its children (or log entries)."""
    return {f.name: getattr(node, f.name) for f in _fields(type(node)) if "of" not in f.metadata}


def _carried(cls: type[_Node], ev: DeploymentEvent) -> dict[str, Any]:
    """The fields of a ``cls`` node that its event carries (ids, resource, stage, status)."""
    return {
        f.name: getattr(ev, f.name)
        for f in _fields(cls)
        if f.name in _EVENT_FIELDS and "of" not in f.metadata
    }


_EVENT_FIELDS = frozenset(f.name for f in fields(DeploymentEvent))


def _replay(
    table: dict[str, dict[str, Any]],
    key: str,
    cls: type[_Node],
    ev: DeploymentEvent,
    **children: Any,
) -> None:
    """A task or snapshot event on node ``key`` of ``table``: it appeared (with the fields its
    event carries and empty ``children``), was removed, or moved to the event's stage/status."""
    if ev.change == "removed":
        table.pop(key, None)
    elif ev.change == "appeared" and key not in table:
        table[key] = {**_carried(cls, ev), **children}
    else:
        node = _need(table, key, ev.kind)
        node["stage"], node["status"] = ev.stage, ev.status


def _need(table: dict[str, Any], key: str, what: str) -> Any:
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"event for unknown {what} {key}") from None


def carry_logs(previous: DeploymentState | None, current: DeploymentState) -> DeploymentState:
    """``current`` with every log entry of ``previous`` it no longer lists kept.

    A snapshot's ``Log`` is append-only (ERRATA: Deployments): an entry once listed stays
    told, so an answer whose Log is broken, missing or shorter (``""``, ``"[]"``,
    ``"null"``, absent) loses nothing.  A watcher stores this as its next ``previous``: the
    entries come back in a later answer without counting as new (and being emitted again).
    A snapshot that kept entries this way has a ``log_problem`` (its parse problem, or how
    many entries its Log lost), which :func:`diff` reports once as a ``warning``.
    """
    if previous is None:
        return current
    old = {(t.task_id, s.snapshot_id): s.log for t, s in previous.snapshots()}
    tasks = []
    changed = False
    for task in current.tasks:
        snaps = []
        for snap in task.snapshots:
            lost = _new_entries(snap.log, old.get((task.task_id, snap.snapshot_id), ()))
            if lost:
                changed = True
                snap = replace(
                    snap,
                    log=tuple(sorted([*snap.log, *lost], key=LogEntry.sort_key)),
                    log_problem=snap.log_problem or _lost_problem(len(lost)),
                )
            snaps.append(snap)
        tasks.append(replace(task, snapshots=tuple(snaps)))
    return replace(current, tasks=tuple(tasks)) if changed else current


def _lost_problem(lost: int) -> str | None:
    """What a snapshot's Log that no longer lists ``lost`` earlier entries is told as."""
    if lost <= 0:
        return None
    entries = "entry" if lost == 1 else "entries"
    return f"Log no longer lists {lost} earlier {entries} (kept: a Log only grows)"
