"""RedisRateLimiter against a real redis-server.

CI exports AIOEDGE_TEST_REDIS_URL (a redis started by .ci/run) and AIOEDGE_REQUIRE_REDIS=1.
Elsewhere the tests try redis://127.0.0.1:6379/0 and skip, with the reason, when no Redis
answers or the redis package is not installed; with AIOEDGE_REQUIRE_REDIS=1 or CI set they
fail instead.  Redis keeps real time,
so these tests run at quotas high enough to take a second or two each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from aioedge._errors import ThrottledError, TransportError, ValidationError
from aioedge._ratelimit import RateLimiter
from aioedge._redis import RedisRateLimiter, RedisUnavailableError
from aioedge._retry import DeadlineExceededError

from .test_ratelimit import max_in_window

REQUIRED = os.environ.get("AIOEDGE_REQUIRE_REDIS") == "1" or bool(os.environ.get("CI"))

# pytest.importorskip, except where Redis is required: there a missing package is an error.
try:
    import redis
    from redis.crc import key_slot
except ImportError as exc:
    message = "the redis package is not installed: pip install 'aioedge[redis]'"
    if REQUIRED:
        raise ImportError(
            f"Redis is required here (AIOEDGE_REQUIRE_REDIS=1 or CI) but {message}"
        ) from exc
    pytest.skip(message, allow_module_level=True)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[1]


def _redis_url() -> str:
    url = os.environ.get("AIOEDGE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        reason = f"no Redis answers at {url} ({type(exc).__name__}); set AIOEDGE_TEST_REDIS_URL"
        if REQUIRED:
            pytest.fail(f"Redis is required here: {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _redis_url()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A fresh key prefix per test; its keys are deleted afterwards."""
    value = f"aioedge-test-{uuid.uuid4().hex[:10]}"
    yield value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{value}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
async def make(redis_url: str, prefix: str) -> AsyncIterator[Callable[..., RedisRateLimiter]]:
    made: list[RedisRateLimiter] = []

    def factory(**kwargs: Any) -> RedisRateLimiter:
        kwargs.setdefault("prefix", prefix)
        limiter = RedisRateLimiter(redis_url, **kwargs)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        await limiter.aclose()


def zcard(url: str, key: str) -> int:
    return int(redis.Redis.from_url(url).zcard(key))


def started(url: str, limiter: RedisRateLimiter, scope: str, *actions: str) -> None:
    """Mark lanes as a Redis in use for a while has them: their first call does not wait the
    one window a lane Redis has no record of waits (tested in test_redis_fallback)."""
    client = redis.Redis.from_url(url)
    for action in actions:
        client.set(limiter.keys(scope, action)[3], "0")


# --------------------------------------------------------------------------- one process


async def test_bound_holds_and_slots_return(
    make: Callable[..., RedisRateLimiter], redis_url: str
) -> None:
    limiter = make()
    assert isinstance(limiter, RateLimiter)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def one(i: int) -> None:
        async with limiter.slot("AK", "GetEdgeInstance", 25):
            await asyncio.sleep(0.002 * (i % 7))
            arrivals.append(loop.time())
            await asyncio.sleep(0.002 * (i % 3))

    await asyncio.gather(*(one(i) for i in range(60)))
    assert len(arrivals) == 60
    assert max_in_window(arrivals, closed=True) <= 25
    inflight, held, *_ = limiter.keys("AK", "GetEdgeInstance")
    assert zcard(redis_url, inflight) == 0
    assert 0 < zcard(redis_url, held) <= 25


async def test_keys_share_one_cluster_slot_and_the_prefix(
    make: Callable[..., RedisRateLimiter], redis_url: str, prefix: str
) -> None:
    limiter = make()
    keys = limiter.keys("AK{odd}", "BatchGetEdgeDriver")
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert all(k.startswith(f"{prefix}:{{AK(odd):BatchGetEdgeDriver}}:") for k in keys)
    async with limiter.slot("AK{odd}", "BatchGetEdgeDriver", 5):
        pass
    found = {k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=f"{prefix}:*")}
    assert found and found <= set(keys)


