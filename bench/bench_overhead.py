"""Benchmark 1: client CPU per call of GetEdgeInstance, aioedge vs the floor and the SDKs.

A server in another process answers every request at once with a fixed success body
(``instant_server.py``), so what is left is the client's own cost: user + sys CPU time of
the client process (``getrusage(RUSAGE_SELF)``, all its threads) per call, at concurrency 1
and 64.  On a machine with two or more CPUs the server and the client are pinned to
different ones (``AIOEDGE_BENCH_NO_PIN=1`` turns that off).

Variants:

* ``floor``: a bare aiohttp loop posting one pre-signed request over and over and
  ``json.loads``-ing the answer — the least any asyncio client has to do;
* ``aioedge``: ``EdgeClient(rate_limit=False)`` with the default retry policy,
  ``await client.call("GetEdgeInstance", {...})`` (validate, sign afresh, send, parse);
* ``aioedge-typed``: the same through ``client.get_edge_instance(...)`` (plus the model);
* ``aioedge-provider``: ``aioedge`` signing with a refreshing credentials provider's cached
  key (the cost of asking the provider before every attempt: an STS, ECS or RRSA key);
* ``aioedge-hook``: ``aioedge`` with one hook whose five call methods do nothing
  (``EdgeClient(hooks=[...])``): what the hook plumbing costs when one is given;
* ``official-async``: ``alibabacloud-iot20180120`` ``get_edge_instance_async`` with
  ``signature_algorithm="v2"`` (its RPC path: HMAC-SHA1, signature v1 like ours);
* ``official-core``: ``aliyun-python-sdk-core`` + ``aliyun-python-sdk-iot``,
  ``do_action_with_exception`` from a thread pool (the sync SDK's way to be concurrent).

One worker process per round and concurrency holds every variant and measures them in
interleaved blocks (A B C D E, then B C D E A, ...): neighbouring blocks see the same machine
load, so a ratio is computed per cycle of blocks and the report gives the median over all
cycles of all rounds (these machines are noisy; never compare numbers of separate runs).
A last table gives the client's own cost with the network taken out (a transport stub).

    .venv/bin/python bench/bench_overhead.py            # ~2.5 min
    .venv/bin/python bench/bench_overhead.py --quick    # < 30 s
    .venv/bin/python bench/bench_overhead.py --profile  # pyinstrument on aioedge, c=64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import (
    PYTHON,
    cpu_seconds,
    emit,
    instant_server,
    machine,
    median,
    pin_cpus,
    run_worker,
    save,
    table,
)

INSTANCE_ID = "F3APY0tPLhmgGtx0abcd"  # the documented sample masks its tail as ****
AKID, SECRET = "LTAI4bench0000000000", "bench-secret-not-real"
VARIANTS = (
    "floor",
    "aioedge",
    "aioedge-typed",
    "aioedge-provider",
    "aioedge-hook",
    "official-async",
    "official-core",
)
# Calls per measurement: the slow official clients get fewer (the cost is per call).
# Calls per block at concurrency 64 (about half a second each); at concurrency 1 every call
# is a round trip of its own, so half as many.  The official clients cost ~4x: fewer calls.
CALLS = {
    "floor": 3000,
    "aioedge": 3000,
    "aioedge-typed": 3000,
    "aioedge-provider": 3000,
    "aioedge-hook": 3000,
}
SLOW_CALLS = 600

CallFn = Callable[[], Awaitable[Any]]


# --------------------------------------------------------------------------- clients


def presigned(endpoint: str) -> Any:
    """One signed GetEdgeInstance request (an ``aioedge._protocol.PreparedRequest``), sent
    over and over by the floor."""
    from aioedge._catalog import get_operation
    from aioedge._protocol import build_request

    return build_request(
        get_operation("GetEdgeInstance"),
        {"InstanceId": INSTANCE_ID},
        endpoint=endpoint,
        access_key_id=AKID,
        access_key_secret=SECRET,
        region_id="cn-shanghai",
        timestamp=time.time(),
        nonce="0" * 32,
    )


async def _floor(endpoint: str) -> CallFn:
    import aiohttp

    request = presigned(endpoint)
    url, body, headers = request.url, request.body, dict(request.headers)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    _CLOSERS.append(session.close)

    async def call() -> Any:
        async with session.post(url, data=body, headers=headers) as resp:
            return json.loads(await resp.read())

    return call


async def _cached_provider() -> Any:
    """A refreshing provider holding a fresh one-hour key: every call takes the cached path."""
    import aioedge
    from aioedge._providers import RefreshingProvider

    class Cached(RefreshingProvider):
        source = "bench"

        async def _fetch(self) -> aioedge.Credentials:
            return aioedge.Credentials(AKID, SECRET, expiration=time.time() + 3600)

    provider = Cached()
    await provider.get_credentials()  # fetched once, before the measurement
    return provider


class _NoopHook:
    """One hook with every per-call method, doing nothing: the plumbing's own cost."""

    def on_slot_wait(self, info: Any) -> None: ...
    def on_request(self, info: Any) -> None: ...
    def on_response(self, info: Any) -> None: ...
    def on_throttled(self, info: Any) -> None: ...
    def on_retry(self, info: Any) -> None: ...


