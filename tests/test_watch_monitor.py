"""DeploymentMonitor: many deployments, one stream, one fair share of the poll budget."""

from __future__ import annotations

import itertools
import json
import socket
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import pytest

from aioedge import (
    Credentials,
    DeploymentError,
    EdgeClient,
    NotFoundError,
    RetryPolicy,
    ThrottledError,
    TransportError,
    ValidationError,
)
from aioedge._ratelimit import LocalRateLimiter
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import DeploymentEvent, DeploymentMonitor, DeploymentState, WatchRetry
from aioedge.watch._tracker import classify

from .test_watch_emulator import (
    STAGE_SECONDS,
    Env,
    check_snapshots_exact,
    logs_seen,
    logs_told,
    on_fake_clock,
)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with on_fake_clock(FakeClock(), stage_seconds=STAGE_SECONDS, seed=11) as env:
        yield env


def monitor_for(env: Env, **kw: Any) -> DeploymentMonitor:
    kw.setdefault("poll_interval", 0.25)
    kw.setdefault("max_poll_interval", 0.25)
    return DeploymentMonitor(
        env.client, clock=env.clock, sleep=env.sleep, wall_clock=env.clock, **kw
    )


async def watch_all_real_time(
    client: EdgeClient, pairs: list[tuple[str, str]]
) -> tuple[list[DeploymentEvent], DeploymentMonitor]:
    """Every event of ``pairs`` watched by one monitor on the real clock (4 pollers, 50 ms)."""
    async with DeploymentMonitor(
        client, pollers=4, poll_interval=0.05, max_poll_interval=0.05
    ) as monitor:
        for pair in pairs:
            monitor.add(*pair)
        return [e async for e in monitor], monitor


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


def test_classify_judges_a_deployment_error_by_its_cause() -> None:
    def wrapped(cause: Exception) -> DeploymentError:
        try:
            raise DeploymentError("gave up", deployment_id="D") from cause
        except DeploymentError as err:
            return err

    lost = TransportError("cannot connect", maybe_executed=False)
    gone = NotFoundError("iot.edge.deploySheetNotExist", "no such deployment")
    assert classify(lost) == classify(wrapped(lost)) == ("error", "unreachable", "TransportError")
    assert classify(wrapped(gone)) == ("not_found", "not_found", "iot.edge.deploySheetNotExist")
    assert classify(ThrottledError("Throttling", "slow down")) == ("error", "error", "Throttling")
    assert classify(DeploymentError("bare", deployment_id="D")) == (
        "error",
        "error",
        "DeploymentError",
    )


@pytest.mark.parametrize("retry", [None, WatchRetry(initial=0.0, max_errors=1)])
async def test_an_unreachable_endpoint_ends_with_reason_unreachable(
    retry: WatchRetry | None,
) -> None:
    # REASONS documents "unreachable" for an endpoint that cannot be reached, as the CLI says.
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with (
        EdgeClient(
            credentials=Credentials("id", "secret"),
            endpoint=f"http://127.0.0.1:{port}",
            retry=RetryPolicy(max_attempts=1),
        ) as client,
        DeploymentMonitor(client, poll_interval=0.01, retry=retry) as monitor,
    ):
        monitor.add("I", "D")
        events = [e async for e in monitor]
    final = events[-1]
    assert (final.kind, final.outcome, final.reason) == ("final", "error", "unreachable")
    assert final.error == "TransportError" and f"127.0.0.1:{port}" in (final.message or "")
    assert monitor.outcomes() == {("I", "D"): "error"}


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
        events, monitor = await watch_all_real_time(client, pairs)
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


