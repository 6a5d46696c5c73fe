"""Fleet rollouts, the pure part: waves, the abort rule, events, the result, the record.

Everything here is arithmetic on values (no I/O, no clock): the shell in ``_rollout_run``
starts deployments, watches them through one ``DeploymentMonitor`` and asks this module what
to do next.

Waves are *cumulative*: ``(1, 0.25, 1.0)`` on 200 instances means "1 instance, then up to 50
(ceil(0.25 x 200)) in all, then all 200".  An int is a count of instances, a float in
(0, 1] a share of the fleet (so ``1`` is one instance and ``1.0`` the whole fleet).  Counts
that collapse onto the same number on a small fleet make one wave; the last wave always
takes the rest of the fleet.

The abort rule (AWS IoT Jobs' abort criteria): once ``min_finished`` deployments have
finished, the rollout aborts as soon as ``failed / finished > max_failures``.  Deployments
already running are watched to their end; nothing new starts; the instances never started
are *skipped*.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._argtypes import check_count, parse_share
from ._errors import ValidationError
from .watch import DeploymentEvent

__all__ = [
    "RECORD_VERSION",
    "InstanceRecord",
    "RolloutEvent",
    "RolloutBook",
    "RolloutKind",
    "RolloutPlan",
    "RolloutResult",
    "check_min_finished",
    "minimum_duration",
    "parse_share",
    "parse_waves",
    "plan_waves",
    "should_abort",
]

RolloutKind = Literal["wave", "deployment", "aborted", "final"]
WaveSpec = int | float

#: The version of the JSON record a rollout store keeps.
RECORD_VERSION = 1

#: Outcomes of a monitor's ``final`` event that count as a success; every other one
#: (failed, timed_out, stalled, not_found, error) counts as a failure.
_SUCCESS = "succeeded"


# --------------------------------------------------------------------------- input


def check_min_finished(value: int, *, param: str) -> int:
    """``value`` if it is a whole number >= 1 (how many deployments must have ended before
    the abort rule judges); a ValidationError naming ``param`` otherwise (``min_finished``
    for ``Rollout``, ``--min-finished`` on the command line)."""
    return check_count(value, param=param, minimum=1)


def parse_waves(text: str) -> tuple[WaveSpec, ...]:
    """``"1,25%,100%"`` → ``(1, 0.25, 1.0)``: counts stay ints, percentages become shares."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValidationError(
            f"waves must be a comma-separated list such as 1,25%,100%, got {text!r}",
            param="waves",
            rule="format",
        )
    out: list[WaveSpec] = []
    for part in parts:
        if part.endswith("%"):
            share = parse_share(part, param="waves")
            if share == 0:
                raise ValidationError("a wave of 0% is empty", param="waves", rule="range")
            out.append(share)
        else:
            try:
                out.append(int(part))
            except ValueError:
                raise ValidationError(
                    f"a wave is a count (5) or a percentage (25%), got {part!r}",
                    param="waves",
                    rule="format",
                ) from None
    return tuple(out)


def plan_waves(total: int, waves: Sequence[WaveSpec]) -> tuple[int, ...]:
    """Cumulative instance counts per wave, strictly increasing, the last equal to ``total``."""
    if not waves:
        raise ValidationError("waves must name at least one wave", param="waves", rule="required")
    counts: list[int] = []
    for wave in waves:
        if isinstance(wave, bool) or not isinstance(wave, int | float):
            raise ValidationError(
                f"a wave is an int (count) or a float in (0, 1] (share), got {wave!r}",
                param="waves",
                rule="type",
            )
        if isinstance(wave, int):
            if wave < 1:
                raise ValidationError(
                    f"a wave's count must be >= 1, got {wave}", param="waves", rule="range"
                )
            count = min(wave, total)
        else:
            if not 0.0 < wave <= 1.0:
                raise ValidationError(
                    f"a wave's share must be within (0, 1], got {wave!r}",
                    param="waves",
                    rule="range",
                )
            count = math.ceil(wave * total - 1e-9)
        if counts and count < counts[-1]:
            raise ValidationError(
                f"waves are cumulative and cannot shrink: {list(waves)!r}",
                param="waves",
                rule="order",
            )
        if count and (not counts or count > counts[-1]):
            counts.append(count)
    if total and (not counts or counts[-1] < total):
        counts.append(total)  # the last wave takes the rest of the fleet
    return tuple(counts)


