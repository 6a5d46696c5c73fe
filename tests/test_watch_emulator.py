"""The watcher against the emulator's simulated rollouts and its ground-truth timeline.

The emulator and the watcher share one FakeClock: the watcher's sleeps move it, so a
rollout of several simulated seconds takes a few hundred real polls and no real waiting.
Quotas and client-side limiting are off here (they run on real time); the limiter is
exercised in test_watch_monitor.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from aioedge import (
    AuthError,
    ConflictError,
    Credentials,
    DeploymentError,
    EdgeClient,
    ValidationError,
)
from aioedge._cli import _hint
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import (
    DeploymentEvent,
    DeploymentMonitor,
    DeploymentState,
    DeploymentWatcher,
    LogEntry,
    WatchRetry,
    _deploy,
    deploy_and_watch,
    watch_deployment,
)
from aioedge.watch._deploy import start_deployment

STAGE_SECONDS = 2.0

Key = tuple[str, str | None, str | None]


class Env:
    def __init__(self, emu: Emulator, client: EdgeClient, clock: FakeClock) -> None:
        self.emu = emu
        self.client = client
        self.clock = clock
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await anyio.sleep(0)

    def watch(self, instance_id: str, deployment_id: str, **kw: Any) -> DeploymentWatcher:
        kw.setdefault("poll_interval", 0.1)
        kw.setdefault("max_poll_interval", 0.1)
        # Through the client's own method: the public entry point (API.md).
        watcher = self.client.watch_deployment(
            instance_id,
            deployment_id,
            clock=self.clock,
            sleep=self.sleep,
            wall_clock=self.clock,
            **kw,
        )
        assert isinstance(watcher, DeploymentWatcher)
        return watcher

    async def instance(self, name: str, *, gateways: int = 2, drivers: int = 2) -> str:
        call = self.client.call
        inst = str((await call("CreateEdgeInstance", {"Name": name}))["InstanceId"])
        for g in range(gateways):
            await call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": f"{name}gw{g}"})
        found = await call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
        driver_ids = [d["DriverId"] for d in found["Data"]["DriverList"]][:drivers]
        for driver_id in driver_ids:
            await call("BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver_id})
        if driver_ids:
            configs = [{"Format": "KV", "Content": "a=1", "Key": "cfg"}]
            await call(
                "SetEdgeInstanceDriverConfigs",
                {"InstanceId": inst, "DriverId": driver_ids[0], "Configs": configs},
            )
        return inst

    async def deploy(self, instance_id: str) -> str:
        body = await self.client.call(
            "CreateEdgeInstanceDeployment", {"InstanceId": instance_id, "Type": "deploy"}
        )
        return str(body["DeploymentId"])


@asynccontextmanager
async def on_fake_clock(
    clock: FakeClock, *, client: Mapping[str, Any] | None = None, **emulator: Any
) -> AsyncIterator[Env]:
    """An emulator (no quotas, ``emulator`` options) and a client sharing ``clock``, with
    no limiter and no retry of its own: the watcher's own retry is under test.  ``client``:
    more options of the client (its ``hooks``, other ``credentials``)."""
    async with Emulator(clock=clock, quotas=False, **emulator) as emu:
        options: dict[str, Any] = {
            "credentials": emu.credentials,
            "endpoint": emu.endpoint,
            "rate_limit": False,
            "retry": None,
            "clock": clock,
            "quota_scope": emu.endpoint,
            **(client or {}),
        }
        async with EdgeClient(**options) as edge:
            yield Env(emu, edge, clock)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with on_fake_clock(FakeClock(), stage_seconds=STAGE_SECONDS, seed=7) as env:
        yield env


def truth(timeline: list[dict[str, Any]]) -> dict[Key, list[tuple[Any, ...]]]:
    out: dict[Key, list[tuple[Any, ...]]] = defaultdict(list)
    for t in timeline:
        key = (t["kind"], t["task_id"], t["snapshot_id"])
        out[key].append((t["stage"], t["status"], t["timestamp_ms"]))
    return dict(out)


def seen(events: list[DeploymentEvent]) -> dict[Key, list[tuple[Any, ...]]]:
    out: dict[Key, list[tuple[Any, ...]]] = defaultdict(list)
    for e in events:
        if e.is_transition and e.change != "removed":
            key = (e.kind, e.task_id, e.snapshot_id)
            assert e.time is not None
            out[key].append((e.stage, e.status, round(e.time * 1000)))
    return dict(out)


def is_subsequence(part: list[Any], whole: list[Any]) -> bool:
    it = iter(whole)
    return all(item in it for item in part)


def check_exact(events: list[DeploymentEvent], timeline: list[dict[str, Any]]) -> None:
    """Every ground-truth transition exactly once, in order, with its own time."""
    assert seen(events) == truth(timeline)
    # Globally too: time order, starts before the parts, endings after them.
    rank = {"deployment": 0, "task": 1, "snapshot": 2}
    keys = []
    for e in events:
        if e.is_transition:
            assert e.time is not None
            r = rank[e.kind]
            if e.status in (2, 3) and e.kind != "snapshot":
                r = 4 - r + 2  # task end 3, deployment end 4
            keys.append((round(e.time * 1000), r))
    assert keys == sorted(keys)


def check_snapshots_exact(events: list[DeploymentEvent], timeline: list[dict[str, Any]]) -> None:
    """Snapshots exactly (recovered from their logs); others: in order, none invented."""
    want, got = truth(timeline), seen(events)
    assert set(got) == set(want)
    for key, moves in want.items():
        if key[0] == "snapshot":
            assert got[key] == moves, key
        else:
            assert is_subsequence(got[key], moves), key
            assert got[key][-1] == moves[-1], key


async def collect(watcher: DeploymentWatcher) -> list[DeploymentEvent]:
    return [event async for event in watcher]


async def test_fast_polling_sees_every_transition_exactly_once_in_order(env: Env) -> None:
    inst = await env.instance("fast")
    dep = await env.deploy(inst)
    watcher = env.watch(inst, dep, poll_interval=0.05, max_poll_interval=0.05)
    events = await collect(watcher)
    timeline = env.emu.timeline(dep)
    check_exact(events, timeline)
    assert not any(e.inferred for e in events)
    assert events[-1].kind == "final" and events[-1].outcome == "succeeded"
    assert watcher.outcome == "succeeded" and watcher.state is not None
    assert watcher.state.is_final
    # Each snapshot logged one entry per stage: 0, 8, 16, 24, 32, each emitted once.
    logs = defaultdict(list)
    for e in events:
        if e.kind == "log" and e.log is not None:
            logs[e.snapshot_id].append(e.log.stage)
    assert logs and all(stages == [0, 8, 16, 24, 32] for stages in logs.values())
    # 2 gateways x (2 drivers + 1 driver config) snapshots.
    assert len(logs) == 6


async def test_slow_polling_recovers_the_stages_from_the_logs(env: Env) -> None:
    inst = await env.instance("slow")
    dep = await env.deploy(inst)
    # One poll every 1.5 stages: most snapshot moves happen between polls.
    interval = STAGE_SECONDS * 1.5
    events = await collect(env.watch(inst, dep, poll_interval=interval, max_poll_interval=interval))
    timeline = env.emu.timeline(dep)
    check_snapshots_exact(events, timeline)
    inferred = [e for e in events if e.inferred]
    assert inferred and all(e.kind == "snapshot" for e in inferred)
    assert events[-1].outcome == "succeeded"
    assert len([e for e in events if e.kind == "final"]) == 1


async def test_first_poll_after_the_end_replays_the_whole_story(env: Env) -> None:
    inst = await env.instance("late")
    dep = await env.deploy(inst)
    env.clock.advance(60)  # long finished before anyone looks
    watcher = env.watch(inst, dep)
    events = await collect(watcher)
    assert watcher.polls == 1
    check_snapshots_exact(events, env.emu.timeline(dep))
    assert events[-1].outcome == "succeeded"


async def test_a_failing_snapshot_fails_the_deployment(env: Env) -> None:
    inst = await env.instance("failing")
    env.emu.fail_deployment_at(stage=16)
    dep = await env.deploy(inst)
    events = await collect(env.watch(inst, dep, poll_interval=0.05, max_poll_interval=0.05))
    timeline = env.emu.timeline(dep)
    check_exact(events, timeline)
    # The snapshot fails at 16; the other snapshots of its subtask end with it (status 3,
    # an ERROR entry saying why), so every snapshot the watcher follows ends.
    failed = [e for e in events if e.kind == "snapshot" and e.status == 3]
    assert len(failed) == 3 and {e.task_id for e in failed} == {failed[0].task_id}
    assert failed[0].stage == 16
    error_logs = [e for e in events if e.kind == "log" and e.log and e.log.failed]
    assert [e.snapshot_id for e in error_logs] == [e.snapshot_id for e in failed]
    assert error_logs[0].log is not None and error_logs[0].log.message is not None
    assert "failed: injected failure" in error_logs[0].log.message
    assert all(e.log and (e.log.message or "").startswith("stopped: ") for e in error_logs[1:])
    assert events[-1].outcome == "failed" and events[-1].status == 3


async def test_a_failure_seen_late_is_recovered(env: Env) -> None:
    inst = await env.instance("failing-slow", gateways=1)
    env.emu.fail_deployment_at(stage=24)
    dep = await env.deploy(inst)
    events = await collect(env.watch(inst, dep, poll_interval=5.0, max_poll_interval=5.0))
    check_snapshots_exact(events, env.emu.timeline(dep))
    assert events[-1].outcome == "failed"


async def test_close_ends_the_deployment_as_failed(env: Env) -> None:
    inst = await env.instance("closing")
    dep = await env.deploy(inst)
    events: list[DeploymentEvent] = []
    closed = False
    async for event in env.watch(inst, dep, poll_interval=0.05, max_poll_interval=0.05):
        events.append(event)
        if not closed and event.kind == "snapshot" and event.stage == 16:
            await env.client.call("CloseEdgeInstanceDeployment", {"InstanceId": inst})
            closed = True
    assert closed
    check_exact(events, env.emu.timeline(dep))
    assert events[-1].outcome == "failed"
    closed_logs = [e for e in events if e.kind == "log" and e.message == "deployment closed"]
    assert closed_logs


@pytest.mark.parametrize(
    "faults",
    [
        "GetEdgeInstanceDeployment:unavailable=0.3",
        "GetEdgeInstanceDeployment:reset=0.2,GetEdgeInstanceDeployment:malformed=0.2",
    ],
)
async def test_faults_become_poll_errors_and_nothing_is_lost(env: Env, faults: str) -> None:
    inst = await env.instance("faulty")
    dep = await env.deploy(inst)
    env.emu.set_faults(faults)
    retry = WatchRetry(initial=0.1, multiplier=2.0, maximum=0.4)
    events = await collect(
        env.watch(inst, dep, poll_interval=0.1, max_poll_interval=0.1, retry=retry)
    )
    env.emu.clear_faults()
    errors = [e for e in events if e.kind == "poll_error"]
    assert len(errors) >= 3
    assert len(errors) == len(env.emu.fault_log)
    assert all(e.retry_in is not None and 0.1 <= e.retry_in <= 0.4 for e in errors)
    assert all("poll error" in str(e) and e.error for e in errors)
    check_snapshots_exact(events, env.emu.timeline(dep))
    assert events[-1].outcome == "succeeded"


async def test_too_many_consecutive_errors_give_up_clearly(env: Env) -> None:
    inst = await env.instance("down")
    dep = await env.deploy(inst)
    env.emu.set_faults("GetEdgeInstanceDeployment:unavailable")
    kinds = []
    with pytest.raises(DeploymentError, match="3 consecutive failed polls") as info:
        async for event in env.watch(inst, dep, retry=WatchRetry(initial=0.1, max_errors=3)):
            kinds.append(event.kind)
    assert kinds == ["poll_error"] * 3
    assert info.value.deployment_id == dep


async def test_unknown_deployment_is_a_clear_error(env: Env) -> None:
    inst = await env.instance("nodep")
    with pytest.raises(DeploymentError, match="does not exist") as info:
        await collect(env.watch(inst, "0" * 32))
    assert info.value.deployment_id == "0" * 32
    assert getattr(info.value.__cause__, "code", None) == "iot.edge.deploySheetNotExist"


async def test_timeout_ends_with_a_timed_out_final_event(env: Env) -> None:
    inst = await env.instance("timeout")
    dep = await env.deploy(inst)
    watcher = env.watch(inst, dep, poll_interval=0.5, max_poll_interval=2.0, timeout=3.0)
    events = await collect(watcher)
    final = events[-1]
    assert final.kind == "final" and final.outcome == "timed_out"
    assert watcher.outcome == "timed_out" and "3s" in str(final)
    assert final.status == 1  # still running when we stopped looking
    assert sum(env.sleeps) <= 3.0 + 1e-9


def logs_seen(events: list[DeploymentEvent]) -> Counter[tuple[str | None, LogEntry]]:
    return Counter((e.snapshot_id, e.log) for e in events if e.kind == "log" and e.log)


async def logs_told(
    env: Env, instance_id: str, deployment_id: str
) -> Counter[tuple[str, LogEntry]]:
    """Every log entry the service has for the deployment (its answer now), as a multiset."""
    body = await env.client.call(
        "GetEdgeInstanceDeployment", {"InstanceId": instance_id, "DeploymentId": deployment_id}
    )
    state = DeploymentState.from_response(body, instance_id=instance_id)
    return Counter((s.snapshot_id, entry) for _t, s in state.snapshots() for entry in s.log)


def undelivered(watcher: DeploymentWatcher) -> set[str]:
    """Snapshots with news in the last answer the caller has not been given yet."""
    raw = watcher.checkpoint()["state"]
    assert watcher.state is not None and raw is not None
    told = {s.snapshot_id: s for _t, s in DeploymentState.from_dict(raw).snapshots()}
    return {s.snapshot_id for _t, s in watcher.state.snapshots() if told.get(s.snapshot_id) != s}


async def test_resuming_from_a_checkpoint_emits_only_what_is_new(env: Env) -> None:
    inst = await env.instance("resume")
    dep = await env.deploy(inst)
    first: list[DeploymentEvent] = []
    cut_mid_batch = False
    # Polls a quarter stage apart: some answers move two snapshots at once.
    async with env.watch(inst, dep, poll_interval=0.5, max_poll_interval=0.5) as watcher:
        async for event in watcher:
            first.append(event)
            # Cut mid-batch, between two snapshots' moves: after one snapshot's stage-8
            # log entry while another snapshot's move in the same answer is still to come.
            if (
                event.kind == "log"
                and event.log is not None
                and event.log.stage == 8
                and undelivered(watcher) - {event.snapshot_id}
            ):
                cut_mid_batch = True
                break
        saved = json.dumps(watcher.checkpoint())
    assert cut_mid_batch
    env.clock.advance(1.3)  # time passes while nobody watches
    resumed = env.watch(
        inst, dep, poll_interval=0.5, max_poll_interval=0.5, checkpoint=json.loads(saved)
    )
    rest = await collect(resumed)
    events = first + rest
    check_snapshots_exact(events, env.emu.timeline(dep))
    # Every log entry the service has, each exactly once across the two streams.
    assert logs_seen(events) == await logs_told(env, inst, dep)
    assert [e.kind for e in events].count("final") == 1 and events[-1].kind == "final"
    # Fully delivered, the checkpoint is the last answer's tree.
    assert not undelivered(resumed)
    assert DeploymentState.from_dict(resumed.checkpoint()["state"]) == resumed.state
    # A checkpoint taken at the end resumes to nothing new.
    done = env.watch(inst, dep, checkpoint=json.loads(saved))
    async for _ in done:
        pass
    again = await collect(env.watch(inst, dep, checkpoint=done.checkpoint()))
    assert again == []


async def test_resuming_after_a_timeout_watches_on_to_the_end(env: Env) -> None:
    inst = await env.instance("again")
    dep = await env.deploy(inst)
    fast = {"poll_interval": 0.05, "max_poll_interval": 0.05}
    with anyio.fail_after(60):  # real seconds: a watch that never ends fails, not hangs
        watcher = env.watch(inst, dep, timeout=3.0, **fast)
        first = await collect(watcher)
        assert first[-1].kind == "final" and first[-1].outcome == "timed_out"
        assert first[-1].status == 1  # the deployment itself goes on
        saved = json.loads(json.dumps(watcher.checkpoint()))
        assert saved["final_emitted"] is False
        # A checkpoint written by an older version marked a timed-out watch final too;
        # its state says the deployment was still running, so it resumes as well.
        middle = env.watch(inst, dep, timeout=2.0, checkpoint={**saved, "final_emitted": True})
        second = await collect(middle)
        assert middle.polls > 1 and second[-1].outcome == "timed_out"
        assert any(e.is_transition for e in second)
        resumed = env.watch(inst, dep, checkpoint=middle.checkpoint(), **fast)
        rest = await collect(resumed)
    # The streams together: every ground-truth transition exactly once, in order, and
    # every log entry once; the deployment's own final event ends the last one.
    events = first + second + rest
    check_exact(events, env.emu.timeline(dep))
    assert logs_seen(events) == await logs_told(env, inst, dep)
    assert rest and rest[-1].kind == "final" and rest[-1].outcome == "succeeded"
    assert [e.kind for e in rest].count("final") == 1
    assert resumed.outcome == "succeeded" and resumed.polls > 1


async def test_checkpoint_of_another_deployment_is_refused(env: Env) -> None:
    inst = await env.instance("cp")
    dep = await env.deploy(inst)
    watcher = env.watch(inst, dep)
    async for _ in watcher:
        break
    with pytest.raises(ValueError, match="checkpoint is for deployment_id"):
        env.watch(inst, "f" * 32, checkpoint=watcher.checkpoint())
    await watcher.aclose()


async def test_breaking_out_and_cancelling_end_cleanly(env: Env) -> None:
    inst = await env.instance("cancel")
    dep = await env.deploy(inst)
    watcher = env.watch(inst, dep)
    async for _ in watcher:
        break
    await watcher.aclose()
    with pytest.raises(StopAsyncIteration):
        await watcher.__anext__()

    async def never(_seconds: float) -> None:
        await anyio.sleep_forever()

    got: list[DeploymentEvent] = []
    with anyio.move_on_after(0.5) as scope:
        async for event in watch_deployment(env.client, inst, dep, sleep=never):
            got.append(event)
    assert scope.cancelled_caught and got  # it was waiting for its next poll


async def test_deploy_and_watch_creates_and_follows(env: Env) -> None:
    inst = await env.instance("deploy", gateways=1)
    watcher = env.client.deploy(
        inst,
        poll_interval=0.05,
        max_poll_interval=0.05,
        clock=env.clock,
        sleep=env.sleep,
        wall_clock=env.clock,
    )
    assert isinstance(watcher, DeploymentWatcher) and watcher.deployment_id is None
    events = await collect(watcher)
    assert watcher.deployment_id is not None and not watcher.attached
    check_exact(events, env.emu.timeline(watcher.deployment_id))
    assert events[-1].outcome == "succeeded"


async def test_deploy_attaches_to_the_running_one_when_asked(env: Env) -> None:
    inst = await env.instance("attach", gateways=1)
    running = await env.deploy(inst)
    with pytest.raises(ConflictError) as info:
        await collect(deploy_and_watch(env.client, inst))
    assert info.value.code == "iot.edge.deploySheetAlreadyExist"
    watcher = deploy_and_watch(
        env.client, inst, attach=True, clock=env.clock, sleep=env.sleep, wall_clock=env.clock
    )
    events = await collect(watcher)
    assert watcher.attached and watcher.deployment_id == running
    assert events[-1].outcome == "succeeded"
    # Finished: the next deploy creates a new one (a reset this time).
    again = deploy_and_watch(
        env.client,
        inst,
        type="reset",
        attach=True,
        clock=env.clock,
        sleep=env.sleep,
        wall_clock=env.clock,
    )
    events = await collect(again)
    assert again.deployment_id != running and not again.attached
    assert {e.operate_type for e in events if e.kind == "snapshot"} == {1}


async def test_the_cli_hints_attach_for_the_code_attach_joins(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line's ``deploy`` says "re-run with --attach" for the very code that
    ``start_deployment(attach=True)`` joins: one constant, read by both."""
    deploy = argparse.Namespace(command="deploy")
    inst = await env.instance("hinted", gateways=1)
    running = await env.deploy(inst)
    with pytest.raises(ConflictError) as info:
        await start_deployment(env.client, inst)
    refused = info.value
    assert refused.code == _deploy.ALREADY_RUNNING and _deploy.already_running(refused)
    assert _hint(deploy, refused) == "; re-run with --attach to follow it"
    assert await start_deployment(env.client, inst, attach=True) == (running, True)
    # Were the service to spell it otherwise, both would follow the one constant.
    monkeypatch.setattr(_deploy, "ALREADY_RUNNING", "iot.edge.deploymentRunning")
    assert _hint(deploy, refused) == ""
    with pytest.raises(ConflictError):
        await start_deployment(env.client, inst, attach=True)
    renamed = ConflictError("iot.edge.deploymentRunning", "busy", action="Other")
    assert _hint(deploy, renamed) == "; re-run with --attach to follow it"


