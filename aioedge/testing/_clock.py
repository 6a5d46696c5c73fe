"""Clocks for the emulator: the real one and a fake one tests move by hand.

The emulator reads time through a plain ``Callable[[], float]`` (UNIX seconds), so any
callable works; :class:`FakeClock` is the one the project's own tests use to drive the
deployment simulation without sleeping.
"""

from __future__ import annotations

import threading
import time

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that only moves when told to.

    ``FakeClock()`` starts at the current wall-clock time, so request timestamps signed
    with the real clock stay inside the service's 15-minute window until the test moves
    the fake one far away on purpose.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()  # the threaded emulator reads it from its own loop

    def __call__(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock does not go backwards (advance({seconds}))")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        """Jump to ``when`` (UNIX seconds); later than now only."""
        with self._lock:
            if when < self._now:
                raise ValueError("a clock does not go backwards")
            self._now = float(when)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