async def test_faults_a_failing_snapshot_and_a_close_each_end_as_the_emulator_says(
    env: Env,
) -> None:
    # Three stories in one monitor: one rollout runs through, one has a snapshot that fails
    # at stage 16, one is closed while it runs; meanwhile 503s (before execution) hit the
    # first polls and then about a third of them.
    plain = await env.instance("fp", gateways=2, drivers=2)
    failing = await env.instance("ff", gateways=2, drivers=1)
    closing = await env.instance("fc", gateways=1, drivers=2)
    deps = {inst: await env.deploy(inst) for inst in (plain, failing, closing)}
    env.emu.fail_deployment_at(stage=16, deployment_id=deps[failing])
    env.emu.set_faults(
        "GetEdgeInstanceDeployment:503:times=3,GetEdgeInstanceDeployment:unavailable=0.3"
    )
    # The close comes at a fixed time on the shared fake clock, 4 s into the rollouts
    # (every snapshot has started, none has ended): the monitor's own sleep is where the
    # clock moves, so that is where the close is sent, shielded from the monitor's
    # cancelling a wait cut short.
    close_at = env.clock() + 2 * STAGE_SECONDS
    closed_ms: list[int] = []

    async def sleep(seconds: float) -> None:
        if not closed_ms and env.clock() + seconds >= close_at:
            step = close_at - env.clock()
            env.clock.advance(step)
            with anyio.CancelScope(shield=True):
                await env.client.call("CloseEdgeInstanceDeployment", {"InstanceId": closing})
            closed_ms.append(env.emu.now_ms())
            seconds -= step
        await env.sleep(seconds)

    retry = WatchRetry(initial=0.1, multiplier=2.0, maximum=0.4)
    events: list[DeploymentEvent] = []
    with anyio.fail_after(30):  # real seconds: a stream that never ends fails, not hangs
        async with DeploymentMonitor(
            env.client,
            pollers=2,
            poll_interval=0.25,
            max_poll_interval=0.25,
            retry=retry,
            clock=env.clock,
            sleep=sleep,
            wall_clock=env.clock,
        ) as monitor:
            for inst, dep in deps.items():
                monitor.add(inst, dep)
            events = [e async for e in monitor]
    env.emu.clear_faults()
    polled = env.emu.stats()["GetEdgeInstanceDeployment"]
    assert closed_ms, "the monitor ended before the close was due"

    # Every deployment ends once, last, with the outcome the service gives it.
    assert monitor.outcomes() == {
        (plain, deps[plain]): "succeeded",
        (failing, deps[failing]): "failed",
        (closing, deps[closing]): "failed",
    }
    grouped = by_deployment(events)
    for inst, dep in deps.items():
        own = grouped[dep]
        assert [e.kind for e in own].count("final") == 1 and own[-1].kind == "final"
        # Ground truth: every snapshot move exactly once, in order, with its own time.
        timeline = env.emu.timeline(dep)
        check_snapshots_exact(own, timeline)
        assert own[-1].time is not None
        assert round(own[-1].time * 1000) == timeline[-1]["timestamp_ms"]
        assert logs_seen(own) == await logs_told(env, inst, dep)
    # The failure: the failing snapshot's own ERROR entry, and it ended failed at stage 16.
    injected = [
        e for e in grouped[deps[failing]] if e.kind == "log" and "injected failure" in str(e)
    ]
    assert len(injected) == 1 and injected[0].log is not None and injected[0].log.stage == 16
    culprit = [e for e in grouped[deps[failing]] if e.snapshot_id == injected[0].snapshot_id]
    assert [(e.stage, e.status) for e in culprit if e.kind == "snapshot"][-1] == (16, 3)
    # The close: the deployment failed at the moment it was closed, and said why.
    close_end = env.emu.timeline(deps[closing])[-1]
    assert (close_end["kind"], close_end["status"]) == ("deployment", 3)
    assert close_end["timestamp_ms"] == closed_ms[0]
    assert any(e.kind == "log" and e.message == "deployment closed" for e in grouped[deps[closing]])
    # The 503s: each one a poll_error event, none of them executed, none lost the stream.
    errors = [e for e in events if e.kind == "poll_error"]
    faults = env.emu.fault_log
    assert len(errors) == len(faults) == monitor.stats.poll_errors >= 3
    assert {(f.kind, f.executed) for f in faults} == {("unavailable", False)}
    assert {e.error for e in errors} == {"ServiceUnavailable"}
    # Every poll reached the emulator, and either ran or met its 503.
    assert polled["requests"] == monitor.stats.polls == polled["executed"] + len(faults)


