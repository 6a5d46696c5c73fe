"""A live terminal view of a deployment: the state tree redrawn in place.

Used by ``aioedge watch``/``deploy``/``demo`` when stdout is a terminal; piped output
gets one plain line per event instead.  Redraws are capped (``min_interval``) so a burst
of events costs one redraw; :meth:`LiveDisplay.tick` redraws once a second so the elapsed
time and the age of the last poll keep moving while nothing else does.  The drawing never
takes more than the terminal's height less one line: a taller drawing would scroll, and
moving the cursor back up could no longer reach its first line, so every redraw would leave
a copy behind.  When the tree does not fit, each subtask's finished, not-started and stopped
snapshots fold into one summary line, and what still does not fit ends in "… N more lines".

Under the tree: the latest log lines (one row each), then a status line (elapsed time, the
age of the last answered poll, how many polls), and while polls fail the whole poll error
with its retry delay, wrapped rather than cut.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import textwrap
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._display import to_ascii
from ._errors import printable
from .watch import DeploymentEvent, DeploymentState, apply, render_text, status_name
from .watch._cause import failure_roles
from .watch._events import clock_text, resource_label
from .watch._render import paint, short_id
from .watch._state import SnapshotState

__all__ = [
    "LiveDisplay",
    "PollInfo",
    "Polls",
    "compose",
    "duration_text",
    "fit",
]

_CLEAR_LINE = "\x1b[2K"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: ``(polls answered, monotonic time of the last answer or None)``, from the CLI's client.
PollInfo = tuple[int, float | None]


class Polls:
    """A client wrapper that counts a watch's answered polls and when the last one came
    (the live view's "last poll N s ago")."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self.answered = 0
        self.last: float | None = None

    async def call(self, action: str, params: Any) -> dict[str, Any]:
        body: dict[str, Any] = await self._client.call(action, params)
        if action == "GetEdgeInstanceDeployment":
            self.answered += 1
            self.last = self._clock()
        return body

    def info(self) -> PollInfo:
        return self.answered, self.last


def fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` visible characters; ANSI colour codes do not count."""
    width = max(1, width)
    if "\x1b" not in line:
        return line[:width]
    out: list[str] = []
    seen = 0
    pos = 0
    for m in _ANSI.finditer(line):
        text = line[pos : m.start()]
        take = text[: max(0, width - seen)]
        out.append(take)
        seen += len(take)
        out.append(m.group())  # keep every code, so colours are reset
        pos = m.end()
    out.append(line[pos:][: max(0, width - seen)])
    return "".join(out)


def duration_text(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: an elapsed time at a glance."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _note(event: DeploymentEvent) -> str:
    """A log or warning event as a short row: time, resource, stage, level, message."""
    rid = None if event.resource_id is None else short_id(event.resource_id)
    sid = short_id(event.snapshot_id)
    what = resource_label(event.resource_name, rid, sid, event.resource_type)
    text = " ".join((event.message or "").split())
    if event.kind == "warning":
        return f"{clock_text(event.time)} warning {what}: {printable(text)}"
    entry = event.log
    level = printable((entry.level if entry else None) or "LOG")
    return f"{clock_text(event.time)} {what} {level}: {printable(text)}"


class LiveDisplay:
    """Keeps a DeploymentState from the event stream and redraws it on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        width: int | None = None,
        height: int | None = None,
        messages: int = 4,
        min_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        colour: bool = False,
        ascii: bool = False,
        polls: Callable[[], PollInfo] | None = None,
    ) -> None:
        self._stream = stream
        self._width = width
        self._height = height
        self._messages: deque[str] = deque(maxlen=messages)
        self._min_interval = min_interval
        self._clock = clock
        self._colour = colour
        self._ascii = ascii
        self._polls = polls
        self._started = clock()
        self._state: DeploymentState | None = None
        self._poll_error: tuple[str, float] | None = None
        self._drawn = 0
        self._last_draw = float("-inf")
        self._dirty = False

    @property
    def state(self) -> DeploymentState | None:
        return self._state

    def update(self, event: DeploymentEvent) -> None:
        if event.kind in ("deployment", "task", "snapshot", "log"):
            try:
                self._state = apply(self._state, [event])
            except ValueError:  # an event for an object we never saw: show it as a line
                self._messages.append(str(event))
            self._poll_error = None  # an answer came
        if event.kind in ("log", "warning"):
            self._messages.append(_note(event))
        if event.kind == "poll_error":
            self._poll_error = (str(event).split(" ", 1)[1], self._clock())
        self._dirty = True
        if self._clock() - self._last_draw >= self._min_interval or event.kind == "final":
            self._draw()

    def tick(self) -> None:
        """Redraw when a second has passed: the elapsed time and the poll age move on."""
        if self._clock() - self._last_draw >= 1.0:
            self._draw()

    def close(self) -> None:
        self._draw()
        self._stream.write("\n" if self._drawn == 0 else "")
        self._stream.flush()

    def footer(self) -> list[str]:
        """The status line (elapsed, last poll) and a pending poll error, unwrapped."""
        now = self._clock()
        dot = " - " if self._ascii else " · "
        parts = [f"elapsed {duration_text(now - self._started)}"]
        if self._polls is not None:
            count, last = self._polls()
            if last is not None:
                parts.append(f"last poll {max(0.0, now - last):.1f}s ago")
                if self._poll_error is not None and last > self._poll_error[1]:
                    self._poll_error = None  # a later poll was answered
            parts.append(f"{count} poll{'s' if count != 1 else ''}")
        lines = [paint(dot.join(parts), "dim", self._colour)]
        if self._poll_error is not None:
            lines.append(paint(self._poll_error[0], "warn", self._colour))
        return lines

    def _draw(self) -> None:
        size = shutil.get_terminal_size((100, 24))
        lines = compose(
            self._state,
            self._messages,
            width=self._width or size.columns,
            height=self._height or size.lines,
            footer=self.footer(),
            colour=self._colour,
            ascii=self._ascii,
        )
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")  # back to the first line we drew
        out.extend(f"{_CLEAR_LINE}{line}\n" for line in lines)
        extra = self._drawn - len(lines)
        if extra > 0:  # the tree shrank (folded): blank the rest, and come back up
            out.extend(f"{_CLEAR_LINE}\n" for _ in range(extra))
            out.append(f"\x1b[{extra}F")
        text = "".join(out)
        self._stream.write(to_ascii(text) if self._ascii else text)
        self._stream.flush()
        self._drawn = len(lines)
        self._last_draw = self._clock()
        self._dirty = False


# Snapshots in these statuses fold into a summary line when the tree is too tall: nothing
# is happening to them.  In progress (1) and failed (3) ones stay in view, except those
# that only stopped because their subtask failed.
_FOLDED = (2, 0, None)


def compose(
    state: DeploymentState | None,
    messages: Sequence[str],
    *,
    width: int,
    height: int,
    footer: Sequence[str] = (),
    colour: bool = False,
    ascii: bool = False,
) -> list[str]:
    """The lines of one drawing: the tree, the latest ``messages``, then ``footer``.

    At most ``height - 1`` lines (the cursor ends on the line below them), none wider than
    ``width - 1`` visible characters.  Footer lines are wrapped, never cut: they hold the
    poll error an operator has to read whole.
    """
    budget = max(2, height - 1)
    cols = max(1, width - 1)
    tree = (
        render_text(state, width=cols, colour=colour, ascii=ascii).splitlines()
        if state is not None
        else []
    )
    notes = [fit(m, cols) for m in messages]
    tail: list[str] = []
    for line in footer:
        if len(_ANSI.sub("", line)) <= cols:
            tail.append(line)
        else:
            tail.extend(_wrap_painted(line, cols))
    tail = tail[: max(1, budget // 2)]
    if len(tree) + len(notes) + len(tail) <= budget:
        return [fit(line, cols) for line in tree + notes + tail]
    # Too tall: the footer stays, the latest messages keep up to a third of the room, the
    # tree gets the rest.
    room_for_notes = max(0, min(len(notes), budget // 3, budget - len(tail) - 1))
    notes = notes[len(notes) - room_for_notes :] if room_for_notes else []
    room = max(1, budget - len(notes) - len(tail))
    if state is not None and len(tree) > room:
        tree = _folded(state, tree[0], cols, colour=colour, ascii=ascii)
    if len(tree) > room:
        cut = max(1, room - 1)
        more = f"… {len(tree) - cut} more lines"
        tree = [*tree[:cut], more]
    # render_text draws at least 48 columns: clip, a wrapped line would take two rows
    return [fit(line, cols) for line in tree + notes + tail][:budget]


def _wrap_painted(line: str, cols: int) -> list[str]:
    """A coloured line wrapped to ``cols``: the text wrapped, each piece painted alike."""
    codes = _ANSI.findall(line)
    plain = _ANSI.sub("", line)
    pieces = textwrap.wrap(plain, cols) or [""]
    if not codes:
        return pieces
    start, end = codes[0], codes[-1]
    return [f"{start}{piece}{end}" for piece in pieces]


def _folded(
    state: DeploymentState, head: str, width: int, *, colour: bool, ascii: bool
) -> list[str]:
    """The tree with each subtask's idle snapshots (finished, not started or stopped with
    their subtask) as one summary line."""
    roles = failure_roles(state)
    kept = []
    counts: list[dict[str, int]] = []
    for task in state.tasks:

        def idle(snap: SnapshotState, task_id: str = task.task_id) -> bool:
            return snap.status in _FOLDED or roles.get((task_id, snap.snapshot_id)) == "stopped"

        active = tuple(s for s in task.snapshots if not idle(s))
        folded: dict[str, int] = {}
        for snap in task.snapshots:
            if not idle(snap):
                continue
            if roles.get((task.task_id, snap.snapshot_id)) == "stopped":
                name = "stopped"
            else:
                name = status_name(snap.status if snap.status is not None else 0)
            folded[name] = folded.get(name, 0) + 1
        kept.append(dataclasses.replace(task, snapshots=active))
        counts.append(folded)
    # Rendered with the idle snapshots left out (``head``, the full tree's first line, still
    # counts them all), then one summary line under each subtask's own line.
    body = render_text(
        dataclasses.replace(state, tasks=tuple(kept)), width=width, colour=colour, ascii=ascii
    ).splitlines()[1:]
    pipe_glyph, branch_glyph, last_glyph = ("|  ", "|- ", "`- ") if ascii else ("│  ", "├─ ", "└─ ")
    lines = [head]
    ti = -1
    for row in body:
        plain = _ANSI.sub("", row)
        if plain.startswith((branch_glyph, last_glyph)):  # a subtask's own line
            ti += 1
            lines.append(row)
            folded = counts[ti]
            if folded:
                pipe = "   " if ti == len(kept) - 1 else pipe_glyph
                branch = branch_glyph if kept[ti].snapshots else last_glyph
                text = ", ".join(f"{n} {name}" for name, n in folded.items())
                lines.append(f"{pipe}{branch}… {text}")
        else:
            lines.append(row)
    return lines
