"""Retry decisions: the full table, jitter bounds, limits, the deadline and the testing switch."""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aioedge
from aioedge._errors import (
    AlreadyExistsError,
    ApiError,
    AuthError,
    ConflictError,
    CredentialsError,
    DeploymentError,
    EdgeError,
    InvalidParameterError,
    InvalidResponseError,
    LimitExceededError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
    ValidationError,
    error_class_for,
    is_transient,
    may_have_run,
)
from aioedge._retry import (
    DeadlineExceededError,
    RetryPolicy,
    is_retryable,
    is_testing,
    set_testing,
)

# (error, retried for a read-only Action, retried for a mutating Action)
TABLE: list[tuple[str, EdgeError, bool, bool]] = [
    ("throttled 400", ThrottledError("Throttling.User", http_status=400), True, True),
    ("throttled 429", ThrottledError("Throttling", http_status=429), True, True),
    (
        "throttled 200",
        ThrottledError("iot.common.HighFrequentDeny", http_status=200),
        True,
        True,
    ),
    ("503", ServiceUnavailableError("ServiceUnavailable", http_status=503), True, True),
    ("503 no code", ServiceUnavailableError("InternalError", http_status=503), True, True),
    ("500", ServiceUnavailableError("InternalError", http_status=500), True, False),
    ("502", ServiceUnavailableError("BadGateway", http_status=502), True, False),
    ("iot.system", ServiceUnavailableError("iot.system.SystemError", http_status=200), True, False),
    ("refused", TransportError("refused", maybe_executed=False), True, True),
    ("timeout", TransportError("timed out", maybe_executed=True), True, False),
    ("garbled", InvalidResponseError("InvalidResponse", http_status=200), True, False),
    ("validation", ValidationError("bad", param="X", rule="required"), False, False),
    ("credentials", CredentialsError("none"), False, False),
    # The identity service hiccupped: no key, so nothing was sent to Link IoT Edge.
    ("credentials, transient", CredentialsError("STS down", transient=True), True, True),
    ("deployment", DeploymentError("gone"), False, False),
    ("auth", AuthError("SignatureDoesNotMatch", http_status=400), False, False),
    ("param", InvalidParameterError("iot.common.InvalidParam"), False, False),
    ("not found", NotFoundError("iot.edge.InstanceNotExist"), False, False),
    ("exists", AlreadyExistsError("iot.edge.InstanceNameExist"), False, False),
    ("limit", LimitExceededError("iot.edge.InstanceLimitation"), False, False),
    ("conflict", ConflictError("iot.edge.deploySheetAlreadyExist"), False, False),
    ("api", ApiError("Something.Else"), False, False),
]