async def test_a_crashed_holder_frees_its_slot_after_the_lease(
    make: Callable[..., RedisRateLimiter],
) -> None:
    crashed = make(lease=0.3, attempt_timeout=0.1)
    state = crashed._state()
    token = await crashed._acquire(state, "AK", "DeleteEdgeInstance", 1)  # never released
    assert token
    other = make()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with other.slot("AK", "DeleteEdgeInstance", 1):
        waited = loop.time() - t0
    assert 0.25 <= waited < 5  # the lease, not forever


async def test_fifo_and_cancellation_within_a_process(
    make: Callable[..., RedisRateLimiter], redis_url: str
) -> None:
    limiter = make()
    order: list[str] = []

    async def user(name: str) -> None:
        async with limiter.slot("AK", "CreateEdgeInstance", 1):
            order.append(name)

    await user("first")  # the one slot is now held for ~1 s
    b = asyncio.create_task(user("b"))
    await asyncio.sleep(0.05)
    c = asyncio.create_task(user("c"))
    await asyncio.sleep(0.05)
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    await asyncio.wait_for(c, 5)
    assert order == ["first", "c"]
    inflight, held, *_ = limiter.keys("AK", "CreateEdgeInstance")
    await asyncio.sleep(0.05)  # let an abandoned grant, if any, be given back
    assert zcard(redis_url, inflight) == 0
    assert zcard(redis_url, held) == 1  # only c's hold remains


async def test_a_slot_granted_as_its_waiter_is_cancelled_is_handed_back(
    make: Callable[..., RedisRateLimiter], redis_url: str
) -> None:
    limiter = make()
    started(redis_url, limiter, "AK", "DeleteEdgeInstance")
    state = limiter._state()
    original = state.scripts["acquire"]
    granted, release_reply = asyncio.Event(), asyncio.Event()

    async def slow_reply(**kwargs: Any) -> Any:
        answer = await original(**kwargs)  # the slot is granted in Redis ...
        granted.set()
        await release_reply.wait()  # ... but the reply is late
        return answer

    state.scripts["acquire"] = slow_reply
    waiter = asyncio.create_task(_enter(limiter))
    await asyncio.wait_for(granted.wait(), 5)
    inflight, held, *_ = limiter.keys("AK", "DeleteEdgeInstance")
    assert zcard(redis_url, inflight) == 1
    waiter.cancel()  # cancelled while its grant is on the way
    with pytest.raises(asyncio.CancelledError):
        await waiter
    state.scripts["acquire"] = original
    release_reply.set()
    await asyncio.sleep(0.2)  # the late reply arrives with nobody left to take the slot
    assert zcard(redis_url, inflight) == 0  # handed back, not held until the lease ends
    assert zcard(redis_url, held) == 0  # and never used, so no hold either
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with limiter.slot("AK", "DeleteEdgeInstance", 1):
        waited = loop.time() - t0
    # The unused grant went back at once (not after the 60-s lease, nor after a 1-s hold).
    assert waited < 0.5
    assert zcard(redis_url, inflight) == 0
    assert zcard(redis_url, held) == 1  # only the second user's hold


