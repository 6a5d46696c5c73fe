"""RedisCoordinator: deployments watched by several processes, each polled by one of them.

Against a real redis-server (see tests/test_redis.py for how it is found) and the emulator.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from aioedge import (
    Credentials,
    DeploymentMonitor,
    EdgeClient,
    LocalRateLimiter,
    RedisCoordinator,
    RedisUnavailableError,
)
from aioedge.testing import Emulator

from .test_redis import _redis_url
from .test_watch_emulator import on_fake_clock

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def redis_url() -> str:
    return _redis_url()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    import redis

    value = f"aioedge-test-{uuid.uuid4().hex[:10]}"
    yield value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{value}:*"))
    if keys:
        client.delete(*keys)


async def test_a_stale_holder_cannot_write(redis_url: str, prefix: str) -> None:
    key = ("inst", "dep")
    a = RedisCoordinator(redis_url, prefix=prefix, lease=0.2)
    b = RedisCoordinator(redis_url, prefix=prefix, lease=5.0)
    try:
        await a.open()
        first = await a.claim(key)
        assert first.state == "held" and first.acquired and first.checkpoint is None
        assert (await b.claim(key)).state == "busy"
        assert await a.commit(key, {"n": 1}, final=False, outcome=None)
        await anyio.sleep(0.4)  # Redis' own clock: a's lease expires (a stalled, say)
        second = await b.claim(key)
        assert second.state == "held" and second.acquired
        assert second.checkpoint == {"n": 1}  # b resumes from a's last commit
        # a still believes it holds the lease: its write is refused (fenced).
        assert key in a.held()
        assert not await a.commit(key, {"n": 99}, final=False, outcome=None)
        assert key not in a.held()
        assert (await a.claim(key)).state == "busy"
        assert await b.commit(key, {"n": 2}, final=True, outcome="succeeded")
        done = await a.claim(key)
        assert done.state == "done" and done.outcome == "succeeded"
    finally:
        await a.close()
        await b.close()


async def test_unreachable_redis_is_a_clear_error_not_a_hang() -> None:
    coordinator = RedisCoordinator("redis://127.0.0.1:1/0", connect_timeout=0.5)
    with anyio.fail_after(20):
        async with EdgeClient(
            endpoint="http://127.0.0.1:9", credentials=Credentials("AKID", "secret")
        ) as client:
            with pytest.raises(RedisUnavailableError, match="cannot reach Redis"):
                async with DeploymentMonitor(client, coordinator=coordinator):
                    pass
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisCoordinator("http://127.0.0.1:6379")


async def _deployments(emu: Emulator, client: EdgeClient, count: int) -> list[tuple[str, str]]:
    pairs = []
    for iid in emu.fleet[:count]:
        body = await client.call(
            "CreateEdgeInstanceDeployment", {"InstanceId": iid, "Type": "deploy"}
        )
        pairs.append((iid, str(body["DeploymentId"])))
    return pairs


def _transitions(events: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (e["deployment_id"], e["kind"], e["task_id"], e["snapshot_id"], e["stage"], e["status"])
        for e in events
        if e["kind"] in ("deployment", "task", "snapshot", "final")
    )


async def test_two_monitors_share_deployments_without_polling_twice(
    redis_url: str, prefix: str
) -> None:
    async with (
        Emulator(fleet=6, speed=20) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        pairs = await _deployments(emu, client, 6)
        seen: list[list[dict[str, Any]]] = [[], []]
        monitors = [
            DeploymentMonitor(
                client,
                coordinator=RedisCoordinator(redis_url, prefix=prefix, lease=2.0),
                poll_interval=0.05,
                max_poll_interval=0.3,
            )
            for _ in range(2)
        ]

        async def watch(n: int) -> None:
            async with monitors[n] as monitor:
                for pair in pairs:
                    monitor.add(*pair)
                async for event in monitor:
                    seen[n].append(event.to_dict())

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, 0)
                tg.start_soon(watch, 1)
        everything = seen[0] + seen[1]
        finals = Counter(e["deployment_id"] for e in everything if e["kind"] == "final")
        assert finals == Counter(dep for _, dep in pairs)  # each reported once overall
        assert max(_transitions(everything).values()) == 1  # and no event twice
        # Each deployment's events all come from one monitor (no takeover here).
        for dep in (d for _, d in pairs):
            assert sum(any(e["deployment_id"] == dep for e in s) for s in seen) == 1
        polled = emu.stats()["GetEdgeInstanceDeployment"]["executed"]
        assert polled == sum(m.stats.polls for m in monitors)


class Watchers:
    """Watcher processes (tests/coordinated_watcher.py) on one emulator and one key prefix."""

    def __init__(self, tmp_path: Path, emu: Emulator, *, redis_url: str, prefix: str) -> None:
        self.tmp_path, self.emu, self.redis_url, self.prefix = tmp_path, emu, redis_url, prefix
        self.procs: list[asyncio.subprocess.Process] = []
        self.outputs: list[list[dict[str, Any]]] = []
        self.victim: int | None = None

    async def start(self, processes: int, *, coordinated: bool) -> None:
        config = {
            "endpoint": self.emu.endpoint,
            "redis": self.redis_url,
            "prefix": self.prefix,
            "lease": 1.0,
            "coordinated": coordinated,
            # One poll a second each: 30 deployments need 30 polls/s, within the (scaled)
            # quota, so the poll count measures the work, not the length of the run.
            "poll_interval": 1.0,
            "max_poll_interval": 1.0,
            # The emulator's quota is scaled 8x (below): the shared limiter allows as much.
            "overrides": {"GetEdgeInstanceDeployment": 40},
        }
        path = self.tmp_path / f"{self.prefix}.json"
        path.write_text(json.dumps(config))
        creds = self.emu.credentials
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": creds.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": creds.access_key_secret,
            "PYTHONPATH": str(ROOT),
            "HOME": str(self.tmp_path),
        }
        for _ in range(processes):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "tests" / "coordinated_watcher.py"),
                str(path),
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            self.procs.append(proc)
            self.outputs.append([])
        for proc in self.procs:  # started (imports done) before any deployment exists
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            assert json.loads(line) == {"ready": True}, line

    async def watch(self, pairs: list[tuple[str, str]], *, kill_one: bool) -> int:
        """Hand out the pairs; SIGKILL the first process to hand out 20 events (``victim``);
        the polls (and throttled polls) the emulator received."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(pairs) + "\n").encode())
            await proc.stdin.drain()

        async def read(n: int) -> None:
            stream = self.procs[n].stdout
            assert stream is not None
            async for raw in stream:
                self.outputs[n].append(json.loads(raw))
                # Midway: the busiest process, with some of its deployments under way.
                if kill_one and self.victim is None and len(self.outputs[n]) >= 20:
                    self.victim = n
                    self.procs[n].send_signal(signal.SIGKILL)

        async with anyio.create_task_group() as tg:
            for n in range(len(self.procs)):
                tg.start_soon(read, n)
        for n, proc in enumerate(self.procs):
            _, err = await proc.communicate()
            if n == self.victim:
                assert proc.returncode == -signal.SIGKILL
            else:
                assert proc.returncode == 0, err.decode()
        assert (self.victim is not None) == kill_one
        polls = self.emu.stats()["GetEdgeInstanceDeployment"]
        return polls["executed"] + polls["throttled"]


