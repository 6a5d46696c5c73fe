"""The pure deployment core: parsing answers, diff, apply, events and their rendering."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from aioedge._catalog import get_operation
from aioedge.watch import (
    DeploymentEvent,
    DeploymentState,
    LogEntry,
    apply,
    carry_logs,
    diff,
    events_html,
    render_text,
)
from aioedge.watch._render import progress_bar, render_html
from aioedge.watch._state import implied_state, parse_log

SAMPLE: dict[str, Any] = copy.deepcopy(
    dict(get_operation("GetEdgeInstanceDeployment").sample_response)
)
SNAP_ID = "ab576e84a43043d7840cbcebf4a5****"
TASK_ID = "49ea651529014bf8b5645d5f9062****"
DEP_ID = "9261e308a9504fde9b4cf8462b0b****"


def entry(
    stage: int, ts: int, *, level: str = "INFO", message: str | None = None
) -> dict[str, Any]:
    return {
        "resourceId": "r1",
        "code": "0" if level == "INFO" else "1",
        "stage": stage,
        "level": level,
        "message": message or f"stage {stage} success",
        "resourceType": "DRIVER",
        "timestamp": ts,
    }


def snapshot(sid: str, stage: int, status: int, log: Any = (), **extra: Any) -> dict[str, Any]:
    return {
        "SnapshotId": sid,
        "ResourceId": f"res-{sid}",
        "ResourceName": f"name-{sid}",
        "ResourceType": "driver",
        "OperateType": 0,
        "Stage": stage,
        "Status": status,
        "Log": log if isinstance(log, str) else json.dumps(list(log)),
        **extra,
    }


def answer(status: int, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Data": {"DeploymentId": "dep1", "Status": status, "Type": "deploy", "TaskList": tasks}}


def task(tid: str, stage: int, status: int, snaps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "TaskId": tid,
        "GatewayId": f"gw-{tid}",
        "Stage": stage,
        "Status": status,
        "ResourceSnapshotList": snaps,
    }


def state(body: dict[str, Any], at: float = 1000.0) -> DeploymentState:
    return DeploymentState.from_response(body, instance_id="inst1", observed_at=at)


def moves(events: list[DeploymentEvent], kind: str = "snapshot") -> list[tuple[Any, ...]]:
    return [(e.stage, e.status, e.inferred) for e in events if e.kind == kind]


# --------------------------------------------------------------------------- the sample


def test_sample_response_parses_into_the_documented_tree() -> None:
    s = state(SAMPLE)
    assert s.deployment_id == DEP_ID and s.status == 2 and s.is_final
    assert s.outcome == "succeeded" and s.type == "deploy"
    (t,) = s.tasks
    assert (t.task_id, t.gateway_id, t.stage, t.status) == (
        TASK_ID,
        "jQWF3MVgQjMzcwsY****000101",
        32,
        2,
    )
    (snap,) = t.snapshots
    assert (snap.snapshot_id, snap.resource_name, snap.stage, snap.status) == (
        SNAP_ID,
        "device_config",
        32,
        2,
    )
    assert [e.stage for e in snap.log] == [0, 8, 16, 32]
    assert [e.message for e in snap.log][-1] == "download success"
    assert snap.log[0].timestamp == 1561543949858 and snap.log_problem is None


def test_sample_first_sight_replays_the_history_from_the_log() -> None:
    events = diff(None, state(SAMPLE))
    kinds = [e.kind for e in events]
    assert kinds[0] == "deployment" and kinds[1] == "task" and kinds[-1] == "final"
    assert moves(events) == [
        (0, 0, True),
        (0, 1, True),
        (8, 1, True),
        (16, 1, True),
        (32, 2, False),
    ]
    logs = [e for e in events if e.kind == "log"]
    assert [e.message for e in logs] == [
        "init success",
        "assembly success",
        "package success",
        "download success",
    ]
    # Inferred moves are dated by their log entries, in time order.
    inferred_times = [e.time or 0.0 for e in events if e.kind == "snapshot" and e.inferred]
    assert inferred_times == sorted(inferred_times) and inferred_times[0] > 0
    assert inferred_times[-1] == pytest.approx(1561543952.591)
    final = events[-1]
    assert final.outcome == "succeeded" and final.deployment_id == DEP_ID
    assert apply(None, events) == state(SAMPLE)


def test_every_event_of_the_sample_serialises_and_prints_on_one_line() -> None:
    for event in diff(None, state(SAMPLE)):
        data = event.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert DeploymentEvent.from_dict(data) == event
        for key in ("kind", "deployment_id", "task_id", "snapshot_id", "stage", "status"):
            assert key in data
        assert {"previous_stage", "previous_status", "time", "inferred"} <= set(data)
        text = str(event)
        where = event.snapshot_id or event.task_id or event.deployment_id
        assert "\n" not in text and where in text


BREAKERS = "\n\r\x0b\x0c\x1c\x85\u2028\u2029\x1b\x00"


def one_line(text: str) -> bool:
    """One line, and nothing that moves a terminal's cursor or starts an escape sequence."""
    return len(text.splitlines()) == 1 and not any(ch in text for ch in BREAKERS)


