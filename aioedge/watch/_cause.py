"""Why a deployment failed: the root cause told apart from its fallout.  Pure.

ERRATA (Deployments): when one resource snapshot fails, its subtask fails at once and the
subtask's other snapshots that had not ended fail with it (Status 3 at the stage they had
reached, their ``ERROR`` log entry naming the resource that failed).  A failed tree is then
mostly red, and the one line an operator needs is the *first* failure.

The rule, in one place:

- A failed snapshot's failure is its first failing ``Log`` entry (level ``ERROR`` or a
  non-zero code); it is dated by that entry, else by the snapshot's completion or last
  modification time.
- Within a subtask the earliest failure is the subtask's own; at equal times one whose
  message does not name another snapshot of the subtask wins, then the listing order.
  Every other failed snapshot of that subtask is ``"stopped"``: it failed because its
  subtask did.
- Across subtasks the earliest own failure is the deployment's root cause (``"cause"``);
  the other subtasks' own failures are ``"failed"``.
- A subtask that failed with no failed snapshot (a resource-less subtask) is a failure of
  its own, with the subtask as the culprit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._errors import printable
from .._models import LogEntry
from .._wire import FAILED
from ._events import cause_text, culprit_text, resource_label, stage_name

if TYPE_CHECKING:  # attributes only: _state builds final events from this module
    from ._state import DeploymentState, SnapshotState, TaskState

__all__ = ["FailureCause", "FailureRole", "failure_cause", "failure_roles"]

#: ``"cause"``: the root cause; ``"failed"``: another subtask's own failure;
#: ``"stopped"``: failed only because its subtask did.
FailureRole = Literal["cause", "failed", "stopped"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FailureCause:
    """The first failure of a deployment, by time: which resource, where, and the full message.

    ``snapshot_id`` is ``None`` when a subtask failed without a failed snapshot.
    ``message`` is the whole message of the failing ``Log`` entry, never shortened.
    """

    task_id: str
    gateway_id: str | None = None
    snapshot_id: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    resource_type: str | None = None
    stage: int | None = None
    code: str | None = None
    message: str
    time: float | None = None
    #: False when no Log entry says why: ``message`` then only says where it failed.
    logged: bool = True

    @property
    def resource(self) -> str:
        """The failing resource as people name it (``sensor_03 (device_config)``, see
        :func:`~aioedge.watch._events.resource_label`), or ``subtask T on gateway G``."""
        if self.snapshot_id is None:
            gw = f" on gateway {printable(self.gateway_id)}" if self.gateway_id else ""
            return f"subtask {printable(self.task_id)}{gw}"
        return resource_label(
            self.resource_name, self.resource_id, self.snapshot_id, self.resource_type
        )

    def describe(self) -> str:
        """One line, as ``aioedge watch`` ends: ``sensor_03 (device_config) at dispatching on
        gateway G: code=1: <message>`` (the code only when it is worth showing)."""
        what = self.resource
        if self.snapshot_id is None:  # not "subtask T on gateway G": the gateway comes last
            what = f"subtask {printable(self.task_id)}"
        return cause_text(culprit_text(what, self.stage, self.gateway_id), self.message, self.code)

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, JSON-serialisable."""
        return asdict(self)


def _failing_entry(snap: SnapshotState) -> LogEntry | None:
    return next((e for e in snap.log if e.failed), None)


def _failure_time(snap: SnapshotState) -> float | None:
    entry = _failing_entry(snap)
    if entry is not None and entry.time is not None:
        return entry.time
    return snap.ended_at


_WORD = re.compile(r"[\w.:/-]+")


