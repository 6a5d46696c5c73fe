"""Where the client's share of benchmark 1 goes at concurrency 64: the pieces one by one.

Against the same instant server as ``bench_overhead.py``, in one process, interleaved blocks
of each variant (CPU time per call, median of the blocks):

* ``floor``: the bare aiohttp loop posting one pre-signed request;
* ``transport``: ``Transport.send`` of that same request (aioedge's one aiohttp call site);
* ``transport, signed afresh``: ``Transport.send`` of a request the client signs each time;
* ``signature computed, old request sent``: the signing work, the request of ``transport``;
* ``sign only``: the signing work alone, in a hot loop (no I/O in between);
* ``client.call``: the whole call (validate, sign, send, parse).

Comparing ``sign only`` with the difference between the third and second rows shows what
signing costs between real sends, where the caches are cold.  Private names are used on
purpose: this takes the client apart.

    .venv/bin/python bench/overhead_pieces.py          # ~30 s
    .venv/bin/python bench/overhead_pieces.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from _common import cpu_seconds, instant_server, median, pin_cpus
from bench_overhead import AKID, INSTANCE_ID, SECRET, presigned

import aioedge
from aioedge._catalog import get_operation
from aioedge._transport import Transport

PARAMS = {"InstanceId": INSTANCE_ID}


async def _per_call(fn: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> float:
    """CPU microseconds per call of ``fn`` run ``calls`` times by ``concurrency`` workers."""
    todo = iter(range(calls))

    async def worker() -> None:
        for _ in todo:
            await fn()

    start = cpu_seconds()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (cpu_seconds() - start) / calls * 1e6


async def _measure(endpoint: str, blocks: int, calls: int, concurrency: int) -> None:
    import aiohttp

    op = get_operation("GetEdgeInstance")
    request = presigned(endpoint)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    transport = Transport()
    client = aioedge.EdgeClient(
        credentials=aioedge.Credentials(AKID, SECRET), endpoint=endpoint, rate_limit=False
    )

    async def floor() -> Any:
        async with session.post(request.url, data=request.body, headers=request.headers) as r:
            return json.loads(await r.read())

    async def transport_only() -> Any:
        return json.loads((await transport.send(request))[2])

    async def signed_afresh() -> Any:
        return json.loads((await transport.send(client._sign(op, PARAMS)))[2])

    async def signature_computed() -> Any:
        client._sign(op, PARAMS)
        return json.loads((await transport.send(request))[2])

    async def sign_only() -> Any:
        return client._sign(op, PARAMS)

    async def call() -> Any:
        return await client.call("GetEdgeInstance", PARAMS)

    variants: tuple[tuple[str, Callable[[], Awaitable[Any]]], ...] = (
        ("floor", floor),
        ("transport", transport_only),
        ("transport, signed afresh", signed_afresh),
        ("signature computed, old request sent", signature_computed),
        ("sign only (hot loop)", sign_only),
        ("client.call", call),
    )
    try:
        for _, fn in variants:  # warm up: connections open, plans cached
            await _per_call(fn, min(calls, 500), concurrency)
        results: dict[str, list[float]] = {name: [] for name, _ in variants}
        for _ in range(blocks):
            for name, fn in variants:
                results[name].append(await _per_call(fn, calls, concurrency))
    finally:
        await session.close()
        await transport.aclose()
        await client.aclose()
    print(f"CPU us per call, concurrency {concurrency}, median of {blocks} blocks of {calls}:")
    width = max(len(name) for name in results)
    for name, values in results.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:<{width}}  {median(values):7.1f}   ({spread})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 blocks of 1,000 calls")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    blocks, calls = (2, 1000) if args.quick else (6, 3000)
    client_cpu = pin_cpus()[0]
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    with instant_server() as endpoint:
        asyncio.run(_measure(endpoint, blocks, calls, args.concurrency))


if __name__ == "__main__":
    main()
