"""DeploymentMonitor: many deployments, one stream, one fair share of the poll budget."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import pytest

from aioedge import EdgeClient
from aioedge._ratelimit import LocalRateLimiter
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import DeploymentEvent, DeploymentMonitor, DeploymentState

from .test_watch_emulator import (
    STAGE_SECONDS,
    Env,
    check_snapshots_exact,
    logs_seen,
    logs_told,
)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = FakeClock()
    async with (
        Emulator(clock=clock, quotas=False, stage_seconds=STAGE_SECONDS, seed=11) as emu,
        EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=False,
            retry=None,
            clock=clock,
            quota_scope=emu.endpoint,
        ) as client,
    ):
        yield Env(emu, client, clock)


def monitor_for(env: Env, **kw: Any) -> DeploymentMonitor:
    kw.setdefault("poll_interval", 0.25)
    kw.setdefault("max_poll_interval", 0.25)
    return DeploymentMonitor(
        env.client, clock=env.clock, sleep=env.sleep, wall_clock=env.clock, **kw
    )


def by_deployment(events: list[DeploymentEvent]) -> dict[str, list[DeploymentEvent]]:
    out: dict[str, list[DeploymentEvent]] = defaultdict(list)
    for e in events:
        out[e.deployment_id].append(e)
    return out


async def test_many_deployments_one_stream_nothing_lost(env: Env) -> None:
    pairs = []
    for i in range(12):
        inst = await env.instance(f"m{i}", gateways=1, drivers=1)
        pairs.append((inst, await env.deploy(inst)))
    events: list[DeploymentEvent] = []
    async with monitor_for(env, pollers=3) as monitor:
        for inst, dep in pairs:
            assert monitor.add(inst, dep)
        assert not monitor.add(*pairs[0])  # already watched
        async for event in monitor:
            events.append(event)
    grouped = by_deployment(events)
    assert set(grouped) == {dep for _, dep in pairs}
    for inst, dep in pairs:
        own = grouped[dep]
        assert all(e.instance_id == inst for e in own)
        check_snapshots_exact(own, env.emu.timeline(dep))
        assert [e.kind for e in own].count("final") == 1 and own[-1].kind == "final"
        assert own[-1].outcome == "succeeded"
    stats = monitor.stats
    assert stats.active == 0 and stats.finished == 12 and stats.events == len(events)
    assert set(monitor.outcomes().values()) == {"succeeded"}
    # Same rollout for everyone, started together: everyone got the same share of polls.
    polls = monitor.polls_per_deployment().values()
    assert max(polls) - min(polls) <= 2
    # A finished deployment costs nothing more: exactly one poll saw it final.
    final_ms = {dep: env.emu.timeline(dep)[-1]["timestamp_ms"] for _, dep in pairs}
    after = Counter(
        rec.params["DeploymentId"]
        for rec in env.emu.execution_log
        if rec.action == "GetEdgeInstanceDeployment"
        and rec.time_ms >= final_ms[rec.params["DeploymentId"]]
    )
    assert after == Counter({dep: 1 for _, dep in pairs})


async def test_deployments_can_be_added_while_it_runs(env: Env) -> None:
    first: list[str] = []
    later: list[str] = []
    for i in range(4):
        inst = await env.instance(f"a{i}", gateways=1, drivers=1)
        (first if i < 2 else later).append(inst)
    ids = {inst: await env.deploy(inst) for inst in first}
    finals = []
    # until_idle=False: the stream stays open between deployments until close().
    async with monitor_for(env, until_idle=False) as monitor:
        for inst in first:
            monitor.add(inst, ids[inst])
        async for event in monitor:
            if event.kind == "final":
                finals.append(event.deployment_id)
                if len(finals) == 2:
                    for inst in later:
                        ids[inst] = await env.deploy(inst)
                        monitor.add(inst, ids[inst])
                    monitor.close()
                    with pytest.raises(RuntimeError, match="closed"):
                        monitor.add(first[0], ids[first[0]])
    assert sorted(finals) == sorted(ids.values())
    with pytest.raises(RuntimeError, match="ended"):
        monitor.add(first[0], ids[first[0]])


async def test_a_vanished_deployment_does_not_stop_the_others(env: Env) -> None:
    inst = await env.instance("v", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    async with monitor_for(env) as monitor:
        monitor.add(inst, "0" * 32)
        monitor.add(inst, dep)
        events = [e async for e in monitor]
    finals = {e.deployment_id: e for e in events if e.kind == "final"}
    assert finals["0" * 32].outcome == "not_found"
    assert finals["0" * 32].error == "iot.edge.deploySheetNotExist"
    assert finals[dep].outcome == "succeeded"


async def test_per_deployment_timeout(env: Env) -> None:
    inst = await env.instance("t", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    async with monitor_for(env, timeout=1.0) as monitor:
        monitor.add(inst, dep)
        events = [e async for e in monitor]
    assert events[-1].kind == "final" and events[-1].outcome == "timed_out"
    assert monitor.outcomes() == {(inst, dep): "timed_out"}


async def test_the_shared_quota_is_respected_in_real_time() -> None:
    # Real clocks: the emulator enforces 5 QPS on GetEdgeInstanceDeployment with a strict
    # sliding window; every poll of the monitor goes through the client's limiter, which
    # keeps them inside it.  (A wide margin: this checks the monitor's wiring, not how
    # tight the limiter can run on a loaded machine.)
    async with (
        Emulator(quotas=True, stage_seconds=0.25, seed=3) as emu,
        EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            retry=None,
            rate_limit=LocalRateLimiter(margin=0.2),
            quota_scope=emu.endpoint,
        ) as client,
    ):
        env = Env(emu, client, FakeClock())
        pairs = []
        for i in range(6):
            inst = await env.instance(f"q{i}", gateways=1, drivers=1)
            pairs.append((inst, await env.deploy(inst)))
        async with DeploymentMonitor(
            client, pollers=4, poll_interval=0.05, max_poll_interval=0.05
        ) as monitor:
            for pair in pairs:
                monitor.add(*pair)
            events = [e async for e in monitor]
        stats = emu.stats()["GetEdgeInstanceDeployment"]
        assert stats["throttled"] == 0 and stats["executed"] == monitor.stats.polls
        assert not [e for e in events if e.kind == "poll_error"]
        grouped = by_deployment(events)
        for _, dep in pairs:
            check_snapshots_exact(grouped[dep], emu.timeline(dep))
            assert grouped[dep][-1].outcome == "succeeded"


class _StaticClient:
    """Answers every poll at once with the same running deployment (no I/O at all)."""

    def __init__(self) -> None:
        self.calls = 0

    async def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.calls += 1
        dep = params["DeploymentId"]
        snaps = [{"SnapshotId": f"{dep}-s{i}", "Stage": 8, "Status": 1} for i in range(3)]
        task = {"TaskId": f"{dep}-t", "Stage": 8, "Status": 1, "ResourceSnapshotList": snaps}
        return {"Data": {"DeploymentId": dep, "Status": 1, "TaskList": [task]}}


async def test_a_slow_reader_holds_the_pollers_back() -> None:
    client = _StaticClient()
    # Long intervals: only the first poll of each deployment is due during the test.
    monitor = DeploymentMonitor(
        client, pollers=2, buffer_size=1, poll_interval=60.0, max_poll_interval=60.0
    )
    async with monitor:
        for i in range(20):
            monitor.add("inst", f"dep{i}")
        await anyio.wait_all_tasks_blocked()
        # Each first poll yields 5 events; with one slot in the stream both pollers are
        # stuck sending and nobody polls on.
        assert client.calls == 2
        got = [await monitor.__anext__() for _ in range(30)]
        await anyio.wait_all_tasks_blocked()
        # 30 events read = about 6 deployments' first answers; then stuck again.
        assert 6 <= len({e.deployment_id for e in got}) <= 8
        assert client.calls <= 10
        assert monitor.stats.active == 20


async def test_monitor_resumes_a_timed_out_watch_and_hands_out_checkpoints(env: Env) -> None:
    inst = await env.instance("r", gateways=2, drivers=2)
    dep = await env.deploy(inst)
    key = (inst, dep)
    with anyio.fail_after(60):  # real seconds: a stream that never ends fails, not hangs
        watcher = env.watch(inst, dep, poll_interval=0.05, max_poll_interval=0.05, timeout=3.0)
        first = [e async for e in watcher]
        assert first[-1].outcome == "timed_out" and first[-1].status == 1
        # The monitor picks the timed-out watch up and follows the deployment on.
        read: list[DeploymentEvent] = []
        async with monitor_for(env, buffer_size=256) as monitor:
            assert monitor.add(inst, dep, checkpoint=watcher.checkpoint())
            async for event in monitor:
                read.append(event)
                if event.kind == "snapshot" and event.stage == 16:
                    break
            # The reader stops; the pollers go on and fill the stream's buffer with events
            # nobody has read.  The checkpoint covers only what was read.
            polls = monitor.polls_per_deployment()[key]
            while monitor.polls_per_deployment()[key] < polls + 2:
                await anyio.sleep(0.01)
            saved = monitor.checkpoint(inst, dep)
            assert monitor.checkpoints() == {key: saved}
            told = DeploymentState.from_dict(saved["state"])
            assert told != monitor.states()[key]  # sent into the stream, never read
            assert saved["final_emitted"] is False
        with pytest.raises(KeyError):
            monitor.checkpoint(inst, "0" * 32)
        # A new monitor from that checkpoint: exactly the rest.
        async with monitor_for(env) as again:
            again.add(inst, dep, checkpoint=json.loads(json.dumps(saved)))
            rest = [e async for e in again]
        assert again.outcomes() == {key: "succeeded"}
    events = first + read + rest
    check_snapshots_exact(events, env.emu.timeline(dep))
    assert logs_seen(events) == await logs_told(env, inst, dep)
    assert rest[-1].kind == "final" and rest[-1].outcome == "succeeded"
    assert [e.outcome for e in events if e.kind == "final"] == ["timed_out", "succeeded"]
    # After the end the checkpoint says so: resuming from it tells nothing new.
    final = again.checkpoint(inst, dep)
    assert final["final_emitted"] is True
    async with monitor_for(env) as done:
        done.add(inst, dep, checkpoint=final)
        assert [e async for e in done] == []
    assert done.outcomes() == {key: "succeeded"}
