"""Watcher loop corners an honest server cannot produce: a malformed Log, stages going back.

The client here is mostly a scripted stand-in for ``EdgeClient.call`` (answers in order, no
I/O), or a real client reading a scripted server's answers; everything else about the loop
is tested against the emulator in test_watch_emulator.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aioedge import EdgeClient
from aioedge.watch import render_text, watch_deployment

from .support import TEST_CREDS, ScriptServer, ok_body


class Scripted:
    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((action, dict(params)))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def answer(status: int, stage: int, snap_status: int, log: str) -> dict[str, Any]:
    snap = {"SnapshotId": "s1", "ResourceName": "cfg", "Stage": stage, "Status": snap_status}
    snap["Log"] = log
    task = {"TaskId": "t1", "Stage": stage, "Status": snap_status, "ResourceSnapshotList": [snap]}
    return {"Data": {"DeploymentId": "d1", "Status": status, "TaskList": [task]}}


def entries(*stages: int) -> str:
    return json.dumps(
        [
            {"stage": s, "level": "INFO", "code": "0", "message": f"{s} ok", "timestamp": s}
            for s in stages
        ]
    )


async def no_sleep(_seconds: float) -> None:
    return None


async def test_a_malformed_log_warns_once_and_the_watch_goes_on() -> None:
    client = Scripted(
        [
            answer(1, 8, 1, entries(0, 8)),
            answer(1, 16, 1, '[{"stage": 16, "timestamp": 1'),  # truncated JSON
            answer(1, 16, 1, '[{"stage": 16, "timestamp": 1'),
            answer(2, 32, 2, entries(0, 8, 16, 24, 32)),
        ]
    )
    events = [e async for e in watch_deployment(client, "i1", "d1", sleep=no_sleep)]
    kinds = [e.kind for e in events]
    assert kinds.count("warning") == 1 and kinds[-1] == "final"
    # The entries read before the broken answers are not told twice.
    assert [e.log.stage for e in events if e.kind == "log" and e.log] == [0, 8, 16, 24, 32]
    assert all(
        c == ("GetEdgeInstanceDeployment", {"InstanceId": "i1", "DeploymentId": "d1"})
        for c in client.calls
    )


async def test_a_log_briefly_empty_does_not_tell_its_entries_again() -> None:
    client = Scripted(
        [
            answer(1, 8, 1, entries(0, 8)),
            answer(1, 8, 1, ""),
            answer(1, 8, 1, "null"),
            answer(1, 16, 1, entries(0, 8, 16)),
            answer(1, 16, 1, "[]"),
            answer(2, 32, 2, entries(0, 8, 16, 24, 32)),
        ]
    )
    watcher = watch_deployment(client, "i1", "d1", sleep=no_sleep)
    events = [e async for e in watcher]
    assert [e.log.stage for e in events if e.kind == "log" and e.log] == [0, 8, 16, 24, 32]
    warnings = [str(e).split(": ", 1)[1] for e in events if e.kind == "warning"]
    assert warnings == [
        "Log no longer lists 2 earlier entries (kept: a Log only grows)",
        "Log no longer lists 3 earlier entries (kept: a Log only grows)",
    ]
    assert events[-1].outcome == "succeeded" and len(client.calls) == 6
    assert watcher.state is not None
    assert [e.stage for _t, s in watcher.state.snapshots() for e in s.log] == [0, 8, 16, 24, 32]


async def test_an_answer_about_another_deployment_is_a_poll_error_not_a_crash() -> None:
    other = answer(1, 16, 1, entries(0, 8, 16))
    other["Data"]["DeploymentId"] = "d2"
    client = Scripted(
        [answer(1, 8, 1, entries(0, 8)), other, answer(2, 32, 2, entries(0, 8, 16, 24, 32))]
    )
    events = [e async for e in watch_deployment(client, "i1", "d1", sleep=no_sleep)]
    errors = [e for e in events if e.kind == "poll_error"]
    assert len(errors) == 1 and "d2" in str(errors[0]), [str(e) for e in events]
    assert all(e.deployment_id == "d1" for e in events)
    assert [e.log.stage for e in events if e.kind == "log" and e.log] == [0, 8, 16, 24, 32]
    assert events[-1].outcome == "succeeded" and len(client.calls) == 3


async def test_stage_going_back_is_reported_and_the_watch_goes_on() -> None:
    client = Scripted(
        [
            answer(1, 16, 1, entries(0, 8, 16)),
            answer(1, 8, 1, entries(0, 8, 16)),
            answer(2, 32, 2, entries(0, 8, 16, 24, 32)),
        ]
    )
    watcher = watch_deployment(client, "i1", "d1", sleep=no_sleep)
    events = [e async for e in watcher]
    back = [e for e in events if e.backwards]
    assert {(e.kind, e.previous_stage, e.stage) for e in back} == {
        ("task", 16, 8),
        ("snapshot", 16, 8),
    }
    assert events[-1].outcome == "succeeded"
    assert watcher.state is not None and "complete" in render_text(watcher.state)


async def test_numbers_too_big_for_an_integer_do_not_crash_the_watch(
    script_server: ScriptServer,
) -> None:
    # Over the wire, through the client's own JSON reading: 1e999 and Infinity read as
    # float infinities, NaN as NaN, both in the answer itself and in the Log string.
    def text(body: dict[str, Any], **raw: str) -> str:
        out = json.dumps(ok_body(**body))
        for placeholder, number in raw.items():
            out = out.replace(f'"{placeholder}"', number)
        return out

    broken = answer(1, 8, 1, "")
    snap = broken["Data"]["TaskList"][0]["ResourceSnapshotList"][0]
    snap["Log"] = entries(0, 8)[:-1] + ', {"stage": 1e999, "timestamp": 16}]'
    snap.update(Stage="@big", Status="@nan", GmtModifiedTimestamp="@inf")
    broken["Data"]["TaskList"][0]["Stage"] = "@inf"
    script_server.answers = [
        text(answer(1, 8, 1, entries(0, 8))),
        text(broken, **{"@big": "1e999", "@nan": "NaN", "@inf": "Infinity"}),
        text(answer(2, 32, 2, entries(0, 8, 16, 24, 32))),
    ]
    async with EdgeClient(
        credentials=TEST_CREDS, endpoint=script_server.endpoint, rate_limit=False, retry=None
    ) as client:
        watcher = watch_deployment(client, "i1", "d1", sleep=no_sleep)
        events = [e async for e in watcher]
    assert len(script_server.requests) == 3
    warnings = [e for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and "stage inf is not a finite number" in str(warnings[0])
    assert not [e for e in events if e.kind == "poll_error"]
    # The unreadable Stage/Status read as unknown for one poll, then the watch goes on.
    moves = [(e.stage, e.status) for e in events if e.kind == "snapshot"]
    assert (None, None) in moves and moves[-1] == (32, 2)
    assert [e.log.stage for e in events if e.kind == "log" and e.log] == [0, 8, 16, 24, 32]
    assert events[-1].kind == "final" and events[-1].outcome == "succeeded"
    assert all(len(str(e).splitlines()) == 1 for e in events)
