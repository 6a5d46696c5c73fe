"""When to try again, and how long to wait: pure decisions, no sleeping here.

The client asks ``policy.decide(error, attempt=..., read_only=..., elapsed=...)`` after each
failed attempt and sleeps for the answer (or gives up on None).  The rules keep one promise:
**a mutating call is never repeated unless the service certainly did not execute it.**

================================================  =========  ========
error                                             read-only  mutating
================================================  =========  ========
ThrottledError (any form; ERRATA: "not executed")    retry     retry
ServiceUnavailableError, not_executed (a 503)        retry     retry
ServiceUnavailableError, other 5xx / iot.system.*    retry     give up
TransportError(maybe_executed=False)                 retry     retry
TransportError(maybe_executed=True)                  retry     give up
InvalidResponseError (answer unreadable)             retry     give up
CredentialsError.transient (STS/metadata down)       retry     retry
anything else (validation, auth, not found, ...)     give up   give up
================================================  =========  ========

Delays are exponential with full jitter (``uniform(0, min(cap, base·2ⁿ⁻¹))``); throttled answers
use their own, longer base and a floor, because the service counts in 1-second windows.
``set_testing(True)`` (or ``with set_testing(True):``) makes every delay zero, as stamina's testing
mode does, so test suites never sleep for backoff.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ._argtypes import check_at_least, check_count, check_positive
from ._errors import (
    EdgeError,
    ThrottledError,
    TransportError,
    ValidationError,
    is_transient,
    may_have_run,
)

__all__ = ["DeadlineExceededError", "RetryPolicy", "is_retryable", "is_testing", "set_testing"]

_testing = False
# The shortest timeout ``attempt_timeout`` gives: aiohttp treats 0 as "no timeout".
_MIN_ATTEMPT_TIMEOUT = 0.001


class DeadlineExceededError(TransportError):
    """The retry deadline left too little time to send the request, so it was not sent.

    Raised when the deadline passed while the call waited for its rate-limit slot, or when
    less than ``RetryPolicy.min_attempt_timeout`` was left once the slot was granted.  The
    slot is given back unused (no hold) and ``maybe_executed`` is False: nothing ran.
    """

    def __init__(self, message: str, *, action: str | None = None, attempts: int = 1) -> None:
        super().__init__(message, action=action, maybe_executed=False, attempts=attempts)

    def __reduce__(self) -> Any:
        return (type(self), (self.message,), {"action": self.action, "attempts": self.attempts})


class _TestingMode:
    """Returned by ``set_testing``: using it as a context manager restores the previous mode."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        global _testing
        _testing = self._previous


def set_testing(enabled: bool = True) -> _TestingMode:
    """Make every backoff delay zero (attempt limits still apply): for test suites.

    Either call it once (``set_testing(True)`` in a conftest) or use it as a context manager,
    as stamina's does: ``with set_testing(True): ...`` restores the previous mode on exit.
    """
    global _testing
    previous, _testing = _testing, bool(enabled)
    return _TestingMode(previous)


def is_testing() -> bool:
    return _testing


