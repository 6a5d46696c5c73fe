"""Deployment events: what a watcher tells its caller, one frozen value per thing that happened.

Everything in this module is pure data.  One event class serves every kind so that a
stream can be filtered with ``event.kind`` and serialised with ``event.to_dict()``
without a type switch; fields that do not apply to a kind stay ``None``.

Kinds:

- ``"deployment"``, ``"task"``, ``"snapshot"``: an object appeared, changed stage/status, or
  vanished (``change`` is ``"appeared"``, ``"updated"`` or ``"removed"``).  A transition read
  back from a snapshot's ``Log`` rather than seen in a poll has ``inferred=True``.
- ``"log"``: one new entry of a snapshot's ``Log`` (ERRATA: Deployments), emitted once;
  ``log`` is its ``LogEntry`` (``aioedge._models``, the class ``log_entries`` yields too).
- ``"warning"``: something odd in an answer (a malformed ``Log``, or one that lost entries it
  listed before); the stream goes on.
- ``"poll_error"``: a transient error while polling; the watcher retries after ``retry_in``.
- ``"final"``: the last event of a stream, ``outcome`` is one of :data:`OUTCOMES` and
  ``reason`` one of :data:`REASONS`.  A failed deployment's ``final`` names its root cause
  (see ``_cause.py``): ``failed_snapshot``, the resource fields, ``stage`` and the full
  ``message`` of the first snapshot that failed on its own.
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import one_line, printable
from .._models import LogEntry, shown_code
from .._wire import FAILED, LAST_STAGE, NOT_STARTED, PROCESSING, SUCCEEDED

__all__ = [
    "OUTCOMES",
    "REASONS",
    "STAGE_NAMES",
    "STATUS_NAMES",
    "TRANSITION_KINDS",
    "DeploymentEvent",
    "WatchOutcome",
    "EventKind",
    "Outcome",
    "stage_name",
    "status_name",
]

EventKind = Literal["deployment", "task", "snapshot", "log", "warning", "poll_error", "final"]
Outcome = Literal[
    "succeeded", "failed", "timed_out", "stalled", "not_found", "error", "interrupted"
]

#: Kinds that move an object of the tree (the ones ``apply`` replays).
TRANSITION_KINDS: frozenset[str] = frozenset({"deployment", "task", "snapshot"})

#: ``"succeeded"``/``"failed"`` come from the service (Status 2/3); ``"timed_out"`` from the
#: watcher's own deadline; ``"stalled"`` from its ``progress_timeout`` (no stage or status
#: moved for that long); ``"not_found"``/``"error"`` only from a monitor, which reports a
#: deployment it cannot follow instead of raising for the whole stream, or from the CLI,
#: which ends every JSON stream with a ``final`` record; ``"interrupted"`` from the CLI on
#: Ctrl-C (the deployment itself goes on).
OUTCOMES: tuple[str, ...] = (
    "succeeded",
    "failed",
    "timed_out",
    "stalled",
    "not_found",
    "error",
    "interrupted",
)

#: Why a stream ended (``final`` events' ``reason``), finer than the outcome:
#: ``completed`` (succeeded); ``snapshot_failed`` / ``task_failed`` (the root cause is a
#: snapshot / a subtask without one) / ``failed`` (nothing in the tree says why);
#: ``timeout``; ``stalled`` (``progress_timeout``: no stage or status change);
#: ``not_found`` (the deployment or instance does not exist); ``unreachable``
#: (the endpoint could not be reached); ``error`` (any other error, ``error`` holds its
#: code); ``interrupted`` (Ctrl-C).
REASONS: tuple[str, ...] = (
    "completed",
    "snapshot_failed",
    "task_failed",
    "failed",
    "timeout",
    "stalled",
    "not_found",
    "unreachable",
    "error",
    "interrupted",
)

# ERRATA, Deployments: Stage 0/8/16/24/32; Status 0..3 (0 means "not started" for both
# subtasks and snapshots, whatever wording the text uses).  What the numbers mean (which
# Status is final, the last Stage) is ``aioedge._wire``'s; these are only their names.
STAGE_NAMES: Mapping[int, str] = {
    0: "initial",
    8: "assembling",
    16: "packaging",
    24: "dispatching",
    LAST_STAGE: "complete",
}
STATUS_NAMES: Mapping[int, str] = {
    NOT_STARTED: "not started",
    PROCESSING: "processing",
    SUCCEEDED: "succeeded",
    FAILED: "failed",
}


def stage_name(stage: int | None) -> str:
    if stage is None:
        return "-"
    return STAGE_NAMES.get(stage, f"stage {stage}")


def status_name(status: int | None) -> str:
    if status is None:
        return "-"
    return STATUS_NAMES.get(status, f"status {status}")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeploymentEvent:
    """One thing that happened to a watched deployment.

    ``time`` is seconds since the epoch: the log timestamp for ``log`` events and inferred
    transitions, the object's ``GmtModifiedTimestamp`` when the answer has one, else the
    moment the watcher saw the change.
    """

    kind: EventKind
    deployment_id: str
    instance_id: str | None = None
    task_id: str | None = None
    snapshot_id: str | None = None
    stage: int | None = None
    status: int | None = None
    previous_stage: int | None = None
    previous_status: int | None = None
    time: float | None = None
    inferred: bool = False
    change: Literal["appeared", "updated", "removed"] | None = None
    backwards: bool = False
    gateway_id: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    resource_type: str | None = None
    operate_type: int | None = None
    log: LogEntry | None = None
    message: str | None = None
    outcome: Outcome | None = None
    error: str | None = None
    attempt: int | None = None
    retry_in: float | None = None
    reason: str | None = None
    failed_snapshot: str | None = None

    @property
    def is_transition(self) -> bool:
        return self.kind in TRANSITION_KINDS

    @property
    def stage_changed(self) -> bool:
        return self.stage != self.previous_stage

    @property
    def status_changed(self) -> bool:
        return self.status != self.previous_status

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-serialisable (``log`` as its wire-spelled dict)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, LogEntry) else value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DeploymentEvent:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in names}
        log = kwargs.get("log")
        if isinstance(log, Mapping):
            kwargs["log"] = LogEntry.from_dict(log)
        return cls(**kwargs)

    def __str__(self) -> str:
        return f"{clock_text(self.time)} {self._body()}"

    def _body(self) -> str:
        tag = " (inferred)" if self.inferred else ""
        dep = printable(self.deployment_id)
        if self.kind == "deployment":
            return f"deployment {dep}: {self._moves(stages=False)}{tag}"
        if self.kind == "task":
            gw = f" gateway {printable(self.gateway_id)}" if self.gateway_id else ""
            return f"task {printable(self.task_id or '?')}{gw}: {self._moves(stages=True)}{tag}"
        if self.kind == "snapshot":
            return f"snapshot {self._resource()}: {self._moves(stages=True)}{tag}"
        if self.kind == "log":
            entry = self.log or LogEntry()
            level = printable(entry.level or "LOG")
            code = f" code={printable(entry.shown_code)}" if entry.shown_code else ""
            return (
                f"log {self._resource()} [{stage_name(entry.stage)}] {level}{code}: "
                f"{one_line(entry.message or '')}"
            )
        if self.kind == "warning":
            where = f" snapshot {self._resource()}" if self.snapshot_id else ""
            return f"warning deployment {dep}{where}: {one_line(self.message or '')}"
        if self.kind == "poll_error":
            retry = f", retrying in {self.retry_in:.1f}s" if self.retry_in is not None else ""
            return (
                f"poll error #{self.attempt or 1} on deployment {dep}: "
                f"{printable(self.error or '')}{': ' if self.message else ''}"
                f"{one_line(self.message or '')}{retry}"
            )
        # final
        outcome = (self.outcome or "finished").replace("_", " ")
        if self.reason in ("snapshot_failed", "task_failed"):
            # The root cause, whole: which resource, where, and its full message.
            return f"deployment {dep} {outcome}: {cause_text(self.culprit(), self.message)}"
        detail = f" ({one_line(self.message)})" if self.message else ""
        return f"deployment {dep} {outcome}{detail}"

    def culprit(self) -> str:
        """A failed ``final``'s root cause as people name it: ``sensor_03 (device_config) at
        dispatching on gateway G``; ``""`` for any other event."""
        if self.reason == "snapshot_failed":
            sid = self.failed_snapshot or "?"
            what = resource_label(self.resource_name, self.resource_id, sid, self.resource_type)
        elif self.reason == "task_failed":
            what = f"subtask {printable(self.task_id or '?')}"
        else:
            return ""
        return culprit_text(what, self.stage, self.gateway_id)

    def _resource(self) -> str:
        return snapshot_label(
            self.snapshot_id, self.resource_name, self.resource_id, self.resource_type
        )

    def _moves(self, *, stages: bool) -> str:
        if self.change == "removed":
            return "no longer listed"
        parts = []
        if stages and (self.stage_changed or self.change == "appeared"):
            parts.append(move_text(self.previous_stage, self.stage, stage_name))
        if self.status_changed or self.change == "appeared" or not parts:
            parts.append(move_text(self.previous_status, self.status, status_name))
        text = ", ".join(parts)
        if self.change == "appeared":
            text = f"appeared, {text}"
        if self.backwards:
            text += " (stage went backwards)"
        return text


class WatchOutcome(str):
    """How a watch ended, equal to its outcome string (``"failed"``), that also says why.

    ``watcher.outcome == "failed"`` holds as before; ``watcher.outcome.message`` is the full
    message of the root cause, ``.failed_snapshot`` its snapshot, ``.reason`` one of
    :data:`REASONS` and ``.final`` the whole ``final`` event.
    """

    final: DeploymentEvent

    def __new__(cls, final: DeploymentEvent) -> WatchOutcome:
        self = super().__new__(cls, final.outcome or "error")
        self.final = final
        return self

    @property
    def reason(self) -> str | None:
        return self.final.reason

    @property
    def message(self) -> str | None:
        return self.final.message

    @property
    def failed_snapshot(self) -> str | None:
        return self.final.failed_snapshot

    @property
    def culprit(self) -> str:
        """The failing resource and where (``""`` unless a failure names one)."""
        return self.final.culprit()

    def __repr__(self) -> str:
        return (
            f"WatchOutcome({str(self)!r}, reason={self.reason!r}, "
            f"failed_snapshot={self.failed_snapshot!r}, message={self.message!r})"
        )


def resource_label_parts(
    name: str | None,
    resource_id: str | None = None,
    snapshot_id: str | None = None,
    resource_type: str | None = None,
) -> tuple[str, str]:
    """A resource as people name it, in two parts: what names it (its name, else its
    resource id, else its snapshot id) and what follows (`` (type)``, unless the type is that
    name itself or nothing names it).  Both :func:`printable`; ``("", "")`` when nothing
    names it.  A view that cuts the name to fit keeps the second part whole."""
    label = printable(name or resource_id or snapshot_id or "")
    kind = printable(resource_type or "")
    if not label or not kind or kind == label:
        return label, ""
    return label, f" ({kind})"


def resource_label(
    name: str | None,
    resource_id: str | None = None,
    snapshot_id: str | None = None,
    resource_type: str | None = None,
) -> str:
    """A resource as people name it: ``sensor_03 (device_config)`` (:func:`resource_label_parts`).

    The one rule for every view: ``str(event)``, the tree and the HTML, a root cause's
    :attr:`~aioedge.watch.FailureCause.resource`, the live display's log lines and a stall's
    "last change".
    """
    label, kind = resource_label_parts(name, resource_id, snapshot_id, resource_type)
    return label + kind


def snapshot_label(
    snapshot_id: str | None,
    name: str | None,
    resource_id: str | None,
    resource_type: str | None,
) -> str:
    """A snapshot in a line of text: its id, then its resource (``8c77… ModbusDriver (driver)``);
    the id alone names it (with its type) when nothing else does."""
    sid = printable(snapshot_id or "?")
    label = resource_label(name, resource_id)
    if not label:
        return resource_label(None, None, sid, resource_type)
    return f"{sid} {resource_label(name, resource_id, None, resource_type)}"


def culprit_text(what: str, stage: int | None, gateway_id: str | None) -> str:
    """Where a root cause failed: ``sensor_03 (device_config) at dispatching on gateway G``."""
    gw = f" on gateway {printable(gateway_id)}" if gateway_id else ""
    return f"{what} at {stage_name(stage)}{gw}"


def code_prefix(code: str | None) -> str:
    """``code=1: `` before a failure's message, or ``""`` when the code is not worth showing
    (:func:`aioedge._models.shown_code`)."""
    shown = shown_code(code)
    return "" if shown is None else f"code={printable(shown)}: "


def cause_text(culprit: str, message: str | None, code: str | None = None) -> str:
    """The root cause on one line, as every view says it (``str(event)``, ``repr(state)``, the
    rollout lines, the HTML captions): ``<culprit>: [code=C: ]<message>``, the message whole,
    its whitespace runs as one space."""
    return f"{culprit}: {code_prefix(code)}{one_line(message or '')}"


def move_text(before: int | None, after: int | None, name: Any) -> str:
    """``"assembling → packaging"``: a stage or status before and after, named by ``name``
    (:func:`stage_name`, :func:`status_name`); just the new one when it did not move."""
    if before is None or before == after:
        return str(name(after))
    return f"{name(before)} → {name(after)}"


def clock_text(t: float | None) -> str:
    """``HH:MM:SS.mmm`` in UTC (fixed, so output does not depend on the machine's zone).

    A time no calendar holds (``time.gmtime`` refuses it), an infinity or NaN is shown as
    the raw seconds instead (``1e+17s``, ``inf``): printing an event never raises.
    """
    if t is None:
        return "--:--:--.---"
    try:
        whole = int(t // 1)
        ms = round((t - whole) * 1000)
        if ms == 1000:
            whole, ms = whole + 1, 0
        return f"{_time.strftime('%H:%M:%S', _time.gmtime(whole))}.{ms:03d}"
    except (ArithmeticError, OSError, TypeError, ValueError):
        return _raw_seconds(t)


def _raw_seconds(t: object) -> str:
    if isinstance(t, float) and not math.isfinite(t):
        return repr(t)
    if isinstance(t, int | float):
        return f"{t!r}s"
    return printable("".join(repr(t).split()))  # not a number at all (a hand-made event)