def should_abort(*, succeeded: int, failed: int, max_failures: float, min_finished: int) -> bool:
    """The abort rule: at least ``min_finished`` finished and a failed share above the cap."""
    finished = succeeded + failed
    return finished >= max(min_finished, 1) and failed / finished > max_failures


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutPlan:
    """The fleet in rollout order and the cumulative size of each wave."""

    instance_ids: tuple[str, ...]
    waves: tuple[int, ...]
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {i: n for n, i in enumerate(self.instance_ids)})

    @classmethod
    def build(cls, instance_ids: Sequence[str], waves: Sequence[WaveSpec]) -> RolloutPlan:
        if isinstance(instance_ids, str):
            raise ValidationError(
                "instance_ids must be a list of instance ids, not one string",
                param="instance_ids",
                rule="type",
            )
        ids = tuple(instance_ids)
        if not ids:
            raise ValidationError(
                "instance_ids must name at least one instance",
                param="instance_ids",
                rule="required",
            )
        for iid in ids:
            if not isinstance(iid, str) or not iid.strip():
                raise ValidationError(
                    f"an instance id must be a non-empty string, got {iid!r}",
                    param="instance_ids",
                    rule="format",
                )
        seen: set[str] = set()
        dupes = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        if dupes:
            raise ValidationError(
                f"instance {dupes[0]!r} is listed twice", param="instance_ids", rule="unique"
            )
        return cls(instance_ids=ids, waves=plan_waves(len(ids), waves))

    def members(self, wave: int) -> tuple[str, ...]:
        """The instances wave ``wave`` (0-based) adds."""
        start = 0 if wave == 0 else self.waves[wave - 1]
        return self.instance_ids[start : self.waves[wave]]

    def wave_of(self, instance_id: str) -> int:
        """The 0-based wave of ``instance_id`` (ValueError if it is not in the plan)."""
        index = self._index.get(instance_id)
        if index is None:
            raise ValueError(f"{instance_id!r} is not in this rollout")
        return bisect.bisect_right(self.waves, index)

    def sizes(self) -> tuple[int, ...]:
        return tuple(len(self.members(w)) for w in range(len(self.waves)))


def minimum_duration(plan: RolloutPlan, *, create_qps: float = 5.0, poll_qps: float = 5.0) -> float:
    """Seconds the quotas alone impose on ``plan``, the deployments' own time left out.

    Each wave creates its ``n`` instances (CreateEdgeInstanceDeployment, ``create_qps``)
    and polls each at least once (GetEdgeInstanceDeployment, ``poll_qps``); a quota admits
    ``Q`` calls in any 1-second window, so ``n`` calls take at least ``ceil(n / Q) - 1``
    seconds from the first to the last (``Q`` at 0 s, ``Q`` at 1 s, ...).  The two quotas
    run side by side and a wave waits for the one before it, so the minimum is the sum over
    waves of the slower of the two, plus, per wave, the time its slowest deployment takes
    (which no quota decides).
    """
    return float(sum(max(_span(n, create_qps), _span(n, poll_qps)) for n in plan.sizes()))


def _span(calls: int, qps: float) -> float:
    return max(0, math.ceil(calls / qps - 1e-9) - 1)


# --------------------------------------------------------------------------- values out


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutResult:
    """How a rollout ended: each instance succeeded, failed or was skipped (never started)."""

    succeeded: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    aborted: bool = False
    #: instance id → the deployment watched for it.
    deployments: Mapping[str, str] = field(default_factory=dict)
    #: instance id → outcome of its deployment (succeeded, failed, timed_out, ...).
    outcomes: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every instance succeeded."""
        return not self.failed and not self.skipped and not self.aborted

    def to_dict(self) -> dict[str, Any]:
        return {
            "succeeded": list(self.succeeded),
            "failed": list(self.failed),
            "skipped": list(self.skipped),
            "aborted": self.aborted,
            "deployments": dict(self.deployments),
            "outcomes": dict(self.outcomes),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutEvent:
    """One step of a rollout.

    - ``"wave"``: wave ``wave`` (1-based) starts; ``instance_ids`` are its instances.
    - ``"deployment"``: ``event`` (a :class:`~aioedge.DeploymentEvent`) happened to the
      deployment of ``instance_id``; its ``final`` event carries the outcome.  An instance
      whose deployment could not be created gets one ``final`` with ``outcome="error"``.
    - ``"aborted"``: the failed share passed ``max_failures``; ``reason`` says so.
    - ``"final"``: the rollout is over; ``result`` is the :class:`RolloutResult`.
    """

    kind: RolloutKind
    time: float
    wave: int | None = None
    instance_ids: tuple[str, ...] = ()
    instance_id: str | None = None
    deployment_id: str | None = None
    event: DeploymentEvent | None = None
    reason: str | None = None
    result: RolloutResult | None = None

    @property
    def outcome(self) -> str | None:
        """The outcome of a deployment's ``final`` event, else None."""
        if self.event is not None and self.event.kind == "final":
            return self.event.outcome
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, DeploymentEvent | RolloutResult):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# --------------------------------------------------------------------------- the record


