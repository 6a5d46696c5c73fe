"""The quota limiter: slot arithmetic (pure) and the asyncio limiter on virtual time.

Nothing here sleeps for real: the pure tests pass the clock in, and the asyncio tests run on
an event loop whose clock jumps straight to the next timer whenever no I/O is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import selectors
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge._errors import ThrottledError, TransportError, ValidationError
from aioedge._ratelimit import (
    WINDOW,
    AdaptiveConfig,
    CubicRate,
    LocalRateLimiter,
    RateLimiter,
    SlotWindow,
    answer_lost,
    default_limiter,
    never_sent,
    reset_default_limiter,
)
from aioedge._retry import DeadlineExceededError

T = TypeVar("T")

# --------------------------------------------------------------------------- helpers


class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks: when nothing is ready, the clock jumps by the loop's timeout."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop
        self.calls = 0

    def select(self, timeout: float | None = None) -> Any:
        self.calls += 1
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("virtual loop deadlock: every task waits and no timer is set")
        self._vloop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 1000.0
        self.selector = _VirtualSelector(self)
        super().__init__(self.selector)

    def time(self) -> float:
        return self.now


def run_virtual(make: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(make(loop))
    finally:
        loop.close()


def max_in_window(times: list[float], width: float = 1.0, *, closed: bool = False) -> int:
    """The most arrivals inside any window ``[t, t + width)`` (or ``[t, t + width]``)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and (times[j] <= t + width if closed else times[j] < t + width):
            j += 1
        best = max(best, j - i)
    return best


def limiter_on(loop: VirtualTimeLoop, **kwargs: Any) -> LocalRateLimiter:
    return LocalRateLimiter(clock=loop.time, **kwargs)


# --------------------------------------------------------------------------- pure: bound


def simulate(
    qps: float,
    requests: list[tuple[float, float]],
    *,
    workers: int,
    margin: float = 0.0,
    throttles: frozenset[int] = frozenset(),
) -> tuple[list[float], list[float]]:
    """Drive a SlotWindow with an event simulation.

    ``requests`` are (latency, where-in-flight-it-arrives in [0, 1]); ``workers`` clients send
    them as fast as the window allows.  Request indexes in ``throttles`` get a throttled answer.
    Returns (arrival times, send times).
    """
    window = SlotWindow(qps, window=WINDOW + margin)
    now = 0.0
    pending = list(enumerate(requests))
    pending.reverse()
    answers: list[tuple[float, int]] = []  # heap of (answer time, request)
    idle = workers
    arrivals: list[float] = []
    sends: list[float] = []
    while pending or answers:
        while answers and answers[0][0] <= now:
            _, index = heapq.heappop(answers)
            if index in throttles:
                window.throttled(now)
            window.release(now)
            idle += 1
        while idle and pending and window.try_acquire(now):
            index, (latency, where) = pending.pop()
            sends.append(now)
            arrivals.append(now + where * latency)
            heapq.heappush(answers, (now + latency, index))
            idle -= 1
        if not pending and not answers:
            break
        candidates = [answers[0][0]] if answers else []
        if idle and pending:
            nxt = window.next_change(now)
            if nxt is not None:
                candidates.append(max(nxt, now + 1e-9))
        assert candidates, "simulation stuck"
        now = min(candidates)
    return arrivals, sends


requests_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=2.5, allow_nan=False),
        st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(
    qps=st.sampled_from([1, 2, 5, 10, 50]),
    requests=requests_strategy,
    workers=st.integers(min_value=1, max_value=80),
)
def test_never_more_than_q_arrivals_in_any_window(
    qps: int, requests: list[tuple[float, float]], workers: int
) -> None:
    arrivals, _ = simulate(qps, requests, workers=workers)
    assert len(arrivals) == len(requests)
    assert max_in_window(arrivals) <= qps


@settings(max_examples=100, deadline=None)
@given(
    qps=st.sampled_from([2, 5, 10]),
    requests=requests_strategy,
    workers=st.integers(min_value=1, max_value=40),
    throttles=st.frozensets(st.integers(min_value=0, max_value=119), max_size=30),
)
def test_bound_holds_while_adapting(
    qps: int, requests: list[tuple[float, float]], workers: int, throttles: frozenset[int]
) -> None:
    arrivals, _ = simulate(qps, requests, workers=workers, throttles=throttles)
    assert len(arrivals) == len(requests)
    assert max_in_window(arrivals) <= qps


