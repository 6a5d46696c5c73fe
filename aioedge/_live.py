"""A live terminal view of a deployment: the state tree redrawn in place.

Used by ``aioedge watch``/``deploy``/``demo`` when stdout is a terminal; piped output
gets one plain line per event instead.  Redraws are capped (``min_interval``) so a burst
of events costs one redraw.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from .watch import DeploymentEvent, DeploymentState, apply, render_text

__all__ = ["LiveDisplay"]

_CLEAR_LINE = "\x1b[2K"


class LiveDisplay:
    """Keeps a DeploymentState from the event stream and redraws it on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        width: int | None = None,
        messages: int = 4,
        min_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._width = width
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
        width = self._width or shutil.get_terminal_size((100, 24)).columns
        lines: list[str] = []
        if self._state is not None:
            lines.extend(render_text(self._state, width=width - 1).splitlines())
        lines.extend(m[: width - 1] for m in self._messages)
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