class _ReplyHolder:
    """A TCP proxy in front of Redis that can swallow the replies on the connections open at
    the moment (``hold()``): their requests still reach Redis and run; new connections pass."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._path = parts.path
        self._open: set[int] = set()
        self._held: set[int] = set()
        self._server: asyncio.Server | None = None

    def hold(self) -> None:
        self._held |= self._open

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._path}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        me = id(client_w)
        self._open.add(me)

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter, replies: bool) -> None:
            try:
                while data := await r.read(65536):
                    if replies and me in self._held:
                        continue  # Redis ran the command; its reply never arrives
                    w.write(data)
                    await w.drain()
            finally:
                w.close()

        try:
            await asyncio.gather(
                pump(client_r, server_w, False),
                pump(server_r, client_w, True),
                return_exceptions=True,
            )
        finally:
            self._open.discard(me)


async def test_a_slot_granted_whose_reply_is_lost_is_handed_back(
    redis_url: str, prefix: str
) -> None:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    proxy = _ReplyHolder(redis_url)
    async with proxy as proxied:
        # No retries inside redis-py: the lost reply surfaces as the acquire's error.
        client = Redis.from_url(proxied, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
        limiter = RedisRateLimiter(prefix=prefix, client=client)
        started(redis_url, limiter, "AK", "GetEdgeInstance", "DeleteEdgeInstance")
        inflight, held, *_ = limiter.keys("AK", "DeleteEdgeInstance")
        try:
            async with limiter.slot("AK", "GetEdgeInstance", 10):
                pass  # loads both scripts and opens the connection the acquire will use
            proxy.hold()
            with pytest.raises(RedisUnavailableError, match="Timeout"):
                async with limiter.slot("AK", "DeleteEdgeInstance", 1):
                    pass
            # Redis granted the slot, its reply lost: the slot is handed back (on a fresh
            # connection), not held until the 60-s lease ends.
            for _ in range(30):
                if zcard(redis_url, inflight) == 0:
                    break
                await asyncio.sleep(0.1)
            assert zcard(redis_url, inflight) == 0
            assert zcard(redis_url, held) == 0  # never used: no hold either
        finally:
            await limiter.aclose()
            await client.aclose()
    other = RedisRateLimiter(redis_url, prefix=prefix)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with other.slot("AK", "DeleteEdgeInstance", 1):
        assert loop.time() - t0 < 0.5  # free at once
    await other.aclose()


async def _enter(limiter: RedisRateLimiter) -> None:
    async with limiter.slot("AK", "DeleteEdgeInstance", 1):
        pass


async def test_a_slot_without_an_answer_is_held_window_plus_attempt_timeout(
    make: Callable[..., RedisRateLimiter],
) -> None:
    limiter = make(attempt_timeout=0.6)
    loop = asyncio.get_running_loop()

    async def hold_after(error: BaseException, **kwargs: Any) -> float:
        with pytest.raises(type(error)):
            async with limiter.slot("AK", "UpdateEdgeInstance", 1, **kwargs):
                await asyncio.sleep(0.05)
                raise error
        t_exit = loop.time()
        async with limiter.slot("AK", "UpdateEdgeInstance", 1):
            return loop.time() - t_exit

    answered = await hold_after(ThrottledError("Throttling", "x"))
    assert 0.95 <= answered < 1.5
    lost = await hold_after(TransportError("timed out", maybe_executed=True))
    assert 1.55 <= lost < 2.5  # window (1.01) + attempt_timeout (0.6)
    longer = await hold_after(asyncio.CancelledError(), timeout=1.2)
    assert 2.15 <= longer < 3.2  # the slot's own timeout, when longer


async def test_a_slot_given_up_before_sending_is_handed_back_without_a_hold(
    make: Callable[..., RedisRateLimiter], redis_url: str
) -> None:
    limiter = make()
    inflight, held, *_ = limiter.keys("AK", "UpdateEdgeInstance")
    with pytest.raises(DeadlineExceededError):
        async with limiter.slot("AK", "UpdateEdgeInstance", 1):
            assert zcard(redis_url, inflight) == 1
            raise DeadlineExceededError("not sent", action="UpdateEdgeInstance")
    assert zcard(redis_url, inflight) == 0
    assert zcard(redis_url, held) == 0  # nothing was sent: no hold
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with limiter.slot("AK", "UpdateEdgeInstance", 1):
        assert loop.time() - t0 < 0.5


def test_lease_must_exceed_the_attempt_timeout(redis_url: str) -> None:
    with pytest.raises(ValueError, match="lease"):
        RedisRateLimiter(redis_url, lease=5, attempt_timeout=10)
    limiter = RedisRateLimiter(redis_url, lease=20)
    with pytest.raises(ValueError, match="lease"):
        limiter.slot("AK", "X", 1, timeout=30)


def test_a_client_whose_timeout_outlasts_the_lease_is_refused(redis_url: str) -> None:
    from aioedge import EdgeClient, ValidationError

    from .support import TEST_CREDS

    limiter = RedisRateLimiter(redis_url, lease=30)
    with pytest.raises(ValidationError, match=r"lease \(30 s\) must exceed") as info:
        EdgeClient(credentials=TEST_CREDS, timeout=120, rate_limit=limiter)
    assert info.value.param == "timeout" and isinstance(info.value, ValueError)
    with pytest.raises(ValidationError, match="lease"):
        EdgeClient(credentials=TEST_CREDS, timeout=30, rate_limit=limiter)
    assert limiter.attempt_timeout == 10.0  # a refused client changes nothing
    # A timeout the lease outlasts is taken: lost slots are held window + 20 s, here and in
    # the local fallback.
    EdgeClient(credentials=TEST_CREDS, timeout=20, rate_limit=limiter)
    assert limiter.attempt_timeout == 20.0
    assert limiter._fallback.attempt_timeout == 20.0


async def test_the_client_tells_each_slot_its_timeout(
    make: Callable[..., RedisRateLimiter],
) -> None:
    from aioedge import EdgeClient
    from aioedge.testing import Emulator

    limiter = make(lease=5.0, attempt_timeout=0.5)
    seen: list[float | None] = []
    original = limiter.slot

    def spy(*args: Any, timeout: float | None = None) -> Any:
        seen.append(timeout)
        return original(*args, timeout=timeout)

    limiter.slot = spy  # type: ignore[method-assign]
    async with (
        Emulator() as emu,
        EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=limiter, timeout=4.0
        ) as client,
    ):
        await client.query_edge_instance(page_size=1)
    assert seen == [4.0]
    assert limiter.attempt_timeout == 4.0


async def test_throttle_is_shared_through_redis(make: Callable[..., RedisRateLimiter]) -> None:
    a, b = make(), make()
    async with a.slot("AK", "QueryEdgeInstance", 10):
        pass
    assert await b.rate("AK", "QueryEdgeInstance", 10) == 10
    a.report_throttled("AK", "QueryEdgeInstance")
    a.report_success("AK", "QueryEdgeInstance")
    await asyncio.sleep(0.05)
    # 0.7 × 10, already climbing back along the curve (≈ 4.6/s at first).
    assert 6.99 < await b.rate("AK", "QueryEdgeInstance", 10) < 7.6
    a.report_throttled("AK", "QueryEdgeInstance")  # same event (cooldown): no second cut
    await asyncio.sleep(0.05)
    assert await b.rate("AK", "QueryEdgeInstance", 10) > 6.99
    # b now runs fewer than 10 slots (1 is still held by a's call): not all 9 start at once.
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def one() -> None:
        async with b.slot("AK", "QueryEdgeInstance", 10):
            starts.append(loop.time())

    t0 = loop.time()
    await asyncio.gather(*(one() for _ in range(9)))
    assert len(starts) == 9
    assert sum(1 for s in starts if s - t0 < 0.05) <= 8


async def test_overrides_and_unlimited(make: Callable[..., RedisRateLimiter]) -> None:
    limiter = make(overrides={"QueryDeviceProvisioning": float("inf")})
    for _ in range(200):
        async with limiter.slot("AK", "QueryDeviceProvisioning", 50):
            pass
    with pytest.raises(ValueError):
        make(on_unavailable="maybe")
    with pytest.raises(ValueError):
        make(poll_interval=5)
    with pytest.raises(ValueError):
        RedisRateLimiter("http://127.0.0.1:6379")


# --------------------------------------------------------------------------- Redis down


async def test_unreachable_redis_fails_clearly_without_leaking_the_password() -> None:
    limiter = RedisRateLimiter(
        "redis://user:sekret-pw@127.0.0.1:1/0", connect_timeout=0.5, on_unavailable="fail"
    )
    with pytest.raises(RedisUnavailableError) as info:
        async with limiter.slot("AK", "GetEdgeInstance", 10):
            pass
    err = info.value
    assert isinstance(err, TransportError) and err.maybe_executed is False
    assert err.action == "GetEdgeInstance"
    assert "sekret-pw" not in str(err) and "127.0.0.1:1" in str(err)
    assert "sekret-pw" not in repr(limiter)
    await limiter.aclose()


async def test_unreachable_redis_falls_back_to_local(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(
        "redis://127.0.0.1:1/0", connect_timeout=0.5, on_unavailable="local", retry_after=60
    )
    caplog.set_level(logging.WARNING, logger="aioedge")
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    for _ in range(3):
        async with limiter.slot("AK", "GetEdgeInstance", 2):
            starts.append(loop.time())
    assert starts[2] - starts[0] >= 1.0  # the local limiter still keeps the quota
    warnings = [r for r in caplog.records if "aioedge.redis_unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not per call
    await limiter.aclose()


def test_missing_redis_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"aioedge\[redis\]"):
        RedisRateLimiter()


def test_unavailable_error_pickles() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(RedisUnavailableError("down", action="X")))
    assert isinstance(err, RedisUnavailableError) and err.action == "X"
    assert err.maybe_executed is False


# --------------------------------------------------------------------------- no redis package

_WITHOUT_REDIS = textwrap.dedent(
    """
    import sys
    sys.modules["redis"] = None  # as if the package were not installed
    import pytest
    sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", "tests/test_redis.py"]))
    """
)


@pytest.mark.parametrize("required", [False, True])
def test_a_missing_redis_package_skips_here_but_fails_where_required(required: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "AIOEDGE_REQUIRE_REDIS")}
    if required:
        env["AIOEDGE_REQUIRE_REDIS"] = "1"
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_REDIS],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    if required:
        assert run.returncode not in (0, 5), out  # an error, not a skip
        assert "redis package" in out and "skipped" not in out, out
    else:
        assert run.returncode in (0, 5), out  # 5: every test skipped, none collected
        assert "1 skipped" in out and "redis package is not installed" in out, out


# --------------------------------------------------------------------------- four processes

_WORKER = textwrap.dedent(
    """
    import asyncio, json, random, sys, time
    from aioedge._redis import RedisRateLimiter

    url, prefix = sys.argv[1], sys.argv[2]
    n, qps, seed = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

    async def main():
        limiter = RedisRateLimiter(url, prefix=prefix)
        rng = random.Random(seed)
        arrivals = []

        async def one():
            async with limiter.slot("AK", "GetEdgeInstance", qps):
                latency, where = rng.uniform(0.001, 0.04), rng.random()
                await asyncio.sleep(latency * where)
                arrivals.append(time.monotonic())  # system-wide clock: comparable across processes
                await asyncio.sleep(latency * (1 - where))

        await asyncio.gather(*(one() for _ in range(n)))
        await limiter.aclose()
        print(json.dumps(arrivals))

    asyncio.run(main())
    """
)


def test_four_processes_share_one_quota(redis_url: str, prefix: str) -> None:
    qps, per_process = 20, 10
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, prefix, str(per_process), str(qps), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(4)
    ]
    arrivals: list[float] = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        arrivals.extend(json.loads(out))
    assert len(arrivals) == 4 * per_process
    assert max_in_window(arrivals, closed=True) <= qps


_CLIENT_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from aioedge import EdgeClient
    from aioedge._redis import RedisRateLimiter

    url, prefix, endpoint, instance_id, n = sys.argv[1:6]

    async def main():
        async with RedisRateLimiter(url, prefix=prefix) as limiter:
            async with EdgeClient(endpoint=endpoint, rate_limit=limiter, retry=None) as c:
                calls = [("GetEdgeInstance", {"InstanceId": instance_id})] * int(n)
                results = await c.batch(calls, concurrency=int(n))
        print(json.dumps([str(r) for r in results if not r.ok]))

    asyncio.run(main())
    """
)


