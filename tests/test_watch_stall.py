"""Stall detection (``progress_timeout=``) and the per-poll callback, against the emulator.

As in test_watch_emulator.py, the emulator and the watcher share one FakeClock that the
watcher's sleeps move: a stalled rollout of simulated minutes takes no real waiting.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioedge import EdgeClient, ValidationError
from aioedge._hooks import PollInfo, WatchInfo
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import DeploymentEvent, DeploymentMonitor
from aioedge.watch._tracker import Progress, Tracker, WatchOptions, describe_change

from .test_cli import aioedge, base_env, instance_with_gateway
from .test_watch_emulator import Env, on_fake_clock

STAGE = 2.0


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with on_fake_clock(FakeClock(), stage_seconds=STAGE, seed=3) as env:
        yield env


async def _collect(watcher: Any) -> list[DeploymentEvent]:
    return [event async for event in watcher]


@pytest.mark.parametrize("progress_timeout", [5.0, 12.0])
async def test_a_stalled_deployment_ends_stalled_within_the_timeout_and_one_poll(
    env: Env, progress_timeout: float
) -> None:
    inst = await env.instance("stalls", gateways=1, drivers=1)
    env.emu.stall_deployment_at(stage=16)
    dep = await env.deploy(inst)
    poll = 0.5
    watcher = env.watch(
        inst,
        dep,
        poll_interval=poll,
        max_poll_interval=poll * 4,
        progress_timeout=progress_timeout,
        timeout=600,
    )
    events = await _collect(watcher)
    final = events[-1]
    assert final.kind == "final" and final.outcome == "stalled"
    assert watcher.outcome == "stalled"
    moved = [e for e in events if e.is_transition]
    last = moved[-1]
    # The snapshot that hangs reached stage 16 and stays processing; its sibling finished.
    hung = [e for e in moved if e.kind == "snapshot" and e.stage == 16 and e.status == 1]
    assert hung and watcher.state is not None and watcher.state.status == 1
    # Ended no sooner than progress_timeout after the last change, and within one poll after.
    assert last.time is not None and final.time is not None
    since = final.time - last.time
    assert progress_timeout <= since <= progress_timeout + poll * 4 + 0.001
    assert final.message is not None
    assert f"no stage or status change for {progress_timeout:g}s" in final.message
    assert f"last change: {describe_change(last)} at " in final.message
    assert re.search(r" at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s ago\)$", final.message)
    # The rollout itself still runs: only the watch gave up on it.
    assert [t for t in env.emu.timeline(dep) if t["kind"] == "deployment"][-1]["status"] == 1


async def test_a_moving_deployment_is_not_stalled_and_timeout_stays_apart(env: Env) -> None:
    inst = await env.instance("moves", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    # A stage every 2 s: a progress_timeout of 5 s never fires.
    events = await _collect(
        env.watch(inst, dep, progress_timeout=5.0, poll_interval=0.5, max_poll_interval=1.0)
    )
    assert events[-1].outcome == "succeeded"
    # The overall timeout is its own outcome, even with a progress_timeout set.
    inst2 = await env.instance("slow", gateways=1, drivers=1)
    dep2 = await env.deploy(inst2)
    events = await _collect(env.watch(inst2, dep2, progress_timeout=50.0, timeout=3.0))
    assert events[-1].outcome == "timed_out"


async def test_on_poll_gets_every_raw_answer(env: Env) -> None:
    inst = await env.instance("polled", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    polls: list[PollInfo] = []
    watcher = env.watch(inst, dep, on_poll=polls.append, poll_interval=0.5, max_poll_interval=1.0)
    events = await _collect(watcher)
    assert len(polls) == watcher.polls > 1
    assert [p.poll for p in polls] == list(range(1, watcher.polls + 1))
    for p in polls:
        assert p.error is None and p.body is not None
        assert p.body["Data"]["DeploymentId"] == dep  # the service's own JSON
        assert p.deployment_id == dep and p.instance_id == inst
    assert polls[0].changed and polls[0].events[0] == "deployment"
    assert sum(len(p.events) for p in polls) == len(events)
    assert polls[-1].body is not None and polls[-1].body["Data"]["Status"] == 2


async def test_on_poll_and_progress_timeout_are_checked(env: Env) -> None:
    with pytest.raises(ValidationError) as exc:
        env.watch("i", "d", progress_timeout=0)
    assert exc.value.param == "progress_timeout"
    with pytest.raises(ValidationError) as exc:
        env.watch("i", "d", on_poll="print")
    assert exc.value.param == "on_poll"


async def test_cli_deploy_of_a_stalled_deployment_exits_1_naming_the_last_change(
    tmp_path: Path,
) -> None:
    async with (
        Emulator(speed=20) as emu,  # a stage every 0.1 s
        EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, quota_scope=emu.endpoint
        ) as client,
    ):
        instance_id, driver = await instance_with_gateway(client, "cli_stall")
        emu.stall_deployment_at(driver, stage=8)
        with anyio.fail_after(60):
            result = await aioedge(
                "deploy",
                instance_id,
                "--endpoint",
                emu.endpoint,
                "--progress-timeout",
                "1",
                "--poll-interval",
                "0.1",
                "--max-poll-interval",
                "0.2",
                "-o",
                "json",
                env=base_env(tmp_path, emu.credentials),
            )
        assert result.code == 1, result.err
        final = json.loads(result.out.splitlines()[-1])
        assert final["outcome"] == "stalled"
        assert "last change" in final["message"]
        assert "stage initial → assembling" in final["message"]
        timeline = emu.timeline(final["deployment_id"])
        assert [t for t in timeline if t["kind"] == "deployment"][-1]["status"] == 1


async def test_a_monitor_tells_on_poll_of_every_poll_of_every_deployment(env: Env) -> None:
    pairs = []
    for i in range(3):
        inst = await env.instance(f"mon{i}", gateways=1, drivers=1)
        pairs.append((inst, await env.deploy(inst)))
    polls: list[PollInfo] = []

    class Hook:  # a client hook too: both are told
        def __init__(self) -> None:
            self.seen = 0

        def on_poll(self, info: PollInfo) -> None:
            self.seen += 1

    hook = Hook()
    hooked = EdgeClient(
        credentials=env.emu.credentials,
        endpoint=env.emu.endpoint,
        rate_limit=False,
        retry=None,
        clock=env.clock,
        hooks=[hook],
    )
    async with (
        hooked,
        DeploymentMonitor(
            hooked,
            poll_interval=0.5,
            max_poll_interval=1.0,
            clock=env.clock,
            sleep=env.sleep,
            wall_clock=env.clock,
            on_poll=polls.append,
        ) as monitor,
    ):
        for pair in pairs:
            monitor.add(*pair)
        events = [e async for e in monitor]
    assert {e.outcome for e in events if e.kind == "final"} == {"succeeded"}
    per = monitor.polls_per_deployment()
    assert len(polls) == hook.seen == sum(per.values())
    for inst, dep in pairs:
        mine = [p for p in polls if p.deployment_id == dep]
        assert len(mine) == per[(inst, dep)] and len({p.watch_id for p in mine}) == 1
        assert all(p.body is not None and p.body["Data"]["DeploymentId"] == dep for p in mine)
        assert mine[0].changed and mine[-1].body is not None
        assert mine[-1].body["Data"]["Status"] == 2
    assert sum(len(p.events) for p in polls) == len(events)


async def test_a_monitor_tells_on_watch_of_each_deployment_it_follows(env: Env) -> None:
    """As a watcher does: one watch per deployment, told when it starts and when it ends
    (its outcome, message and poll count), each of its polls inside its poll scope; a hook
    with ``on_watch`` and no ``on_poll`` is told too."""
    fine = await env.instance("wfine", gateways=1, drivers=1)
    broken = await env.instance("wbroken", gateways=1, drivers=1)
    good = (fine, await env.deploy(fine))
    env.emu.fail_deployment_at(gateway_id="wbrokengw0", stage=8)
    bad = (broken, await env.deploy(broken))
    told: list[tuple[str, Any]] = []

    class Watches:  # no on_poll: the monitor used to tell such a hook nothing
        def on_watch(self, info: WatchInfo) -> None:
            told.append(("watch", info))

        @contextlib.contextmanager
        def poll_scope(self, info: WatchInfo) -> Iterator[None]:
            told.append(("poll", info.watch_id))
            yield

    hooked = EdgeClient(
        credentials=env.emu.credentials,
        endpoint=env.emu.endpoint,
        rate_limit=False,
        retry=None,
        clock=env.clock,
        hooks=[Watches()],
    )
    async with hooked, _monitor_of(hooked, env, pollers=2, poll_interval=0.5) as monitor:
        monitor.add(*good)
        monitor.add(*bad)
        events = [e async for e in monitor]
    finals = {e.deployment_id: e for e in events if e.kind == "final"}
    assert monitor.outcomes() == {good: "succeeded", bad: "failed"}
    per = monitor.polls_per_deployment()
    watches = [info for what, info in told if what == "watch"]
    assert len(watches) == 4
    for pair in (good, bad):
        started, ended = [w for w in watches if w.deployment_id == pair[1]]
        assert started.outcome is None and started.polls == 0
        assert started.instance_id == pair[0] and ended.watch_id == started.watch_id
        assert ended.outcome == monitor.outcomes()[pair] and ended.polls == per[pair] > 1
        assert ended.message == finals[pair[1]].message and ended.elapsed > 0
        order = [what for what, info in told if info in (started, ended, started.watch_id)]
        assert order == ["watch"] + ["poll"] * per[pair] + ["watch"]
    assert watches[0].watch_id != watches[1].watch_id


def _monitor_of(client: EdgeClient, env: Env, **kw: Any) -> DeploymentMonitor:
    return DeploymentMonitor(client, clock=env.clock, sleep=env.sleep, wall_clock=env.clock, **kw)


def _monitor(env: Env, **kw: Any) -> DeploymentMonitor:
    return DeploymentMonitor(
        env.client, clock=env.clock, sleep=env.sleep, wall_clock=env.clock, **kw
    )


@pytest.mark.parametrize("progress_timeout", [5.0, 12.0])
async def test_a_monitor_ends_only_the_stalled_deployment_stalled(
    env: Env, progress_timeout: float
) -> None:
    pairs = []
    for i in range(3):
        inst = await env.instance(f"three{i}", gateways=1, drivers=1)
        pairs.append((inst, await env.deploy(inst)))
    hung = pairs[1]
    env.emu.stall_deployment_at(stage=16, deployment_id=hung[1])
    poll = 0.5
    async with _monitor(
        env, poll_interval=poll, max_poll_interval=poll * 4, progress_timeout=progress_timeout
    ) as monitor:
        for pair in pairs:
            monitor.add(*pair)
        events = [e async for e in monitor]
    finals = {e.deployment_id: e for e in events if e.kind == "final"}
    assert {dep: e.outcome for dep, e in finals.items()} == {
        pairs[0][1]: "succeeded",
        hung[1]: "stalled",
        pairs[2][1]: "succeeded",
    }
    assert monitor.outcomes()[hung] == "stalled"
    final = finals[hung[1]]
    assert final.reason == "stalled"
    moved = [e for e in events if e.deployment_id == hung[1] and e.is_transition]
    last = moved[-1]
    # The snapshot that hangs reached stage 16 and stays processing (a sibling may finish).
    assert [e for e in moved if e.kind == "snapshot" and e.stage == 16 and e.status == 1]
    assert last.time is not None and final.time is not None
    # No sooner than progress_timeout after the last change, and within one poll after it.
    assert progress_timeout <= final.time - last.time <= progress_timeout + poll * 4 + 0.001
    assert final.message is not None
    assert f"no stage or status change for {progress_timeout:g}s" in final.message
    assert f"last change: {describe_change(last)} at " in final.message
    # The deployment itself still runs; the others went to their end.
    assert [t for t in env.emu.timeline(hung[1]) if t["kind"] == "deployment"][-1]["status"] == 1


async def test_a_monitors_progress_timeout_is_per_deployment(env: Env) -> None:
    pairs = []
    for i in range(2):
        inst = await env.instance(f"per{i}", gateways=1, drivers=1)
        dep = await env.deploy(inst)
        env.emu.stall_deployment_at(stage=8, deployment_id=dep)
        pairs.append((inst, dep))
    async with _monitor(
        env, poll_interval=0.5, max_poll_interval=1.0, progress_timeout=5.0
    ) as monitor:
        monitor.add(*pairs[0])
        # Its own: a longer stall clock, and an overall timeout that ends it first.
        monitor.add(*pairs[1], progress_timeout=None, timeout=30.0)
        events = [e async for e in monitor]
    finals = {e.deployment_id: e.outcome for e in events if e.kind == "final"}
    assert finals == {pairs[0][1]: "stalled", pairs[1][1]: "timed_out"}
    with pytest.raises(ValidationError) as exc:
        _monitor(env, progress_timeout=-1)
    assert exc.value.param == "progress_timeout"
    with pytest.raises(ValidationError) as exc:
        _monitor(env).add("i", "d", progress_timeout=0)
    assert exc.value.param == "progress_timeout"


async def test_a_checkpoint_keeps_the_stall_clock(env: Env) -> None:
    inst = await env.instance("resumed", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    env.emu.stall_deployment_at(stage=8, deployment_id=dep)
    seen: list[DeploymentEvent] = []
    with anyio.CancelScope() as scope:
        # Watch until the deployment has not moved for 20 s of its 30 s, then stop.
        def poll(info: PollInfo) -> None:
            if info.since_change >= 20:
                scope.cancel()

        watcher = env.watch(inst, dep, poll_interval=0.5, max_poll_interval=2.0, on_poll=poll)
        async for event in watcher:
            seen.append(event)
    assert seen and all(e.kind != "final" for e in seen)
    checkpoint = json.loads(json.dumps(watcher.checkpoint()))
    assert checkpoint["progress"]["what"] == describe_change(
        [e for e in seen if e.is_transition][-1]
    )
    resumed_at = env.clock()
    async with _monitor(
        env, poll_interval=0.5, max_poll_interval=2.0, progress_timeout=30.0
    ) as monitor:
        monitor.add(inst, dep, checkpoint=checkpoint)
        events = [e async for e in monitor]
    final = events[-1]
    assert final.outcome == "stalled" and final.time is not None
    last = [e for e in seen if e.is_transition][-1]
    assert last.time is not None
    # The clock went on from the last change before the checkpoint: not 30 s from the resume.
    assert 30.0 <= final.time - last.time <= 32.001
    assert final.time - resumed_at < 30.0 - 10


@pytest.mark.parametrize(("last", "shown"), [(1e17, "1e+17s"), (float("inf"), "inf")])
def test_a_stall_after_a_change_at_an_impossible_time_still_ends_the_watch(
    last: float, shown: str
) -> None:
    # The last change's time comes from an answer or a checkpoint: one no calendar holds
    # must not make stalled() raise (it did, from time.gmtime) instead of ending the watch.
    options = WatchOptions(
        poll_interval=1.0, max_poll_interval=1.0, backoff=1.0, retry=None, progress_timeout=10
    )
    tracker = Tracker("I", "D", options)
    tracker.begin(0.0, 100.0, since=Progress(what="stage 8 → 16", at=0.0, time=last))
    final = tracker.stalled(100.0)
    assert (final.outcome, final.reason) == ("stalled", "stalled")
    assert final.message is not None and f"last change: stage 8 → 16 at {shown}" in final.message


async def test_past_both_the_deadline_and_the_stall_the_watcher_and_monitor_agree(
    env: Env,
) -> None:
    """After a poll that returns past ``timeout`` and past ``progress_timeout`` alike (a slow
    answer, a paused process: here an ``on_poll`` that moves the clock a minute), the watch
    ends ``timed_out`` for a watcher as for a monitor: the deadline comes first, as it does
    for a poll the deadline cut short.  (The watcher used to say ``stalled``.)"""
    ends: dict[str, DeploymentEvent] = {}

    def pause(info: PollInfo) -> None:
        if info.poll == 2:
            env.clock.advance(60.0)

    limits: dict[str, Any] = {
        "poll_interval": 0.5,
        "max_poll_interval": 1.0,
        "timeout": 30.0,
        "progress_timeout": 5.0,
        "on_poll": pause,
    }
    inst = await env.instance("both", gateways=1, drivers=1)
    env.emu.stall_deployment_at(stage=8)
    dep = await env.deploy(inst)
    ends["watcher"] = (await _collect(env.watch(inst, dep, **limits)))[-1]
    async with _monitor(env, **limits) as monitor:
        monitor.add(inst, dep)
        ends["monitor"] = [e async for e in monitor][-1]
    assert {k: (e.kind, e.outcome, e.reason) for k, e in ends.items()} == {
        "watcher": ("final", "timed_out", "timeout"),
        "monitor": ("final", "timed_out", "timeout"),
    }