async def test_three_processes_one_killed_report_every_final_once(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    # Deployments of about 3 s (speed 3.5), quotas 40/s (the speed option of the issue:
    # the same arithmetic as 5/s, eight times faster).
    options = {"fleet": 30, "speed": 3.5, "quota_scale": 8}
    async with Emulator(**options) as shared, Emulator(**options) as alone:
        three = Watchers(tmp_path, shared, redis_url=redis_url, prefix=prefix)
        one = Watchers(tmp_path, alone, redis_url=redis_url, prefix=prefix + "-solo")
        with anyio.fail_after(TIMEOUT):
            await three.start(3, coordinated=True)
            await one.start(1, coordinated=False)  # the baseline: one process, alone
            quick = {"CreateEdgeInstanceDeployment": 40}  # the emulator's scaled quota
            async with (
                EdgeClient(
                    credentials=shared.credentials,
                    endpoint=shared.endpoint,
                    rate_limit=LocalRateLimiter(overrides=quick),
                ) as c1,
                EdgeClient(
                    credentials=alone.credentials,
                    endpoint=alone.endpoint,
                    rate_limit=LocalRateLimiter(overrides=quick),
                ) as c2,
            ):
                pairs: list[tuple[str, str]] = []
                solo_pairs: list[tuple[str, str]] = []

                async def make(emu: Emulator, client: EdgeClient, out: list[Any]) -> None:
                    out.extend(await _deployments(emu, client, 30))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(make, shared, c1, pairs)
                    tg.start_soon(make, alone, c2, solo_pairs)
            counts: dict[str, int] = {}

            async def watch(name: str, group: Watchers, todo: list[Any], kill: bool) -> None:
                counts[name] = await group.watch(todo, kill_one=kill)

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, "shared", three, pairs, True)
                tg.start_soon(watch, "solo", one, solo_pairs, False)
        polls, solo_polls = counts["shared"], counts["solo"]
        outputs = three.outputs
        events = [e for out in outputs for e in out if "kind" in e]
        finals = Counter(e["deployment_id"] for e in events if e["kind"] == "final")
        assert finals == Counter(dep for _, dep in pairs), "a final lost or repeated"
        assert max(_transitions(events).values()) == 1, "an event reported twice"
        # The killed process had deployments under way: the others took them over.
        by_process: dict[str, set[int]] = defaultdict(set)
        for n, out in enumerate(outputs):
            for e in out:
                if "kind" in e:
                    by_process[e["deployment_id"]].add(n)
        victim = three.victim
        taken_over = [d for d, procs in by_process.items() if victim in procs and len(procs) > 1]
        assert taken_over, "the killed process held nothing that needed taking over"
        # The budget: about one process's polls, none throttled.
        assert shared.stats()["GetEdgeInstanceDeployment"]["throttled"] == 0
        assert polls <= 1.2 * solo_polls, (polls, solo_polls)
        baseline = [e for e in one.outputs[0] if e.get("kind") == "final"]
        assert len(baseline) == 30


