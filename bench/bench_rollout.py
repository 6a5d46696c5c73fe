"""Benchmark 6: a fleet rollout of 200 instances in waves 1 / 10 % / 100 %.

    .venv/bin/python bench/bench_rollout.py              # 200 instances, ~15 s
    .venv/bin/python bench/bench_rollout.py --quick      # 50 instances, < 10 s
    .venv/bin/python bench/bench_rollout.py --scale 1    # real time (~2 min)

The emulator runs in a process of its own (``emulator_host.py``) with a fleet
(``Emulator(fleet=N)``), so the peak RSS reported is the client process's alone.  Time is
compressed by ``--scale`` as in ``bench_watch.py``: every quota is multiplied by it and
every stage is that much shorter; the ratios reported do not depend on it.

Reported: wall time against two floors — the *quota-implied minimum* that ``aioedge rollout
--dry-run`` prints (each wave's creates and one poll per deployment at the quotas,
``sum over waves of n / 5`` seconds unscaled) and the *quota + deployment floor* (each
wave's creates, then the wave's last deployment running its own length, measured from the
emulator's timelines) — the client's peak RSS, polls per deployment and throttled answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
import urllib.request
from typing import Any

from _common import BENCH, PYTHON, Child, cpu_seconds, machine, peak_rss_mb, save, table

from aioedge import Credentials, EdgeClient
from aioedge._catalog import OPERATIONS
from aioedge._ratelimit import LocalRateLimiter
from aioedge._rollout import RolloutPlan, minimum_duration

_POLL = "GetEdgeInstanceDeployment"
_CREATE = "CreateEdgeInstanceDeployment"


def _fetch(endpoint: str, path: str) -> Any:
    with urllib.request.urlopen(endpoint + path, timeout=60) as resp:
        return json.loads(resp.read())


async def run(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    scale = args.scale
    endpoint = info["endpoint"]
    fleet: list[str] = _fetch(endpoint, "/_emulator/fleet")["instances"]
    limiter = LocalRateLimiter(overrides={a: op.qps * scale for a, op in OPERATIONS.items()})
    key = Credentials(info["access_key_id"], info["access_key_secret"])
    waves = (1, 0.1, 1.0)
    plan = RolloutPlan.build(fleet, waves)
    create_qps, poll_qps = OPERATIONS[_CREATE].qps * scale, OPERATIONS[_POLL].qps * scale
    quota_min = minimum_duration(plan, create_qps=create_qps, poll_qps=poll_qps)
    async with EdgeClient(credentials=key, endpoint=endpoint, rate_limit=limiter) as client:
        rollout = client.rollout(
            fleet,
            waves=waves,
            max_failures=args.max_failures,
            poll_interval=args.poll_interval / scale,
            max_poll_interval=args.max_poll_interval / scale,
            pollers=args.pollers,
        )
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        events = 0
        async with rollout:
            async for _event in rollout:
                events += 1
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        result = rollout.result
        monitor = rollout.monitor.stats
    stats = _fetch(endpoint, "/_emulator/stats")
    # Each deployment's own length, from the emulator's ground truth.
    lengths = []
    for dep in result.deployments.values():
        timeline = _fetch(endpoint, f"/_emulator/timeline/{dep}")
        stamps = [t["timestamp_ms"] for t in timeline]
        lengths.append((max(stamps) - min(stamps)) / 1000)
    length = statistics.median(lengths) if lengths else 0.0
    # A wave's n creates span ceil(n / Q) - 1 s (Q in any 1-s window); then its last one runs.
    floor = sum(math.ceil(n / create_qps) - 1 + length for n in plan.sizes())
    polls = stats.get(_POLL, {}).get("executed", 0)
    started = len(result.deployments)
    return {
        "instances": len(fleet),
        "waves": "/".join(str(n) for n in plan.sizes()),
        "scale": scale,
        "wall_s": round(wall, 2),
        "wall_s_unscaled": round(wall * scale, 1),
        # Floors at this run's (scaled) quotas and stage length: what the run really faced.
        "quota_min_s": round(quota_min, 2),
        "wall_over_quota_min": round(wall / quota_min, 2) if quota_min else None,
        "deployment_length_s": round(length, 2),
        "quota_plus_deployment_floor_s": round(floor, 2),
        "wall_over_floor": round(wall / floor, 2),
        # What `aioedge rollout --dry-run` prints for this fleet at the real quotas.
        "quota_min_s_at_real_quotas": minimum_duration(plan),
        "client_cpu_s": round(cpu, 2),
        "client_peak_rss_mb": round(peak_rss_mb(), 1),
        "polls": polls,
        "monitor_polls": monitor.polls,
        "polls_per_deployment": round(polls / max(1, started), 2),
        "creates": stats.get(_CREATE, {}).get("executed", 0),
        "throttled": sum(s.get("throttled", 0) for s in stats.values()),
        "events": events,
        "succeeded": len(result.succeeded),
        "failed": len(result.failed),
        "skipped": len(result.skipped),
        "aborted": result.aborted,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 instances (< 10 s)")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--scale", type=float, default=10.0, help="time compression factor")
    parser.add_argument("--stage-seconds", type=float, default=2.0, help="unscaled stage length")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of failing instances")
    parser.add_argument("--max-failures", type=float, default=0.2)
    parser.add_argument("--pollers", type=int, default=4)
    parser.add_argument("--poll-interval", type=float, default=1.0, help="unscaled")
    parser.add_argument("--max-poll-interval", type=float, default=10.0, help="unscaled")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances = min(args.instances, 50)
    options = {
        "fleet": args.instances,
        "fail_rate": args.fail_rate,
        "quota_scale": args.scale,
        "speed": args.scale,
        "stage_seconds": args.stage_seconds,
        "seed": 1,
    }
    argv_host = [PYTHON, str(BENCH / "emulator_host.py"), "--options", json.dumps(options)]
    with Child(argv_host) as host:
        result = asyncio.run(run(args, host.info))
    if args.json:
        print(json.dumps(result))
    else:
        print(table(["measure", "value"], list(result.items())))
        ok = result["throttled"] == 0 and result["client_peak_rss_mb"] < 100
        print(f"targets (0 throttled, client RSS < 100 MB): {'OK' if ok else 'MISSED'}")
    if not args.no_save:
        path = save("rollout", {"quick": args.quick, "machine": machine(), **result})
        print(f"results: bench/results/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