async def test_adaptive_interval_backs_off_while_idle(env: Env) -> None:
    inst = await env.instance("idle", gateways=1, drivers=1)
    dep = await env.deploy(inst)
    events = await collect(env.watch(inst, dep, poll_interval=0.05, max_poll_interval=0.3))
    assert events[-1].outcome == "succeeded"
    assert min(env.sleeps) == pytest.approx(0.05) and max(env.sleeps) == pytest.approx(0.3)
    # After a quiet poll the gap grows x1.5; after a busy one it is back to the minimum.
    pairs = list(itertools.pairwise(env.sleeps))
    grown = [(a, b) for a, b in pairs if b > a]
    assert grown and all(b == pytest.approx(min(0.3, a * 1.5)) for a, b in grown)
    assert any(b == pytest.approx(0.05) for a, b in pairs if b < a)


async def test_a_non_transient_error_is_raised_as_it_is(env: Env) -> None:
    inst = await env.instance("auth")
    dep = await env.deploy(inst)
    creds = env.emu.credentials
    async with EdgeClient(
        credentials=Credentials(creds.access_key_id, "not-the-secret"),
        endpoint=env.emu.endpoint,
        rate_limit=False,
        retry=None,
        clock=env.clock,
    ) as wrong:
        with pytest.raises(AuthError):
            await collect(watch_deployment(wrong, inst, dep, sleep=env.sleep, clock=env.clock))


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": 2.0, "max_poll_interval": 1.0}, "max_poll_interval"),
        ({"timeout": -1}, "timeout"),
        ({"progress_timeout": 0}, "progress_timeout"),
        ({"backoff": 0.5}, "backoff"),
        ({"on_poll": "print"}, "on_poll"),
    ],
)
def test_bad_options_are_refused_before_any_call(kwargs: dict[str, Any], param: str) -> None:
    # One rule for both: a watcher and a monitor refuse the same options the same way.
    with pytest.raises(ValidationError) as info:
        watch_deployment(object(), "i", "d", **kwargs)  # type: ignore[arg-type]
    assert info.value.param == param
    with pytest.raises(ValidationError) as info:
        DeploymentMonitor(object(), **kwargs)  # type: ignore[arg-type]
    assert info.value.param == param


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"initial": float("nan")}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"maximum": float("nan")}, "maximum"),
        ({"maximum": -0.5}, "maximum"),
        ({"multiplier": float("nan")}, "multiplier"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"max_errors": float("nan")}, "max_errors"),
        ({"max_errors": -1}, "max_errors"),
        ({"max_errors": 2.5}, "max_errors"),
        ({"max_errors": True}, "max_errors"),
        ({"max_errors": "3"}, "max_errors"),
    ],
)
def test_watch_retry_refuses_a_bad_field_by_its_name(kwargs: dict[str, Any], param: str) -> None:
    # The library's one rule for "a number >= a bound" (NaN refused) and for a count: a NaN
    # delay or max_errors of NaN (never reached: never give up) used to be taken.
    with pytest.raises(ValidationError) as info:
        WatchRetry(**kwargs)
    assert info.value.param == param
    assert info.value.rule == "range"


