"""A live terminal view of a deployment: the state tree redrawn in place.

Used by ``aioedge watch``/``deploy``/``demo`` when stdout is a terminal; piped output
gets one plain line per event instead.  Redraws are capped (``min_interval``) so a burst
of events costs one redraw.  The drawing never takes more than the terminal's height less
one line: a taller drawing would scroll, and moving the cursor back up could no longer reach
its first line, so every redraw would leave a copy behind.  When the tree does not fit, each
subtask's finished and not-started snapshots fold into one summary line, and what still does
not fit ends in "… N more lines".
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TextIO

from .watch import DeploymentEvent, DeploymentState, apply, render_text, status_name

__all__ = ["LiveDisplay", "compose"]

_CLEAR_LINE = "\x1b[2K"


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
    ) -> None:
        self._stream = stream
        self._width = width
        self._height = height
        self._messages: deque[str] = deque(maxlen=messages)
        self._min_interval = min_interval
        self._clock = clock
        self._state: DeploymentState | None = None
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
        if event.kind in ("log", "warning", "poll_error", "final"):
            self._messages.append(str(event))
        self._dirty = True
        if self._clock() - self._last_draw >= self._min_interval or event.kind == "final":
            self._draw()

    def close(self) -> None:
        if self._dirty:
            self._draw()
        self._stream.write("\n" if self._drawn == 0 else "")
        self._stream.flush()

    def _draw(self) -> None:
        size = shutil.get_terminal_size((100, 24))
        lines = compose(
            self._state,
            self._messages,
            width=self._width or size.columns,
            height=self._height or size.lines,
        )
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")  # back to the first line we drew
        out.extend(f"{_CLEAR_LINE}{line}\n" for line in lines)
        for _ in range(self._drawn - len(lines)):  # the tree shrank: blank the rest
            out.append(f"{_CLEAR_LINE}\n")
        self._stream.write("".join(out))
        self._stream.flush()
        self._drawn = max(len(lines), self._drawn)
        self._last_draw = self._clock()
        self._dirty = False


# Snapshots in these statuses fold into a summary line when the tree is too tall: nothing
# is happening to them.  In progress (1) and failed (3) ones stay in view.
_FOLDED = (2, 0, None)


def compose(
    state: DeploymentState | None, messages: Sequence[str], *, width: int, height: int
) -> list[str]:
    """The lines of one drawing: the tree, then the latest ``messages``.

    At most ``height - 1`` lines (the cursor ends on the line below them), none wider than
    ``width - 1``.
    """
    budget = max(2, height - 1)
    tree = render_text(state, width=width - 1).splitlines() if state is not None else []
    notes = [m[: width - 1] for m in messages]
    if len(tree) + len(notes) <= budget:
        return [line[: max(1, width - 1)] for line in tree + notes]
    # Too tall: the latest messages keep up to a third of the room, the tree gets the rest.
    notes = notes[len(notes) - min(len(notes), max(1, budget // 3)) :] if notes else []
    room = budget - len(notes)
    if state is not None and len(tree) > room:
        tree = _folded(state, tree[0], width)
    if len(tree) > room:
        cut = max(1, room - 1)
        more = f"… {len(tree) - cut} more lines"
        tree = [*tree[:cut], more]
    # render_text draws at least 48 columns: clip, a wrapped line would take two rows
    return [line[: max(1, width - 1)] for line in tree + notes][:budget]


def _folded(state: DeploymentState, head: str, width: int) -> list[str]:
    """The tree with each subtask's idle snapshots (finished or not started) as one line."""
    kept = []
    counts: list[dict[str, int]] = []
    for task in state.tasks:
        active = tuple(s for s in task.snapshots if s.status not in _FOLDED)
        folded: dict[str, int] = {}
        for snap in task.snapshots:
            if snap.status in _FOLDED:
                name = status_name(snap.status if snap.status is not None else 0)
                folded[name] = folded.get(name, 0) + 1
        kept.append(dataclasses.replace(task, snapshots=active))
        counts.append(folded)
    # Rendered with the idle snapshots left out (``head``, the full tree's first line, still
    # counts them all), then one summary line under each subtask.
    body = render_text(dataclasses.replace(state, tasks=tuple(kept)), width=width - 1)
    lines = [head]
    rows = body.splitlines()[1:]
    at = 0
    for ti, (task, folded) in enumerate(zip(kept, counts, strict=True)):
        lines.append(rows[at])  # the subtask's own line
        at += 1
        if folded:
            pipe = "   " if ti == len(kept) - 1 else "│  "
            branch = "├─ " if task.snapshots else "└─ "
            text = ", ".join(f"{n} {name}" for name, n in folded.items())
            lines.append(f"{pipe}{branch}… {text}")
        lines.extend(rows[at : at + len(task.snapshots)])
        at += len(task.snapshots)
    return lines
