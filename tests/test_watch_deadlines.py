"""The watch deadline (``timeout=``) against the emulator: injected clocks and stuck polls.

A poll is bounded by a timer on the event loop's own clock, while ``timeout`` is counted on
the ``clock`` a caller injects; these tests make the two disagree on purpose.  Each runs
under ``anyio.fail_after`` on the real clock, so a watch that never ends fails the test
instead of hanging it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from aioedge.testing import FakeClock
from aioedge.watch import DeploymentEvent, DeploymentMonitor, WatchRetry

from .test_watch_emulator import STAGE_SECONDS, Env, on_fake_clock

#: An epoch-like start: at ~1.7e9 a float step is ~2.4e-7 s, so sums of 0.1-s sleeps land a
#: hair short of (or past) ``start + timeout``.
EPOCH = 1_700_000_000.0
GUARD = 20.0  # real seconds, far above what any of these tests needs


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with on_fake_clock(FakeClock(EPOCH), stage_seconds=STAGE_SECONDS, seed=5) as env:
        yield env


@pytest.mark.parametrize("timeout", [0.3, 0.7, 1.0, 2.3])
async def test_timeout_on_an_injected_epoch_clock_ends(env: Env, timeout: float) -> None:
    inst = await env.instance(f"e{int(timeout * 10)}", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    start = env.clock()
    watcher = env.watch(inst, dep, poll_interval=0.1, max_poll_interval=0.1, timeout=timeout)
    with anyio.fail_after(GUARD):
        events = [e async for e in watcher]
    assert events[-1].kind == "final" and events[-1].outcome == "timed_out"
    assert [e.kind for e in events].count("final") == 1
    # It slept its way to the deadline on the injected clock, never past it, and polled
    # about once per interval, not in a tight loop.
    assert env.clock() - start == pytest.approx(timeout, abs=1e-5)
    assert sum(env.sleeps) <= timeout + 1e-6
    assert watcher.polls <= round(timeout / 0.1) + 1


async def test_a_stuck_poll_ends_with_timed_out(env: Env) -> None:
    inst = await env.instance("stuck", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    # Three polls are answered; from the fourth on every answer is held back a minute.
    env.emu.set_faults("GetEdgeInstanceDeployment:delay:after=3:delay=60")
    watcher = env.watch(inst, dep, poll_interval=0.1, max_poll_interval=0.1, timeout=0.5)
    began = time.monotonic()
    with anyio.fail_after(GUARD):
        events = [e async for e in watcher]
    elapsed = time.monotonic() - began
    env.emu.clear_faults()
    assert events[-1].kind == "final" and events[-1].outcome == "timed_out"
    assert events[-1].status in (0, 1) and "0.5s" in str(events[-1])  # still going
    assert watcher.polls == 4  # the stuck one was cut at the deadline, not retried
    assert [r.kind for r in env.emu.fault_log] == ["delay"]
    assert elapsed < 30  # well before the held-back answer (60 s) would have come
    assert not [e for e in events if e.kind == "poll_error"]


async def test_a_stuck_poll_in_a_monitor_ends_with_timed_out(env: Env) -> None:
    inst = await env.instance("mstuck", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    env.emu.set_faults("GetEdgeInstanceDeployment:delay:after=2:delay=60")
    events: list[DeploymentEvent] = []
    async with DeploymentMonitor(
        env.client,
        poll_interval=0.1,
        max_poll_interval=0.1,
        timeout=0.5,
        retry=WatchRetry(initial=0.1),
        clock=env.clock,
        sleep=env.sleep,
        wall_clock=env.clock,
    ) as monitor:
        monitor.add(inst, dep)
        with anyio.fail_after(GUARD):
            events = [e async for e in monitor]
    env.emu.clear_faults()
    assert events[-1].kind == "final" and events[-1].outcome == "timed_out"
    assert monitor.outcomes() == {(inst, dep): "timed_out"}
    assert monitor.stats.polls == 3