def test_watch_retry_takes_its_bounds() -> None:
    retry = WatchRetry(initial=0.0, maximum=0.0, multiplier=1.0, max_errors=0)
    assert retry.delay(3) == 0.0
    assert WatchRetry(max_errors=None).max_errors is None


@pytest.mark.parametrize("param", ["timeout", "progress_timeout"])
async def test_a_monitor_checks_the_limits_add_gives_one_deployment(param: str) -> None:
    monitor = DeploymentMonitor(object(), timeout=5.0, progress_timeout=5.0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        monitor.add("i", "d", **{param: -1.0})
    assert info.value.param == param
    assert monitor.stats.watched == 0
    # None turns the monitor's limit off for that deployment only.
    assert monitor.add("i", "d", **{param: None})


async def test_throttled_polls_are_poll_errors_and_the_watch_goes_on() -> None:
    # The emulator's quota (5 QPS on GetEdgeInstanceDeployment) runs on the same fake clock
    # as everything else, and the client does not pace itself: polling every 0.05 s asks
    # for 20 a second, so most polls are throttled.
    clock = FakeClock()
    async with (
        Emulator(
            clock=clock, quota_clock=clock, quotas=True, stage_seconds=STAGE_SECONDS, seed=7
        ) as emu,
        EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=False,
            retry=None,
            clock=clock,
            quota_scope=emu.endpoint,
        ) as client,
    ):
        env = Env(emu, client, clock)
        inst = await env.instance("quota", gateways=1, drivers=1)
        dep = await env.deploy(inst)
        retry = WatchRetry(initial=0.05, maximum=0.2)
        with anyio.fail_after(60):
            events = await collect(
                env.watch(inst, dep, poll_interval=0.05, max_poll_interval=0.05, retry=retry)
            )
        throttled = emu.stats()["GetEdgeInstanceDeployment"]["throttled"]
        errors = [e for e in events if e.kind == "poll_error"]
        assert throttled >= 10 and len(errors) == throttled
        assert {e.error for e in errors} <= {"Throttling.User", "iot.common.HighFrequentDeny"}
        assert all(e.retry_in is not None and 0.05 <= e.retry_in <= 0.2 for e in errors)
        check_snapshots_exact(events, emu.timeline(dep))
        clock.advance(1.0)  # out of the quota window for one more look
        assert logs_seen(events) == await logs_told(env, inst, dep)
        assert events[-1].kind == "final" and events[-1].outcome == "succeeded"


async def test_a_wrong_instance_is_reported_as_such(env: Env) -> None:
    inst = await env.instance("wronginst")
    dep = await env.deploy(inst)
    with pytest.raises(DeploymentError) as info:
        await collect(env.watch("NoSuchInstance", dep))
    message = str(info.value)
    assert message.startswith("instance NoSuchInstance does not exist")
    assert "iot.edge.InstanceNotExist" in message and "deployment" not in message
    assert getattr(info.value.__cause__, "code", None) == "iot.edge.InstanceNotExist"
    assert info.value.deployment_id == dep
