"""Properties of the pure diff: replaying events rebuilds states; chains are consistent."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge.watch import DeploymentEvent, DeploymentState, LogEntry, apply, diff
from aioedge.watch._state import SnapshotState, TaskState

STAGES = [0, 8, 16, 24, 32]
STATUSES = [0, 1, 2, 3]
TASK_IDS = ["t1", "t2", "t3"]
SNAP_IDS = ["s1", "s2", "s3"]

log_entries = st.builds(
    LogEntry,
    resource_id=st.just("r"),
    code=st.sampled_from(["0", "1"]),
    stage=st.one_of(st.none(), st.sampled_from(STAGES)),
    level=st.sampled_from(["INFO", "ERROR"]),
    message=st.sampled_from(["ok", "init success", "failed"]),
    resource_type=st.just("DRIVER"),
    timestamp=st.one_of(st.none(), st.integers(0, 50)),
)


@st.composite
def histories(draw: st.DrawFn) -> list[DeploymentState]:
    """A few successive answers about one deployment: anything may move (even backwards),
    objects may appear and vanish; a snapshot's Log only grows (it is append-only)."""
    n = draw(st.integers(1, 5))
    logs: dict[tuple[str, str], list[LogEntry]] = {}
    states = []
    for i in range(n):
        tasks = []
        for tid in draw(st.lists(st.sampled_from(TASK_IDS), unique=True, max_size=3)):
            snaps = []
            for sid in draw(st.lists(st.sampled_from(SNAP_IDS), unique=True, max_size=3)):
                log = logs.setdefault((tid, sid), [])
                log.extend(draw(st.lists(log_entries, max_size=3)))
                snaps.append(
                    SnapshotState(
                        snapshot_id=sid,
                        resource_id=f"res-{tid}-{sid}",
                        resource_name=f"name-{sid}",
                        resource_type="driver",
                        operate_type=0,
                        stage=draw(st.one_of(st.none(), st.sampled_from(STAGES))),
                        status=draw(st.one_of(st.none(), st.sampled_from(STATUSES))),
                        log=tuple(sorted(log, key=LogEntry.sort_key)),
                        modified_ms=draw(st.one_of(st.none(), st.integers(0, 60))),
                    )
                )
            tasks.append(
                TaskState(
                    task_id=tid,
                    gateway_id=f"gw-{tid}",
                    stage=draw(st.one_of(st.none(), st.sampled_from(STAGES))),
                    status=draw(st.one_of(st.none(), st.sampled_from(STATUSES))),
                    snapshots=tuple(snaps),
                )
            )
        states.append(
            DeploymentState(
                deployment_id="dep",
                instance_id="inst",
                status=draw(st.one_of(st.none(), st.sampled_from(STATUSES))),
                tasks=tuple(tasks),
                observed_at=float(100 + i),
            )
        )
    return states


def progress(stage: int | None, status: int | None) -> tuple[int, int]:
    return (-1 if stage is None else stage, -1 if status is None else min(status, 2))


def replay(states: list[DeploymentState]) -> list[DeploymentEvent]:
    events = diff(None, states[0])
    for before, after in itertools.pairwise(states):
        events.extend(diff(before, after))
    return events


@settings(max_examples=150, deadline=None)
@given(histories())
def test_replaying_the_events_over_the_first_state_rebuilds_the_last(
    states: list[DeploymentState],
) -> None:
    first, last = states[0], states[-1]
    later: list[DeploymentEvent] = []
    for before, after in itertools.pairwise(states):
        step = diff(before, after)
        assert apply(before, step) == after
        later.extend(step)
    assert apply(first, later) == last
    assert apply(None, replay(states)) == last


@settings(max_examples=150, deadline=None)
@given(histories())
def test_each_move_starts_where_the_previous_one_of_that_object_ended(
    states: list[DeploymentState],
) -> None:
    where: dict[tuple[str, str | None, str | None], tuple[int | None, int | None]] = {}
    finals = 0
    for event in replay(states):
        if event.kind == "final":
            finals += 1
            assert event.outcome in ("succeeded", "failed")
        if not event.is_transition:
            continue
        key = (event.kind, event.task_id, event.snapshot_id)
        if event.change == "appeared":
            assert key not in where
        else:
            assert where[key] == (event.previous_stage, event.previous_status)
        if event.change == "removed":
            del where[key]
        else:
            where[key] = (event.stage, event.status)
        if event.change == "updated":
            assert (event.previous_stage, event.previous_status) != (event.stage, event.status)
    # One final event per move into Status 2/3.
    statuses = [s.status for s in states]
    entered = sum(
        1
        for i, s in enumerate(statuses)
        if s in (2, 3) and (i == 0 or statuses[i - 1] not in (2, 3))
    )
    assert finals == entered


@settings(max_examples=100, deadline=None)
@given(histories())
def test_every_event_serialises_and_reads_back(states: list[DeploymentState]) -> None:
    for event in replay(states):
        data = event.to_dict()
        assert DeploymentEvent.from_dict(json.loads(json.dumps(data))) == event
        assert "\n" not in str(event)


@settings(max_examples=100, deadline=None)
@given(histories())
def test_inferred_moves_only_go_forward_and_never_replace_the_observed_one(
    states: list[DeploymentState],
) -> None:
    for before, after in itertools.pairwise(states):
        step = diff(before, after)
        for t, s in after.snapshots():
            own = [e for e in step if e.kind == "snapshot" and e.snapshot_id == s.snapshot_id]
            own = [e for e in own if e.task_id == t.task_id]
            if own:
                # The last move of an object is the observed state, never an inferred one.
                assert (own[-1].stage, own[-1].status) == (s.stage, s.status)
                assert not own[-1].inferred
            for e in own:
                if e.inferred and e.change == "updated":
                    assert progress(e.stage, e.status) > progress(
                        e.previous_stage, e.previous_status
                    )
