"""RedisRateLimiter(on_unavailable="local") across a Redis that dies, comes back and stalls.

A dedicated redis-server per test (a free port, started and killed here), a real emulator at
the real quotas, one client process: whichever side grants its slots (Redis, or the local
fallback while Redis is away), the emulator never sees more than Q arrivals of an Action in
any second, and throttles none of them.  After a stall, the slots Redis granted to acquires
that timed out are handed back once Redis answers again, not held until the lease ends.

Needs the redis package and a redis-server binary: skipped without them, except where Redis
is required (AIOEDGE_REQUIRE_REDIS=1 or CI), where that is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from aioedge import EdgeClient, ThrottledError
from aioedge._redis import RedisRateLimiter
from aioedge.testing import Emulator, FaultSpec

from .test_ratelimit import max_in_window

REQUIRED = os.environ.get("AIOEDGE_REQUIRE_REDIS") == "1" or bool(os.environ.get("CI"))
try:
    import redis
except ImportError:  # pragma: no cover - the dev extra installs it
    if REQUIRED:
        raise
    pytest.skip("the redis package is not installed", allow_module_level=True)

pytestmark = pytest.mark.redis

SERVER = shutil.which("redis-server")
ROOT = Path(__file__).resolve().parents[1]


class RedisServer:
    """A redis-server of this test's own, on a free port: started, killed, restarted."""

    def __init__(self) -> None:
        assert SERVER is not None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        version = subprocess.run([SERVER, "--version"], capture_output=True, text=True).stdout
        match = re.search(r"v=(\d+)", version)
        self._args = [SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        self._args += ["--save", "", "--appendonly", "no"]
        if match and int(match[1]) >= 7:  # DEBUG is off by default since Redis 7
            self._args += ["--enable-debug-command", "yes"]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stall(self, seconds: float) -> None:
        """Block the server (DEBUG SLEEP) for ``seconds``; returns when it answers again."""
        redis.Redis.from_url(self.url, socket_timeout=seconds + 10).execute_command(
            "DEBUG", "SLEEP", str(seconds)
        )


@pytest.fixture
def server() -> Iterator[RedisServer]:
    if SERVER is None:
        if REQUIRED:
            pytest.fail("Redis is required here but no redis-server binary is on PATH")
        pytest.skip("no redis-server binary on PATH")
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


def _limiter(srv: RedisServer, **kw: Any) -> RedisRateLimiter:
    return RedisRateLimiter(
        srv.url,
        prefix=f"fallback-{uuid.uuid4().hex[:8]}",
        on_unavailable="local",
        retry_after=0.5,
        connect_timeout=0.3,
        socket_timeout=0.4,
        **kw,
    )


async def _drive(client: EdgeClient, iid: str, stop: asyncio.Event, workers: int) -> None:
    async def worker() -> None:
        while not stop.is_set():
            with contextlib.suppress(ThrottledError):  # counted by the emulator
                await client.get_edge_instance(instance_id=iid)

    await asyncio.gather(*(worker() for _ in range(workers)))


@pytest.mark.slow  # Redis keeps real time: a kill, a restart and a stall take ~9 s
async def test_redis_killed_restarted_and_stalled_never_doubles_the_quota(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = _limiter(server)
    inflight = limiter.keys("LTAI5tEmulatorAccessKeyId", "GetEdgeInstance")[0]
    async with Emulator() as emu:  # the real quotas: GetEdgeInstance 10 per second
        async with EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False
        ) as setup:
            iid = (await setup.create_edge_instance(name="fallback")).instance_id
        async with EdgeClient(
            credentials=emu.credentials,
            endpoint=emu.endpoint,
            rate_limit=limiter,
            retry=None,
            timeout=5.0,
        ) as client:
            assert client.quota_scope == "LTAI5tEmulatorAccessKeyId"
            stop = asyncio.Event()
            with caplog.at_level(logging.WARNING, logger="aioedge"):
                calls = asyncio.create_task(_drive(client, iid, stop, workers=30))
                await asyncio.sleep(1.3)  # Redis grants
                server.kill()
                await asyncio.sleep(1.5)  # the local fallback grants
                server.start()  # empty: it has forgotten every slot
                await asyncio.sleep(1.5)  # Redis again
                await asyncio.to_thread(server.stall, 2.5)  # acquires time out meanwhile
                await asyncio.sleep(1.5)
                stop.set()
                await asyncio.wait_for(calls, 30)
            # The stalled acquires' slots, granted when Redis woke up, are handed back now
            # that it answers, not held until the 60-s lease ends.
            remaining = -1
            for _ in range(40):
                remaining = redis.Redis.from_url(server.url).zcard(inflight)
                print("remaining", remaining, inflight)
                if remaining == 0:
                    break
                await asyncio.sleep(0.1)
            assert remaining == 0, redis.Redis.from_url(server.url).keys("*")
        await limiter.aclose()
        arrivals = [r.arrival for r in emu.requests if r.action == "GetEdgeInstance"]
        stats = emu.stats()["GetEdgeInstance"]
    switches = caplog.text.count("aioedge.redis_unavailable")
    assert switches >= 2, caplog.text  # the kill and the stall each switched to local
    assert stats["throttled"] == 0, stats
    assert len(arrivals) >= 40  # the calls kept going throughout
    assert max_in_window(arrivals) <= 10


class _RequestDelayer:
    """A TCP proxy in front of Redis that holds back the requests of the connections open at
    ``hold()`` until ``release()``, even when their client gave up meanwhile: Redis runs them
    late, as it does the commands that queued up during a stall.  New connections pass."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._path = parts.path
        self._open: set[int] = set()
        self._held: dict[int, list[bytes]] = {}
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def hold(self) -> None:
        self._held = {conn: [] for conn in self._open}

    def release(self) -> None:
        self._released.set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._path}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        me = id(client_w)
        self._open.add(me)

        async def requests() -> None:
            with contextlib.suppress(OSError):
                while data := await client_r.read(65536):
                    if me in self._held and not self._released.is_set():
                        self._held[me].append(data)
                        continue
                    server_w.write(data)
                    await server_w.drain()
            if me in self._held:
                await self._released.wait()
                server_w.write(b"".join(self._held[me]))
                await server_w.drain()
                await asyncio.sleep(0.2)  # Redis answers into the void
            server_w.close()

        async def replies() -> None:
            with contextlib.suppress(OSError):
                while data := await server_r.read(65536):
                    client_w.write(data)
                    await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(requests(), replies(), return_exceptions=True)
        finally:
            self._open.discard(me)


async def test_a_slot_granted_after_its_hand_back_is_handed_back_when_redis_answers(
    server: RedisServer,
) -> None:
    """The acquire whose reply timed out runs late (a stall), after its hand-back found
    nothing: the hand-back is sent again once Redis answers, not left to the 60-s lease."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    delayer = _RequestDelayer(server.url)
    async with delayer as proxied:
        proxy_client = Redis.from_url(proxied, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
        limiter = RedisRateLimiter(
            prefix=f"handback-{uuid.uuid4().hex[:8]}",
            client=proxy_client,
            on_unavailable="local",
            retry_after=0.3,
        )
        inflight = limiter.keys("AK", "DeleteEdgeInstance")[0]
        direct = redis.Redis.from_url(server.url)
        for action in ("GetEdgeInstance", "DeleteEdgeInstance"):
            direct.set(limiter.keys("AK", action)[3], "0")  # lanes in use for a while

        async def count(expected: int) -> int:
            seen = -1
            for _ in range(30):
                seen = int(direct.zcard(inflight))
                if seen == expected:
                    break
                await asyncio.sleep(0.1)
            return seen

        try:
            async with limiter.slot("AK", "GetEdgeInstance", 10):
                pass  # loads the scripts and opens the one connection the acquire will use
            delayer.hold()
            async with limiter.slot("AK", "DeleteEdgeInstance", 1):
                pass  # the acquire times out: the local fallback grants the slot
            await asyncio.sleep(0.3)  # its hand-back ran on a fresh connection: nothing there
            delayer.release()  # now the acquire runs: a slot granted to nobody
            assert await count(1) == 1
            await asyncio.sleep(0.4)  # retry_after: Redis is asked again
            async with limiter.slot("AK", "GetEdgeInstance", 10):
                pass  # Redis answers again
            assert await count(0) == 0  # handed back, not held until the lease ends
        finally:
            await limiter.aclose()
            await proxy_client.aclose()


_LOSS_WORKER = textwrap.dedent(
    """
    import asyncio, logging, sys
    from aioedge import EdgeClient, ThrottledError
    from aioedge._redis import RedisRateLimiter, RedisUnavailableError

    url, prefix, endpoint, instance_id = sys.argv[1:5]
    started = []

    class Count(logging.Handler):
        def emit(self, record):
            if "aioedge.redis_lane_started" in record.getMessage():
                started.append(record)

    logging.getLogger("aioedge").addHandler(Count())
    logging.getLogger("aioedge").setLevel(logging.INFO)

    async def main():
        stop = asyncio.Event()
        ready = asyncio.Event()
        limiter = RedisRateLimiter(
            url, prefix=prefix, connect_timeout=0.3, socket_timeout=0.5, poll_interval=0.05
        )
        async with limiter, EdgeClient(
            endpoint=endpoint, rate_limit=limiter, retry=None, timeout=5.0, quota_scope="loss"
        ) as client:

            async def worker():
                while not stop.is_set():
                    try:
                        await client.get_edge_instance(instance_id=instance_id)
                        ready.set()
                    except ThrottledError:
                        pass
                    except RedisUnavailableError:
                        await asyncio.sleep(0.05)

            calls = [asyncio.create_task(worker()) for _ in range(10)]
            await ready.wait()
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin
            stop.set()
            await asyncio.gather(*calls)
        print(len(started), flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.slow  # Redis keeps real time: two FLUSHALLs and a restart under load take ~9 s
async def test_limiters_in_two_processes_never_exceed_the_quota_when_redis_loses_its_state(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Three limiters on one prefix, two here and one in another process (each has its own
    local lane), drive a 10-QPS Action; Redis is flushed twice, then restarted empty, under
    their feet.  Each holds slots Redis no longer knows of: the lane waits one window before
    it grants again, so the emulator never sees more than 10 arrivals in a second."""
    from aioedge._redis import RedisUnavailableError

    prefix = f"loss-{uuid.uuid4().hex[:8]}"
    limiters = [
        RedisRateLimiter(
            server.url, prefix=prefix, connect_timeout=0.3, socket_timeout=0.5, poll_interval=0.05
        )
        for _ in range(2)
    ]
    # The real quotas (GetEdgeInstance: 10 per second); half the answers come 0.3 s late, so
    # slots are in flight and free at scattered times, as against a real service.
    slow = FaultSpec(kind="delay", action="GetEdgeInstance", rate=0.5, delay=0.3)
    async with Emulator(faults=[slow], seed=11) as emu:
        async with EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False
        ) as setup:
            iid = (await setup.create_edge_instance(name="loss")).instance_id
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.credentials.access_key_secret,
        }
        other = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _LOSS_WORKER,
            server.url,
            prefix,
            emu.endpoint,
            iid,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        clients = [
            EdgeClient(
                credentials=emu.credentials,
                endpoint=emu.endpoint,
                rate_limit=limiter,
                retry=None,
                timeout=5.0,
                quota_scope="loss",
            )
            for limiter in limiters
        ]
        stop = asyncio.Event()

        async def worker(client: EdgeClient) -> None:
            while not stop.is_set():
                try:
                    await client.get_edge_instance(instance_id=iid)
                except ThrottledError:
                    pass  # counted by the emulator
                except RedisUnavailableError:
                    await asyncio.sleep(0.05)  # Redis is restarting: nothing was sent

        try:
            assert other.stdin is not None and other.stdout is not None
            with caplog.at_level(logging.INFO, logger="aioedge"):
                calls = [asyncio.create_task(worker(c)) for c in clients for _ in range(10)]
                line = await asyncio.wait_for(other.stdout.readline(), 60)
                assert line == b"ready\n", (line, await other.stderr.read())
                for _ in range(2):
                    await asyncio.sleep(1.7)  # every limiter holds slots granted by Redis
                    redis.Redis.from_url(server.url).flushall()
                await asyncio.sleep(1.7)
                server.kill()
                server.start()  # empty again: no persistence
                await asyncio.sleep(1.7)
                stop.set()
                other.stdin.close()
                await asyncio.wait_for(asyncio.gather(*calls), 30)
                out, err = await asyncio.wait_for(other.communicate(), 30)
                assert other.returncode == 0, err.decode()
        finally:
            if other.returncode is None:
                other.kill()
                await other.wait()
            for client in clients:
                await client.aclose()
            for limiter in limiters:
                await limiter.aclose()
        arrivals = [r.arrival for r in emu.requests if r.action == "GetEdgeInstance"]
        stats = emu.stats()["GetEdgeInstance"]
    assert max_in_window(arrivals) <= 10
    assert stats["throttled"] == 0, stats
    assert len(arrivals) >= 30  # the calls kept going across the losses
    # The first use and each of the three losses held the lane back one window, logged by
    # whichever process found the lane's "since" key missing.
    started = caplog.text.count("aioedge.redis_lane_started") + int(out)
    assert started == 4, (caplog.text, out)
