"""The service's ``x-acs-retry-after`` hint: read from the answer, the floor of the next
attempt's backoff and of the Action's slot hold; the emulator sends it when it throttles."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from aioedge import EdgeClient, RetryPolicy, ThrottledError
from aioedge._catalog import get_operation
from aioedge._errors import ApiError, ServiceUnavailableError, may_have_run
from aioedge._hooks import CallInfo
from aioedge._protocol import MAX_RETRY_AFTER, incomplete_response, parse_response, retry_after
from aioedge._ratelimit import LocalRateLimiter
from aioedge._retry import is_retryable, set_testing
from aioedge.testing import Emulator, FakeClock

OP = get_operation("GetEdgeInstance")
THROTTLED = b'{"RequestId":"R1","Code":"Throttling.User","Message":"flow control"}'


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("1500", 1.5),
        ("0", 0.0),
        ("250.5", 0.2505),
        ("abc", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        ("999999999", MAX_RETRY_AFTER),
    ],
)
def test_the_hint_counts_milliseconds(raw: str, seconds: float | None) -> None:
    assert retry_after({"x-acs-retry-after": raw}) == seconds
    assert retry_after({}) is None


def test_a_throttled_or_503_answer_carries_the_hint_and_nothing_else_does() -> None:
    headers = {"x-acs-retry-after": "1200"}
    with pytest.raises(ThrottledError) as throttled:
        parse_response(OP, 400, headers, THROTTLED)
    assert throttled.value.retry_after == 1.2
    busy = b'{"RequestId":"R2","Code":"ServiceUnavailable","Message":"busy"}'
    with pytest.raises(ServiceUnavailableError) as unavailable:
        parse_response(OP, 503, headers, busy)
    assert unavailable.value.retry_after == 1.2
    bad = b'{"RequestId":"R3","Code":"iot.common.InvalidParam","Message":"no"}'
    with pytest.raises(ApiError) as other:
        parse_response(OP, 400, headers, bad)
    assert other.value.retry_after is None  # the hint means nothing on a refusal


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # A "ServiceUnavailable" code is a refusal before the work at any status: the retry
        # policy repeats it for a mutating Action too, so its hint is read as a 503's is.
        (500, b'{"RequestId":"R4","Code":"ServiceUnavailable","Message":"busy"}'),
        (200, b'{"RequestId":"R5","Success":false,"Code":"ServiceUnavailable"}'),
        (400, b'{"RequestId":"R6","Code":"ServiceUnavailableTemporary","Message":"later"}'),
    ],
)
def test_the_hint_is_read_wherever_the_request_was_turned_away(status: int, body: bytes) -> None:
    with pytest.raises(ServiceUnavailableError) as info:
        parse_response(OP, status, {"x-acs-retry-after": "800"}, body)
    err = info.value
    assert err.not_executed and is_retryable(err, read_only=False)
    assert err.retry_after == 0.8


def test_a_503_cut_off_on_the_wire_is_no_refusal_and_its_hint_is_not_read() -> None:
    # A body cut off mid-way is not proof that nothing ran (the retry policy does not repeat
    # it for a mutating Action), so its hint is not taken as the service's word either.
    err = incomplete_response("GetEdgeInstance", 503, {"x-acs-retry-after": "800"}, b'{"Re', 40)
    assert may_have_run(err) and not is_retryable(err, read_only=False)
    assert err.retry_after is None


def _throttled(hint: float | None) -> ThrottledError:
    err = ThrottledError("Throttling.User", "flow control", http_status=400)
    err.retry_after = hint
    return err


def test_decide_takes_the_hint_as_the_floor_of_its_backoff() -> None:
    policy = RetryPolicy(throttle_base_delay=0.1, throttle_min_delay=0.0, max_delay=0.2)
    for seed in range(50):
        delay = policy.decide(
            _throttled(None), attempt=1, read_only=True, elapsed=0.0, rng=random.Random(seed)
        )
        assert delay is not None and delay <= 0.1
        hinted = policy.decide(
            _throttled(None),
            attempt=1,
            read_only=True,
            elapsed=0.0,
            retry_after=3.0,  # above max_delay: the service's word wins
            rng=random.Random(seed),
        )
        assert hinted == 3.0
    # A longer backoff is kept: the hint is a floor, not the delay.
    slow = RetryPolicy(throttle_base_delay=5.0, throttle_min_delay=5.0)
    assert slow.decide(_throttled(None), attempt=1, read_only=True, elapsed=0, retry_after=1) == 5


def test_a_hint_past_the_deadline_gives_up_and_testing_mode_zeroes_it() -> None:
    policy = RetryPolicy(deadline=2.0)
    assert (
        policy.decide(_throttled(None), attempt=1, read_only=True, elapsed=0.5, retry_after=10.0)
        is None
    )
    with set_testing(True):
        assert (
            policy.decide(_throttled(None), attempt=1, read_only=True, elapsed=0, retry_after=1)
            == 0
        )


async def test_a_hint_holds_the_local_slot_at_least_that_long() -> None:
    clock = FakeClock(100.0)
    limiter = LocalRateLimiter(clock=clock, margin=0.0)
    with pytest.raises(ThrottledError):
        async with limiter.slot("k", "GetEdgeInstance", 1):
            raise _throttled(4.0)
    clock.advance(3.9)  # past the 1 s window, not past the hint
    with pytest.raises(TimeoutError):
        async with limiter.slot("k", "GetEdgeInstance", 1, wait=0):
            pass
    clock.advance(0.2)
    async with limiter.slot("k", "GetEdgeInstance", 1, wait=0):
        pass
    # Without a hint the ordinary window applies.
    clock2 = FakeClock(0.0)
    plain = LocalRateLimiter(clock=clock2, margin=0.0)
    with pytest.raises(ThrottledError):
        async with plain.slot("k", "GetEdgeInstance", 1):
            raise _throttled(None)
    clock2.advance(1.05)
    async with plain.slot("k", "GetEdgeInstance", 1, wait=0):
        pass


async def test_the_emulator_hints_when_the_window_frees_a_place() -> None:
    quota_clock = FakeClock(0.0)
    async with Emulator(quota_scale=0.1, quota_clock=quota_clock) as emu:  # 1 QPS
        client = EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False, retry=None
        )
        async with client:
            created = await client.call("CreateEdgeInstance", {"Name": "hinted"})
            params = {"InstanceId": created["InstanceId"]}
            await client.call("GetEdgeInstance", params)
            quota_clock.advance(0.25)
            with pytest.raises(ThrottledError) as exc:
                await client.call("GetEdgeInstance", params)
            assert exc.value.retry_after == pytest.approx(0.75)
    async with Emulator(quota_scale=0.1, quota_clock=FakeClock(0.0), retry_after_hint=False) as emu:
        client = EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False, retry=None
        )
        async with client:
            created = await client.call("CreateEdgeInstance", {"Name": "plain"})
            params = {"InstanceId": created["InstanceId"]}
            await client.call("GetEdgeInstance", params)
            with pytest.raises(ThrottledError) as exc:
                await client.call("GetEdgeInstance", params)
            assert exc.value.retry_after is None


class Recorder:
    def __init__(self) -> None:
        self.retries: list[CallInfo] = []

    def on_retry(self, info: CallInfo) -> None:
        self.retries.append(info)


async def test_the_emulators_hint_delays_the_next_attempt_by_at_least_that_much() -> None:
    # A backoff of zero: only the hint can make the client wait.  Real time here (the
    # client sleeps on the event loop's clock, which the emulator's quota window shares).
    recorder = Recorder()
    zero = RetryPolicy(
        max_attempts=3,
        base_delay=0.0,
        max_delay=0.0,
        throttle_base_delay=0.0,
        throttle_min_delay=0.0,
        deadline=None,
    )
    async with Emulator(quota_scale=0.1, throttle_style="http") as emu:  # 1 QPS, real clock
        client = EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=False,
            retry=zero,
            hooks=[recorder],
        )
        async with client:
            created = await client.call("CreateEdgeInstance", {"Name": "waits"})
            params: dict[str, Any] = {"InstanceId": created["InstanceId"]}
            t0 = time.monotonic()
            await client.call("GetEdgeInstance", params)
            await client.call("GetEdgeInstance", params)  # throttled once, then accepted
            spent = time.monotonic() - t0
    gets = [r for r in emu.requests if r.action == "GetEdgeInstance"]
    assert [r.outcome for r in gets] == ["executed", "throttled", "executed"]
    (retry,) = recorder.retries
    assert retry.retry_after is not None and retry.retry_after > 0.5
    assert retry.delay is not None and retry.delay >= retry.retry_after
    # The retry arrived no sooner than the hint said, measured on the emulator's own clock.
    assert gets[2].arrival - gets[1].arrival >= retry.retry_after - 0.005
    assert gets[2].arrival - gets[0].arrival >= 1.0
    assert spent >= retry.retry_after