def is_retryable(error: EdgeError, *, read_only: bool) -> bool:
    """The table in the module docstring: a transient error (``is_transient``), for a
    mutating Action only when the service certainly did not run it (not ``may_have_run``)."""
    return is_transient(error) and (read_only or not may_have_run(error))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, a cap, an attempt limit and a deadline.

    ``max_attempts`` counts the first attempt (1 = never retry).  ``deadline`` bounds the
    whole call in seconds from its first attempt (None: no bound), waits for a rate-limit
    slot included: an attempt is sent only while at least ``min_attempt_timeout`` seconds
    are left (``slot_wait`` is how long it may wait for its slot, ``can_send`` the check once
    it has it), ``attempt_timeout`` caps its timeout at the time left, and a retry whose
    backoff would end with less than ``min_attempt_timeout`` left is not made.  Throttled
    answers wait ``uniform(throttle_min_delay, min(max_delay, throttle_base_delay·2ⁿ⁻¹))``.
    """

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 20.0
    throttle_base_delay: float = 1.0
    throttle_min_delay: float = 0.25
    deadline: float | None = 60.0
    min_attempt_timeout: float = 0.2

    def __post_init__(self) -> None:
        # The library's one rules for a count and a bound, NaN refused: a ValidationError
        # (a ValueError) naming the field.
        check_count(self.max_attempts, param="max_attempts", minimum=1)
        for name in ("base_delay", "max_delay", "throttle_base_delay", "throttle_min_delay"):
            check_at_least(getattr(self, name), 0.0, param=name)
        if self.deadline is not None:
            check_positive(self.deadline, param="deadline", none=" or None")
        check_positive(self.min_attempt_timeout, param="min_attempt_timeout")
        if self.deadline is not None and self.min_attempt_timeout >= self.deadline:
            raise ValidationError(
                f"deadline ({self.deadline} s) must exceed min_attempt_timeout "
                f"({self.min_attempt_timeout} s), or no attempt could ever be sent",
                param="deadline",
                rule="dependency",
            )

    def backoff(
        self, attempt: int, *, throttled: bool = False, rng: random.Random | None = None
    ) -> float:
        """The delay after failed attempt number ``attempt`` (1-based), before the switch."""
        draw = (rng or random).uniform
        base = self.throttle_base_delay if throttled else self.base_delay
        ceiling = min(self.max_delay, base * 2.0 ** (max(attempt, 1) - 1))
        if throttled:
            floor = min(self.throttle_min_delay, self.max_delay)
            return draw(floor, max(floor, ceiling))
        return draw(0.0, ceiling)

    def remaining(self, elapsed: float) -> float | None:
        """Seconds left before the deadline, ``elapsed`` seconds into the call (None: no bound)."""
        if self.deadline is None:
            return None
        return max(self.deadline - elapsed, 0.0)

    def slot_wait(self, elapsed: float) -> float | None:
        """How long an attempt ``elapsed`` seconds into the call may wait for its rate-limit
        slot and still be sent: the time left less ``min_attempt_timeout`` (None: no bound;
        0 when there is no time to send it at all)."""
        left = self.remaining(elapsed)
        if left is None:
            return None
        return max(left - self.min_attempt_timeout, 0.0)

    def can_send(self, elapsed: float) -> bool:
        """Is at least ``min_attempt_timeout`` left to send an attempt ``elapsed`` s in?"""
        left = self.remaining(elapsed)
        return left is None or left >= self.min_attempt_timeout

    def attempt_timeout(self, timeout: float, elapsed: float) -> float:
        """The timeout for an attempt starting ``elapsed`` seconds into the call: the client's
        per-attempt ``timeout``, capped at the time left before the deadline (never 0; the
        client sends nothing when less than ``min_attempt_timeout`` is left, see
        ``can_send``)."""
        left = self.remaining(elapsed)
        if left is None:
            return timeout
        return max(min(timeout, left), _MIN_ATTEMPT_TIMEOUT)

    def decide(
        self,
        error: EdgeError,
        *,
        attempt: int,
        read_only: bool,
        elapsed: float,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise ``error``.

        ``attempt`` is the number of the attempt that just failed (1 for the first);
        ``elapsed`` the seconds since the first attempt started; ``retry_after`` the
        service's hint (``x-acs-retry-after``, in seconds), the floor of the delay: the
        backoff may exceed it, never undercut it (nor is it capped by ``max_delay``; the
        deadline still applies).
        """
        if attempt >= self.max_attempts or not is_retryable(error, read_only=read_only):
            return None
        delay = self.backoff(attempt, throttled=isinstance(error, ThrottledError), rng=rng)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        if _testing:
            delay = 0.0
        if self.deadline is not None and not self.can_send(elapsed + delay):
            return None  # the retry could not be sent in time
        return delay