def test_server_strings_with_line_breaks_still_print_on_one_line() -> None:
    odd = "a\nb\r\u2028c\x1b[2Jd\x85"
    body = answer(
        1,
        [
            {
                **task("t\n1", 8, 1, []),
                "GatewayId": f"gw{odd}",
                "ResourceSnapshotList": [
                    snapshot(
                        f"s{odd}",
                        8,
                        1,
                        [
                            {**entry(0, 1, level="ERROR"), "code": f"E{odd}", "message": odd},
                            {**entry(8, 2), "level": f"IN{odd}FO"},
                        ],
                        ResourceName=f"drv{odd}",
                        ResourceType=f"driver{odd}",
                    ),
                    snapshot("s2", 8, 1, ResourceName=None, ResourceId=f"rid{odd}"),
                ],
            }
        ],
    )
    body["Data"]["DeploymentId"] = f"dep{odd}"
    body["Data"]["Type"] = f"deploy{odd}"
    events = diff(None, state(body))
    events += [
        DeploymentEvent(
            kind="poll_error", deployment_id=f"d{odd}", error=f"Bad{odd}Code", message=odd
        ),
        DeploymentEvent(kind="warning", deployment_id="d", snapshot_id=f"s{odd}", message=odd),
        DeploymentEvent(kind="final", deployment_id="d", outcome="error", message=odd),
    ]
    kinds = {e.kind for e in events}
    assert {"deployment", "task", "snapshot", "log", "poll_error", "warning", "final"} <= kinds
    for event in events:
        assert one_line(str(event)), repr(str(event))
    # Escaped, not dropped: the names can still be told apart and read.
    snap = next(e for e in events if e.kind == "snapshot" and e.resource_name)
    assert "drv\\nb" not in str(snap) and "drva\\nb\\r\\u2028c\\x1b[2Jd\\x85" in str(snap)
    poll_error = next(e for e in events if e.kind == "poll_error")
    assert "Bada\\nb" in str(poll_error)
    # The terminal tree: one row per deployment, task and snapshot, whatever the names hold.
    tree = render_text(state(body), width=200)
    rows = tree.split("\n")
    assert len(rows) == 1 + 1 + 2 and all(one_line(row) for row in rows), tree
    assert "gwa\\nb" in tree and "rida\\nb" in tree
    assert all(one_line(row) for row in render_text(state(body), width=60, ascii=True).split("\n"))