@pytest.mark.parametrize(
    ("error", "read_only", "mutating"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_decision_table(error: EdgeError, read_only: bool, mutating: bool) -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    assert is_retryable(error, read_only=True) is read_only
    assert is_retryable(error, read_only=False) is mutating
    got_ro = policy.decide(error, attempt=1, read_only=True, elapsed=0.0, rng=rng)
    got_mut = policy.decide(error, attempt=1, read_only=False, elapsed=0.0, rng=rng)
    assert (got_ro is not None) is read_only
    assert (got_mut is not None) is mutating


@pytest.mark.parametrize(
    ("error", "read_only", "mutating"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_the_watch_batches_and_rollouts_ask_the_same_rules(
    error: EdgeError, read_only: bool, mutating: bool
) -> None:
    """A watch polls a read-only Action again after exactly what the client retries for one;
    what may have run (a batch chunk's ``unknown``, a rollout's look for its deployment, the
    CLI's note) is exactly what is transient yet not retried for a mutating Action."""
    from aioedge.watch import _tracker

    assert _tracker.is_transient is is_transient
    assert is_transient(error) is read_only
    assert may_have_run(error) is (read_only and not mutating)


def test_every_throttling_form_is_retried_for_mutating_calls() -> None:
    for code, status in [
        ("Throttling", 400),
        ("Throttling.User", 400),
        ("Throttling.Api", 503),
        ("iot.common.HighFrequentDeny", 200),
        ("Anything", 429),
    ]:
        error = error_class_for(code, status)(code, http_status=status)
        assert isinstance(error, ThrottledError)
        assert RetryPolicy().decide(error, attempt=1, read_only=False, elapsed=0) is not None


@given(attempt=st.integers(min_value=1, max_value=30), seed=st.integers(0, 2**32))
def test_full_jitter_bounds(attempt: int, seed: int) -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=0.1, max_delay=5.0, deadline=None)
    error = TransportError("refused", maybe_executed=False)
    delay = policy.decide(
        error, attempt=attempt, read_only=False, elapsed=0, rng=random.Random(seed)
    )
    assert delay is not None
    assert 0.0 <= delay <= min(5.0, 0.1 * 2 ** (attempt - 1))


@given(attempt=st.integers(min_value=1, max_value=30), seed=st.integers(0, 2**32))
def test_throttled_backoff_has_a_floor_and_a_cap(attempt: int, seed: int) -> None:
    policy = RetryPolicy(max_attempts=100, throttle_base_delay=1.0, throttle_min_delay=0.25)
    error = ThrottledError("Throttling.User", http_status=400)
    delay = policy.decide(
        error, attempt=attempt, read_only=True, elapsed=0, rng=random.Random(seed)
    )
    assert delay is not None
    assert 0.25 <= delay <= max(0.25, min(20.0, 1.0 * 2 ** (attempt - 1)))


def test_seeded_rng_is_deterministic_and_jitter_spreads() -> None:
    policy = RetryPolicy(max_attempts=10, deadline=None)
    error = ServiceUnavailableError("ServiceUnavailable", http_status=503)
    a = [
        policy.decide(error, attempt=5, read_only=False, elapsed=0, rng=random.Random(7))
        for _ in "ab"
    ]
    assert a[0] == a[1]
    rng = random.Random(3)
    draws = [policy.backoff(5, rng=rng) for _ in range(200)]
    assert min(draws) < 0.3 and max(draws) > 1.3  # spread over [0, 1.6]


def test_attempt_limit() -> None:
    policy = RetryPolicy(max_attempts=3)
    error = TransportError("refused", maybe_executed=False)
    assert policy.decide(error, attempt=1, read_only=True, elapsed=0) is not None
    assert policy.decide(error, attempt=2, read_only=True, elapsed=0) is not None
    assert policy.decide(error, attempt=3, read_only=True, elapsed=0) is None
    assert RetryPolicy(max_attempts=1).decide(error, attempt=1, read_only=True, elapsed=0) is None


def test_deadline() -> None:
    policy = RetryPolicy(max_attempts=50, base_delay=1.0, max_delay=1.0, deadline=10.0)
    error = TransportError("refused", maybe_executed=False)
    rng = random.Random(0)
    assert policy.decide(error, attempt=2, read_only=True, elapsed=1.0, rng=rng) is not None
    assert policy.decide(error, attempt=2, read_only=True, elapsed=9.99999, rng=rng) is None
    assert policy.decide(error, attempt=2, read_only=True, elapsed=10.0, rng=rng) is None
    unbounded = RetryPolicy(max_attempts=50, deadline=None)
    assert unbounded.decide(error, attempt=2, read_only=True, elapsed=1e9) is not None


def test_the_deadline_caps_each_attempt_timeout() -> None:
    policy = RetryPolicy(deadline=1.0)
    assert policy.remaining(0.25) == pytest.approx(0.75)
    assert policy.remaining(3.0) == 0.0
    assert policy.attempt_timeout(0.9, elapsed=0.0) == pytest.approx(0.9)  # room enough
    # The second attempt of a call with timeout 0.9 starts at 0.95 s: 0.05 s left, not 0.9.
    assert policy.attempt_timeout(0.9, elapsed=0.95) == pytest.approx(0.05)
    assert 0 < policy.attempt_timeout(0.9, elapsed=5.0) <= 0.001  # never 0 (aiohttp: no bound)
    unbounded = RetryPolicy(deadline=None)
    assert unbounded.remaining(1e9) is None
    assert unbounded.attempt_timeout(0.9, elapsed=1e9) == 0.9


def test_nothing_is_sent_with_less_than_min_attempt_timeout_left() -> None:
    policy = RetryPolicy(deadline=4.0, min_attempt_timeout=0.5)
    assert policy.slot_wait(1.0) == pytest.approx(2.5)  # 3 s left, 0.5 kept for the attempt
    assert policy.slot_wait(3.7) == 0.0
    assert policy.can_send(3.5) and not policy.can_send(3.51)
    assert RetryPolicy(deadline=None).slot_wait(1e9) is None
    assert RetryPolicy(deadline=None).can_send(1e9)
    assert RetryPolicy().min_attempt_timeout == 0.2
    # A retry that would start with less than min_attempt_timeout left is not made.
    error = TransportError("refused", maybe_executed=False)
    fast = RetryPolicy(deadline=4.0, min_attempt_timeout=0.5, base_delay=0.0)
    assert fast.decide(error, attempt=1, read_only=False, elapsed=3.4) == 0.0
    assert fast.decide(error, attempt=1, read_only=False, elapsed=3.6) is None
    for bad in ({"min_attempt_timeout": 0.0}, {"deadline": 0.2, "min_attempt_timeout": 0.2}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_deadline_exceeded_is_a_transport_error_that_ran_nothing() -> None:
    err = DeadlineExceededError("GetEdgeInstance not sent", action="GetEdgeInstance")
    assert isinstance(err, TransportError) and err.maybe_executed is False
    assert aioedge.DeadlineExceededError is DeadlineExceededError
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, DeadlineExceededError) and again.action == "GetEdgeInstance"
    assert str(again) == str(err) and again.maybe_executed is False


def test_testing_switch_makes_delays_zero() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=5.0)
    error = ThrottledError("Throttling", http_status=400)
    assert not is_testing()
    with set_testing(True):
        assert is_testing()
        assert policy.decide(error, attempt=1, read_only=False, elapsed=0) == 0.0
        assert policy.decide(error, attempt=3, read_only=False, elapsed=0) is None  # limit kept
        with set_testing(False):
            delay = policy.decide(error, attempt=1, read_only=False, elapsed=0)
            assert delay is not None and delay > 0
        assert is_testing()
    assert not is_testing()
    set_testing(True)
    try:
        assert policy.decide(error, attempt=2, read_only=False, elapsed=0) == 0.0
    finally:
        set_testing(False)


def test_policy_is_a_frozen_keyword_only_value() -> None:
    policy = RetryPolicy(max_attempts=2)
    assert policy == RetryPolicy(max_attempts=2)
    with pytest.raises(AttributeError):
        policy.max_attempts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(3)  # type: ignore[call-arg]
    for bad in ({"max_attempts": 0}, {"base_delay": -1.0}, {"deadline": 0.0}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)


@pytest.mark.parametrize(
    ("http_status", "code", "not_executed"),
    [
        (503, "ServiceUnavailable", True),
        (503, "InternalError", True),
        (None, "ServiceUnavailableTemporary", True),
        (500, "InternalError", False),
        (500, "iot.system.SystemException", False),
    ],
)
def test_a_503_was_not_executed_for_retries_and_batches_alike(
    http_status: int | None, code: str, not_executed: bool
) -> None:
    from aioedge._batch import ChunkOutcome

    error = ServiceUnavailableError(code, "m", http_status=http_status)
    assert error.not_executed is not_executed
    # A mutating call is retried only when it did not run ...
    assert is_retryable(error, read_only=False) is not_executed
    # ... and a mutating chunk whose answer says it may have run is "unknown", not "failed".
    chunk = ChunkOutcome(chunk=1, first=1, items=("a",), error=error, read_only=False)
    assert chunk.status == ("failed" if not_executed else "unknown")


NAN = float("nan")


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("max_attempts", 0),
        ("max_attempts", 2.5),
        ("max_attempts", NAN),
        ("base_delay", -0.1),
        ("base_delay", NAN),
        ("max_delay", NAN),
        ("throttle_base_delay", NAN),
        ("throttle_min_delay", -1.0),
        ("deadline", 0.0),
        ("deadline", NAN),
        ("min_attempt_timeout", 0.0),
        ("min_attempt_timeout", NAN),
    ],
)
def test_a_retry_policy_refuses_a_bad_field_by_its_name(field: str, bad: float) -> None:
    # The one rules for a count and a bound (NaN refused): a NaN deadline or delay used to
    # pass every "< 0" test and make each decision NaN.
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**{field: bad})  # type: ignore[arg-type]
    assert info.value.param == field


def test_a_retry_policy_takes_its_bounds() -> None:
    policy = RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0, deadline=None)
    assert policy.max_attempts == 1 and policy.deadline is None
    with pytest.raises(ValidationError) as info:  # no attempt could ever be sent
        RetryPolicy(deadline=0.5, min_attempt_timeout=0.5)
    assert info.value.param == "deadline" and info.value.rule == "dependency"