async def _aioedge(
    endpoint: str, *, typed: bool = False, provider: bool = False, hook: bool = False
) -> CallFn:
    import aioedge

    client = aioedge.EdgeClient(
        credentials=await _cached_provider() if provider else aioedge.Credentials(AKID, SECRET),
        endpoint=endpoint,
        rate_limit=False,
        hooks=[_NoopHook()] if hook else None,
    )
    _CLOSERS.append(client.aclose)
    params = {"InstanceId": INSTANCE_ID}

    async def call() -> Any:
        return await client.call("GetEdgeInstance", params)

    async def typed_call() -> Any:
        return await client.get_edge_instance(instance_id=INSTANCE_ID)

    return typed_call if typed else call


async def _official_async(endpoint: str) -> CallFn:
    from alibabacloud_iot20180120 import models  # type: ignore[import-untyped]
    from alibabacloud_iot20180120.client import Client  # type: ignore[import-untyped]
    from alibabacloud_tea_openapi import models as openapi  # type: ignore[import-untyped]

    config = openapi.Config(
        access_key_id=AKID,
        access_key_secret=SECRET,
        region_id="cn-shanghai",
        endpoint=endpoint.removeprefix("http://"),
        protocol="HTTP",
        # "v2" selects the SDK's RPC path: HMAC-SHA1 signature v1 in the query string, as
        # the API documents (without it the SDK signs ACS3-HMAC-SHA256 via do_request).
        signature_algorithm="v2",
    )
    client = Client(config)

    async def call() -> Any:
        return await client.get_edge_instance_async(
            models.GetEdgeInstanceRequest(instance_id=INSTANCE_ID)
        )

    return call