@settings(max_examples=60, deadline=None)
@given(requests=requests_strategy, workers=st.integers(min_value=1, max_value=40))
def test_margin_makes_closed_windows_safe_too(
    requests: list[tuple[float, float]], workers: int
) -> None:
    arrivals, _ = simulate(5, requests, workers=workers, margin=0.01)
    assert max_in_window(arrivals, closed=True) <= 5


def test_plain_token_bucket_counting_sends_would_fail() -> None:
    """The reason for slots: sends 1 s apart can still arrive inside one window."""
    sends = [0.0] * 5 + [1.0] * 5
    latencies = [0.9] * 5 + [0.0] * 5  # the first five arrive late, the next five early
    arrivals = [s + lat for s, lat in zip(sends, latencies, strict=True)]
    assert max_in_window(arrivals) == 10  # 2Q in one window
    # The slot window would not have let the second five go before 1.9 s.
    ours, _ = simulate(5, [(0.9, 1.0)] * 5 + [(0.0, 0.0)] * 5, workers=10)
    assert max_in_window(ours) == 5
    assert min(ours[5:]) == pytest.approx(1.9)


def test_steady_stream_runs_at_the_quota() -> None:
    # Zero latency: 10 windows of exactly Q requests, one every second.
    _, sends = simulate(10, [(0.0, 0.0)] * 100, workers=100)
    assert sends[:10] == [0.0] * 10
    assert sends[-1] == pytest.approx(9.0)
    # With latency L a slot cycles every L + window: 5 rounds of 0.05 + 1.01.
    _, sends = simulate(10, [(0.05, 0.5)] * 60, workers=60, margin=0.01)
    assert sends[-1] == pytest.approx(5 * 1.06)


def test_fractional_and_tiny_quotas() -> None:
    w = SlotWindow(0.5)
    assert w.max_slots == 1
    assert w.capacity(0.0) == 1
    assert w.hold(0.0) == pytest.approx(2.0)  # one request every two seconds
    w = SlotWindow(10.5)
    assert w.max_slots == 10
    assert w.hold(0.0) == pytest.approx(1.0)  # never shorter than the window
    with pytest.raises(ValueError):
        SlotWindow(0)
    with pytest.raises(ValueError):
        SlotWindow(5, window=0.5)


def test_memory_is_per_action_not_per_request() -> None:
    w = SlotWindow(5)
    now = 0.0
    for _ in range(10_000):
        while not w.try_acquire(now):
            nxt = w.next_change(now)
            assert nxt is not None
            now = nxt
        w.release(now)
        assert len(w._releases) <= 5


def test_next_change_is_none_when_only_answers_can_free_a_slot() -> None:
    w = SlotWindow(2)
    assert w.try_acquire(0.0) and w.try_acquire(0.0)
    assert not w.try_acquire(0.0)
    assert w.next_change(0.0) is None
    assert w.release(0.3) == pytest.approx(1.3)
    assert w.next_change(0.3) == pytest.approx(1.3)
    assert not w.try_acquire(1.2999)
    assert w.try_acquire(1.3)
    with pytest.raises(RuntimeError):
        SlotWindow(1).release(0.0)
    w = SlotWindow(1)
    assert w.try_acquire(0.0)
    w.abandon()  # never sent: free at once
    assert w.try_acquire(0.0)


# --------------------------------------------------------------------------- pure: adaptive


def test_cubic_decrease_and_recovery() -> None:
    c = CubicRate(AdaptiveConfig(beta=0.7, scale=0.4))
    assert c.rate(0.0, 10) == 10
    assert c.throttled(100.0, 10)
    assert c.rate(100.0, 10) == pytest.approx(7.0)
    k = (10 * 0.3 / 0.4) ** (1 / 3)
    assert c.rate(100.0 + k, 10) == pytest.approx(10.0)  # back at W_max after K seconds
    mid = c.rate(100.0 + k / 2, 10)
    assert 7.0 < mid < 10.0
    # Monotone climb.
    samples = [c.rate(100.0 + i * 0.1, 10) for i in range(40)]
    assert samples == sorted(samples)
    assert c.rate(200.0, 10) == 10