@pytest.mark.parametrize(
    ("when", "shown"),
    [
        (10**20 / 1000.0, "1e+17s"),  # a timestamp of 10**20 ms
        (1e300, "1e+300s"),
        (-1e20, "-1e+20s"),
        (10**30, "1000000000000000000000000000000s"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        (1561543949.858, "10:12:29.858"),
        (-0.5, "23:59:59.500"),
    ],
)
def test_an_event_prints_on_one_line_whatever_its_time(when: float, shown: str) -> None:
    kinds: list[Any] = ["deployment", "snapshot", "log", "warning", "poll_error", "final"]
    for kind in kinds:
        text = str(DeploymentEvent(kind=kind, deployment_id="d", time=when, status=1))
        assert one_line(text) and text.split(" ", 1)[0] == shown, text
    # The notebook table shows times the same way.
    html = events_html([DeploymentEvent(kind="final", deployment_id="d", time=when)])
    assert f"<td>{shown}</td>" in html


def test_a_log_entry_beyond_the_calendar_still_prints() -> None:
    entry = LogEntry(stage=8, level="INFO", message="ok", timestamp=10**20)
    event = DeploymentEvent(
        kind="log", deployment_id="d", snapshot_id="s1", log=entry, time=entry.time
    )
    assert str(event) == "1e+17s log s1 [assembling] INFO: ok"


def test_events_are_frozen() -> None:
    event = diff(None, state(SAMPLE))[0]
    with pytest.raises(AttributeError):
        event.status = 3  # type: ignore[misc]


def test_state_round_trips_through_json() -> None:
    s = state(SAMPLE)
    again = DeploymentState.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    assert again.to_dict() == s.to_dict()


# --------------------------------------------------------------------------- transitions


def test_no_change_no_event() -> None:
    body = answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, [entry(0, 1), entry(8, 2)])])])
    assert diff(state(body), state(body, at=2000.0)) == []


def test_observed_moves_carry_previous_values() -> None:
    a = state(answer(0, [task("t1", 0, 0, [snapshot("s1", 0, 0)])]))
    b = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 0, 1, [entry(0, 5)])])]))
    events = diff(a, b)
    dep = next(e for e in events if e.kind == "deployment")
    assert (dep.previous_status, dep.status, dep.change) == (0, 1, "updated")
    t = next(e for e in events if e.kind == "task")
    assert (t.previous_stage, t.previous_status, t.stage, t.status) == (0, 0, 0, 1)
    s = next(e for e in events if e.kind == "snapshot")
    assert (s.previous_stage, s.previous_status, s.stage, s.status, s.inferred) == (
        0,
        0,
        0,
        1,
        False,
    )
    # The deployment starts before its parts, the move before the log line reporting it.
    kinds = [e.kind for e in events]
    assert kinds == ["deployment", "task", "snapshot", "log"]


def test_stages_passed_between_polls_are_recovered_in_order() -> None:
    log1 = [entry(0, 100), entry(8, 200)]
    log2 = [*log1, entry(16, 300), entry(24, 400), entry(32, 500)]
    a = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, log1)])]))
    b = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 32, 2, log2)])]))
    events = diff(a, b)
    assert moves(events) == [(16, 1, True), (24, 1, True), (32, 2, False)]
    chain = [(e.previous_stage, e.stage) for e in events if e.kind == "snapshot"]
    assert chain == [(8, 16), (16, 24), (24, 32)]
    assert [e.time for e in events if e.kind == "log"] == [0.3, 0.4, 0.5]
    assert apply(a, events) == b


def test_a_failure_between_polls_is_recovered() -> None:
    log1 = [entry(0, 100)]
    log2 = [*log1, entry(8, 200), entry(16, 300, level="ERROR", message="package failed")]
    a = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 0, 1, log1)])]))
    b = state(answer(3, [task("t1", 16, 3, [snapshot("s1", 16, 3, log2)])]))
    events = diff(a, b)
    assert moves(events) == [(8, 1, True), (16, 3, False)]
    kinds = [e.kind for e in events]
    # A subtask and a deployment that end come after their snapshots.
    assert kinds.index("task") > max(i for i, k in enumerate(kinds) if k == "snapshot")
    assert kinds[-2:] == ["deployment", "final"]
    assert events[-1].outcome == "failed"
    fail_log = [e for e in events if e.kind == "log"][-1]
    assert fail_log.log is not None and fail_log.log.failed
    assert "ERROR" in str(fail_log) and "package failed" in str(fail_log)


def test_status_change_at_the_same_stage_is_recovered_from_the_log() -> None:
    # Seen not started, then already at stage 8: the start at stage 0 is in the Log.
    a = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 0, 0)])]))
    b = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 8, 1, [entry(0, 10), entry(8, 20)])])]))
    assert moves(diff(a, b)) == [(0, 1, True), (8, 1, False)]


