"""Per-AccessKeyId, per-Action quotas as a strict sliding window (ERRATA: Quotas).

At most ``limit`` accepted requests have arrival times inside any half-open interval
``[t, t + window)``.  A throttled request is not recorded, so it does not push the
window forward.  Pure: arrival times are passed in.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """A map of ``(access_key_id, action)`` to the arrival times still inside the window."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._accepted: dict[tuple[str, str], deque[float]] = {}

    def try_acquire(self, key: str, action: str, limit: int, now: float) -> bool:
        """Accept (and record) a request arriving at ``now`` unless ``limit`` is reached."""
        times = self._accepted.get((key, action))
        if times is None:
            times = self._accepted[(key, action)] = deque()
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def free_in(self, key: str, action: str, now: float) -> float:
        """Seconds from ``now`` until a request of ``action`` would be accepted again."""
        times = self._accepted.get((key, action))
        if not times:
            return 0.0
        return max(times[0] + self.window - now, 0.0)

    def clear(self) -> None:
        self._accepted.clear()