async def test_four_client_processes_on_one_emulator_are_never_throttled(
    redis_url: str, prefix: str
) -> None:
    from aioedge import EdgeClient
    from aioedge.testing import Emulator

    async with Emulator() as emu:
        async with EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False
        ) as c:
            iid = (await c.create_edge_instance(name="shared")).instance_id
        assert iid
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.credentials.access_key_secret,
        }
        per_process = 6
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CLIENT_WORKER,
                redis_url,
                prefix,
                emu.endpoint,
                iid,
                str(per_process),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            for _ in range(4)
        ]
        for p in procs:
            out, err = await asyncio.wait_for(p.communicate(), 60)
            assert p.returncode == 0, err.decode()
            assert json.loads(out) == []  # every call answered, none throttled
        stats = emu.stats()["GetEdgeInstance"]
        assert stats["throttled"] == 0
        assert stats["executed"] == 4 * per_process
        arrivals = [r.arrival for r in emu.requests if r.action == "GetEdgeInstance"]
        assert max_in_window(arrivals) <= 10  # the real quota, shared by four processes


async def test_a_retry_after_hint_holds_the_shared_slot_at_least_that_long(
    make: Callable[..., RedisRateLimiter],
) -> None:
    limiter = make()
    hinted = ThrottledError("Throttling.User", "flow control", http_status=400)
    hinted.retry_after = 1.6  # longer than the 1 s window
    with pytest.raises(ThrottledError):
        async with limiter.slot("k", "GetEdgeInstance", 1):
            raise hinted
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with limiter.slot("k", "GetEdgeInstance", 1):
        waited = loop.time() - t0
    assert waited >= 1.5