def test_snapshot_appearing_late_is_announced_before_its_logs() -> None:
    a = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 0, 1, [entry(0, 1)])])]))
    b = state(
        answer(
            1,
            [
                task(
                    "t1",
                    0,
                    1,
                    [
                        snapshot("s1", 0, 1, [entry(0, 1)]),
                        snapshot("s2", 0, 0),
                        snapshot("s3", 0, 1, [entry(0, 7)]),
                    ],
                )
            ],
        )
    )
    events = diff(a, b)
    s2 = [e for e in events if e.snapshot_id == "s2"]
    assert [(e.kind, e.change, e.stage, e.status, e.inferred) for e in s2] == [
        ("snapshot", "appeared", 0, 0, False)
    ]
    s3 = [(e.kind, e.stage, e.status, e.inferred) for e in events if e.snapshot_id == "s3"]
    # Its Log shows it started: the initial state first (inferred), then the observed start.
    assert s3 == [("snapshot", 0, 0, True), ("snapshot", 0, 1, False), ("log", 0, None, False)]
    assert s2[0].resource_name == "name-s2" and s2[0].gateway_id == "gw-t1"
    assert apply(a, events) == b


def test_subtask_appearing_late_comes_before_its_snapshots() -> None:
    a = state(answer(1, [task("t1", 0, 1, [])]))
    b = state(answer(1, [task("t1", 0, 1, []), task("t2", 0, 0, [snapshot("s9", 0, 0)])]))
    events = diff(a, b)
    assert [(e.kind, e.task_id, e.change) for e in events] == [
        ("task", "t2", "appeared"),
        ("snapshot", "t2", "appeared"),
    ]
    assert apply(a, events) == b


def test_stage_going_backwards_is_reported_not_fatal() -> None:
    a = state(answer(1, [task("t1", 16, 1, [snapshot("s1", 16, 1)])]))
    b = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1)])]))
    events = diff(a, b)
    assert [(e.kind, e.previous_stage, e.stage, e.backwards) for e in events] == [
        ("task", 16, 8, True),
        ("snapshot", 16, 8, True),
    ]
    assert "backwards" in str(events[1])
    assert apply(a, events) == b


def test_vanished_objects_are_reported_and_replayed() -> None:
    a = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 0, 1), snapshot("s2", 0, 1)])]))
    b = state(answer(1, [task("t1", 0, 1, [snapshot("s1", 0, 1)])]))
    events = diff(a, b)
    assert [(e.kind, e.snapshot_id, e.change, e.previous_status) for e in events] == [
        ("snapshot", "s2", "removed", 1)
    ]
    assert "no longer listed" in str(events[0])
    assert apply(a, events) == b
    c = state(answer(1, []))
    assert [(e.kind, e.change) for e in diff(b, c)] == [
        ("snapshot", "removed"),
        ("task", "removed"),
    ]


def test_apply_builds_objects_from_their_events_and_refuses_unknown_ones() -> None:
    def ev(kind: Any, **fields: Any) -> DeploymentEvent:
        return DeploymentEvent(kind=kind, deployment_id="d", **fields)

    built = apply(
        None,
        [
            ev("deployment", instance_id="i", status=1, change="appeared"),
            ev("task", task_id="t", gateway_id="g", stage=0, status=0, change="appeared"),
            ev(
                "snapshot",
                task_id="t",
                snapshot_id="s",
                gateway_id="g",
                resource_id="r",
                resource_name="drv",
                resource_type="DRIVER",
                operate_type=0,
                stage=0,
                status=0,
                change="appeared",
            ),
            ev("snapshot", task_id="t", snapshot_id="s", stage=8, status=1, change="updated"),
            ev("log", task_id="t", snapshot_id="s", log=LogEntry(stage=8, timestamp=5)),
            ev("task", task_id="t", stage=8, status=1, change="updated"),
            ev("task", task_id="gone", stage=0, status=0, change="appeared"),
            ev("task", task_id="gone", change="removed"),
        ],
    )
    assert (built.deployment_id, built.instance_id, built.status) == ("d", "i", 1)
    [t] = built.tasks
    assert (t.task_id, t.gateway_id, t.stage, t.status) == ("t", "g", 8, 1)
    [s] = t.snapshots
    assert (s.snapshot_id, s.resource_id, s.resource_name, s.resource_type) == (
        "s",
        "r",
        "drv",
        "DRIVER",
    )
    assert (s.operate_type, s.stage, s.status, s.log) == (
        0,
        8,
        1,
        (LogEntry(stage=8, timestamp=5),),
    )
    assert s.log_problem is None and s.created_ms is None and t.created_ms is None
    for bad, text in [
        (ev("task", task_id="x", stage=8, status=1, change="updated"), "unknown task x"),
        (
            ev("snapshot", task_id="t", snapshot_id="x", stage=8, status=2, change="updated"),
            "unknown snapshot x",
        ),
        (ev("log", task_id="t", snapshot_id="x", log=LogEntry()), "unknown snapshot x"),
        (ev("snapshot", task_id="x", snapshot_id="s", change="appeared"), "unknown task x"),
    ]:
        with pytest.raises(ValueError, match=text):
            apply(built, [bad])
    with pytest.raises(ValueError, match="before the deployment appeared"):
        apply(None, [ev("task", task_id="t", change="appeared")])


