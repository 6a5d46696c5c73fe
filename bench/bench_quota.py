"""Benchmark 2 (and 3): quota efficiency, in one process and in N processes sharing Redis.

    .venv/bin/python bench/bench_quota.py              # 1,000 calls, ~15 s
    .venv/bin/python bench/bench_quota.py --quick      # 450 calls, < 15 s
    .venv/bin/python bench/bench_quota.py --processes 4 --redis redis://127.0.0.1:6379/0
    (bench/bench_redis.py runs the shared case with a redis-server of its own)

1,000 calls mixed over six Actions (four reads, two writes on seeded resources: an
instance with a gateway and a bound driver, a custom driver), each Action's share
proportional to its quota, so every Action needs the same number of windows and all six are
the bottleneck at once, interleaved.  The emulator runs in a background thread of the parent
process at the real quotas; the client runs in a worker process of its own (the default
process-wide limiter), or in N worker processes that share one RedisRateLimiter
(``--processes N --redis URL``), so client and service do not compete for one interpreter,
as they would not in production (``--in-process`` shows that case).

The emulator accepts at most Q arrivals of an Action in any 1-second window, so the fastest
any client may finish n calls of it is Q at t = 0, Q more at t = 1 s, ... the last group at
``ceil(n/Q) − 1`` seconds, answered one round trip L later.  With several Actions at once
the slowest decides::

    optimal = max over Actions a of (ceil(n_a / Q_a) − 1) s  (+ L for the wall time)

Reported, from the client's clock and the emulator's own arrival records:

* ``wall_ratio`` = the client's batch wall time / (optimal + L), L the median round trip of
  one call measured just before (target ≤ 1.05, one process);
* ``ratio`` = arrival span (first to last arrival the quota accepted) / optimal, and
  ``efficiency`` = optimal / span: the share of the quota the clients used together (target
  ≥ 0.95 for the shared case);
* the busiest 1-second window per Action (≤ Q) and throttled answers (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from aioedge import EdgeClient
from aioedge._catalog import OPERATIONS
from aioedge._ratelimit import LocalRateLimiter
from aioedge.testing import EmulatorThread

_ACTIONS = (
    "GetEdgeInstance",
    "QueryEdgeInstance",
    "BatchGetEdgeDriver",
    "QueryDeviceProvisioning",
    "SetEdgeInstanceDriverConfigs",  # writes: the emulator executes and records them
    "UpdateEdgeInstance",
)


def plan(total: int) -> dict[str, int]:
    """Calls per Action, proportional to the quotas (largest remainder)."""
    quotas = {a: OPERATIONS[a].qps for a in _ACTIONS}
    whole = sum(quotas.values())
    shares = {a: total * q / whole for a, q in quotas.items()}
    counts = {a: math.floor(s) for a, s in shares.items()}
    for a in sorted(shares, key=lambda a: shares[a] - counts[a], reverse=True)[
        : total - sum(counts.values())
    ]:
        counts[a] += 1
    return counts


def calls_for(counts: dict[str, int], ids: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    params: dict[str, dict[str, Any]] = {
        "GetEdgeInstance": {"InstanceId": ids["instance"]},
        "QueryEdgeInstance": {"PageSize": 10},
        "BatchGetEdgeDriver": {"DriverIds": [ids["driver"]]},
        "QueryDeviceProvisioning": {"ProductKey": "a1bench", "DeviceName": "dev1"},
        "SetEdgeInstanceDriverConfigs": {
            "InstanceId": ids["instance"],
            "DriverId": ids["bound_driver"],
            "Configs": [{"Format": "KV", "Content": "mode=bench", "Key": "cfg"}],
        },
    }
    out: list[tuple[str, dict[str, Any]]] = []
    # Interleave the Actions, as a real workload would.
    remaining = dict(counts)
    while any(remaining.values()):
        for a in _ACTIONS:
            if remaining[a]:
                remaining[a] -= 1
                if a == "UpdateEdgeInstance":
                    out.append((a, {"InstanceId": ids["instance"], "Name": f"bench_{len(out)}"}))
                else:
                    out.append((a, params[a]))
    return out


async def setup(endpoint: str, creds: Any) -> dict[str, Any]:
    """Seed resources; then the round trip L of one call, with nothing else going on."""
    async with EdgeClient(credentials=creds, endpoint=endpoint, rate_limit=False) as c:
        iid = (await c.create_edge_instance(name="bench_1")).instance_id
        did = (
            await c.create_edge_driver(
                driver_name="BenchDriver", driver_protocol="customize", runtime="python3"
            )
        ).driver_id
        await c.bind_gateway_to_edge_instance(instance_id=iid, iot_id="benchgw0")
        found = await c.call("QueryEdgeDriver", {"CurrentPage": 1, "PageSize": 30, "Type": 0})
        bound = str(found["Data"]["DriverList"][0]["DriverId"])
        await c.bind_driver_to_edge_instance(instance_id=iid, driver_id=bound)
        rtts = []
        for _ in range(5):
            t0 = time.perf_counter()
            await c.call("GetEdgeInstance", {"InstanceId": iid})
            rtts.append(time.perf_counter() - t0)
    assert iid and did
    await asyncio.sleep(1.1)  # every quota window is empty again
    return {"instance": iid, "driver": did, "bound_driver": bound, "rtt": statistics.median(rtts)}


async def run_client(
    endpoint: str,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    limiter: Any,
    concurrency: int | None,
    creds: Any = None,
) -> dict[str, Any]:
    # retry=None: a throttled answer would show up as a failure, not be hidden by a retry.
    async with EdgeClient(
        credentials=creds, endpoint=endpoint, rate_limit=limiter, retry=None
    ) as c:
        start = time.perf_counter()
        results = await c.batch(calls, concurrency=concurrency)
        wall = time.perf_counter() - start
    failed = [str(r) for r in results if not r.ok]
    return {"wall": wall, "calls": len(results), "failed": len(failed), "errors": failed[:5]}


def worker(args: argparse.Namespace) -> None:
    """A client process: its share of the calls, through the shared Redis limiter (or a
    LocalRateLimiter when it is the only one)."""
    from aioedge import RedisRateLimiter

    calls = json.loads(sys.stdin.read())

    async def main() -> dict[str, Any]:
        if not args.redis:
            return await run_client(
                args.endpoint, calls, limiter=LocalRateLimiter(), concurrency=args.concurrency
            )
        async with RedisRateLimiter(args.redis, prefix=args.prefix) as limiter:
            return await run_client(
                args.endpoint, calls, limiter=limiter, concurrency=args.concurrency
            )

    print(json.dumps(asyncio.run(main())))


def report(emu: EmulatorThread, counts: dict[str, int]) -> dict[str, Any]:
    records = emu.call(lambda e: [(r.action, r.arrival, r.outcome) for r in e.requests])
    arrivals: dict[str, list[float]] = defaultdict(list)
    outcomes: Counter[str] = Counter()
    for action, arrival, outcome in records:
        if action in counts:
            outcomes[outcome] += 1
            if outcome in ("executed", "invalid"):
                arrivals[action].append(arrival)
    every = sorted(t for ts in arrivals.values() for t in ts)
    span = every[-1] - every[0] if every else 0.0
    optimal = max(math.ceil(n / OPERATIONS[a].qps) - 1 for a, n in counts.items())
    busiest = {a: _busiest(ts) for a, ts in sorted(arrivals.items())}
    return {
        "calls": sum(counts.values()),
        "per_action": counts,
        "span_s": round(span, 3),
        "optimal_s": optimal,
        "ratio": round(span / optimal, 4) if optimal else None,
        "efficiency": round(optimal / span, 4) if span else None,
        "throttled": outcomes["throttled"],
        "busiest_window": busiest,
        "quota": {a: OPERATIONS[a].qps for a in counts},
    }


def _busiest(times: list[float]) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="450 calls (< 15 s)")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--redis", default=os.environ.get("AIOEDGE_TEST_REDIS_URL"))
    parser.add_argument(
        "--concurrency", type=int, default=None, help="batch concurrency (default: Q per Action)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the client in this process, beside the emulator thread (one process only)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=f"aioedge-bench-{os.getpid()}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.processes > 1 and not args.redis:
        parser.error("--processes > 1 needs --redis URL (or AIOEDGE_TEST_REDIS_URL)")
    if args.in_process and args.processes != 1:
        parser.error("--in-process runs one client process")
    if args.quick:
        args.calls = min(args.calls, 450)

    counts = plan(args.calls)
    with EmulatorThread() as emu:
        ids = asyncio.run(setup(emu.endpoint, emu.credentials))
        calls = calls_for(counts, ids)
        emu.call(lambda e: e.service.requests.clear())  # count the benchmark's calls only
        clients: list[dict[str, Any]] = []
        if args.in_process:
            clients.append(
                asyncio.run(
                    run_client(
                        emu.endpoint,
                        calls,
                        limiter=LocalRateLimiter(),
                        concurrency=args.concurrency,
                        creds=emu.credentials,
                    )
                )
            )
        else:
            env = {
                **os.environ,
                "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.credentials.access_key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.credentials.access_key_secret,
            }
            command = [sys.executable, __file__, "--worker", "--endpoint", emu.endpoint]
            if args.processes > 1:
                command += ["--redis", args.redis, "--prefix", args.prefix]
            if args.concurrency is not None:
                command += ["--concurrency", str(args.concurrency)]
            procs = []
            for i in range(args.processes):
                p = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                assert p.stdin is not None
                p.stdin.write(json.dumps(calls[i :: args.processes]))
                p.stdin.close()
                procs.append(p)
            for p in procs:
                out = p.stdout.read() if p.stdout else ""
                p.wait()
                clients.append(json.loads(out))
        result = report(emu, counts)
    result["processes"] = args.processes
    result["limiter"] = "redis" if args.processes > 1 else "local"
    result["client_in_process"] = args.in_process
    result["clients"] = clients
    result["failed"] = sum(c["failed"] for c in clients)
    result["rtt_ms"] = round(ids["rtt"] * 1000, 2)
    wall = max(c["wall"] for c in clients)
    result["wall_s"] = round(wall, 3)
    result["wall_ratio"] = round(wall / (result["optimal_s"] + ids["rtt"]), 4)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result, counts, quick=args.quick)
    if not args.no_save:
        from _common import machine, save

        name = "quota" if args.processes == 1 else f"quota_{args.processes}proc_redis"
        path = save(name, {"quick": args.quick, "machine": machine(), **result})
        print(f"results: bench/results/{path.name}")


def print_report(result: dict[str, Any], counts: dict[str, int], *, quick: bool = False) -> None:
    from _common import table

    rows = [
        [
            a,
            result["quota"][a],
            n,
            math.ceil(n / result["quota"][a]) - 1,
            result["busiest_window"][a],
        ]
        for a, n in counts.items()
    ]
    print(table(["Action", "QPS", "calls", "optimal s", "busiest 1 s"], rows))
    print(
        f"{result['calls']} calls, {result['processes']} process(es), {result['limiter']} "
        f"limiter: wall {result['wall_s']} s vs optimal {result['optimal_s']} s + L "
        f"{result['rtt_ms']} ms (wall ratio {result['wall_ratio']}); arrival span "
        f"{result['span_s']} s (ratio {result['ratio']}, efficiency {result['efficiency']}); "
        f"{result['throttled']} throttled, {result['failed']} failed"
    )
    if result["processes"] == 1:
        ok = result["wall_ratio"] <= 1.05 and result["throttled"] == 0 and not result["failed"]
        verdict = "OK" if ok else "MISSED"
        target = "targets (wall ratio <= 1.05, 0 throttled)"
    else:
        ok = result["efficiency"] >= 0.95 and result["throttled"] == 0 and not result["failed"]
        verdict = "OK" if ok else "MISSED"
        target = "targets (aggregate >= 95% of the quota, 0 throttled)"
    if quick:
        # Each window costs the limiter its margin and the slowest answer of a burst: with
        # only a few windows that fixed cost weighs more than in the 1,000-call run.
        verdict += " (--quick: a few windows only; the targets are for the full run)"
    print(f"{target}: {verdict}")


if __name__ == "__main__":
    main()
