"""The live tree never takes more rows than the terminal has (less one).

A drawing taller than the terminal scrolls, and moving the cursor back up can no longer reach
its first line: every redraw would leave a copy of the tree in the scrollback.  Checked on the
pure ``compose`` (tree, folding, "… N more lines"), on ``LiveDisplay`` writing to a buffer, and
on ``aioedge demo`` under a pseudo-terminal shorter than its tree.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from aioedge._display import to_ascii
from aioedge._live import LiveDisplay, compose, fit
from aioedge.watch import DeploymentEvent, DeploymentState, diff, render_text

from .test_cli import base_env, in_terminal

DEP = "d" * 32


def snap(n: int, status: int) -> dict[str, Any]:
    stage = {0: 0, 1: 8, 2: 32, 3: 16}[status]
    return {
        "SnapshotId": f"snap{n:02d}",
        "ResourceName": f"sensor_{n:02d}",
        "ResourceType": "device_config",
        "Stage": stage,
        "Status": status,
    }


def fleet(statuses: list[list[int]], deployment_status: int = 1) -> DeploymentState:
    """A deployment with one subtask per list, one snapshot per status in it."""
    tasks = [
        {
            "TaskId": f"task{t}".ljust(32, "0"),
            "GatewayId": f"gw{t}",
            "Stage": 8,
            "Status": 1,
            "ResourceSnapshotList": [snap(t * 100 + i, st) for i, st in enumerate(sts)],
        }
        for t, sts in enumerate(statuses)
    ]
    body = {"DeploymentId": DEP, "Status": deployment_status, "Type": "deploy", "TaskList": tasks}
    return DeploymentState.from_response({"Data": body})


def test_a_tree_that_fits_is_drawn_whole() -> None:
    state = fleet([[2, 1, 0], [0, 0]])
    lines = compose(state, ["log 1", "log 2"], width=120, height=40)
    assert lines == [*render_text(state, width=119).splitlines(), "log 1", "log 2"]


def test_a_tall_tree_folds_idle_snapshots_per_task() -> None:
    # 12 done, 2 in progress, 1 failed, 5 waiting on the first gateway; 10 waiting on the other
    state = fleet([[2] * 12 + [1, 1, 3] + [0] * 5, [0] * 10])
    assert len(render_text(state, width=119).splitlines()) == 33  # header, 2 tasks, 30 snapshots
    lines = compose(state, ["log 1", "log 2", "log 3", "log 4"], width=120, height=16)
    assert len(lines) <= 15
    text = "\n".join(lines)
    assert lines[0].startswith("… deployment " + DEP[:8])  # the header still counts everything
    assert "(2 tasks, 12/30 snapshots done, 1 failed)" in lines[0]
    assert "│  ├─ … 12 succeeded, 5 not started" in lines
    assert "   └─ … 10 not started" in lines
    # What is moving or went wrong stays in view, each on its own line.
    for n in (12, 13, 14):
        assert f"sensor_{n} (device_config)" in text, n
    assert "✘ root cause" in text  # the only failure
    assert "sensor_00" not in text and "sensor_100" not in text
    # The latest messages stay (up to a third of the rows).
    assert lines[-4:] == ["log 1", "log 2", "log 3", "log 4"]


def test_what_still_does_not_fit_ends_in_a_count() -> None:
    # 30 subtasks, each busy: nothing to fold.
    state = fleet([[1] for _ in range(30)])
    lines = compose(state, ["log 1"], width=100, height=10)
    assert len(lines) == 9
    assert lines[-1] == "log 1"
    full = len(render_text(state, width=99).splitlines())
    assert lines[-2] == f"… {full - 7} more lines"
    assert lines[:7] == render_text(state, width=99).splitlines()[:7]
    # Tiny terminals: still bounded, the header first.
    for height in (1, 2, 3, 4):
        tiny = compose(state, ["log 1", "log 2"], width=100, height=height)
        assert 1 <= len(tiny) <= max(2, height - 1)
        assert tiny[0].startswith("… deployment")


def test_lines_are_clipped_to_the_terminal_width() -> None:
    state = fleet([[2, 1]])
    lines = compose(state, ["x" * 200], width=40, height=20)
    assert max(len(line) for line in lines) <= 39


def test_live_display_redraws_within_the_height() -> None:
    out = io.StringIO()
    display = LiveDisplay(out, width=100, height=10, min_interval=0)
    previous = None
    for state in (
        fleet([[0] * 8, [0] * 8], 0),
        fleet([[2] * 3 + [1] + [0] * 4, [1] + [0] * 7]),
        fleet([[2] * 8, [2] * 8], 2),
    ):
        for event in diff(previous, state):
            display.update(event)
        previous = state
    display.close()
    text = out.getvalue()
    ups = [int(n) for n in re.findall(r"\x1b\[(\d+)F", text)]
    assert ups and max(ups) <= 9
    for drawing in re.split(r"\x1b\[\d+F", text):
        assert drawing.count("\x1b[2K") <= 9
    final = re.split(r"\x1b\[\d+F", text)[-1]
    assert f"deployment {DEP[:8]}: succeeded (2 tasks, 16/16 snapshots done)" in final
    assert "… 8 succeeded" in final


async def test_demo_under_a_short_terminal_stays_in_place(tmp_path: Path) -> None:
    rows = 16
    code, text = await in_terminal(
        "demo",
        "--devices",
        "15",
        "--speed",
        "50",
        env=base_env(tmp_path),
        columns=100,
        lines=rows,
    )
    assert code == 0, text
    assert "Traceback" not in text
    ups = [int(n) for n in re.findall(r"\x1b\[(\d+)F", text)]
    assert len(ups) >= 2
    assert max(ups) <= rows - 1, ups
    drawings = re.split(r"\x1b\[\d+F", text)[1:]
    assert all(d.count("\x1b[2K") <= rows - 1 for d in drawings)
    final = drawings[-1]
    final = re.sub(r"\x1b\[[0-9;]*m", "", final)  # colour: it is a terminal
    assert re.search(r"deployment [0-9a-f]{8}: succeeded", final)
    assert re.search(r"… \d+ succeeded", final)  # folded: 15 sensors do not fit in 16 rows
    assert re.search(r"rollout succeeded: \d+ API calls, 0 throttled", final)


def test_a_failing_poll_is_shown_whole_with_its_retry_delay() -> None:
    now = [100.0]
    out = io.StringIO()
    display = LiveDisplay(
        out,
        width=60,
        height=30,
        min_interval=0,
        clock=lambda: now[0],
        polls=lambda: (3 + int(now[0] > 106), 101.0 if now[0] <= 106 else 107.0),
    )
    for event in diff(None, fleet([[1, 0]])):
        display.update(event)
    message = (
        "The request has failed due to a temporary failure of the server; the gateway "
        "answered 503 after 10 s (upstream connect error or disconnect/reset before headers)"
    )
    now[0] = 105.0
    display.update(
        DeploymentEvent(
            kind="poll_error",
            deployment_id=DEP,
            error="ServiceUnavailable",
            message=message,
            attempt=2,
            retry_in=4.0,
            time=0.0,
        )
    )
    drawing = re.split(r"\x1b\[\d+F", out.getvalue())[-1].replace("\x1b[2K", "").splitlines()
    assert all(len(line) <= 59 for line in drawing)
    assert "elapsed 5s · last poll 4.0s ago · 3 polls" in drawing
    # Wrapped over several rows, never cut: the error, all of it, and when the next try comes.
    text = " ".join(drawing[drawing.index("elapsed 5s · last poll 4.0s ago · 3 polls") + 1 :])
    assert f"poll error #2 on deployment {DEP}: ServiceUnavailable: {message}" in text
    assert text.endswith("retrying in 4.0s")
    # It stays until a later poll is answered.
    now[0] = 106.0
    display.tick()
    assert "poll error #2" in re.split(r"\x1b\[\d+F", out.getvalue())[-1]
    now[0] = 108.0
    display.tick()
    # (the drawing shrank: its old rows blanked, the cursor back up after them)
    last = [p for p in re.split(r"\x1b\[\d+F", out.getvalue()) if p.strip()][-1]
    assert "poll error" not in last and "last poll 1.0s ago · 4 polls" in last


def test_colour_codes_do_not_count_towards_the_width_and_ascii_replaces_glyphs() -> None:
    red = "\x1b[31m" + "x" * 30 + "\x1b[0m"
    assert fit(red, 10) == "\x1b[31m" + "x" * 10 + "\x1b[0m"
    assert fit("plain text", 5) == "plain"
    state = fleet([[2, 3, 1]])
    lines = compose(state, [], width=80, height=20, colour=True)
    assert any("\x1b[" in line for line in lines)
    assert all(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) <= 79 for line in lines)
    assert to_ascii(render_text(state)).isascii()
    assert to_ascii("a → b … ✔") == "a -> b ... +"


async def test_a_dumb_terminal_gets_plain_lines_and_no_control_codes(tmp_path: Path) -> None:
    # TERM=dumb takes no cursor control: the live tree (which moves the cursor up and clears
    # lines) is not drawn there, as colour is not; the events come as plain lines.
    code, text = await in_terminal(
        "demo",
        "--devices",
        "3",
        "--speed",
        "50",
        env=base_env(tmp_path),
        columns=100,
        term="dumb",
    )
    assert code == 0, text
    assert "\x1b" not in text
    assert re.search(r"deployment \S+ succeeded", text)