def _official_core(endpoint: str, concurrency: int) -> Callable[[int], None]:
    """A blocking runner: ``run(n)`` makes n calls from ``concurrency`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    from aliyunsdkcore.client import AcsClient  # type: ignore[import-untyped]
    from aliyunsdkiot.request.v20180120.GetEdgeInstanceRequest import (  # type: ignore[import-untyped]
        GetEdgeInstanceRequest,
    )

    host = endpoint.removeprefix("http://")
    client = AcsClient(AKID, SECRET, "cn-shanghai", pool_size=max(10, concurrency))
    pool = ThreadPoolExecutor(concurrency)
    _CLOSERS.append(_async_noop(pool.shutdown))

    def one() -> Any:
        request = GetEdgeInstanceRequest()
        request.set_endpoint(host)
        request.set_protocol_type("http")
        request.set_InstanceId(INSTANCE_ID)
        return json.loads(client.do_action_with_exception(request))

    def worker(k: int) -> None:
        for _ in range(k):
            one()

    def run(n: int) -> None:
        per, extra = divmod(n, concurrency)
        for f in [pool.submit(worker, per + (i < extra)) for i in range(concurrency)]:
            f.result()

    return run


_CLOSERS: list[Callable[[], Awaitable[Any]]] = []


def _async_noop(fn: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        fn()

    return close


# --------------------------------------------------------------------------- worker


async def _drive(call: CallFn, calls: int, concurrency: int) -> None:
    """``calls`` calls spread over ``concurrency`` tasks."""
    per, extra = divmod(calls, concurrency)

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(worker(per + (i < extra)) for i in range(concurrency)))


async def _worker(args: argparse.Namespace) -> dict[str, Any]:
    """All variants in this process, measured in interleaved blocks (ABCD ABCD ...).

    Neighbouring blocks see the same machine load, so their ratios are far steadier than
    those of runs seconds apart on a shared machine.
    """
    endpoint, c = str(args.endpoint), int(args.concurrency)
    variants = [v for v in args.variants.split(",") if v]
    blocking: dict[str, Callable[[int], None]] = {}
    calls: dict[str, CallFn] = {}
    for v in variants:
        if v == "floor":
            calls[v] = await _floor(endpoint)
        elif v == "aioedge":
            calls[v] = await _aioedge(endpoint)
        elif v == "aioedge-typed":
            calls[v] = await _aioedge(endpoint, typed=True)
        elif v == "aioedge-provider":
            calls[v] = await _aioedge(endpoint, provider=True)
        elif v == "aioedge-hook":
            calls[v] = await _aioedge(endpoint, hook=True)
        elif v == "official-async":
            calls[v] = await _official_async(endpoint)
        elif v == "official-core":
            blocking[v] = _official_core(endpoint, c)

    def block_size(v: str) -> int:
        per_level = 1.0 if c > 1 else 0.5
        return max(c * 2, int(CALLS.get(v, SLOW_CALLS) * args.scale * per_level))

    async def block(v: str, n: int) -> tuple[float, float]:
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        if v in blocking:
            blocking[v](n)
        else:
            await _drive(calls[v], n, c)
        return cpu_seconds() - cpu0, time.perf_counter() - wall0

    for v in variants:  # warm up: connections, caches, lazy imports
        await block(v, max(c * 2, block_size(v) // 4))
    out: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    profiler = None
    if args.profile_out:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
    for cycle in range(args.cycles):
        shift = cycle % len(variants)
        for v in variants[shift:] + variants[:shift]:  # rotate: nobody always goes first
            n = block_size(v)
            cpu, wall = await block(v, n)
            out[v].append({"cycle": cycle, "calls": n, "cpu_s": cpu, "wall_s": wall})
    if profiler is not None:
        profiler.stop()
        with open(args.profile_out, "w", encoding="utf-8") as f:
            f.write(profiler.output_text(unicode=False, color=False))
    for close in _CLOSERS:
        await close()
    return {"concurrency": c, "blocks": out}


def worker_main(args: argparse.Namespace) -> None:
    emit(asyncio.run(_worker(args)))


async def _no_io(rounds: int, n: int) -> dict[str, float]:
    """The client's own CPU per call with the network taken out: a transport that answers
    at once from memory.  The floor here is the same stub plus json.loads; the difference
    is validation, signing, parsing and bookkeeping (hot loop, so a lower bound)."""
    import aioedge
    from aioedge._catalog import get_operation

    body = json.dumps(get_operation("GetEdgeInstance").sample_response).encode()

    class Instant:
        session = None

        async def send(self, request: Any, *, timeout: float | None = None) -> Any:
            return 200, {}, body

        async def aclose(self) -> None:
            return None

    client = aioedge.EdgeClient(
        credentials=aioedge.Credentials(AKID, SECRET),
        endpoint="http://127.0.0.1:9",
        rate_limit=False,
    )
    stub = Instant()
    client._transport = stub  # type: ignore[assignment]
    with_provider = aioedge.EdgeClient(
        credentials=await _cached_provider(), endpoint="http://127.0.0.1:9", rate_limit=False
    )
    with_provider._transport = stub  # type: ignore[assignment]
    params = {"InstanceId": INSTANCE_ID}

    async def floor() -> Any:
        return json.loads((await stub.send(None))[2])

    async def call() -> Any:
        return await client.call("GetEdgeInstance", params)

    async def typed() -> Any:
        return await client.get_edge_instance(instance_id=INSTANCE_ID)

    async def provided() -> Any:
        return await with_provider.call("GetEdgeInstance", params)

    out: dict[str, float] = {}
    for name, fn in (
        ("stub + json.loads", floor),
        ("aioedge call", call),
        ("aioedge typed", typed),
        ("aioedge call, cached provider", provided),
    ):
        best = float("inf")
        for _ in range(rounds):
            cpu0 = cpu_seconds()
            for _ in range(n):
                await fn()
            best = min(best, (cpu_seconds() - cpu0) / n * 1e6)
        out[name] = best
    return out


# --------------------------------------------------------------------------- orchestration


def _available(variant: str) -> bool:
    module = {"official-async": "alibabacloud_iot20180120", "official-core": "aliyunsdkiot"}
    name = module.get(variant)
    if name is None:
        return True
    import importlib.util

    return importlib.util.find_spec(name) is not None


def orchestrate(args: argparse.Namespace) -> int:
    rounds = 1 if args.quick else args.rounds
    cycles = 2 if args.quick else args.cycles
    scale = 0.25 if args.quick else 1.0
    variants = [v for v in args.variants.split(",") if v]
    missing = [v for v in variants if not _available(v)]
    for v in missing:
        print(f"note: {v} skipped (pip install -r bench/requirements.txt)", file=sys.stderr)
    variants = [v for v in variants if v not in missing]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    blocks: list[dict[str, Any]] = []
    started = time.monotonic()
    with instant_server() as endpoint:
        for r in range(rounds):
            for c in concurrencies:
                argv = [PYTHON, __file__, "--worker", "--endpoint", endpoint]
                argv += ["--concurrency", str(c), "--variants", ",".join(variants)]
                argv += ["--cycles", str(cycles), "--scale", str(scale)]
                result = run_worker(argv, cpu=pin_cpus()[0])
                for v, rows in result["blocks"].items():
                    for row in rows:
                        blocks.append(
                            {
                                "variant": v,
                                "concurrency": c,
                                "round": r,
                                **row,
                                "us_per_call": row["cpu_s"] / row["calls"] * 1e6,
                                "calls_per_s": row["calls"] / row["wall_s"],
                            }
                        )
                mine = [b for b in blocks if b["round"] == r and b["concurrency"] == c]
                line = "  ".join(
                    f"{v} {median([b['us_per_call'] for b in mine if b['variant'] == v]):.0f}"
                    for v in variants
                )
                print(f"round {r + 1}/{rounds} c={c}: us CPU/call  {line}", file=sys.stderr)
    summary = summarize(blocks, variants, concurrencies)
    no_io = run_worker(
        [PYTHON, __file__, "--no-io-worker", "--scale", str(scale)], cpu=pin_cpus()[0]
    )
    summary["no_io_us_per_call"] = no_io
    print()
    print(summary["table"])
    print()
    print(summary["ratios_table"])
    for line in summary["targets"]["lines"]:
        print(line)
    print()
    base = no_io["stub + json.loads"]
    print(
        table(
            ["without the network (best of 5, hot loop)", "CPU us/call", "over the stub"],
            [[k, v, v - base] for k, v in no_io.items()],
        )
    )
    if not args.no_save:
        path = save(
            "overhead",
            {
                "quick": args.quick,
                "rounds": rounds,
                "cycles": cycles,
                "blocks": blocks,
                "summary": {k: v for k, v in summary.items() if not k.endswith("table")},
                "elapsed_s": time.monotonic() - started,
            },
        )
        print(f"\nresults: bench/results/{path.name}")
    return 0


def summarize(
    blocks: list[dict[str, Any]], variants: list[str], concurrencies: list[int]
) -> dict[str, Any]:
    def pick(v: str, c: int, key: str) -> list[float]:
        return [b[key] for b in blocks if b["variant"] == v and b["concurrency"] == c]

    medians = {v: {c: median(pick(v, c, "us_per_call")) for c in concurrencies} for v in variants}
    rows = []
    for v in variants:
        row: list[Any] = [v]
        for c in concurrencies:
            row += [medians[v][c], median(pick(v, c, "calls_per_s"))]
        rows.append(row)
    headers = ["client"]
    for c in concurrencies:
        headers += [f"CPU us/call c={c}", f"calls/s c={c}"]

    # A ratio per cycle (blocks measured side by side), then the median over all cycles.
    index = {
        (b["variant"], b["concurrency"], b["round"], b["cycle"]): b["us_per_call"] for b in blocks
    }
    pairs = [("aioedge", "floor"), ("aioedge", "official-async"), ("aioedge", "official-core")]
    pairs += [("aioedge-typed", "floor"), ("official-async", "floor"), ("official-core", "floor")]
    pairs += [("aioedge-provider", "floor"), ("aioedge-provider", "aioedge")]
    pairs += [("aioedge-hook", "floor"), ("aioedge-hook", "aioedge")]
    ratios: dict[str, dict[int, float]] = {}
    for a, b in pairs:
        if a not in variants or b not in variants:
            continue
        key = f"{a} / {b}"
        ratios[key] = {}
        for c in concurrencies:
            per_cycle = [
                value / index[(b, cc, r, cy)]
                for (v, cc, r, cy), value in index.items()
                if v == a and cc == c and (b, cc, r, cy) in index
            ]
            ratios[key][c] = median(per_cycle)
    ratio_rows = [[k, *(ratios[k][c] for c in concurrencies)] for k in ratios]
    ratio_headers = ["CPU ratio (median of side-by-side blocks)"]
    ratio_headers += [f"c={c}" for c in concurrencies]

    lines = []
    ok = True
    for c in concurrencies:
        for name in ("aioedge", "aioedge-provider"):
            floor_ratio = ratios.get(f"{name} / floor", {}).get(c)
            if floor_ratio is not None:
                good = floor_ratio <= 1.3
                ok &= good
                lines.append(
                    f"target {name} <= 1.3x floor at c={c}: {floor_ratio:.2f}x "
                    f"{'OK' if good else 'MISSED'}"
                )
        official = ratios.get("aioedge / official-async", {}).get(c)
        if official is not None:
            good = official <= 1 / 3
            ok &= good
            lines.append(
                f"target aioedge <= 1/3 of official async at c={c}: {official:.3f} "
                f"(the official client costs {1 / official:.1f}x) {'OK' if good else 'MISSED'}"
            )
    return {
        "medians_us_per_call": medians,
        "ratios": ratios,
        "table": table(headers, rows),
        "ratios_table": table(ratio_headers, ratio_rows),
        "targets": {"ok": ok, "lines": lines},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round (< 30 s)")
    parser.add_argument("--rounds", type=int, default=3, help="worker processes per level")
    parser.add_argument("--cycles", type=int, default=6, help="interleaved blocks per worker")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--concurrency", default="1,64", help="comma-separated levels")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile aioedge at c=64 with pyinstrument and print the call tree",
    )
    # worker mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--no-io-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.no_io_worker:
        emit(asyncio.run(_no_io(5, max(2000, int(20000 * args.scale)))))
        return 0
    if args.worker:
        args.concurrency = int(args.concurrency)
        worker_main(args)
        return 0
    if args.profile:
        return profile()
    print(json.dumps(machine()), file=sys.stderr)
    return orchestrate(args)


def profile() -> int:
    import tempfile

    with instant_server() as endpoint, tempfile.NamedTemporaryFile(suffix=".txt") as out:
        argv = [PYTHON, __file__, "--worker", "--endpoint", endpoint, "--variants", "aioedge"]
        argv += ["--concurrency", "64", "--cycles", "2", "--profile-out", out.name]
        run_worker(argv, cpu=pin_cpus()[0])
        print(Path(out.name).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