def test_final_is_emitted_once() -> None:
    running = state(answer(1, [task("t1", 8, 1, [])]))
    done = state(answer(2, [task("t1", 32, 2, [])]))
    first = diff(running, done)
    assert [e.kind for e in first][-2:] == ["deployment", "final"]
    assert diff(done, done) == []


def test_diff_refuses_two_different_deployments() -> None:
    a = state(answer(1, []))
    other = DeploymentState(deployment_id="other", status=1)
    with pytest.raises(ValueError, match="cannot diff"):
        diff(other, a)


def test_implied_state_follows_the_errata() -> None:
    assert implied_state(LogEntry(stage=8, level="INFO", code="0")) == (8, 1)
    assert implied_state(LogEntry(stage=32, level="INFO", code="0")) == (32, 2)
    assert implied_state(LogEntry(stage=16, level="ERROR", code="1")) == (16, 3)
    assert implied_state(LogEntry(stage=None, level="INFO")) is None


# --------------------------------------------------------------------------- logs


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ('[{\\"stage\\":0}]]', "not valid JSON"),  # the doc's own broken escaping
        ('{"stage": 0}', "not a list"),
        ('[1, {"stage": 8, "timestamp": 5}]', "entry 0 is not an object"),
        ('[{"stage": "eight"}]', "entry 0"),
        # Numbers JSON reads as float infinities or NaN, and integers beyond 64 bits.
        ('[{"stage": 1e999, "timestamp": 5}]', "entry 0: stage inf is not a finite number"),
        ('[{"stage": 8, "timestamp": Infinity}]', "timestamp inf is not a finite number"),
        ('[{"stage": 8, "timestamp": -Infinity}]', "timestamp -inf is not a finite number"),
        ('[{"stage": NaN, "timestamp": 5}]', "entry 0: stage nan is not a finite number"),
        ('[{"stage": 8, "timestamp": 1' + "0" * 400 + "}]", "timestamp 1000"),
        ('[{"stage": 1e300}, {"stage": 8, "timestamp": 5}]', "stage 1e+300 is out of range"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_log_is_a_warning_not_a_crash(raw: str, problem: str) -> None:
    entries, found = parse_log(raw)
    assert found is not None and problem in found
    s = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, raw)])]))
    events = diff(None, s)
    warnings = [e for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and warnings[0].snapshot_id == "s1"
    assert "malformed Log" in str(warnings[0])
    assert len([e for e in events if e.kind == "log"]) == len(entries)
    # The same problem is not repeated on every poll.
    assert [e.kind for e in diff(s, s)] == []


@pytest.mark.parametrize("raw", [None, "", "[]", "null"])
def test_empty_log_is_fine(raw: Any) -> None:
    assert parse_log(raw) == ((), None)
    body = answer(1, [task("t1", 0, 0, [snapshot("s1", 0, 0)])])
    body["Data"]["TaskList"][0]["ResourceSnapshotList"][0]["Log"] = raw
    assert [e.kind for e in diff(None, state(body))] == ["deployment", "task", "snapshot"]


def test_log_entries_are_emitted_once_even_across_a_broken_answer() -> None:
    log = [entry(0, 1), entry(8, 2)]
    good = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, log)])]))
    broken = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, "[{oops")])]))
    later = state(answer(1, [task("t1", 16, 1, [snapshot("s1", 16, 1, [*log, entry(16, 3)])])]))
    first = diff(None, good)
    assert len([e for e in first if e.kind == "log"]) == 2
    middle = diff(good, broken)
    assert [e.kind for e in middle] == ["warning"]
    kept = carry_logs(good, broken)  # what a watcher remembers after the broken answer
    last = diff(kept, later)
    assert [e.log.stage for e in last if e.kind == "log" and e.log] == [16]