def test_cubic_cooldown_and_repeated_throttles() -> None:
    c = CubicRate(AdaptiveConfig(cooldown=1.0))
    assert c.throttled(0.0, 10)
    assert not c.throttled(0.5, 10)  # same congestion event
    assert c.rate(0.5, 10) < 10
    assert c.throttled(1.0, 10)  # a new event: decrease from the current rate
    assert c.rate(1.0, 10) < 7.0
    # Throttled again and again: down to the floor, never below.
    c = CubicRate(AdaptiveConfig(cooldown=0.0))
    for i in range(40):
        c.throttled(i * 0.01, 10)
    assert c.rate(0.4, 10) == pytest.approx(0.5)


def test_time_above_solves_the_curve() -> None:
    c = CubicRate()
    c.throttled(0.0, 10)
    t = c.time_above(0.0, 8, 10)
    assert t is not None
    assert c.rate(t - 0.01, 10) <= 8 < c.rate(t + 1e-3, 10)
    assert c.time_above(0.0, 10, 10) is None
    assert c.time_above(0.0, 6, 10) is None  # already above


def test_slot_window_adapts_capacity_and_hold() -> None:
    w = SlotWindow(10, adaptive=AdaptiveConfig(beta=0.35))
    w.throttled(0.0)
    assert w.rate(0.0) == pytest.approx(3.5)
    assert w.capacity(0.0) == 4
    assert w.hold(0.0) == pytest.approx(4 / 3.5)  # 4 slots every 1.14 s: 3.5 per second
    for _ in range(4):
        assert w.try_acquire(0.0)
    assert not w.try_acquire(0.0)
    # Capacity grows with the curve, with no release at all.
    nxt = w.next_change(0.0)
    assert nxt is not None and nxt > 0
    assert w.capacity(nxt + 1e-3) == 5
    assert w.try_acquire(nxt + 1e-3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=8))
def test_adaptive_stream_recovers_to_the_quota(throttle_at: list[float]) -> None:
    """After the last throttle the stream climbs back to Q per second."""
    w = SlotWindow(10)
    for t in sorted(throttle_at):
        w.throttled(t)
    assert w.rate(40.0) == 10
    assert w.capacity(40.0) == 10


# --------------------------------------------------------------------------- asyncio limiter


def test_fifo_order_under_contention() -> None:
    async def main(loop: VirtualTimeLoop) -> list[int]:
        limiter = limiter_on(loop, margin=0.0)
        order: list[int] = []

        async def worker(i: int) -> None:
            async with limiter.slot("AK", "GetEdgeInstance", 2):
                order.append(i)
                await asyncio.sleep(0.01 * (i % 3))

        tasks = []
        for i in range(12):
            tasks.append(asyncio.create_task(worker(i)))
            await asyncio.sleep(0)  # arrive one after the other
        await asyncio.gather(*tasks)
        return order

    assert run_virtual(main) == list(range(12))


def test_a_newcomer_never_jumps_the_queue() -> None:
    """A request arriving at the very moment a hold ends, while others wait, goes last."""

    async def main(loop: VirtualTimeLoop) -> list[str]:
        limiter = limiter_on(loop, margin=0.0)
        order: list[str] = []

        async def user(name: str, arrive_after: float) -> None:
            if arrive_after:
                await asyncio.sleep(arrive_after)
            async with limiter.slot("AK", "DeleteEdgeInstance", 1):
                order.append(name)

        async with limiter.slot("AK", "DeleteEdgeInstance", 1):
            order.append("first")
        # The slot frees at exactly +1 s.  The newcomers' timers are set before the waiters
        # queue, so at +1 s each newcomer runs before the waiters' wake-ups do.
        newcomers = [asyncio.create_task(user(f"new{i}", 1.0)) for i in range(2)]
        await asyncio.sleep(0)
        waiters = []
        for i in range(2):
            waiters.append(asyncio.create_task(user(f"wait{i}", 0.0)))
            await asyncio.sleep(0)
        assert limiter.waiting("AK", "DeleteEdgeInstance") == 2
        await asyncio.gather(*newcomers, *waiters)
        return order

    assert run_virtual(main) == ["first", "wait0", "wait1", "new0", "new1"]


