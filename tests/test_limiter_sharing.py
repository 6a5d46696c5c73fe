"""Every client in a process shares one limiter per quota scope (``rate_limit=True``).

Against the emulator at its real quota (GetEdgeInstance: 10 per second per AccessKey), with
no retries so a throttled answer would surface as a failure: two clients of one scope fire
2Q calls at once; together they must stay within Q per window (so the second Q waits for the
first round's holds) and never be throttled.  Two clients of different scopes do not wait
for each other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from aioedge import Credentials, EdgeClient
from aioedge._ratelimit import (
    WINDOW,
    AdaptiveConfig,
    LocalRateLimiter,
    default_limiter,
    reset_default_limiter,
)
from aioedge._retry import RetryPolicy, set_testing
from aioedge.testing import Emulator

from .test_ratelimit import max_in_window

Q = 10  # GetEdgeInstance's quota (ERRATA)
OTHER = Credentials("LTAIsecondkey0000000", "second-secret-value-0001")


@pytest.fixture(autouse=True)
def fresh_default_limiter() -> Iterator[None]:
    reset_default_limiter()  # no holds left over from other tests
    yield
    reset_default_limiter()


async def _instance(emu: Emulator) -> str:
    async with EdgeClient(
        credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False
    ) as setup:
        iid = (await setup.create_edge_instance(name="shared")).instance_id
    assert iid
    return iid


async def _fire(clients: list[EdgeClient], iid: str) -> float:
    """Q calls per client, all at once; returns the elapsed seconds."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(
        *(c.call("GetEdgeInstance", {"InstanceId": iid}) for c in clients for _ in range(Q))
    )
    return loop.time() - t0


def _arrivals(emu: Emulator, key: str | None = None) -> list[float]:
    return [
        r.arrival
        for r in emu.requests
        if r.action == "GetEdgeInstance"
        and r.quota_accepted
        and (key is None or r.access_key_id == key)
    ]


async def test_clients_with_one_access_key_share_the_quota() -> None:
    async with Emulator() as emu:
        iid = await _instance(emu)
        kw = {"credentials": emu.credentials, "endpoint": emu.endpoint, "retry": None}
        async with EdgeClient(**kw) as a, EdgeClient(**kw) as b:  # type: ignore[arg-type]
            assert a.limiter is b.limiter is default_limiter()
            elapsed = await _fire([a, b], iid)
        assert emu.stats()["GetEdgeInstance"]["throttled"] == 0
        arrivals = _arrivals(emu)
        assert len(arrivals) == 2 * Q
        assert max_in_window(arrivals) <= Q  # the aggregate, not Q per client
        assert elapsed >= WINDOW  # the second Q waited for the first round's holds


async def test_clients_with_one_quota_scope_share_the_quota_across_keys() -> None:
    async with Emulator(access_keys=[OTHER]) as emu:
        iid = await _instance(emu)
        async with (
            EdgeClient(
                credentials=emu.credentials,
                endpoint=emu.endpoint,
                retry=None,
                quota_scope="account-1",
            ) as a,
            EdgeClient(
                credentials=OTHER, endpoint=emu.endpoint, retry=None, quota_scope="account-1"
            ) as b,
        ):
            elapsed = await _fire([a, b], iid)
        assert emu.stats()["GetEdgeInstance"]["throttled"] == 0
        # The emulator would take Q per key; the shared scope keeps both keys to Q together.
        assert len(_arrivals(emu, OTHER.access_key_id)) == Q
        arrivals = _arrivals(emu)
        assert len(arrivals) == 2 * Q
        assert max_in_window(arrivals) <= Q
        assert elapsed >= WINDOW


async def test_clients_of_different_scopes_do_not_wait_for_each_other() -> None:
    async with Emulator(access_keys=[OTHER]) as emu:
        iid = await _instance(emu)
        async with (
            EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint, retry=None) as a,
            EdgeClient(credentials=OTHER, endpoint=emu.endpoint, retry=None) as b,
        ):
            assert a.limiter is b.limiter and a.quota_scope != b.quota_scope
            await _fire([a, b], iid)
        assert emu.stats()["GetEdgeInstance"]["throttled"] == 0
        for key in (emu.credentials.access_key_id, OTHER.access_key_id):
            arrivals = _arrivals(emu, key)
            assert len(arrivals) == Q
            assert max_in_window(arrivals) == Q  # each scope's Q went out in one round


async def test_another_user_of_the_key_slows_the_action_down_until_it_recovers() -> None:
    """A second client on the same AccessKeyId without client-side limiting (another tool)
    fills GetEdgeInstance's window: the first client's Q calls are throttled, its limiter cuts
    the Action's rate (× 0.7), the retries go out at that rate and all succeed; once the curve
    has climbed back (an injected clock, moved on), Q calls go out in one window again."""
    offset = 0.0

    def clock() -> float:
        return time.monotonic() + offset

    # A slow climb (C = 0.001/s³: back at the quota after ≈ 20 s), so the lowered rate is
    # still visible when the retries have finished.
    limiter = LocalRateLimiter(adaptive=AdaptiveConfig(scale=0.001), clock=clock)
    async with Emulator() as emu:
        iid = await _instance(emu)
        kw: dict[str, Any] = {"credentials": emu.credentials, "endpoint": emu.endpoint}
        async with (
            EdgeClient(**kw, rate_limit=False, retry=None) as other,
            EdgeClient(**kw, rate_limit=limiter, retry=RetryPolicy(max_attempts=5)) as mine,
        ):
            scope = mine.quota_scope
            await _fire([other], iid)  # Q arrivals: the key's window is full for a second
            first = len(emu.requests)
            with set_testing(True):  # no backoff: only the limiter paces the retries
                await _fire([mine], iid)  # every call succeeded (gather raised nothing)
            rate = limiter.rate(scope, "GetEdgeInstance")
            assert rate is not None and 0.7 * Q <= rate < Q  # cut, still climbing back
            mine_seen = emu.requests[first:]
            assert sum(r.outcome == "throttled" for r in mine_seen) == Q  # each one once
            retried = [r.arrival for r in mine_seen if r.quota_accepted]
            assert len(retried) == Q
            # The retries went out at the lowered rate (8 slots, a 9th as the curve passes 8/s
            # about 1.8 s after the cut), not Q in one window.
            assert max_in_window(retried) < Q

            offset += 60.0  # the curve is back at the quota ...
            assert limiter.rate(scope, "GetEdgeInstance") == Q
            await asyncio.sleep(1.1)  # ... and the service's window has moved past the retries
            first = len(emu.requests)
            await _fire([mine], iid)
            again = emu.requests[first:]
            assert all(r.quota_accepted for r in again) and len(again) == Q
            assert max_in_window([r.arrival for r in again]) == Q  # one round again
        assert emu.stats()["GetEdgeInstance"]["throttled"] == Q
