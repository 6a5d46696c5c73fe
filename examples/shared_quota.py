"""Shared quota: several processes drawing from one per-account QPS quota through Redis.

Every Action has a quota per Alibaba Cloud account (GetEdgeInstance: 10 QPS), shared by
every process, host and RAM user of the account.  An in-process limiter keeps one process
within the quota, but two processes each sending 10 a second are throttled half the time.
``aioedge.RedisRateLimiter`` keeps the quota's slots in Redis (one atomic script per
decision, timed by Redis' own clock), so all the processes together stay within it.

This launches ``--workers`` processes with multiprocessing; each makes ``--calls`` calls as
fast as its client lets it, with retries off so that any throttling would show up as a
failure, and the parent prints what each process did: every process got its share, together
they took as long as the quota demands (``workers × calls / 10`` seconds, less the first
second's burst), and nothing was throttled.

Against the emulator, which enforces the quotas as the service does (``--seed-demo``
creates the instance the calls read)::

    redis-server --port 6379 --daemonize yes
    aioedge emulator --port 8123 &
    export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tEmulatorAccessKeyId
    export ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-access-key-secret
    python examples/shared_quota.py --endpoint http://127.0.0.1:8123 --seed-demo \\
        --redis redis://127.0.0.1:6379/0

Against your account: ``--instance ID`` (read-only calls); run it on two hosts against the
same Redis and they share the quota too.  Needs ``pip install 'aioedge[redis]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any
from urllib.parse import urlsplit

from _setup import add_connection_args, make_client, print_error, run, seed_fleet

import aioedge

QPS = 10  # GetEdgeInstance's quota per account (docs/reference/instance.md)


@dataclass(frozen=True)
class Job:
    """What a worker needs: plain data, so it crosses the process boundary."""

    worker: int
    endpoint: str | None
    region: str | None
    profile: str | None
    redis_url: str
    prefix: str
    instance_id: str
    calls: int


@dataclass(frozen=True)
class Tally:
    worker: int
    pid: int
    ok: int
    throttled: int
    failed: int
    seconds: float
    first_error: str | None


async def work(job: Job, start: Barrier) -> Tally:
    args = argparse.Namespace(endpoint=job.endpoint, region=job.region, profile=job.profile)
    limiter = aioedge.RedisRateLimiter(job.redis_url, prefix=job.prefix)
    ok = throttled = failed = 0
    first_error: str | None = None
    async with limiter, make_client(args, rate_limit=limiter, retry=None) as client:
        # Start together, so that the processes really compete for the quota.
        await asyncio.get_running_loop().run_in_executor(None, start.wait, 60)
        began = time.monotonic()

        async def one() -> None:
            nonlocal ok, throttled, failed, first_error
            try:
                await client.get_edge_instance(instance_id=job.instance_id)
                ok += 1
            except aioedge.ThrottledError as err:
                throttled += 1
                first_error = first_error or f"{err.code} (RequestId {err.request_id})"
            except aioedge.EdgeError as err:
                failed += 1
                first_error = first_error or str(err)

        await asyncio.gather(*(one() for _ in range(job.calls)))
        seconds = time.monotonic() - began
    return Tally(
        worker=job.worker,
        pid=os.getpid(),
        ok=ok,
        throttled=throttled,
        failed=failed,
        seconds=seconds,
        first_error=first_error,
    )


def worker_main(job: Job, start: Barrier, results: Queue[dict[str, Any]]) -> None:
    """The entry point of a worker process."""
    results.put(asdict(asyncio.run(work(job, start))))


def _where(url: str) -> str:
    """host:port/db, never a password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


async def prepare(args: argparse.Namespace) -> str:
    """Check Redis answers and return the instance the workers read."""
    import redis.asyncio

    r = redis.asyncio.Redis.from_url(args.redis, socket_connect_timeout=2, socket_timeout=2)
    try:
        await r.ping()
    except (redis.RedisError, OSError) as exc:
        message = f"Redis at {_where(args.redis)} does not answer: {exc}"
        raise aioedge.TransportError(message) from None
    finally:
        await r.aclose()
    if args.seed_demo:
        async with make_client(args) as client:
            fleet = await seed_fleet(client, "shared_quota_demo")
            return fleet.instance_id
    if not args.instance:
        raise aioedge.ValidationError("give --instance (or --seed-demo)", param="--instance")
    return str(args.instance)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_connection_args(parser, seed_help="create an instance to read")
    parser.add_argument("--instance", help="the instance the calls read (GetEdgeInstance)")
    parser.add_argument(
        "--redis",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis URL (default $REDIS_URL or redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--prefix", default="aioedge", help="Redis key prefix (default aioedge)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--calls", type=int, default=20, help="calls per process (default 20)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.calls < 1:
        parser.error("--workers and --calls must be at least 1")

    code = run(_ready(args))
    if code:
        return code
    instance_id = args.instance
    print(
        f"GetEdgeInstance: {QPS} QPS per account, shared by {args.workers} processes "
        f"through {_where(args.redis)} (prefix {args.prefix!r})",
        flush=True,
    )

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop
    start = ctx.Barrier(args.workers)
    results: Queue[dict[str, Any]] = ctx.Queue()
    procs = []
    for n in range(1, args.workers + 1):
        job = Job(
            worker=n,
            endpoint=args.endpoint,
            region=args.region,
            profile=args.profile,
            redis_url=args.redis,
            prefix=args.prefix,
            instance_id=instance_id,
            calls=args.calls,
        )
        proc = ctx.Process(target=worker_main, args=(job, start, results), name=f"worker-{n}")
        proc.start()
        procs.append(proc)
    tallies = []
    try:
        for _ in procs:
            tallies.append(Tally(**results.get(timeout=120)))
    except Exception as exc:  # a worker died before reporting (its traceback is on stderr)
        print_error(RuntimeError(f"a worker did not report: {type(exc).__name__}"))
        return 1
    finally:
        for proc in procs:
            proc.join(timeout=10)

    for t in sorted(tallies, key=lambda t: t.worker):
        line = (
            f"worker {t.worker} (pid {t.pid}): {t.ok} ok, {t.throttled} throttled, "
            f"{t.failed} failed in {t.seconds:.1f} s"
        )
        print(line + (f" — first error: {t.first_error}" if t.first_error else ""))
    ok = sum(t.ok for t in tallies)
    throttled = sum(t.throttled for t in tallies)
    failed = sum(t.failed for t in tallies)
    seconds = max(t.seconds for t in tallies)  # the workers started together
    print(f"total: {ok} ok, {throttled} throttled, {failed} failed in {seconds:.1f} s")
    return 0 if throttled == 0 and failed == 0 else 1


async def _ready(args: argparse.Namespace) -> int:
    args.instance = await prepare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