def test_real_time_bound_and_pace_with_latency() -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[list[float], float]:
        limiter = limiter_on(loop)
        arrivals: list[float] = []
        start = loop.time()

        async def request(i: int) -> None:
            async with limiter.slot("AK", "GetEdgeInstance", 10):
                latency = 0.002 + 0.03 * ((i * 7) % 5) / 4
                await asyncio.sleep(latency * ((i * 3) % 4) / 3)
                arrivals.append(loop.time())
                await asyncio.sleep(latency * (1 - ((i * 3) % 4) / 3))

        await asyncio.gather(*(request(i) for i in range(100)))
        return arrivals, loop.time() - start

    arrivals, elapsed = run_virtual(main)
    assert len(arrivals) == 100
    assert max_in_window(arrivals, closed=True) <= 10
    # 10 rounds; each slot cycles in latency + 1.01 s, latency ≤ 32 ms.
    assert 9 * 1.01 <= elapsed <= 10 * 1.05


def test_cancelled_waiter_gives_its_turn_back() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = limiter_on(loop, margin=0.0)
        got: dict[str, float] = {}

        async def user(name: str, hold: float) -> None:
            async with limiter.slot("AK", "DeleteEdgeInstance", 1):
                got[name] = loop.time()
                await asyncio.sleep(hold)

        t0 = loop.time()
        a = asyncio.create_task(user("a", 0.5))
        await asyncio.sleep(0)
        b = asyncio.create_task(user("b", 0.0))
        c = asyncio.create_task(user("c", 0.0))
        await asyncio.sleep(0.1)
        assert limiter.waiting("AK", "DeleteEdgeInstance") == 2
        b.cancel()  # b is the head waiter; its turn must go to c
        with pytest.raises(asyncio.CancelledError):
            await b
        await asyncio.gather(a, c)
        assert "b" not in got
        assert got["c"] - t0 == pytest.approx(1.5)  # a answered at 0.5, +1 s window
        assert limiter.waiting("AK", "DeleteEdgeInstance") == 0
        assert limiter.in_flight("AK", "DeleteEdgeInstance") == 0

    run_virtual(main)


def test_cancelling_a_timed_head_hands_over_without_delay() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = limiter_on(loop, margin=0.0)
        async with limiter.slot("AK", "X", 1):
            pass  # slot busy until t0 + 1
        t0 = loop.time()
        head = asyncio.create_task(_timed(limiter, loop))
        await asyncio.sleep(0)
        nxt = asyncio.create_task(_timed(limiter, loop))
        await asyncio.sleep(0.2)
        head.cancel()
        assert await nxt - t0 == pytest.approx(1.0)

    run_virtual(main)


async def _timed(limiter: LocalRateLimiter, loop: VirtualTimeLoop) -> float:
    async with limiter.slot("AK", "X", 1):
        return loop.time()


def test_a_failed_request_still_holds_its_slot() -> None:
    async def main(loop: VirtualTimeLoop) -> float:
        limiter = limiter_on(loop, margin=0.0)
        t0 = loop.time()
        with pytest.raises(ThrottledError):
            async with limiter.slot("AK", "X", 1):
                raise ThrottledError("Throttling", "slow down")  # an answer came back
        return await _timed(limiter, loop) - t0

    assert run_virtual(main) == pytest.approx(1.0)


# --------------------------------------------------------------------------- lost answers


def _lost_error() -> TransportError:
    return TransportError("timed out after sending", maybe_executed=True)


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (None, False),
        (ThrottledError("Throttling", "x"), False),
        (TransportError("refused", maybe_executed=False), False),
        (ValidationError("bad", param="p"), False),
        (TransportError("timeout", maybe_executed=True), True),
        (asyncio.CancelledError(), True),
        (ZeroDivisionError(), True),
    ],
)
def test_answer_lost_classifies_exits(error: BaseException | None, lost: bool) -> None:
    assert answer_lost(error) is lost