async def test_scarce_polls_under_the_default_limiter_starve_no_deployment() -> None:
    # Real clocks and the client's default limiter (rate_limit=True, shared by every client
    # of the process for one quota scope) against the emulator's real 5-QPS quota on
    # GetEdgeInstanceDeployment.  Eight deployments each wanting a poll every 0.05 s ask
    # for 160 a second; the quota gives 5, so every deployment is always overdue and the
    # monitor must share them out.  Rollouts run 3x fast (a stage takes 2/3 s, a rollout
    # about 3.5 s): polled once per round of eight polls, a deployment sees stages pass
    # unseen between two polls.
    n = 8
    async with (
        Emulator(quotas=True, stage_seconds=STAGE_SECONDS, speed=3.0, seed=13) as emu,
        EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            retry=None,  # a throttled call would be a poll_error: there must be none
            quota_scope=emu.endpoint,
        ) as client,
    ):
        env = Env(emu, client, FakeClock())
        drivers = await client.call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 1, "Type": 0})
        driver_id = drivers["Data"]["DriverList"][0]["DriverId"]
        pairs: list[tuple[str, str]] = []

        async def prepare(i: int) -> None:
            inst = str((await client.call("CreateEdgeInstance", {"Name": f"s{i}"}))["InstanceId"])
            await client.call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": f"s{i}gw"})
            await client.call(
                "BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver_id}
            )
            configs = [{"Format": "KV", "Content": "a=1", "Key": "cfg"}]
            await client.call(
                "SetEdgeInstanceDriverConfigs",
                {"InstanceId": inst, "DriverId": driver_id, "Configs": configs},
            )
            pairs.append((inst, await env.deploy(inst)))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:  # the limiter paces the setup too
                for i in range(n):
                    tg.start_soon(prepare, i)
            events, monitor = await watch_all_real_time(client, pairs)
        polled = emu.stats()["GetEdgeInstanceDeployment"]
        polls = [
            rec.params["DeploymentId"]
            for rec in emu.execution_log
            if rec.action == "GetEdgeInstanceDeployment"
        ]
        # The quota was never exceeded: nothing throttled, every poll ran.
        assert polled["throttled"] == 0 and polled["executed"] == monitor.stats.polls == len(polls)
        assert not [e for e in events if e.kind == "poll_error"]
        grouped = by_deployment(events)
        for inst, dep in pairs:
            own = grouped[dep]
            assert own[-1].kind == "final" and own[-1].outcome == "succeeded"
            # Far fewer polls than snapshot moves: the Logs give back every move the polls
            # could not see, and each of a snapshot's entries (one per stage) once.
            timeline = emu.timeline(dep)
            moves = [t for t in timeline if t["kind"] == "snapshot"]
            assert monitor.polls_per_deployment()[(inst, dep)] * 2 < len(moves)
            check_snapshots_exact(own, timeline)
            told: dict[str | None, list[int | None]] = defaultdict(list)
            for e in own:
                if e.kind == "log" and e.log is not None:
                    told[e.snapshot_id].append(e.log.stage)
            snapshots = {t["snapshot_id"] for t in moves}
            assert len(snapshots) == 2  # the driver and its config
            assert told == {sid: [0, 8, 16, 24, 32] for sid in snapshots}
        # Nobody starves.  The monitor serves the deployment that has waited longest, so
        # polls go round: between two polls of one deployment come about one of every other
        # (pollers run side by side, so arrivals swap places a little), and at no point has
        # a deployment still watched had more than two polls more than another.
        last = {dep: max(i for i, d in enumerate(polls) if d == dep) for _, dep in pairs}
        for dep in last:
            mine = [i for i, d in enumerate(polls) if d == dep]
            assert len(mine) >= 2  # polled while it ran, and once more to see it end
            assert all(b - a - 1 <= 2 * (n - 1) for a, b in itertools.pairwise(mine)), mine
        count: Counter[str] = Counter()
        for i, dep in enumerate(polls):
            count[dep] += 1
            watched = [count[d] for d in last if last[d] > i]
            assert not watched or max(watched) - min(watched) <= 2, (i, count)
        per = monitor.polls_per_deployment().values()
        assert max(per) - min(per) <= 2


@pytest.mark.parametrize(
    ("field", "bad"), [("pollers", 0), ("pollers", 1.5), ("buffer_size", -1), ("buffer_size", 2.5)]
)
async def test_a_monitor_refuses_a_bad_count_by_its_name(field: str, bad: float) -> None:
    # pollers and buffer_size are counts, by the library's one rule; buffer_size was not
    # checked at all (a negative one failed later, inside anyio).
    client = EdgeClient(credentials=Credentials("k", "s"), endpoint="http://127.0.0.1:9")
    with pytest.raises(ValidationError) as info:
        DeploymentMonitor(client, **{field: bad})  # type: ignore[arg-type]
    assert info.value.param == field
