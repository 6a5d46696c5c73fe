"""Benchmark: many simulated deployments watched at once by one DeploymentMonitor.

    .venv/bin/python bench/bench_watch.py [--deployments 500] [--scale 20] [--json]

The emulator runs in a background thread of this process (its own event loop); the
monitor runs in the main thread, so the CPU time reported is the main thread's alone.
Time is compressed by ``--scale``: every quota is multiplied by it and every stage is
that much shorter, which keeps the ratio of polls to rollout progress of the real service
(5 QPS on GetEdgeInstanceDeployment, ``--stage-seconds`` per stage) while the run takes
``scale`` times less time.

Reported: wall time, main-thread CPU, peak RSS of the process (emulator included) and its
growth while watching, polls issued against the quota (the busiest 1-second window, and
whether the emulator throttled any), and events delivered against the emulator's
ground-truth timeline (transitions seen exactly, inferred from logs, and missed: only
subtask/deployment moves that began and ended between two polls can be missed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter, defaultdict, deque
from typing import Any

from aioedge import EdgeClient
from aioedge._ratelimit import LocalRateLimiter
from aioedge.testing import EmulatorThread
from aioedge.watch import DeploymentEvent, DeploymentMonitor

_ACTION = "GetEdgeInstanceDeployment"
_BASE_QPS = 5  # ERRATA, Quotas


def _rss_mb() -> float:
    """Peak resident set size so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


def _current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / (1024 * 1024)
    except OSError:
        return _rss_mb()


async def _instances(client: EdgeClient, n: int, drivers: int) -> list[str]:
    found = await client.call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
    driver_ids = [d["DriverId"] for d in found["Data"]["DriverList"]][:drivers]

    async def one(i: int) -> str:
        inst = str((await client.call("CreateEdgeInstance", {"Name": f"bench{i}"}))["InstanceId"])
        await client.call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": f"bgw{i:06d}"})
        for driver_id in driver_ids:
            await client.call(
                "BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver_id}
            )
        return inst

    return await _gather(one, n)


async def _gather(fn: Any, n: int) -> list[Any]:
    sem = asyncio.Semaphore(64)

    async def bounded(i: int) -> Any:
        async with sem:
            return await fn(i)

    return list(await asyncio.gather(*(bounded(i) for i in range(n))))


def _compare(events: list[DeploymentEvent], timeline: list[dict[str, Any]]) -> dict[str, int]:
    want: dict[tuple[Any, ...], list[tuple[Any, Any]]] = defaultdict(list)
    for t in timeline:
        want[(t["kind"], t["task_id"], t["snapshot_id"])].append((t["stage"], t["status"]))
    got: dict[tuple[Any, ...], list[tuple[Any, Any, bool]]] = defaultdict(list)
    for e in events:
        if e.is_transition and e.change != "removed":
            got[(e.kind, e.task_id, e.snapshot_id)].append((e.stage, e.status, e.inferred))
    out = Counter[str]()
    for key, moves in want.items():
        seen = got.get(key, [])
        it = iter(moves)
        in_order = all(any(m == (s, st) for m in it) for s, st, _ in seen)
        out["truth"] += len(moves)
        out["delivered"] += len(seen)
        out["inferred"] += sum(1 for *_, inf in seen if inf)
        out["missed"] += len(moves) - len(seen)
        out["out_of_order_or_invented"] += 0 if in_order else 1
        if key[0] == "snapshot":
            out["snapshot_truth"] += len(moves)
            out["snapshot_delivered"] += len(seen)
    out["logs"] = sum(1 for e in events if e.kind == "log")
    out["poll_errors"] = sum(1 for e in events if e.kind == "poll_error")
    return dict(out)