def _hold_after(exit_with: BaseException, *, in_flight: float, **kwargs: Any) -> float:
    """Seconds from the exit of a slot (after ``in_flight`` s) until the next request gets it."""

    async def main(loop: VirtualTimeLoop) -> float:
        limiter = limiter_on(loop, margin=0.0, **kwargs.pop("limiter", {}))
        with pytest.raises(type(exit_with)):
            async with limiter.slot("AK", "X", 1, **kwargs):
                await asyncio.sleep(in_flight)
                raise exit_with
        t_exit = loop.time()
        return await _timed(limiter, loop) - t_exit

    return run_virtual(main)


def test_a_slot_without_an_answer_is_held_window_plus_attempt_timeout() -> None:
    # Default: the client's default per-attempt timeout (10 s) on top of the window.
    assert _hold_after(_lost_error(), in_flight=0.2) == pytest.approx(WINDOW + 10.0)
    assert _hold_after(
        _lost_error(), in_flight=0.2, limiter={"attempt_timeout": 3.0}
    ) == pytest.approx(WINDOW + 3.0)
    # The slot's own timeout raises it; time spent in flight (a timeout) raises it too.
    assert _hold_after(
        _lost_error(), in_flight=0.2, limiter={"attempt_timeout": 3.0}, timeout=7.0
    ) == pytest.approx(WINDOW + 7.0)
    assert _hold_after(
        _lost_error(), in_flight=4.5, limiter={"attempt_timeout": 3.0}
    ) == pytest.approx(WINDOW + 4.5)
    # A cancellation after sending is no answer either; an answer keeps the plain window.
    assert _hold_after(
        asyncio.CancelledError(), in_flight=0.2, limiter={"attempt_timeout": 2.0}
    ) == pytest.approx(WINDOW + 2.0)
    assert _hold_after(
        ThrottledError("Throttling", "x"), in_flight=0.2, limiter={"attempt_timeout": 2.0}
    ) == pytest.approx(WINDOW)


def test_a_slot_given_up_before_sending_is_free_at_once() -> None:
    # The client found too little time left before its retry deadline and sent nothing.
    error = DeadlineExceededError("not sent", action="X")
    assert never_sent(error) and not answer_lost(error)
    assert not never_sent(TransportError("refused", maybe_executed=False))
    assert not never_sent(None)
    assert _hold_after(error, in_flight=0.2) == pytest.approx(0.0)

    async def main(loop: VirtualTimeLoop) -> int:
        limiter = limiter_on(loop)
        with pytest.raises(DeadlineExceededError):
            async with limiter.slot("AK", "X", 1):
                raise error
        return limiter.in_flight("AK", "X")

    assert run_virtual(main) == 0


def test_a_late_arrival_after_a_timeout_stays_inside_the_bound() -> None:
    """Requests the client gave up on still arrive (up to the timeout later): ≤ Q per window."""

    async def main(loop: VirtualTimeLoop) -> list[float]:
        timeout = 0.5
        limiter = limiter_on(loop, attempt_timeout=timeout)
        arrivals: list[float] = []

        async def late(delay: float) -> None:
            await asyncio.sleep(delay)
            arrivals.append(loop.time())

        background: list[asyncio.Task[None]] = []

        async def request(i: int) -> None:
            with contextlib.suppress(TransportError):
                async with limiter.slot("AK", "GetEdgeInstance", 10, timeout=timeout):
                    if i < 10:
                        # The first round is stuck in the network: each request arrives just
                        # before the client's timeout has passed again after it gave up.
                        background.append(asyncio.create_task(late(2 * timeout - 0.01)))
                        await asyncio.sleep(timeout)
                        raise _lost_error()
                    arrivals.append(loop.time())
                    await asyncio.sleep(0.005)

        await asyncio.gather(*(request(i) for i in range(60)))
        await asyncio.gather(*background)
        return arrivals

    arrivals = run_virtual(main)
    assert len(arrivals) == 60
    assert max_in_window(arrivals, closed=True) <= 10


