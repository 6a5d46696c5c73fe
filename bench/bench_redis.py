"""Benchmark 3: four processes share one quota through one RedisRateLimiter.

    .venv/bin/python bench/bench_redis.py            # 1,000 calls over 4 processes, ~15 s
    .venv/bin/python bench/bench_redis.py --quick    # 450 calls
    .venv/bin/python bench/bench_redis.py --redis redis://127.0.0.1:6379/0

The same mix as ``bench_quota.py`` (whose machinery this runs, with ``--processes``), split
round-robin over N client processes, each with its own ``RedisRateLimiter`` on one Redis,
against one emulator at the real quotas.  Target: together they use >= 95% of the quota
(optimal / arrival span on the emulator's clock) and are never throttled.

Without ``--redis`` (or ``AIOEDGE_TEST_REDIS_URL``) it starts ``redis-server`` on a free
port of 127.0.0.1 (no persistence) and stops it afterwards (``apt-get install redis-server``
if it is missing).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from _common import BENCH, PYTHON, free_port, machine, run_worker, save, table


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free port (a child process, stopped by its pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server, or pass --redis")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen([*argv, "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="450 calls (< 20 s)")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--redis", default=os.environ.get("AIOEDGE_TEST_REDIS_URL"))
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args()
    calls = min(args.calls, 450) if args.quick else args.calls
    with contextlib.ExitStack() as stack:
        url = args.redis or stack.enter_context(redis_server())
        argv = [PYTHON, str(BENCH / "bench_quota.py"), "--json", "--no-save"]
        argv += ["--calls", str(calls), "--processes", str(args.processes), "--redis", url]
        result = run_worker(argv, timeout=600)
    rows = [[c["calls"], round(c["wall"], 3), c["failed"]] for c in result["clients"]]
    print(table(["calls", "wall s", "failed"], rows))
    print()
    print(
        table(
            ["Action", "QPS", "busiest 1 s (all processes)"],
            [[a, result["quota"][a], b] for a, b in result["busiest_window"].items()],
        )
    )
    print()
    print(
        f"{result['calls']} calls over {args.processes} processes sharing one RedisRateLimiter: "
        f"arrival span {result['span_s']} s vs optimal {result['optimal_s']} s -> aggregate "
        f"{result['efficiency'] * 100:.1f}% of the quota; {result['throttled']} throttled, "
        f"{result['failed']} failed"
    )
    ok = result["efficiency"] >= 0.95 and result["throttled"] == 0 and not result["failed"]
    verdict = "OK" if ok else "MISSED"
    if args.quick:
        verdict += " (--quick: a few windows only; the targets are for the full run)"
    print(f"targets (>= 95% of the quota, 0 throttled): {verdict}")
    if not args.no_save:
        path = save("redis", {"quick": args.quick, "machine": machine(), **result})
        print(f"results: bench/results/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