@pytest.mark.parametrize(
    ("qps", "timeout", "wait", "message"),
    [
        (0.0, None, None, "qps must be > 0"),
        (float("nan"), None, None, "qps must be > 0"),
        (5.0, -1.0, None, "timeout must be a finite number"),
        (5.0, None, float("nan"), "wait must be a finite number"),
    ],
)
def test_both_limiters_check_slot_arguments_alike(
    qps: float, timeout: float | None, wait: float | None, message: str
) -> None:
    """One set of checks for both limiters, before any I/O (no Redis needed to refuse)."""
    from aioedge import LocalRateLimiter

    for limiter in (LocalRateLimiter(), RedisRateLimiter("redis://127.0.0.1:1/0")):
        with pytest.raises(ValueError, match=message):
            limiter.slot("AK", "GetEdgeInstance", qps, timeout=timeout, wait=wait)


def test_an_infinite_override_is_not_limited_by_either() -> None:
    from aioedge import LocalRateLimiter

    inf = {"GetEdgeInstance": float("inf")}
    local = LocalRateLimiter(overrides=inf)
    shared = RedisRateLimiter("redis://127.0.0.1:1/0", overrides=inf)
    for limiter in (local, shared):
        assert limiter.effective_qps("GetEdgeInstance", 5.0) == float("inf")
        assert limiter.effective_qps("QueryEdgeInstance", 5.0) == 5.0
        # The same unlimited slot from both: nothing is counted, Redis is never asked.
        assert limiter.slot("AK", "GetEdgeInstance", 5.0) is local.slot(
            "AK", "GetEdgeInstance", 5.0
        )
    with pytest.raises(ValueError, match="override for GetEdgeInstance must be > 0"):
        RedisRateLimiter("redis://127.0.0.1:1/0", overrides={"GetEdgeInstance": 0})


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
@pytest.mark.parametrize(
    "name", ["lease", "poll_interval", "connect_timeout", "socket_timeout", "retry_after"]
)
def test_every_duration_of_the_limiter_is_a_positive_number(name: str, bad: float) -> None:
    # One rule (check_positive) for every duration it takes: a NaN lease used to pass and
    # fail at the first slot, and the timeouts and retry_after were not checked at all.
    with pytest.raises(ValidationError) as info:
        RedisRateLimiter("redis://127.0.0.1:9/0", **{name: bad})  # type: ignore[arg-type]
    assert info.value.param == name and "must be > 0" in str(info.value)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
@pytest.mark.parametrize("name", ["lease", "keep", "connect_timeout", "socket_timeout"])
def test_every_duration_of_the_coordinator_is_a_positive_number(name: str, bad: float) -> None:
    from aioedge import RedisCoordinator

    with pytest.raises(ValidationError) as info:
        RedisCoordinator("redis://127.0.0.1:9/0", **{name: bad})  # type: ignore[arg-type]
    assert info.value.param == name and "must be > 0" in str(info.value)
