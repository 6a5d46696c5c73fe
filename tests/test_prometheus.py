"""PrometheusHooks with a real prometheus_client CollectorRegistry, against the emulator."""

from __future__ import annotations

import importlib
import os

import pytest

# CI installs the extra (test/dev): there a missing package fails instead of skipping.
if os.environ.get("CI"):
    importlib.import_module("prometheus_client")
else:
    pytest.importorskip("prometheus_client", reason="pip install 'aioedge[prometheus]'")

from prometheus_client import CollectorRegistry, generate_latest

from aioedge import (
    Credentials,
    EdgeClient,
    NotFoundError,
    RetryPolicy,
)
from aioedge._ratelimit import LocalRateLimiter
from aioedge._retry import set_testing
from aioedge.prometheus import PrometheusHooks
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import DeploymentMonitor

from .support import a_call_whose_expired_key_cannot_be_renewed, started_deployment
from .test_client_emulator import SteppingClock
from .test_watch_emulator import on_fake_clock

SECRET = "prom-secret-value-000000000"
KEY = Credentials("LTAIprom", SECRET)
ZERO = RetryPolicy(
    max_attempts=8, base_delay=0.0, max_delay=0.0, throttle_base_delay=0.0, throttle_min_delay=0.0
)


def value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    got = reg.get_sample_value(name, labels)
    return 0.0 if got is None else got


async def test_calls_retries_throttles_and_durations_match_the_emulators_records() -> None:
    reg = CollectorRegistry()
    hooks = PrometheusHooks(registry=reg, limiters=[])
    async with Emulator(quota_scale=0.1, quota_clock=SteppingClock(0.25), access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=KEY, endpoint=emu.endpoint, rate_limit=False, retry=ZERO, hooks=[hooks]
        )
        with set_testing(True):
            async with client:
                created = await client.call("CreateEdgeInstance", {"Name": "counted"})
                calls = [("GetEdgeInstance", {"InstanceId": created["InstanceId"]})] * 4
                results = await client.batch(calls)
                with pytest.raises(NotFoundError):
                    await client.call("GetEdgeInstance", {"InstanceId": "F3APnothing"})
    assert all(r.ok for r in results)
    gets = [r for r in emu.requests if r.action == "GetEdgeInstance"]
    throttled = sum(r.outcome == "throttled" for r in gets)
    assert throttled >= 3
    a = {"action": "GetEdgeInstance"}
    assert value(reg, "aioedge_calls_total", outcome="ok", **a) == 4
    assert value(reg, "aioedge_calls_total", outcome="error", **a) == 1
    assert value(reg, "aioedge_calls_total", action="CreateEdgeInstance", outcome="ok") == 1
    assert value(reg, "aioedge_call_duration_seconds_count", **a) == 5
    assert value(reg, "aioedge_call_duration_seconds_sum", **a) > 0
    assert value(reg, "aioedge_retries_total", reason="throttled", **a) == throttled
    assert value(reg, "aioedge_throttled_total", **a) == throttled
    text = generate_latest(reg).decode()
    assert SECRET not in text and "LTAIprom" not in text and "F3AP" not in text


async def test_a_monitors_polls_are_counted_as_a_watchers_are() -> None:
    """PrometheusHooks counts calls, not watches: every poll of every deployment a monitor
    follows is one GetEdgeInstanceDeployment call, as a watcher's polls are."""
    reg = CollectorRegistry()
    hooks = PrometheusHooks(registry=reg, limiters=[])
    async with on_fake_clock(
        FakeClock(),
        stage_seconds=1.0,
        access_keys=[KEY],
        client={"credentials": KEY, "hooks": [hooks]},
    ) as env:
        pairs = [await started_deployment(env.client, f"m{i}", f"gw{i}") for i in range(2)]
        async with DeploymentMonitor(
            env.client, poll_interval=0.5, clock=env.clock, sleep=env.sleep, wall_clock=env.clock
        ) as monitor:
            for pair in pairs:
                monitor.add(*pair)
            events = [e async for e in monitor]
    assert [e.outcome for e in events if e.kind == "final"] == ["succeeded"] * 2
    polls = sum(monitor.polls_per_deployment().values())
    g = {"action": "GetEdgeInstanceDeployment"}
    assert value(reg, "aioedge_calls_total", outcome="ok", **g) == polls > 2
    assert value(reg, "aioedge_call_duration_seconds_count", **g) == polls


async def test_quota_waits_and_the_limiters_state_as_gauges() -> None:
    reg = CollectorRegistry()
    limiter = LocalRateLimiter()
    hooks = PrometheusHooks(registry=reg, namespace="edge", limiters=[limiter])
    async with Emulator(access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=KEY, endpoint=emu.endpoint, rate_limit=limiter, hooks=[hooks]
        )
        async with client:
            for _ in range(3):
                await client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
            limiter.report_throttled(client.quota_scope, "QueryEdgeInstance")  # slow it down
    q = {"action": "QueryEdgeInstance"}
    assert value(reg, "edge_quota_wait_seconds_count", **q) == 3
    assert value(reg, "edge_limiter_in_flight", **q) == 0
    assert value(reg, "edge_limiter_waiting", **q) == 0
    rate = reg.get_sample_value("edge_limiter_rate", q)
    assert rate is not None and rate < 10  # the adaptive rate dropped below the 10 QPS quota
    assert value(reg, "edge_limiter_redis_fallback") == 0
    assert "LTAIprom" not in generate_latest(reg).decode()  # scopes are summed, never labels


async def test_a_redis_limiter_falling_back_shows_in_its_gauge() -> None:
    pytest.importorskip("redis")
    from aioedge import RedisRateLimiter

    reg = CollectorRegistry()
    limiter = RedisRateLimiter(
        "redis://127.0.0.1:1/0", on_unavailable="local", connect_timeout=0.5, retry_after=60
    )
    hooks = PrometheusHooks(registry=reg, limiters=[limiter])
    assert value(reg, "aioedge_limiter_redis_fallback") == 0
    async with Emulator(access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=KEY, endpoint=emu.endpoint, rate_limit=limiter, hooks=[hooks]
        )
        async with client:
            await client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
    await limiter.aclose()
    assert value(reg, "aioedge_limiter_redis_fallback") == 1
    assert value(reg, "aioedge_calls_total", action="QueryEdgeInstance", outcome="ok") == 1


async def test_a_call_whose_expired_key_cannot_be_renewed_is_counted_once() -> None:
    """Refused as expired, then the refresh fails twice: one retry for each (expired_token,
    then credentials), then the call is counted as an error, once, like any other call."""
    reg = CollectorRegistry()
    hooks = PrometheusHooks(registry=reg, limiters=[])
    await a_call_whose_expired_key_cannot_be_renewed(hooks)
    a = {"action": "QueryEdgeInstance"}
    assert value(reg, "aioedge_calls_total", outcome="ok", **a) == 1
    assert value(reg, "aioedge_calls_total", outcome="error", **a) == 1
    assert value(reg, "aioedge_call_duration_seconds_count", **a) == 2
    assert value(reg, "aioedge_retries_total", reason="expired_token", **a) == 1
    assert value(reg, "aioedge_retries_total", reason="credentials", **a) == 1
