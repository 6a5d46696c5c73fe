"""Properties of the pure diff: replaying events rebuilds states; chains are consistent."""

from __future__ import annotations

import itertools
import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge.watch import DeploymentEvent, DeploymentState, LogEntry, apply, carry_logs, diff
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
def histories(draw: st.DrawFn, *, flaky_logs: bool = False) -> list[DeploymentState]:
    """A few successive answers about one deployment: anything may move (even backwards),
    objects may appear and vanish; a snapshot's Log only grows (it is append-only).

    ``flaky_logs``: an answer may show only the start of a Log, or none of it (a Log
    briefly missing), while the Log itself still only grows."""
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
                shown = log
                if flaky_logs and draw(st.booleans()):
                    shown = log[: draw(st.integers(0, len(log)))]
                snaps.append(
                    SnapshotState(
                        snapshot_id=sid,
                        resource_id=f"res-{tid}-{sid}",
                        resource_name=f"name-{sid}",
                        resource_type="driver",
                        operate_type=0,
                        stage=draw(st.one_of(st.none(), st.sampled_from(STAGES))),
                        status=draw(st.one_of(st.none(), st.sampled_from(STATUSES))),
                        log=tuple(sorted(shown, key=LogEntry.sort_key)),
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


@settings(max_examples=150, deadline=None)
@given(histories(flaky_logs=True))
def test_a_log_shown_in_part_or_not_at_all_tells_each_entry_once(
    states: list[DeploymentState],
) -> None:
    # What a watcher does: diff against what it remembers, remember carry_logs of that.
    kept: DeploymentState | None = None
    events: list[DeploymentEvent] = []
    for current in states:
        step = diff(kept, current)
        after = carry_logs(kept, current)
        if kept is not None:
            assert apply(kept, step) == after
        events.extend(step)
        kept = after
        # Every entry ever shown (since the snapshot was last listed) is remembered.
        for t, snap in current.snapshots():
            remembered = kept.task(t.task_id)
            assert remembered is not None
            kept_snap = remembered.snapshot(snap.snapshot_id)
            assert kept_snap is not None and not Counter(snap.log) - Counter(kept_snap.log)
    assert kept is not None
    # Replayed from nothing, the log events give each remembered entry exactly once.
    assert apply(None, events) == kept
    lost = [e for e in events if e.kind == "warning"]
    assert all(e.message and "earlier entr" in e.message for e in lost)