@pytest.mark.parametrize("gap", ["", "[]", "null", None, "absent", "shorter"])
def test_a_log_missing_for_a_while_tells_each_entry_once(gap: str | None) -> None:
    log = [entry(0, 1), entry(8, 2)]
    middle = snapshot("s1", 8, 1)
    if gap == "absent":
        del middle["Log"]
    else:
        middle["Log"] = json.dumps(log[:1]) if gap == "shorter" else gap
    answers = [
        answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, log)])]),
        answer(1, [task("t1", 8, 1, [middle])]),
        answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, "")])]),  # still missing
        answer(1, [task("t1", 16, 1, [snapshot("s1", 16, 1, [*log, entry(16, 3)])])]),
        answer(2, [task("t1", 32, 2, [snapshot("s1", 32, 2, [*log, entry(16, 3), entry(32, 4)])])]),
    ]
    events: list[DeploymentEvent] = []
    kept: DeploymentState | None = None  # what a watcher remembers between two answers
    for i, body in enumerate(answers):
        current = state(body, at=1000.0 + i)
        events += diff(kept, current)
        kept = carry_logs(kept, current)
    told = [e.log.stage for e in events if e.kind == "log" and e.log]
    assert told == [0, 8, 16, 32]  # each entry once, in order
    # A Log that got shorter is told once, not again while it stays that short.
    lost = ["1 earlier entry"] if gap == "shorter" else []
    assert [e.message for e in events if e.kind == "warning"] == [
        f"Log no longer lists {n} (kept: a Log only grows)" for n in [*lost, "2 earlier entries"]
    ]
    assert kept is not None and [e.stage for _t, s in kept.snapshots() for e in s.log] == told
    assert kept.tasks[0].snapshots[0].log_problem is None  # it reads well again
    # The events replay into what the watcher remembers.
    assert apply(None, events) == kept


def test_a_duplicated_log_entry_counts_twice() -> None:
    one = [entry(8, 2)]
    a = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, one)])]))
    b = state(answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, one * 2)])]))
    assert [e.kind for e in diff(a, b)] == ["log"]
    assert apply(a, diff(a, b)) == b


def test_lenient_types_and_spellings() -> None:
    body = answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1)])])
    data = body["Data"]
    data["Status"] = "1"
    data["GmtCreateTimeStamp"] = 1581912859713  # ERRATA: also spelled with a capital S
    data["TaskList"][0]["Stage"] = "8"
    data["TaskList"].append("garbage")
    s = state(body)
    assert s.status == 1 and s.tasks[0].stage == 8 and s.created_ms == 1581912859713
    assert len(s.tasks) == 1


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 10**30, 1e300, "1e999", "NaN"])
def test_stage_and_status_that_are_no_integer_are_unknown(bad: Any) -> None:
    body = answer(1, [task("t1", 8, 1, [snapshot("s1", 8, 1, [entry(0, 1)])])])
    data = body["Data"]
    data["GmtModifiedTimestamp"] = bad
    data["TaskList"][0].update(Stage=bad, GmtCreateTimestamp=bad)
    data["TaskList"][0]["ResourceSnapshotList"][0].update(Stage=bad, Status=bad, OperateType=bad)
    s = state(body)
    (t,) = s.tasks
    (snap,) = t.snapshots
    assert (t.stage, t.status, snap.stage, snap.status, snap.operate_type) == (
        None,
        1,
        None,
        None,
        None,
    )
    assert (s.modified_ms, t.created_ms) == (None, None)
    # Unknown values are shown as such; nothing on the way raises.
    events = diff(None, s)
    assert [e.kind for e in events] == ["deployment", "task", "snapshot", "log"]
    assert all(one_line(str(e)) for e in events)
    assert "-" in render_text(s) and "<progress" in render_html(s)
    assert apply(None, events) == s