@dataclass(slots=True, kw_only=True)
class InstanceRecord:
    """What a rollout knows of one instance; the store keeps these.

    ``intent`` is written before CreateEdgeInstanceDeployment is sent, with ``before`` the
    newest deployment the instance had then: after a crash, a deployment newer than
    ``before`` is the one that call created.  ``deployment_id`` is written once known,
    ``outcome`` when the deployment's final event is handed out.
    """

    intent: bool = False
    before: str | None = None
    deployment_id: str | None = None
    attached: bool = False
    outcome: str | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def succeeded(self) -> bool:
        return self.outcome == _SUCCESS

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InstanceRecord:
        return cls(
            intent=bool(raw.get("intent", False)),
            before=raw.get("before"),
            deployment_id=raw.get("deployment_id"),
            attached=bool(raw.get("attached", False)),
            outcome=raw.get("outcome"),
        )


class RolloutBook:
    """The rollout's state: one :class:`InstanceRecord` per instance, the abort flag, and the
    decisions that read them.  Serialises to (and restores from) the store's JSON record."""

    def __init__(self, plan: RolloutPlan, *, type: str) -> None:
        self.plan = plan
        self.type = type
        self.records: dict[str, InstanceRecord] = {i: InstanceRecord() for i in plan.instance_ids}
        self.aborted = False
        self.abort_reported = False
        self.final_reported = False

    # -- counting --------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(succeeded, failed) among the finished."""
        ok = sum(1 for r in self.records.values() if r.succeeded)
        done = sum(1 for r in self.records.values() if r.finished)
        return ok, done - ok

    def wave_done(self, wave: int) -> bool:
        """Every instance of ``wave`` that was started (or may have been) has an outcome."""
        return all(
            self.records[i].finished or not self.records[i].intent for i in self.plan.members(wave)
        )

    def running(self) -> list[str]:
        return [i for i, r in self.records.items() if r.intent and not r.finished]

    def record_outcome(
        self, instance_id: str, outcome: str, *, max_failures: float, min_finished: int
    ) -> bool:
        """Note an outcome; True when this one makes the rollout abort."""
        self.records[instance_id].outcome = outcome
        if self.aborted:
            return False
        ok, bad = self.counts()
        if should_abort(
            succeeded=ok, failed=bad, max_failures=max_failures, min_finished=min_finished
        ):
            self.aborted = True
            return True
        return False

    def result(self) -> RolloutResult:
        ids = self.plan.instance_ids
        recs = self.records
        return RolloutResult(
            succeeded=tuple(i for i in ids if recs[i].succeeded),
            failed=tuple(i for i in ids if recs[i].finished and not recs[i].succeeded),
            skipped=tuple(i for i in ids if not recs[i].finished),
            aborted=self.aborted,
            deployments={i: r.deployment_id for i, r in recs.items() if r.deployment_id},
            outcomes={i: r.outcome for i, r in recs.items() if r.outcome is not None},
        )

    # -- the record ------------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "kind": "aioedge.rollout",
            "type": self.type,
            "instance_ids": list(self.plan.instance_ids),
            "waves": list(self.plan.waves),
            "aborted": self.aborted,
            "abort_reported": self.abort_reported,
            "final_reported": self.final_reported,
            "instances": {i: r.to_dict() for i, r in self.records.items() if r.intent or r.outcome},
        }

    def restore(self, record: Mapping[str, Any]) -> None:
        """Continue from a stored record (ValidationError if it is another rollout's)."""
        if record.get("kind") != "aioedge.rollout" or record.get("version") != RECORD_VERSION:
            raise ValidationError(
                "the store does not hold a rollout record this version can read",
                param="store",
                rule="format",
            )
        if (
            list(record.get("instance_ids", [])) != list(self.plan.instance_ids)
            or record.get("type") != self.type
        ):
            raise ValidationError(
                "the store holds another rollout (other instances or type); use a new store",
                param="store",
                rule="dependency",
            )
        waves = tuple(int(w) for w in record.get("waves", ()))
        if waves:  # the waves it started with stay the waves (a resume with other --waves)
            self.plan = RolloutPlan(instance_ids=self.plan.instance_ids, waves=waves)
        self.aborted = bool(record.get("aborted", False))
        self.abort_reported = bool(record.get("abort_reported", False))
        self.final_reported = bool(record.get("final_reported", False))
        for iid, raw in dict(record.get("instances", {})).items():
            if iid in self.records and isinstance(raw, Mapping):
                self.records[iid] = InstanceRecord.from_dict(raw)