async def test_a_rollout_resumes_from_a_redis_store(redis_url: str, prefix: str) -> None:
    from aioedge import RedisRolloutStore

    async with (
        Emulator(fleet=4, speed=20) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        fast = {"poll_interval": 0.05, "max_poll_interval": 0.3}
        outcomes: list[str] = []
        first = client.rollout(
            emu.fleet,
            waves=(1, 1.0),
            store=RedisRolloutStore(redis_url, name="r", prefix=prefix),
            **fast,
        )
        with anyio.fail_after(TIMEOUT):
            async with first:
                async for event in first:
                    if event.outcome is not None and event.instance_id:
                        outcomes.append(event.instance_id)
                        break
            second = client.rollout(
                emu.fleet,
                waves=(1, 1.0),
                store=RedisRolloutStore(redis_url, name="r", prefix=prefix),
                **fast,
            )
            async with second:
                async for event in second:
                    if event.outcome is not None and event.instance_id:
                        outcomes.append(event.instance_id)
        assert second.result.ok
        assert Counter(outcomes) == Counter(emu.fleet)
        creates = Counter(
            e.params["InstanceId"]
            for e in emu.execution_log
            if e.action == "CreateEdgeInstanceDeployment"
        )
        assert creates == Counter(emu.fleet)


async def test_redis_lost_while_watching_ends_the_stream_with_an_error(
    redis_url: str, prefix: str
) -> None:
    """Redis goes away mid-watch (a TCP proxy in front of it is shut): a clear error."""
    target = urlsplit(redis_url)
    links: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        links.extend([writer, up_writer])
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    proxy_url = f"redis://127.0.0.1:{port}{target.path or '/0'}"
    async with (
        Emulator(fleet=2, speed=0.5) as emu,  # deployments of ~20 s: still running at the cut
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        pairs = await _deployments(emu, client, 2)
        coordinator = RedisCoordinator(
            proxy_url, prefix=prefix, lease=0.6, connect_timeout=0.5, socket_timeout=0.5
        )
        monitor = DeploymentMonitor(
            client, coordinator=coordinator, poll_interval=0.05, max_poll_interval=0.2
        )
        seen = 0
        with anyio.fail_after(TIMEOUT), pytest.raises(RedisUnavailableError, match="Redis"):
            async with monitor:
                for pair in pairs:
                    monitor.add(*pair)
                async for _event in monitor:
                    seen += 1
                    if seen == 1:  # Redis vanishes: the proxy and its connections close
                        proxy.close()
                        for link in links:
                            link.close()
        assert seen >= 1


async def test_an_error_in_a_monitors_body_surfaces_as_itself() -> None:
    async with (
        Emulator() as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        with pytest.raises(KeyError, match="mine"):
            async with DeploymentMonitor(client):
                raise KeyError("mine")  # not an ExceptionGroup around it


class _Stalled(RedisCoordinator):
    """A holder whose renewals stopped (a frozen process, say): its leases run out."""

    async def keep_leases(self) -> None:
        await anyio.sleep_forever()


async def test_a_holder_that_lost_its_lease_drops_its_events_and_the_new_one_reports_them(
    redis_url: str, prefix: str
) -> None:
    async with (
        Emulator(fleet=3, speed=5) as emu,  # deployments of ~2 s
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        pairs = await _deployments(emu, client, 3)
        fast = {"poll_interval": 0.05, "max_poll_interval": 0.1}
        stalled = DeploymentMonitor(
            client, coordinator=_Stalled(redis_url, prefix=prefix, lease=0.4), **fast
        )
        healthy = DeploymentMonitor(
            client, coordinator=RedisCoordinator(redis_url, prefix=prefix, lease=0.4), **fast
        )
        seen: dict[str, list[dict[str, Any]]] = {"stalled": [], "healthy": []}
        started = anyio.Event()

        async def watch(name: str, monitor: DeploymentMonitor) -> None:
            if name == "healthy":
                await started.wait()  # the stalled one holds every lease first
            async with monitor:
                for pair in pairs:
                    monitor.add(*pair)
                async for event in monitor:
                    seen[name].append(event.to_dict())
                    started.set()

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, "stalled", stalled)
                tg.start_soon(watch, "healthy", healthy)
        everything = seen["stalled"] + seen["healthy"]
        finals = Counter(e["deployment_id"] for e in everything if e["kind"] == "final")
        assert finals == Counter(dep for _, dep in pairs)
        assert max(_transitions(everything).values()) == 1
        # Deployments moved mid-way while the stalled holder was still alive and polling
        # them: what it saw after its lease ran out was refused at commit and dropped, and
        # the healthy one reported it, from the last committed checkpoint, once.
        shared = {e["deployment_id"] for e in seen["stalled"]} & {
            e["deployment_id"] for e in seen["healthy"]
        }
        assert shared, "no deployment changed hands"


class _RenewalFails(RedisCoordinator):
    """Redis refuses the renewals (as a lost connection would) after a moment."""

    async def keep_leases(self) -> None:
        await anyio.sleep(0.3)
        raise RedisUnavailableError("RedisCoordinator: Redis failed: renewal refused")


async def test_a_failed_renewal_ends_the_stream_with_its_error(redis_url: str, prefix: str) -> None:
    async with (
        Emulator(fleet=2, speed=0.2) as emu,  # deployments of ~1 min: nothing ends first
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        pairs = await _deployments(emu, client, 2)
        monitor = DeploymentMonitor(
            client,
            coordinator=_RenewalFails(redis_url, prefix=prefix, lease=5.0),
            poll_interval=0.05,
            max_poll_interval=0.1,
        )
        with anyio.fail_after(TIMEOUT), pytest.raises(RedisUnavailableError, match="renewal"):
            async with monitor:
                for pair in pairs:
                    monitor.add(*pair)
                async for _event in monitor:
                    pass


async def test_a_takeover_keeps_the_stall_clock(redis_url: str, prefix: str) -> None:
    from aioedge._hooks import PollInfo
    from aioedge.testing import FakeClock

    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await anyio.sleep(0)

    async with on_fake_clock(clock, stage_seconds=2.0, fleet=1) as env:
        emu, client = env.emu, env.client
        (pair,) = await _deployments(emu, client, 1)
        emu.stall_deployment_at(stage=8, deployment_id=pair[1])
        fake = {"clock": clock, "sleep": sleep, "wall_clock": clock}
        opts = {"poll_interval": 0.5, "max_poll_interval": 2.0, "progress_timeout": 30.0}
        first: list[Any] = []
        with anyio.fail_after(TIMEOUT), anyio.CancelScope() as scope:
            # The first process watches until the deployment has not moved for 20 s of its
            # 30 s, then goes away (its lease handed back).
            def poll(info: PollInfo) -> None:
                if info.since_change >= 20:
                    scope.cancel()

            async with DeploymentMonitor(
                client,
                coordinator=RedisCoordinator(redis_url, prefix=prefix, lease=5.0),
                on_poll=poll,
                **opts,
                **fake,
            ) as a:
                a.add(*pair)
                async for event in a:
                    first.append(event)
        moved = [e for e in first if e.is_transition]
        assert moved and all(e.kind != "final" for e in first)
        taken_over_at = clock()
        second: list[Any] = []
        with anyio.fail_after(TIMEOUT):
            async with DeploymentMonitor(
                client,
                coordinator=RedisCoordinator(redis_url, prefix=prefix, lease=5.0),
                **opts,
                **fake,
            ) as b:
                b.add(*pair)
                async for event in b:
                    second.append(event)
        final = second[-1]
        assert final.kind == "final" and final.outcome == "stalled"
        assert not [e for e in second if e.is_transition]  # nothing told twice
        last = moved[-1]
        assert last.time is not None and final.time is not None
        # 30 s after the last change the first process saw, not 30 s after the takeover.
        assert 30.0 <= final.time - last.time <= 32.001
        assert final.time - taken_over_at <= 10.0 + 2.001
        assert final.message is not None and "last change:" in final.message


@pytest.mark.parametrize("stored", ["not json {", "[1, 2, 3]"])
async def test_a_redis_store_reads_its_record_as_a_file_store_does(
    redis_url: str, prefix: str, tmp_path: Path, stored: str
) -> None:
    """Both stores read the record by one rule: text that is not JSON, or JSON that is not a
    record, is a ``ValidationError`` naming ``store``, before any call, and the key is left
    as it was.  (A Redis store raised the JSON error as it was, or took a list for "no
    record yet" and wrote a new record over it.)"""
    import redis

    from aioedge import FileRolloutStore, RedisRolloutStore, ValidationError

    path = tmp_path / "rollout.json"
    path.write_text(stored, "utf-8")
    redis.Redis.from_url(redis_url).set(f"{prefix}:rollout:r", stored)
    async with (
        Emulator(fleet=2, speed=50) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        errors: list[ValidationError] = []
        for store in (
            FileRolloutStore(path),
            RedisRolloutStore(redis_url, name="r", prefix=prefix),
        ):
            rollout = client.rollout(emu.fleet, waves=(1.0,), store=store)
            with anyio.fail_after(TIMEOUT), pytest.raises(ValidationError) as info:
                async with rollout:
                    pass
            errors.append(info.value)
        assert [(e.param, e.rule) for e in errors] == [("store", "format")] * 2
        assert not emu.execution_log  # nothing was called
    assert redis.Redis.from_url(redis_url).get(f"{prefix}:rollout:r") == stored.encode()