def _busiest_second(arrivals: list[float]) -> int:
    window: deque[float] = deque()
    best = 0
    for t in sorted(arrivals):
        window.append(t)
        while window[0] <= t - 1.0:
            window.popleft()
        best = max(best, len(window))
    return best


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.scale
    emu = EmulatorThread(
        quotas=True,
        quota_scale=scale,
        stage_seconds=args.stage_seconds,
        speed=scale,
        seed=1,
    ).start()
    try:
        # The client's limiter paces every Action at its quota times the scale.
        from aioedge._catalog import OPERATIONS

        limiter = LocalRateLimiter(overrides={a: op.qps * scale for a, op in OPERATIONS.items()})
        async with EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=limiter,
            quota_scope=emu.endpoint,
        ) as client:
            t0 = time.perf_counter()
            instances = await _instances(client, args.deployments, args.drivers)
            setup_s = time.perf_counter() - t0
            rss_before = _current_rss_mb()
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            polls_before = emu.stats().get(_ACTION, {}).get("executed", 0)
            events: list[DeploymentEvent] = []
            pairs: list[tuple[str, str]] = []
            monitor = DeploymentMonitor(
                client,
                pollers=args.pollers,
                poll_interval=args.poll_interval / scale,
                max_poll_interval=args.max_poll_interval / scale,
                buffer_size=1024,
                until_idle=False,
            )

            async def deploy(i: int) -> None:
                # Deployments start while the monitor runs, as they would in a service.
                inst = instances[i]
                body = await client.call(
                    "CreateEdgeInstanceDeployment", {"InstanceId": inst, "Type": "deploy"}
                )
                pairs.append((inst, str(body["DeploymentId"])))
                monitor.add(*pairs[-1])

            async def start_all() -> None:
                await _gather(deploy, len(instances))
                monitor.close()

            async with monitor:
                starter = asyncio.ensure_future(start_all())
                async for event in monitor:
                    events.append(event)
                await starter
            wall = time.perf_counter() - wall0
            cpu = time.thread_time() - cpu0
        stats = emu.stats().get(_ACTION, {})
        arrivals = [r.arrival for r in emu.call(lambda e: e.requests) if r.action == _ACTION]
        per_dep: dict[str, list[DeploymentEvent]] = defaultdict(list)
        for e in events:
            per_dep[e.deployment_id].append(e)
        totals = Counter[str]()
        for _inst, dep in pairs:
            totals.update(_compare(per_dep[dep], emu.timeline(dep)))
        outcomes = Counter(e.outcome for e in events if e.kind == "final")
        polls = stats.get("executed", 0) - polls_before
        quota = _BASE_QPS * scale
        return {
            "deployments": args.deployments,
            "snapshots_per_deployment": args.drivers,
            "scale": scale,
            "setup_instances_s": round(setup_s, 1),
            "watch_wall_s": round(wall, 1),
            "watch_wall_s_unscaled": round(wall * scale, 1),
            "main_thread_cpu_s": round(cpu, 2),
            # includes creating the deployments, done from the same thread
            "cpu_ms_per_poll": round(1000 * cpu / max(1, polls), 3),
            "peak_rss_mb": round(_rss_mb(), 1),
            "rss_growth_while_watching_mb": round(_current_rss_mb() - rss_before, 1),
            "polls": polls,
            "polls_per_deployment": round(polls / max(1, args.deployments), 2),
            "quota_qps": quota,
            "polls_per_s": round(polls / max(wall, 1e-9), 1),
            "busiest_1s_window": _busiest_second(arrivals),
            "throttled": stats.get("throttled", 0),
            "events": len(events),
            "outcomes": dict(outcomes),
            **totals,
        }
    finally:
        emu.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--drivers", type=int, default=2, help="snapshots per deployment")
    parser.add_argument("--scale", type=float, default=20.0, help="time compression factor")
    parser.add_argument("--stage-seconds", type=float, default=30.0, help="unscaled stage length")
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--poll-interval", type=float, default=2.0, help="unscaled")
    parser.add_argument("--max-poll-interval", type=float, default=30.0, help="unscaled")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