def _names_another(snap: SnapshotState, names: Mapping[str, int]) -> bool:
    """Whether ``snap``'s failure message names another snapshot of its subtask (by a word
    equal to its resource id or name): ``stopped: <resourceId> failed`` is fallout.

    ``names`` maps every id and name of the subtask's snapshots to how many snapshots carry
    it; words are looked up, so a subtask of n snapshots costs O(n), not O(n²).
    """
    entry = _failing_entry(snap)
    text = (entry.message if entry is not None else None) or ""
    own = {snap.resource_id, snap.resource_name}
    for word in _WORD.findall(text):
        word = word.strip(".:/-")
        count = names.get(word, 0)
        if count > (1 if word in own else 0):
            return True
    return False


def _own(task: TaskState) -> tuple[SnapshotState | None, float]:
    """The snapshot whose failure is ``task``'s own (None: no failed snapshot), and when."""
    failed = [(i, s) for i, s in enumerate(task.snapshots) if s.status == FAILED]
    if not failed:
        ended = task.ended_at
        return None, math.inf if ended is None else ended

    names: dict[str, int] = {}
    for other in task.snapshots:
        for ident in {other.resource_id, other.resource_name}:
            if ident:
                names[ident] = names.get(ident, 0) + 1

    def when(item: tuple[int, SnapshotState]) -> float:
        found = _failure_time(item[1])
        return math.inf if found is None else found

    # The earliest failure; at equal times, one that does not name a sibling (checked only
    # among those tied), then the listing order.
    first = min(when(item) for item in failed)
    tied = [item for item in failed if when(item) == first]
    _, snap = min(tied, key=lambda item: (_names_another(item[1], names), item[0]))
    return snap, first


def _cause(task: TaskState, snap: SnapshotState | None) -> FailureCause:
    if snap is None:
        return FailureCause(
            task_id=task.task_id,
            gateway_id=task.gateway_id,
            stage=task.stage,
            message=f"subtask failed at {stage_name(task.stage)}",
            time=task.ended_at,
            logged=False,
        )
    entry = _failing_entry(snap)
    message = (entry.message if entry is not None else None) or (
        f"failed at {stage_name(snap.stage)} (no error message in its Log)"
    )
    return FailureCause(
        task_id=task.task_id,
        gateway_id=task.gateway_id,
        snapshot_id=snap.snapshot_id,
        resource_id=snap.resource_id,
        resource_name=snap.resource_name,
        resource_type=snap.resource_type,
        stage=entry.stage if entry is not None and entry.stage is not None else snap.stage,
        code=entry.code if entry is not None else None,
        message=message,
        time=_failure_time(snap),
        logged=entry is not None and bool(entry.message),
    )


def _failed_tasks(
    state: DeploymentState,
) -> list[tuple[int, TaskState, SnapshotState | None, float]]:
    out = []
    for index, task in enumerate(state.tasks):
        if task.status == FAILED or any(s.status == FAILED for s in task.snapshots):
            snap, when = _own(task)
            out.append((index, task, snap, when))
    return out


def failure_cause(state: DeploymentState) -> FailureCause | None:
    """The root cause of a failure: the first snapshot (by time) that failed on its own.

    ``None`` when nothing in the tree failed (yet).  Works on a running deployment too: the
    first failure is known before the deployment ends.
    """
    failed = _failed_tasks(state)
    if not failed:
        return None
    _, task, snap, _ = min(failed, key=lambda item: (item[3], item[0]))
    return _cause(task, snap)


def failure_roles(state: DeploymentState) -> dict[tuple[str, str], FailureRole]:
    """The role of every failed snapshot, by ``(task_id, snapshot_id)`` (see the module doc)."""
    failed = _failed_tasks(state)
    if not failed:
        return {}
    root = min(failed, key=lambda item: (item[3], item[0]))
    roles: dict[tuple[str, str], FailureRole] = {}
    for item in failed:
        _, task, own, _ = item
        for snap in task.snapshots:
            if snap.status != FAILED:
                continue
            if snap is own:
                roles[(task.task_id, snap.snapshot_id)] = "cause" if item is root else "failed"
            else:
                roles[(task.task_id, snap.snapshot_id)] = "stopped"
    return roles
