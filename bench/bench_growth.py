"""Benchmark 5: CPU per call and peak memory of one batch, from 10 to 10,000 calls.

    .venv/bin/python bench/bench_growth.py            # 10 .. 10,000, ~1 min
    .venv/bin/python bench/bench_growth.py --quick    # 10 .. 2,000, < 20 s
    .venv/bin/python bench/bench_growth.py --no-gc    # the same, cyclic GC off while timing

``client.batch`` of N GetEdgeInstance calls (``rate_limit=False``, concurrency 64) against
the instant server of ``bench_overhead.py`` (another process).  Each size runs in a fresh
worker process, which warms up with 200 calls and then measures:

* CPU per call (user + sys of the process), over as many batches of N as make >= 4,000
  calls (a batch of 10 is too short to time alone);
* peak RSS while running one batch of N, above the warmed-up baseline, and that growth per
  result (``batch`` keeps every result, so memory grows with N by design; what should stay
  flat is the cost per call and per result).

``--no-gc`` calls ``gc.disable()`` in the worker around the timed batches (the memory batch
and the warm-up run as usual): the difference from a default run is the cyclic garbage
collector's share of the CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from typing import Any

from _common import (
    PYTHON,
    cpu_seconds,
    emit,
    instant_server,
    machine,
    median,
    peak_rss_mb,
    pin_cpus,
    rss_mb,
    run_worker,
    save,
    table,
)

INSTANCE_ID = "F3APY0tPLhmgGtx0abcd"
SIZES = (10, 100, 1000, 10_000)
QUICK_SIZES = (10, 100, 2000)
MIN_CALLS = 4000


async def _worker(endpoint: str, n: int, concurrency: int, no_gc: bool) -> dict[str, Any]:
    import aioedge

    calls = [("GetEdgeInstance", {"InstanceId": INSTANCE_ID})] * n
    async with aioedge.EdgeClient(
        credentials=aioedge.Credentials("LTAI4bench0000000000", "bench-secret-not-real"),
        endpoint=endpoint,
        rate_limit=False,
    ) as client:
        warm = [("GetEdgeInstance", {"InstanceId": INSTANCE_ID})] * 200
        await client.batch(warm, concurrency=concurrency)
        # Memory: one batch of N, its results kept until it returns (as a caller holds them).
        base_rss, base_peak = rss_mb(), peak_rss_mb()
        results = await client.batch(calls, concurrency=concurrency)
        grown = max(peak_rss_mb(), rss_mb()) - max(base_peak, base_rss)
        ok = sum(1 for r in results if r.ok)
        del results
        # CPU: enough batches of N for a stable reading.
        repeats = max(1, -(-MIN_CALLS // n))
        if no_gc:
            gc.disable()
        try:
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            for _ in range(repeats):
                await client.batch(calls, concurrency=concurrency)
            cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
        finally:
            gc.enable()
    return {
        "n": n,
        "ok": ok,
        "repeats": repeats,
        "us_per_call": cpu / (repeats * n) * 1e6,
        "calls_per_s": repeats * n / wall,
        "base_rss_mb": base_rss,
        "peak_growth_mb": max(0.0, grown),
        "kb_per_result": max(0.0, grown) * 1024 / n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 10..2,000 (< 20 s)")
    parser.add_argument("--rounds", type=int, default=3, help="worker processes per size")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--no-gc", action="store_true", help="gc.disable() in the worker while timing CPU"
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        emit(asyncio.run(_worker(args.endpoint, args.worker, args.concurrency, args.no_gc)))
        return 0
    sizes = QUICK_SIZES if args.quick else SIZES
    rounds = 1 if args.quick else args.rounds
    runs: list[dict[str, Any]] = []
    with instant_server() as endpoint:
        for r in range(rounds):
            for n in sizes:
                argv = [PYTHON, __file__, "--worker", str(n), "--endpoint", endpoint]
                argv += ["--concurrency", str(args.concurrency)]
                if args.no_gc:
                    argv.append("--no-gc")
                res = run_worker(argv, cpu=pin_cpus()[0])
                res["round"] = r
                runs.append(res)
                print(
                    f"round {r + 1}/{rounds} n={n:<6} {res['us_per_call']:7.1f} us/call "
                    f"+{res['peak_growth_mb']:.1f} MB",
                    file=sys.stderr,
                )
    rows = []
    summary: dict[str, Any] = {}
    for n in sizes:
        mine = [x for x in runs if x["n"] == n]
        cell = {
            "us_per_call": median([x["us_per_call"] for x in mine]),
            "calls_per_s": median([x["calls_per_s"] for x in mine]),
            "peak_growth_mb": median([x["peak_growth_mb"] for x in mine]),
            "kb_per_result": median([x["kb_per_result"] for x in mine]),
            "base_rss_mb": median([x["base_rss_mb"] for x in mine]),
            "all_ok": all(x["ok"] == n for x in mine),
        }
        summary[str(n)] = cell
        rows.append(
            [
                n,
                cell["us_per_call"],
                cell["calls_per_s"],
                cell["base_rss_mb"],
                cell["peak_growth_mb"],
                cell["kb_per_result"],
            ]
        )
    print(
        table(
            [
                "batch size",
                "CPU us/call",
                "calls/s",
                "RSS before MB",
                "peak growth MB",
                "KB per result",
            ],
            rows,
        )
    )
    per_call = [summary[str(n)]["us_per_call"] for n in sizes]
    spread = max(per_call) / min(per_call)
    gc_note = " (cyclic GC disabled while timing)" if args.no_gc else ""
    print(f"CPU per call, largest / smallest batch size: {spread:.2f}x (flat is ~1){gc_note}")
    if not args.no_save:
        data = {"quick": args.quick, "no_gc": args.no_gc, "machine": machine(), "runs": runs}
        path = save("growth", {**data, **summary})
        print(f"results: bench/results/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
