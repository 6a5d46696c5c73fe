"""Benchmark 4: 500 simulated deployments watched at once by one DeploymentMonitor.

    .venv/bin/python bench/bench_watch.py              # 500 deployments, ~1 min
    .venv/bin/python bench/bench_watch.py --quick      # 50 deployments, < 30 s
    .venv/bin/python bench/bench_watch.py --scale 1 --deployments 100   # real time

The emulator runs in a process of its own (``emulator_host.py``), so the peak RSS and the
CPU time reported are the client process's alone.  Deployments are started (through extra
access keys, whose quotas are separate) while the monitor already runs, as in a service.

Time is compressed by ``--scale``: every quota is multiplied by it and every stage is that
much shorter, which keeps what matters for a watcher (polls per rollout: 500 deployments
sharing 5 GetEdgeInstanceDeployment calls per second, stages of ``--stage-seconds``) while
the run takes ``scale`` times less wall time.  CPU per poll and memory per deployment do
not depend on the scale; CPU per second does (``--scale 1`` runs in real time).

What polling 500 deployments at 5 QPS implies: each one is polled at best every 100 s.
Stages that start and end between two polls are recovered from a snapshot's ``Log``
(``inferred=True``); a subtask or deployment move that starts and ends between two polls
has no log and cannot be seen by any poller (they are counted as "unobservable").

Reported: wall time (and in unscaled seconds), client CPU, peak RSS, polls issued against
the quota (the busiest 1-second window on the emulator's clock, throttled answers), and
events delivered against the emulator's ground-truth timeline (``/_emulator/timeline``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from collections import Counter, defaultdict, deque
from typing import Any

from _common import BENCH, PYTHON, Child, cpu_seconds, machine, peak_rss_mb, rss_mb, save, table

from aioedge import Credentials, EdgeClient
from aioedge._catalog import OPERATIONS
from aioedge._ratelimit import LocalRateLimiter
from aioedge.watch import DeploymentEvent, DeploymentMonitor

_ACTION = "GetEdgeInstanceDeployment"
_BASE_QPS = OPERATIONS[_ACTION].qps  # 5 (ERRATA, Quotas)
_SETUP_KEYS = 16


def _fetch(endpoint: str, path: str) -> Any:
    with urllib.request.urlopen(endpoint + path, timeout=60) as resp:
        return json.loads(resp.read())


async def _gather(fn: Any, n: int, limit: int = 64) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def bounded(i: int) -> Any:
        async with sem:
            return await fn(i)

    return list(await asyncio.gather(*(bounded(i) for i in range(n))))


async def _instances(clients: list[EdgeClient], n: int, drivers: int) -> list[str]:
    """n instances, each with a gateway and ``drivers`` official drivers (snapshots)."""
    found = await clients[0].call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
    driver_ids = [d["DriverId"] for d in found["Data"]["DriverList"]][:drivers]

    async def one(i: int) -> str:
        client = clients[i % len(clients)]
        inst = str((await client.call("CreateEdgeInstance", {"Name": f"bench{i}"}))["InstanceId"])
        await client.call("BindGatewayToEdgeInstance", {"InstanceId": inst, "IotId": f"bgw{i:06d}"})
        for driver_id in driver_ids:
            await client.call(
                "BindDriverToEdgeInstance", {"InstanceId": inst, "DriverId": driver_id}
            )
        return inst

    return await _gather(one, n)


def compare(events: list[DeploymentEvent], timeline: list[dict[str, Any]]) -> Counter[str]:
    """Delivered transitions against the ground truth of one deployment.

    Snapshots must match exactly (their logs let a watcher recover every stage); a subtask or
    the deployment may miss moves that began and ended between two polls ("unobservable"),
    but what is delivered must be a subsequence of the truth (nothing invented or reordered).
    """
    want: dict[tuple[Any, ...], list[tuple[Any, Any]]] = defaultdict(list)
    for t in timeline:
        want[(t["kind"], t["task_id"], t["snapshot_id"])].append((t["stage"], t["status"]))
    got: dict[tuple[Any, ...], list[tuple[Any, Any, bool]]] = defaultdict(list)
    for e in events:
        if e.is_transition and e.change != "removed":
            got[(e.kind, e.task_id, e.snapshot_id)].append((e.stage, e.status, e.inferred))
    out: Counter[str] = Counter()
    for key in set(want) | set(got):
        moves, seen = want.get(key, []), got.get(key, [])
        it = iter(moves)
        in_order = all(any(m == (s, st) for m in it) for s, st, _ in seen)
        out["truth"] += len(moves)
        out["delivered"] += len(seen)
        out["inferred"] += sum(1 for *_, inf in seen if inf)
        out["invented_or_out_of_order"] += 0 if in_order else 1
        if key[0] == "snapshot":
            out["snapshot_truth"] += len(moves)
            out["snapshot_exact"] += int([(s, st) for s, st, _ in seen] == moves) * len(moves)
        else:
            out["unobservable_task_or_deployment_moves"] += len(moves) - len(seen)
    out["logs"] = sum(1 for e in events if e.kind == "log")
    out["poll_errors"] = sum(1 for e in events if e.kind == "poll_error")
    out["finals"] = sum(1 for e in events if e.kind == "final")
    return out


def _span(times: list[float]) -> float:
    return max(times) - min(times) if times else 0.0


def busiest_second(arrivals: list[float]) -> int:
    window: deque[float] = deque()
    best = 0
    for t in sorted(arrivals):
        window.append(t)
        while window[0] <= t - 1.0:
            window.popleft()
        best = max(best, len(window))
    return best


async def run(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    scale = args.scale
    endpoint = info["endpoint"]
    # One limiter for the process, paced at the (scaled) quotas; every key is its own lane.
    limiter = LocalRateLimiter(overrides={a: op.qps * scale for a, op in OPERATIONS.items()})
    main_key = Credentials(info["access_key_id"], info["access_key_secret"])
    setup_keys = [Credentials(k, s) for k, s in info["extra_keys"]]
    setup = [EdgeClient(credentials=k, endpoint=endpoint, rate_limit=limiter) for k in setup_keys]
    rss_start = rss_mb()
    try:
        t0 = time.perf_counter()
        instances = await _instances(setup, args.deployments, args.drivers)
        setup_s = time.perf_counter() - t0
        async with EdgeClient(
            credentials=main_key, endpoint=endpoint, rate_limit=limiter
        ) as client:
            stats_before = _fetch(endpoint, "/_emulator/stats").get(_ACTION, {})
            n_requests_before = len(_fetch(endpoint, "/_emulator/requests"))
            rss_before = rss_mb()
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
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
                # Started while the monitor runs, through the set-up keys' own quotas.
                body = await setup[i % len(setup)].call(
                    "CreateEdgeInstanceDeployment", {"InstanceId": instances[i], "Type": "deploy"}
                )
                pairs.append((instances[i], str(body["DeploymentId"])))
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
            cpu = cpu_seconds() - cpu0
            rss_after = rss_mb()
            peak = peak_rss_mb()
            monitor_stats = monitor.stats
    finally:
        for c in setup:
            await c.aclose()
    stats_after = _fetch(endpoint, "/_emulator/stats").get(_ACTION, {})
    records = _fetch(endpoint, "/_emulator/requests")[n_requests_before:]
    arrivals = [
        r["arrival"]
        for r in records
        if r["action"] == _ACTION and r["access_key_id"] == main_key.access_key_id
    ]
    per_dep: dict[str, list[DeploymentEvent]] = defaultdict(list)
    for e in events:
        per_dep[e.deployment_id].append(e)
    totals: Counter[str] = Counter()
    for _inst, dep in pairs:
        totals.update(compare(per_dep[dep], _fetch(endpoint, f"/_emulator/timeline/{dep}")))
    outcomes = Counter(e.outcome for e in events if e.kind == "final")
    polls = stats_after.get("executed", 0) - stats_before.get("executed", 0)
    throttled = stats_after.get("throttled", 0) - stats_before.get("throttled", 0)
    quota = _BASE_QPS * scale
    return {
        "deployments": args.deployments,
        "snapshots_per_deployment": args.drivers,
        "scale": scale,
        "stage_seconds_unscaled": args.stage_seconds,
        "setup_s": round(setup_s, 1),
        "watch_wall_s": round(wall, 2),
        "watch_wall_s_unscaled": round(wall * scale, 1),
        "client_cpu_s": round(cpu, 3),
        "client_cpu_ms_per_poll": round(1000 * cpu / max(1, polls), 3),
        "client_peak_rss_mb": round(peak, 1),
        "client_rss_at_start_mb": round(rss_start, 1),
        "client_rss_growth_while_watching_mb": round(rss_after - rss_before, 1),
        "polls": polls,
        "monitor_polls": monitor_stats.polls,
        "polls_per_deployment": round(polls / max(1, args.deployments), 2),
        "quota_qps": quota,
        "polls_per_s": round(polls / max(wall, 1e-9), 2),
        # Of the most the window rule allows over the polling span (Q per second, plus the
        # Q that may go at its very start): how much of the budget the monitor used.
        "quota_use": round(polls / (quota * (_span(arrivals) + 1.0)), 3),
        "busiest_1s_window": busiest_second(arrivals),
        "throttled": throttled,
        "events": len(events),
        "outcomes": dict(outcomes),
        **dict(totals),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 deployments (< 30 s)")
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--drivers", type=int, default=2, help="snapshots per deployment")
    parser.add_argument("--scale", type=float, default=20.0, help="time compression factor")
    parser.add_argument("--stage-seconds", type=float, default=30.0, help="unscaled stage length")
    parser.add_argument("--pollers", type=int, default=8)
    parser.add_argument("--poll-interval", type=float, default=2.0, help="unscaled")
    parser.add_argument("--max-poll-interval", type=float, default=30.0, help="unscaled")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    if args.quick:
        args.deployments = min(args.deployments, 50)
    options = {
        "quota_scale": args.scale,
        "speed": args.scale,
        "stage_seconds": args.stage_seconds,
        "seed": 1,
    }
    argv_host = [PYTHON, str(BENCH / "emulator_host.py"), "--options", json.dumps(options)]
    argv_host += ["--extra-keys", str(_SETUP_KEYS)]
    with Child(argv_host) as host:
        result = asyncio.run(run(args, host.info))
    if args.json:
        print(json.dumps(result))
    else:
        skip = {"outcomes"}
        print(table(["measure", "value"], [[k, v] for k, v in result.items() if k not in skip]))
        print(f"outcomes: {result['outcomes']}")
        ok = (
            result["client_peak_rss_mb"] < 100
            and result["throttled"] == 0
            and result["busiest_1s_window"] <= result["quota_qps"]
            and result.get("invented_or_out_of_order", 0) == 0
            and result.get("snapshot_exact", 0) == result.get("snapshot_truth", 0)
        )
        print(
            "targets (RSS < 100 MB, 0 throttled, <= quota per second, snapshots exact, "
            f"nothing invented): {'OK' if ok else 'MISSED'}"
        )
    if not args.no_save:
        path = save("watch", {"quick": args.quick, "machine": machine(), **result})
        print(f"results: bench/results/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
