"""Prometheus metrics for aioedge (``pip install 'aioedge[prometheus]'``).

``EdgeClient(hooks=[PrometheusHooks()])`` counts into ``prometheus_client``'s default
registry (or the ``registry`` given), all names under ``namespace`` (``aioedge``):

====================================  =========  ==========================================
``aioedge_calls_total``               counter    ``action``, ``outcome`` (ok/error/cancelled)
``aioedge_call_duration_seconds``     histogram  ``action``: whole calls, waits and retries in
``aioedge_retries_total``             counter    ``action``, ``reason`` (throttled,
                                                 unavailable, invalid_response,
                                                 transport, credentials,
                                                 expired_token, clock_skew, error)
``aioedge_throttled_total``           counter    ``action``: throttled answers
``aioedge_quota_wait_seconds``        histogram  ``action``: waits for a quota slot
``aioedge_limiter_in_flight``         gauge      ``action``: requests holding a slot
``aioedge_limiter_waiting``           gauge      ``action``: calls queued for a slot
``aioedge_limiter_rate``              gauge      ``action``: the adaptive rate (QPS), below
                                                 the quota while recovering from throttling
``aioedge_limiter_redis_fallback``    gauge      1 while a Redis limiter counts locally
====================================  =========  ==========================================

The limiter gauges are read when Prometheus scrapes: of the process-wide default limiter,
or of the limiters given as ``limiters=`` (a ``RedisRateLimiter``'s shared counts live in
Redis: its gauges show what this process counts while it falls back).  Labels are Action
names and short outcome words: never an id, a key or a parameter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "aioedge.prometheus needs prometheus_client: pip install 'aioedge[prometheus]'"
    ) from exc

from . import _ratelimit
from ._hooks import CallInfo

__all__ = ["PrometheusHooks"]

#: Buckets for whole calls and quota waits: a free slot is ~0, a full 1-second window
#: about 1 s, a throttled retry several seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PrometheusHooks:
    """Hooks that count calls, durations, retries, throttles and quota waits.

    ``registry``: a ``prometheus_client.CollectorRegistry`` (None: the default one; one
    ``PrometheusHooks`` per registry and namespace, shared by every client).  ``limiters``:
    the limiters whose state to expose as gauges (None: the process-wide default limiter,
    the one ``rate_limit=True`` uses).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "aioedge",
        *,
        limiters: Iterable[Any] | None = None,
    ) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.namespace = namespace
        counter = partial(Counter, namespace=namespace, registry=reg)
        histogram = partial(Histogram, namespace=namespace, registry=reg, buckets=BUCKETS)
        self.calls = counter("calls", "Logical calls by outcome", ["action", "outcome"])
        self.duration = histogram("call_duration_seconds", "Duration of logical calls", ["action"])
        self.retries = counter("retries", "Retries scheduled", ["action", "reason"])
        self.throttled = counter("throttled", "Throttled answers", ["action"])
        self.quota_wait = histogram("quota_wait_seconds", "Waits for a quota slot", ["action"])
        self._limiters = None if limiters is None else tuple(limiters)
        reg.register(_LimiterCollector(self))

    def __repr__(self) -> str:
        return f"PrometheusHooks(namespace={self.namespace!r})"

    def limiters(self) -> tuple[Any, ...]:
        if self._limiters is not None:
            return self._limiters
        # Read, never create: a process that has not used the default limiter has none.
        default = _ratelimit._default
        return () if default is None else (default,)

    # -- hooks
    def on_response(self, info: CallInfo) -> None:
        if not info.final:
            return
        self.calls.labels(info.action, info.outcome or "error").inc()
        self.duration.labels(info.action).observe(info.elapsed)

    def on_retry(self, info: CallInfo) -> None:
        self.retries.labels(info.action, info.reason or "error").inc()

    def on_throttled(self, info: CallInfo) -> None:
        self.throttled.labels(info.action).inc()

    def on_slot_wait(self, info: CallInfo) -> None:
        self.quota_wait.labels(info.action).observe(info.wait or 0.0)


class _LimiterCollector(Collector):
    """The limiters' state, read at scrape time (summed over scopes: no key ids in labels)."""

    def __init__(self, hooks: PrometheusHooks) -> None:
        self._hooks = hooks

    def describe(self) -> list[Any]:
        return []  # read at scrape time; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ns = self._hooks.namespace
        in_flight = GaugeMetricFamily(
            f"{ns}_limiter_in_flight", "Requests holding a quota slot", labels=["action"]
        )
        waiting = GaugeMetricFamily(
            f"{ns}_limiter_waiting", "Calls waiting for a quota slot", labels=["action"]
        )
        rate = GaugeMetricFamily(
            f"{ns}_limiter_rate", "Adaptive rate (requests per second)", labels=["action"]
        )
        fallback = GaugeMetricFamily(
            f"{ns}_limiter_redis_fallback",
            "1 while a Redis limiter is unreachable and this process counts on its own",
        )
        flights: dict[str, int] = defaultdict(int)
        waits: dict[str, int] = defaultdict(int)
        rates: dict[str, float] = {}
        degraded = 0
        for limiter in self._hooks.limiters():
            if getattr(limiter, "degraded", False):
                degraded = 1
            lanes = getattr(limiter, "lanes", None)
            for lane in lanes() if callable(lanes) else ():
                flights[lane.action] += lane.in_flight
                waits[lane.action] += lane.waiting
                # The lowest rate of the Action's scopes: the one that slows calls down.
                rates[lane.action] = min(rates.get(lane.action, lane.rate), lane.rate)
        for action in sorted(flights):
            in_flight.add_metric([action], flights[action])
            waiting.add_metric([action], waits[action])
            rate.add_metric([action], rates[action])
        fallback.add_metric([], degraded)
        yield in_flight
        yield waiting
        yield rate
        yield fallback