def test_answer_without_data_is_rejected() -> None:
    with pytest.raises(ValueError, match="Data"):
        DeploymentState.from_response({"Data": "nope"})
    with pytest.raises(ValueError, match="DeploymentId"):
        DeploymentState.from_response({"Data": {"Status": 1}})
    s = DeploymentState.from_response({"Data": {"Status": 1}}, deployment_id="d")
    assert s.deployment_id == "d"


# --------------------------------------------------------------------------- display


def test_render_text_draws_a_tree_with_progress_bars() -> None:
    body = answer(
        1,
        [
            task(
                "t1",
                8,
                1,
                [snapshot("s1", 32, 2), snapshot("s2", 8, 1), snapshot("s3", 16, 3)],
            ),
            task("t2", 0, 0, [snapshot("s4", 0, 0)]),
        ],
    )
    text = render_text(state(body), width=100)
    lines = text.splitlines()
    assert len(lines) == 1 + 2 + 4
    assert all(len(line) <= 100 for line in lines)
    assert "deployment dep1" in lines[0] and "1/4 snapshots done" in lines[0]
    assert "1 failed" in lines[0]
    assert lines[1].startswith("├─ task t1") and lines[-2].startswith("└─ task t2")
    assert progress_bar(32, 12) in lines[2] and "complete" in lines[2]
    assert progress_bar(8, 12) in lines[3] and "assembling" in lines[3]
    assert "✘ root cause" in lines[4]  # the only failure: the root cause
    ascii_art = render_text(state(body), width=100, ascii=True)
    assert "[##" in ascii_art and "█" not in ascii_art and "└" not in ascii_art
    narrow = render_text(state(body), width=50)
    assert all(len(line) <= 50 for line in narrow.splitlines())
    assert "[" not in narrow and "assembling" in narrow  # the bar goes first


def test_printing_a_state_draws_its_tree(capsys: pytest.CaptureFixture[str]) -> None:
    s = state(SAMPLE)
    print(s)
    shown = capsys.readouterr().out
    assert shown == s.render() + "\n" == render_text(s, width=80) + "\n"
    rows = shown.splitlines()
    # Ids are cut to 8 characters on a terminal (to_dict and JSON have them whole).
    assert len(rows) == 3 and rows[0].startswith("✔ deployment " + DEP_ID[:8] + ":")
    assert rows[1].startswith("└─ task " + TASK_ID[:8] + " ") and "complete" in rows[2]
    assert DEP_ID in render_text(s, full_ids=True)
    assert f"{s}" == str(s) and "DeploymentState(" not in str(s)
    # repr is one line (to_dict() has every field): not the tree, not 25 KB of nested fields.
    assert repr(s) == f"<DeploymentState {DEP_ID} succeeded: 1 task, 1/1 snapshots done>"
    assert str(DeploymentState(deployment_id="d")).startswith("? deployment d: -")


def test_progress_bar_fills_with_the_stage() -> None:
    assert progress_bar(0, 10) == "[" + "░" * 8 + "]"
    assert progress_bar(32, 10) == "[" + "█" * 8 + "]"
    assert progress_bar(16, 10, ascii=True) == "[####----]"


def test_repr_html_is_an_escaped_table() -> None:
    body = answer(1, [task("t1", 8, 1, [snapshot("<s1>", 8, 1)])])
    html = state(body)._repr_html_()
    assert html.startswith("<table") and html.endswith("</table>")
    assert "&lt;s1&gt;" in html and "<s1>" not in html
    assert "<progress max='32' value='8'>" in html
    assert render_html(state(SAMPLE)).count("<tr>") == 1 + 2  # header, task, snapshot
