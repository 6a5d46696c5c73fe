"""Per-Action quotas: the slot arithmetic (pure) and the asyncio limiter around it.

The rule to keep (ERRATA "Quotas"; the service counts arrivals): of one Action, at most Q
requests may *arrive* in any 1-second window.  A request arrives somewhere between the moment
it is sent and the moment its answer comes back, so counting send times is not enough (a token
bucket lets 2Q through in its first second).  Instead there are Q **slots** per Action: a slot is
taken just before a request is sent, held while it is in flight, and stays occupied for one
window (1 s plus a small margin) after the answer.  Proof sketch: take the arrivals inside any
window ``[t, t + 1)`` and let τ be the latest of their send times (τ < t + 1).  Every one of
those requests was sent at or before τ and released no earlier than ``arrival + 1 ≥ t + 1 > τ``,
so all of them held a slot at τ: there are at most Q.  Latency only slows the stream down
(a slot cycles every ``latency + window``, so a steady stream runs at ``Q / (window + latency)``
per second); it never lets an extra request through.

The proof needs "released no earlier than arrival + 1", which an *answer* guarantees.  When an
attempt ends without one after the request may have left (``TransportError`` with
``maybe_executed=True``: a timeout or a connection lost after sending; a cancellation; any
exception that is not an ``EdgeError``) the request can still arrive later, so its slot is held
``window + max(attempt_timeout, seconds it was in flight)`` instead: the *lost hold*.
``attempt_timeout`` (default 10 s, the client's default per-attempt timeout) is configurable,
and ``slot(..., timeout=...)`` raises it for one request.  The other way round, an attempt that
leaves its slot with a ``DeadlineExceededError`` (``never_sent``: the client gave up before
signing, for lack of time before the retry deadline) gives the slot straight back, no hold.

Adaptive (botocore's adaptive retry mode): when the service throttles anyway (another process
or tool uses the same account), the Action's rate drops multiplicatively (× ``beta``) and climbs
back along a CUBIC curve ``rate(t) = C·(t − t_fail − K)³ + W_max``.  A lower rate means fewer
slots (``ceil(rate)``) each held a little longer (``window · slots / rate``), so the long-run
pace is ``rate`` per second without bursts.

``SlotWindow`` and ``CubicRate`` are pure (the clock is an argument).  ``LocalRateLimiter`` is
the asyncio shell: FIFO-fair, cancellation-safe, no polling: only the head waiter of an Action
keeps a timer, set for the exact moment a slot frees.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import anyio

from ._argtypes import check_at_least, check_positive
from ._errors import EdgeError, TransportError
from ._log import get_logger
from ._retry import DeadlineExceededError

__all__ = [
    "AdaptiveConfig",
    "CubicRate",
    "LaneState",
    "LocalRateLimiter",
    "RateLimiter",
    "SlotWindow",
    "answer_lost",
    "as_rate_limiter",
    "default_limiter",
    "enter_within",
    "hinted_hold",
    "never_sent",
    "reset_default_limiter",
]

#: Seconds a released slot stays occupied: the service's 1-second window.
WINDOW = 1.0
#: Default extra hold after the window, for clock granularity and interval-edge rounding.
DEFAULT_MARGIN = 0.01
#: Default longest wait for an answer (the client's default per-attempt ``timeout``): a slot
#: whose answer never came is held ``window + attempt_timeout`` (at least) after the exit.
DEFAULT_ATTEMPT_TIMEOUT = 10.0
# Shortest timer the limiter sets, so float rounding can never make the head waiter spin.
_MIN_DELAY = 0.001


# --------------------------------------------------------------------------- pure arithmetic


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveConfig:
    """How an Action slows down after a throttled answer and recovers (botocore's constants).

    ``beta``: multiplicative decrease; ``scale``: the CUBIC constant C (rate units per s³);
    ``min_rate``: the floor (requests per second); ``cooldown``: throttled answers within this
    many seconds of a decrease are the same congestion event (several requests in flight get
    throttled together; one event, one decrease).
    """

    beta: float = 0.7
    scale: float = 0.4
    min_rate: float = 0.5
    cooldown: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {self.beta}")
        check_positive(self.scale, param="scale")
        check_positive(self.min_rate, param="min_rate")
        check_at_least(self.cooldown, 0.0, param="cooldown")


def _cbrt(x: float) -> float:
    return math.copysign(abs(x) ** (1.0 / 3.0), x)


class CubicRate:
    """The adaptive rate of one Action as a pure function of time.

    Full rate until the first throttle; then ``min(max_rate, C·(t − t_fail − K)³ + W_max)``
    where ``W_max`` is the rate at the throttle and ``K = ∛(W_max·(1 − β)/C)``, so the curve
    starts at ``β·W_max``, flattens around ``W_max`` and climbs back to the quota.
    """

    __slots__ = ("_config", "_k", "_t_fail", "_w_max")

    def __init__(self, config: AdaptiveConfig | None = None) -> None:
        self._config = config or AdaptiveConfig()
        self._t_fail: float | None = None
        self._w_max = 0.0
        self._k = 0.0

    @property
    def config(self) -> AdaptiveConfig:
        return self._config

    def rate(self, now: float, max_rate: float) -> float:
        """Requests per second allowed at ``now`` (never above ``max_rate``)."""
        if self._t_fail is None:
            return max_rate
        c = self._config
        r = c.scale * (now - self._t_fail - self._k) ** 3 + self._w_max
        return min(max_rate, max(r, c.min_rate))

    def throttled(self, now: float, max_rate: float) -> bool:
        """Record a throttled answer; False when it belongs to the event already recorded."""
        c = self._config
        if self._t_fail is not None and now - self._t_fail < c.cooldown:
            return False
        self._w_max = self.rate(now, max_rate)
        self._k = _cbrt(self._w_max * (1.0 - c.beta) / c.scale)
        self._t_fail = now
        return True

    def time_above(self, now: float, level: float, max_rate: float) -> float | None:
        """Earliest time ≥ ``now`` at which ``rate`` exceeds ``level`` (None: never, or now)."""
        if self._t_fail is None or level >= max_rate or self.rate(now, max_rate) > level:
            return None
        # Aim slightly above the level so ceil(rate) has really moved when the timer fires.
        target = level + 1e-6
        t = self._t_fail + self._k + _cbrt((target - self._w_max) / self._config.scale)
        return max(t, now)


class SlotWindow:
    """Slot accounting for one (scope, Action): pure, the clock is an argument.

    ``occupied = in_flight + released slots whose hold has not ended``; a request may start
    when ``occupied < capacity``.  Memory is O(Q): the release times of at most Q slots.
    """

    __slots__ = ("_cubic", "_in_flight", "_releases", "max_slots", "qps", "window")

    def __init__(
        self, qps: float, *, window: float = WINDOW, adaptive: AdaptiveConfig | None = None
    ) -> None:
        if window < WINDOW:
            # Anything shorter breaks the proof in the module docstring.
            raise ValueError(f"window must be at least {WINDOW} s, got {window}")
        self.window = window
        self.qps = 0.0
        self.max_slots = 1
        self.set_qps(qps)
        self._cubic = CubicRate(adaptive)
        self._in_flight = 0
        self._releases: list[float] = []  # sorted release times of completed slots

    def set_qps(self, qps: float) -> None:
        if not qps > 0 or math.isinf(qps):
            raise ValueError(f"qps must be a positive finite number, got {qps}")
        self.qps = float(qps)
        # Arrivals are whole requests: Q = 10.5 still means 10 per window, 0.5 means 1 per 2 s.
        self.max_slots = max(1, math.floor(qps))

    # -- reading
    def rate(self, now: float) -> float:
        """The effective rate: the quota, or less while recovering from throttling."""
        return self._cubic.rate(now, self.qps)

    def capacity(self, now: float) -> int:
        return min(self.max_slots, max(1, math.ceil(self.rate(now) - 1e-9)))

    def hold(self, now: float) -> float:
        """How long a slot released at ``now`` stays occupied."""
        return self.window * max(1.0, self.capacity(now) / self.rate(now))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def occupied(self, now: float) -> int:
        self._expire(now)
        return self._in_flight + len(self._releases)

    def _expire(self, now: float) -> None:
        releases = self._releases
        n = bisect.bisect_right(releases, now)
        if n:
            del releases[:n]

    # -- changing
    def try_acquire(self, now: float) -> bool:
        if self.occupied(now) < self.capacity(now):
            self._in_flight += 1
            return True
        return False

    def release(self, now: float, *, at_least: float = 0.0) -> float:
        """The request's answer came back (or it failed in any way): hold the slot on.

        ``at_least``: a longer hold for a request whose answer never came (the lost hold).
        Returns the time the slot becomes free again.
        """
        if self._in_flight <= 0:
            raise RuntimeError("release() without a matching try_acquire()")
        self._in_flight -= 1
        until = now + max(self.hold(now), at_least)
        bisect.insort(self._releases, until)
        return until

    def abandon(self) -> None:
        """Give a slot back at once: only for a request that was certainly never sent."""
        if self._in_flight <= 0:
            raise RuntimeError("abandon() without a matching try_acquire()")
        self._in_flight -= 1

    def throttled(self, now: float) -> bool:
        return self._cubic.throttled(now, self.qps)

    def next_change(self, now: float) -> float | None:
        """When ``try_acquire`` may next succeed: ``now``, a time, or None.

        None means every slot is in flight: only a ``release`` can free one.
        """
        occupied, capacity = self.occupied(now), self.capacity(now)
        if occupied < capacity:
            return now
        need = occupied - capacity + 1  # slots that must free up
        releases = self._releases
        t_release = releases[need - 1] if need <= len(releases) else None
        t_rate = self._cubic.time_above(now, capacity, self.qps)
        candidates = [t for t in (t_release, t_rate) if t is not None]
        return min(candidates) if candidates else None


# --------------------------------------------------------------------------- the seam


def answer_lost(exc: BaseException | None) -> bool:
    """Did an attempt that exited a slot with ``exc`` end without an answer it can trust?

    True for ``TransportError(maybe_executed=True)`` (timeout, connection lost after sending),
    for a cancellation and for any exception that is not an ``EdgeError``: the request may still
    arrive later.  False for a clean exit, an ``ApiError`` (an answer came back) and other
    ``EdgeError``s (raised before anything was sent).
    """
    if exc is None:
        return False
    if isinstance(exc, TransportError):
        return exc.maybe_executed
    return not isinstance(exc, EdgeError)


def never_sent(exc: BaseException | None) -> bool:
    """Did an attempt that exited a slot with ``exc`` certainly send nothing?

    True only for a ``DeadlineExceededError``: the client found, once the slot was granted,
    too little time left before its retry deadline and gave up before signing.  Such a slot
    is given back at once, with no hold: no request arrives for it.
    """
    return isinstance(exc, DeadlineExceededError)


def hinted_hold(exc: BaseException | None) -> float:
    """The least hold the service asked for: the ``retry_after`` (``x-acs-retry-after``) of an
    answer the service turned away (``_errors.turned_away``: throttled, or a 503) that exited
    the slot, else 0.  The service said when it will take this Action again; a slot freed
    sooner would only earn another refusal."""
    hint = getattr(exc, "retry_after", None) if isinstance(exc, EdgeError) else None
    return float(hint) if hint else 0.0


def _check_timeout(name: str, value: float | None) -> None:
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


@runtime_checkable
class RateLimiter(Protocol):
    """What the client needs from a limiter (local, Redis, or the user's own).

    A limiter written for the older three-argument ``slot(scope, action, qps)`` (without
    ``expect_attempt_timeout``) still works: the client adapts it once
    (:func:`as_rate_limiter`).
    """

    def expect_attempt_timeout(self, seconds: float) -> None:
        """A client with this per-attempt timeout uses the limiter (called once, when the
        client is made); raise ``ValueError`` to refuse a timeout it cannot serve."""
        ...

    def slot(
        self,
        scope: str,
        action: str,
        qps: float,
        *,
        timeout: float | None = None,
        wait: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for a free slot; hold it while the request is in flight and one window after.

        ``timeout``: the client's per-attempt timeout (how long the request may still take to
        arrive if the answer is lost).  ``wait``: the longest entering may wait (the retry
        deadline); past it, entering raises ``TimeoutError`` having given the turn back.  If
        the block exits without an answer (see ``answer_lost``), hold the slot longer: the
        request may still arrive.
        """
        ...

    def report_throttled(self, scope: str, action: str) -> None:
        """The service throttled this Action anyway: slow it down."""
        ...


async def enter_within(enter: Callable[[], Awaitable[None]], wait: float | None) -> None:
    """Await ``enter()`` (a slot's entry), or raise ``TimeoutError`` once ``wait`` seconds
    passed (None: no limit).

    The entry is cancelled at the limit, so it must give its turn back when cancelled;
    ``wait=0`` does not try at all.
    """
    if wait is not None and wait <= 0:
        raise TimeoutError("no time left to wait for a slot")
    with anyio.move_on_after(wait):
        await enter()
        return
    raise TimeoutError(f"no slot within {wait:g} s")


class _Adapted:
    """A limiter with an older ``slot``: no ``timeout``/``wait`` keywords, maybe no
    ``expect_attempt_timeout``.  Which keywords it takes is read once, here."""

    __slots__ = ("_inner", "_keywords")

    def __init__(self, inner: object, keywords: frozenset[str]) -> None:
        self._inner: Any = inner
        self._keywords = keywords

    def expect_attempt_timeout(self, seconds: float) -> None:
        expect = getattr(self._inner, "expect_attempt_timeout", None)
        if expect is not None:
            expect(seconds)

    def slot(
        self, scope: str, action: str, qps: float, **given: float | None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        kw = {name: value for name, value in given.items() if name in self._keywords}
        slot: contextlib.AbstractAsyncContextManager[None] = self._inner.slot(
            scope, action, qps, **kw
        )
        wait = given.get("wait")
        return slot if wait is None or "wait" in self._keywords else _Bounded(slot, wait)

    def report_throttled(self, scope: str, action: str) -> None:
        self._inner.report_throttled(scope, action)


class _Bounded:
    """A slot whose entry gives up after ``wait`` seconds (:func:`enter_within`)."""

    __slots__ = ("_slot", "_wait")

    def __init__(self, slot: contextlib.AbstractAsyncContextManager[None], wait: float) -> None:
        self._slot = slot
        self._wait = wait

    async def __aenter__(self) -> None:
        await enter_within(self._slot.__aenter__, self._wait)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._slot.__aexit__(*exc_info)


def as_rate_limiter(limiter: object) -> RateLimiter:
    """``limiter`` as the full :class:`RateLimiter`: ours as they are, a user's limiter
    written for the three-argument ``slot`` behind an adapter that passes only the keywords
    its ``slot`` declares (by name: a ``**kwargs`` wrapper may pass them on to a limiter
    that has neither) and bounds the wait for it.  The client calls this once."""
    try:
        params = inspect.signature(limiter.slot).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    keywords = frozenset(name for name in ("timeout", "wait") if name in params)
    if keywords == {"timeout", "wait"} and hasattr(limiter, "expect_attempt_timeout"):
        return limiter  # type: ignore[return-value]
    return _Adapted(limiter, keywords)


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneState:
    """One (scope, Action) of a limiter at one moment: its quota, its adaptive rate (below
    the quota while it recovers from throttling), requests in flight and tasks waiting."""

    scope: str
    action: str
    qps: float
    rate: float
    in_flight: int
    waiting: int


# --------------------------------------------------------------------------- asyncio shell


class _Waiter:
    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()


class _Lane:
    """One (scope, Action): its pure window and its FIFO of waiting tasks."""

    __slots__ = ("waiters", "window")

    def __init__(self, window: SlotWindow) -> None:
        self.window = window
        self.waiters: deque[_Waiter] = deque()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _notify(waiter: _Waiter) -> None:
    """Wake a waiter, from its own loop or (thread-safely) from another one."""
    future = waiter.future
    if future.done() or waiter.loop.is_closed():
        return
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is waiter.loop:
        future.set_result(None)
    else:
        waiter.loop.call_soon_threadsafe(_wake, future)


class _NullSlot:
    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_NULL_SLOT = _NullSlot()


@dataclass(slots=True, eq=False)
class _LocalSlot:
    """One request's slot of a lane: ``timeout`` its per-attempt timeout (for the lost hold),
    ``wait`` the longest its entry may wait; ``granted`` is when it was entered."""

    limiter: LocalRateLimiter
    lane: _Lane
    timeout: float | None
    wait: float | None
    held: bool = field(default=False, init=False)
    granted: float = field(default=0.0, init=False)

    async def __aenter__(self) -> None:
        await self.limiter._acquire(self.lane, self.wait)
        self.granted = self.limiter._clock()
        self.held = True

    def give_back(self) -> None:
        """Return the slot at once, no hold: nothing was sent with it (a limiter that wraps
        this one could not get its own slot)."""
        if self.held:
            self.held = False
            self.limiter._abandon(self.lane)

    async def __aexit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        # Any exit counts as "maybe arrived" (the client validates before it enters) but one
        # that sent nothing; an exit without an answer counts as "may still arrive" and gets
        # the lost hold.
        if self.held:
            self.held = False
            lim = self.limiter
            if never_sent(exc):
                lim._abandon(self.lane)
                return
            if answer_lost(exc):
                lim._release(self.lane, at_least=lim._lost_hold(self.granted, self.timeout))
            else:
                lim._release(self.lane, at_least=hinted_hold(exc))


def _checked_overrides(overrides: Mapping[str, float] | None) -> dict[str, float]:
    out = dict(overrides or {})
    for action, qps in out.items():
        if not qps > 0:
            raise ValueError(f"override for {action} must be > 0, got {qps}")
    return out


class _Limiter:
    """What the two limiters share: the settings both take (checked here), the per-Action
    overrides, and :meth:`slot`'s checks of its arguments, before each builds its own kind
    of slot (``_slot``)."""

    def __init__(
        self,
        overrides: Mapping[str, float] | None,
        margin: float,
        adaptive: AdaptiveConfig | None,
        attempt_timeout: float,
    ) -> None:
        check_at_least(margin, 0.0, param="margin")  # NaN too
        _check_timeout("attempt_timeout", attempt_timeout)
        self._overrides = _checked_overrides(overrides)
        self._window = WINDOW + margin
        self._adaptive = adaptive or AdaptiveConfig()
        self._attempt_timeout = float(attempt_timeout)

    @property
    def window(self) -> float:
        """Seconds a slot is held after its answer: one second plus the ``margin``."""
        return self._window

    @property
    def attempt_timeout(self) -> float:
        """The longest per-attempt timeout of the clients that use this limiter."""
        return self._attempt_timeout

    def effective_qps(self, action: str, qps: float) -> float:
        """The QPS ``action`` is held to: its override, else ``qps`` (the catalog's)."""
        return self._overrides.get(action, qps)

    def slot(
        self,
        scope: str,
        action: str,
        qps: float,
        *,
        timeout: float | None = None,
        wait: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """See :meth:`RateLimiter.slot`; ``wait=0`` takes only a slot that is free at once,
        and an Action whose QPS is ``math.inf`` (an override) is not limited."""
        _check_timeout("timeout", timeout)
        _check_timeout("wait", wait)
        qps = self.effective_qps(action, qps)
        if math.isinf(qps):
            return _NULL_SLOT
        if not qps > 0:
            raise ValueError(f"qps must be > 0, got {qps}")
        return self._slot(scope, action, qps, timeout, wait)

    def _slot(
        self, scope: str, action: str, qps: float, timeout: float | None, wait: float | None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError


class LocalRateLimiter(_Limiter):
    """Per-(scope, Action) slots for every client of one process.

    ``overrides`` maps an Action to the QPS to use instead of the catalog's (``math.inf``
    turns limiting off for that Action).  ``margin`` is added to the 1-second window.
    ``attempt_timeout``: the longest a request may take to arrive once the client stops
    waiting for it (its per-attempt ``timeout``); a slot that got no answer is held
    ``window + max(attempt_timeout, seconds in flight, the slot's timeout)``.
    ``clock`` must be monotonic and shared by every event loop that uses this limiter
    (the default, ``time.monotonic``, is what asyncio's loops use).  Timers run on the
    waiting task's own loop, so one limiter serves several loops, one after another or in
    different threads.
    """

    def __init__(
        self,
        *,
        overrides: Mapping[str, float] | None = None,
        margin: float = DEFAULT_MARGIN,
        adaptive: AdaptiveConfig | None = None,
        attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(overrides, margin, adaptive, attempt_timeout)
        self._clock = clock
        self._lanes: dict[tuple[str, str], _Lane] = {}
        # The pure state is tiny and touched without awaiting; a lock makes it thread-safe.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalRateLimiter(lanes={len(self._lanes)}, margin={self._window - WINDOW:g}, "
            f"overrides={self._overrides!r})"
        )

    def expect_attempt_timeout(self, seconds: float) -> None:
        """A client with this per-attempt timeout uses the limiter: never hold lost slots less."""
        _check_timeout("attempt_timeout", seconds)
        with self._lock:
            self._attempt_timeout = max(self._attempt_timeout, float(seconds))

    def _lost_hold(self, granted: float, timeout: float | None) -> float:
        """The hold of a slot granted at ``granted`` whose answer never came."""
        in_flight = self._clock() - granted
        return self._window + max(self._attempt_timeout, in_flight, timeout or 0.0)

    def _lane(self, scope: str, action: str, qps: float) -> _Lane:
        key = (scope, action)
        lane = self._lanes.get(key)
        if lane is None:
            with self._lock:
                lane = self._lanes.get(key)
                if lane is None:
                    window = SlotWindow(qps, window=self._window, adaptive=self._adaptive)
                    lane = self._lanes[key] = _Lane(window)
        if lane.window.qps != qps:
            with self._lock:
                lane.window.set_qps(qps)
        return lane

    def _slot(
        self, scope: str, action: str, qps: float, timeout: float | None, wait: float | None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return _LocalSlot(self, self._lane(scope, action, qps), timeout, wait)

    # -- RateLimiter

    def report_throttled(self, scope: str, action: str) -> None:
        lane = self._lanes.get((scope, action))
        if lane is None:
            return
        with self._lock:
            now = self._clock()
            decreased = lane.window.throttled(now)
            rate = lane.window.rate(now)
        if decreased:
            # A rare event: fetch the logger now, so logging configured after import applies.
            get_logger().info(
                "aioedge.rate_decreased", action=action, scope=scope, rate=round(rate, 3)
            )

    def report_success(self, scope: str, action: str) -> None:
        """A no-op kept for code written against the older Protocol (the client no longer
        reports successes: recovery is a function of time)."""

    # -- inspection (tests, docs, notebooks, metrics)
    def lanes(self) -> list[LaneState]:
        """Every (scope, Action) this limiter has served, as it stands now (for gauges)."""
        with self._lock:
            now = self._clock()
            return [
                LaneState(
                    scope=scope,
                    action=action,
                    qps=lane.window.qps,
                    rate=lane.window.rate(now),
                    in_flight=lane.window.in_flight,
                    waiting=len(lane.waiters),
                )
                for (scope, action), lane in list(self._lanes.items())
            ]

    def rate(self, scope: str, action: str) -> float | None:
        """The current effective rate of a lane, or None if it was never used."""
        lane = self._lanes.get((scope, action))
        if lane is None:
            return None
        with self._lock:
            return lane.window.rate(self._clock())

    def waiting(self, scope: str, action: str) -> int:
        lane = self._lanes.get((scope, action))
        return 0 if lane is None else len(lane.waiters)

    def in_flight(self, scope: str, action: str) -> int:
        lane = self._lanes.get((scope, action))
        return 0 if lane is None else lane.window.in_flight

    # -- the machinery
    async def _acquire(self, lane: _Lane, wait: float | None = None) -> None:
        with self._lock:
            if not lane.waiters and lane.window.try_acquire(self._clock()):
                return  # fast path: a free slot and nobody queued before us
            loop = asyncio.get_running_loop()
            me = _Waiter(loop)
            lane.waiters.append(me)
        give_up = None if wait is None else self._clock() + wait
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    if self._head(lane) is me:
                        if lane.window.try_acquire(now):
                            lane.waiters.popleft()
                            self._notify_head(lane)  # more slots may be free already
                            return
                        until = lane.window.next_change(now)
                    else:
                        until = None
                    if give_up is not None:
                        if now >= give_up:
                            raise TimeoutError(f"no slot within {wait:g} s")
                        until = give_up if until is None else min(until, give_up)
                    me.future = loop.create_future()
                handle = None
                if until is not None:
                    delay = max(until - self._clock(), _MIN_DELAY)
                    handle = loop.call_later(delay, _wake, me.future)
                try:
                    await me.future
                finally:
                    if handle is not None:
                        handle.cancel()
        except BaseException:
            # Cancelled (or the loop is going away): give the turn back.
            with self._lock:
                was_head = bool(lane.waiters) and lane.waiters[0] is me
                with contextlib.suppress(ValueError):
                    lane.waiters.remove(me)
                if was_head:
                    self._notify_head(lane)
            raise

    def _abandon(self, lane: _Lane) -> None:
        with self._lock:
            lane.window.abandon()
            self._notify_head(lane)

    def _release(self, lane: _Lane, *, at_least: float = 0.0) -> None:
        with self._lock:
            lane.window.release(self._clock(), at_least=at_least)
            self._notify_head(lane)

    @staticmethod
    def _head(lane: _Lane) -> _Waiter | None:
        waiters = lane.waiters
        # A waiter whose loop was closed under it can never run again: drop it.
        while waiters and waiters[0].loop.is_closed():
            waiters.popleft()
        return waiters[0] if waiters else None

    def _notify_head(self, lane: _Lane) -> None:
        head = self._head(lane)
        if head is not None:
            _notify(head)


# --------------------------------------------------------------------------- registry

_default: LocalRateLimiter | None = None
_default_lock = threading.Lock()


def default_limiter(*, attempt_timeout: float | None = None) -> LocalRateLimiter:
    """The limiter every client with ``rate_limit=True`` shares in this process.

    ``attempt_timeout``: the asking client's per-attempt timeout; the shared limiter holds a
    slot that got no answer for at least the window plus the longest of its clients' timeouts.
    """
    global _default
    limiter = _default
    if limiter is None:
        with _default_lock:
            if _default is None:
                _default = LocalRateLimiter()
            limiter = _default
    if attempt_timeout is not None:
        limiter.expect_attempt_timeout(attempt_timeout)
    return limiter


def reset_default_limiter() -> None:
    """Forget the shared limiter (tests; after fork); the next client gets a fresh one."""
    global _default
    with _default_lock:
        _default = None