def test_default_limiter_takes_the_longest_client_timeout() -> None:
    with _fresh_default():
        assert default_limiter().attempt_timeout == 10.0
        assert default_limiter(attempt_timeout=30.0).attempt_timeout == 30.0
        assert default_limiter(attempt_timeout=2.0).attempt_timeout == 30.0  # never lowered
    with pytest.raises(ValueError, match="attempt_timeout"):
        LocalRateLimiter(attempt_timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        LocalRateLimiter().slot("AK", "X", 1, timeout=math.nan)


def test_no_busy_waiting() -> None:
    async def main(loop: VirtualTimeLoop) -> int:
        limiter = limiter_on(loop)
        before = loop.selector.calls
        await asyncio.gather(*(_timed(limiter, loop) for _ in range(60)))
        return loop.selector.calls - before

    # 60 requests at 1 per second: a handful of loop iterations per request, not thousands.
    assert run_virtual(main) < 60 * 6


def test_lanes_are_independent_and_overrides_apply() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = limiter_on(loop, margin=0.0, overrides={"Fast": math.inf, "Slow": 1})
        t0 = loop.time()
        await asyncio.gather(*(_timed(limiter, loop) for _ in range(3)))
        assert loop.time() - t0 == pytest.approx(2.0)  # "X" at 1 QPS
        t1 = loop.time()
        other_scope = [limiter.slot("other-account", "X", 1) for _ in range(1)]
        for cm in other_scope:
            async with cm:
                pass
        assert loop.time() == t1  # another scope has its own quota
        for _ in range(100):
            async with limiter.slot("AK", "Fast", 5):
                pass
        assert loop.time() == t1  # inf: unlimited
        times = []
        for _ in range(3):
            async with limiter.slot("AK", "Slow", 50):
                times.append(loop.time())
        assert times[-1] - times[0] == pytest.approx(2.0)  # the override wins over 50

    run_virtual(main)


def test_throttle_report_slows_the_lane_then_it_recovers() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = limiter_on(loop, margin=0.0)
        assert limiter.rate("AK", "GetEdgeInstance") is None
        async with limiter.slot("AK", "GetEdgeInstance", 10):
            pass
        limiter.report_throttled("AK", "GetEdgeInstance")
        limiter.report_success("AK", "GetEdgeInstance")
        assert limiter.rate("AK", "GetEdgeInstance") == pytest.approx(7.0)
        limiter.report_throttled("AK", "Unknown")  # no lane: ignored
        arrivals: list[float] = []

        async def one() -> None:
            async with limiter.slot("AK", "GetEdgeInstance", 10):
                arrivals.append(loop.time())

        t0 = loop.time()
        await asyncio.gather(*(one() for _ in range(40)))
        # Slower than 10/s at first, never above 10 per window, back to 10/s later.
        assert max_in_window(arrivals) <= 10
        # 0.7 × 10 slots at first, one of them still held by the call before the throttle.
        assert sum(1 for a in arrivals if a == t0) == 6
        assert sum(1 for a in arrivals if a < t0 + 1) < 10
        assert limiter.rate("AK", "GetEdgeInstance") == 10

    run_virtual(main)


def test_protocol_and_registry() -> None:
    reset_default_limiter()
    a = default_limiter()
    assert a is default_limiter()
    assert isinstance(a, RateLimiter)
    reset_default_limiter()
    assert default_limiter() is not a
    assert "LocalRateLimiter" in repr(a)
    with pytest.raises(ValueError):
        LocalRateLimiter(margin=-1)
    with pytest.raises(ValueError):
        LocalRateLimiter(overrides={"X": 0})


@contextmanager
def _fresh_default() -> Iterator[LocalRateLimiter]:
    reset_default_limiter()
    try:
        yield default_limiter()
    finally:
        reset_default_limiter()


def test_shared_limiter_survives_event_loops() -> None:
    """Each asyncio.run has its own loop; the process-wide limiter keeps working."""
    with _fresh_default() as limiter:

        async def once() -> None:
            async with limiter.slot("AK", "QueryDeviceProvisioning", math.inf):
                pass
            async with limiter.slot("AK", "Cross", 1000):
                pass

        for _ in range(3):
            asyncio.run(once())
        assert limiter.in_flight("AK", "Cross") == 0

        # A waiter stranded on a loop that was closed under it does not block later loops.
        stranded = asyncio.new_event_loop()
        lane = limiter._lane("AK", "Stranded", 1)

        async def hold_and_strand() -> None:
            async with limiter.slot("AK", "Stranded", 1):
                pass
            asyncio.get_running_loop().create_task(_noop_wait(limiter))
            await asyncio.sleep(0.01)

        stranded.run_until_complete(hold_and_strand())
        assert len(lane.waiters) == 1
        for task in asyncio.all_tasks(stranded):
            task._log_destroy_pending = False  # type: ignore[attr-defined]  # on purpose
        stranded.close()  # the waiting task never finishes
        lane.window._releases.clear()  # pretend its window passed

        async def later() -> None:
            async with limiter.slot("AK", "Stranded", 1):
                pass

        asyncio.run(asyncio.wait_for(later(), 5))
        assert len(lane.waiters) == 0


async def _noop_wait(limiter: LocalRateLimiter) -> None:
    async with limiter.slot("AK", "Stranded", 1):
        pass


def test_threads_with_their_own_loops_share_the_quota() -> None:
    """Real time, kept short: 2 threads × 3 requests at 3 QPS is one window of waiting."""
    limiter = LocalRateLimiter(margin=0.0)
    sends: list[float] = []
    lock = threading.Lock()

    def thread_main() -> None:
        async def run() -> None:
            for _ in range(3):
                async with limiter.slot("AK", "Threads", 3):
                    with lock:
                        sends.append(time.monotonic())

        asyncio.run(run())

    threads = [threading.Thread(target=thread_main) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(sends) == 6
    assert max_in_window(sends) <= 3


# --------------------------------------------------------------------------- bounded wait


def test_a_bounded_wait_gives_up_on_time_and_keeps_the_queue_in_order() -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[list[str], float, int]:
        limiter = limiter_on(loop, margin=0.0)
        order: list[str] = []
        async with limiter.slot("AK", "X", 1):  # the one slot: held until t0 + 1 s
            pass
        t0 = loop.time()

        async def take(name: str, wait: float | None) -> None:
            try:
                async with limiter.slot("AK", "X", 1, wait=wait):
                    order.append(f"{name}@{loop.time() - t0:g}")
            except TimeoutError:
                order.append(f"{name} gave up@{loop.time() - t0:g}")

        await asyncio.gather(take("a", 0.25), take("b", None), take("c", 5.0))
        return order, loop.time() - t0, limiter.waiting("AK", "X")

    order, _, waiting = run_virtual(main)
    # a gives up at 0.25 s without blocking b (now head, granted at 1 s); c follows at 2 s.
    assert order == ["a gave up@0.25", "b@1", "c@2"]
    assert waiting == 0


def test_wait_zero_takes_only_a_slot_free_at_once() -> None:
    async def main(loop: VirtualTimeLoop) -> list[str]:
        limiter = limiter_on(loop)
        seen: list[str] = []
        async with limiter.slot("AK", "X", 1, wait=0):
            seen.append("free: granted")
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            async with limiter.slot("AK", "X", 1, wait=0):
                pass
        seen.append(f"busy: refused after {loop.time() - t0:g} s")
        seen.append(f"waiting {limiter.waiting('AK', 'X')}")
        with pytest.raises(ValueError, match="wait"):
            limiter.slot("AK", "X", 1, wait=-1)
        return seen

    assert run_virtual(main) == ["free: granted", "busy: refused after 0 s", "waiting 0"]


@pytest.mark.parametrize(
    ("field", "bad"),
    [("scale", 0.0), ("scale", math.nan), ("min_rate", math.nan), ("cooldown", -1.0),
     ("cooldown", math.nan)],
)  # fmt: skip
def test_adaptive_settings_refuse_a_bad_field_by_its_name(field: str, bad: float) -> None:
    # The library's one rules for "> 0" and ">= 0": NaN passed the '<= 0' test here.
    with pytest.raises(ValidationError) as info:
        AdaptiveConfig(**{field: bad})  # type: ignore[arg-type]
    assert info.value.param == field


@pytest.mark.parametrize("bad", [-0.1, math.nan])
def test_a_limiters_margin_is_a_number_of_seconds_at_least_zero(bad: float) -> None:
    with pytest.raises(ValidationError) as info:
        LocalRateLimiter(margin=bad)
    assert info.value.param == "margin" and "must be >= 0" in str(info.value)
