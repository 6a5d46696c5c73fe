"""Every client in a process shares one limiter per quota scope (``rate_limit=True``).

Against the emulator at its real quota (GetEdgeInstance: 10 per second per AccessKey), with
no retries so a throttled answer would surface as a failure: two clients of one scope fire
2Q calls at once; together they must stay within Q per window (so the second Q waits for the
first round's holds) and never be throttled.  Two clients of different scopes do not wait
for each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from aioedge import Credentials, EdgeClient
from aioedge._ratelimit import WINDOW, default_limiter, reset_default_limiter
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
