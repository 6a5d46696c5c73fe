"""OpenTelemetryHooks with the real OpenTelemetry SDK (in-memory exporter and metric reader)
against the emulator: a batch with throttles and retries, a failing call, a watch."""

from __future__ import annotations

import importlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

# CI installs the extra (test/dev): there a missing package fails instead of skipping.
if os.environ.get("CI"):
    importlib.import_module("opentelemetry.sdk")
else:
    pytest.importorskip("opentelemetry.sdk", reason="pip install 'aioedge[otel]'")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aioedge import (
    Credentials,
    CredentialsError,
    EdgeClient,
    NotFoundError,
    RetryPolicy,
    TransportError,
)
from aioedge._retry import set_testing
from aioedge.otel import OpenTelemetryHooks
from aioedge.testing import Emulator, FakeClock
from aioedge.watch import DeploymentMonitor

from .support import a_call_whose_expired_key_cannot_be_renewed, started_deployment
from .test_client_emulator import SteppingClock
from .test_watch_emulator import Env, on_fake_clock

SECRET = "otel-secret-value-00000000"
KEY = Credentials("LTAIotel", SECRET)
ZERO = RetryPolicy(
    max_attempts=8, base_delay=0.0, max_delay=0.0, throttle_base_delay=0.0, throttle_min_delay=0.0
)


class Otel:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OpenTelemetryHooks(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )
        self.tracer = self.tracer_provider.get_tracer("test")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name in (None, s.name)]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


def assert_no_secrets(otel: Otel) -> None:
    """Nothing secret, no signature and no query string in any attribute or event."""
    dump = []
    for span in otel.spans():
        dump.append(json.dumps(dict(span.attributes or {}), default=str))
        for event in span.events:
            dump.append(json.dumps(dict(event.attributes or {}), default=str))
        dump.append(str(span.status.description))
    data = otel.reader.get_metrics_data()
    dump.append(data.to_json() if data else "")
    text = "\n".join(dump)
    assert SECRET not in text
    for word in ("Signature", "SecurityToken", "AccessKeyId", "LTAIotel", "?", "&"):
        assert word not in text, word


def _watched(otel: Otel) -> AbstractAsyncContextManager[Env]:
    """The emulator and a client on one fake clock (deployment stages of 1 s), the client
    signing with ``KEY`` and telling ``otel``'s hooks."""
    return on_fake_clock(
        FakeClock(),
        stage_seconds=1.0,
        access_keys=[KEY],
        client={"credentials": KEY, "hooks": [otel.hooks]},
    )


async def test_a_batch_with_throttles_and_retries_and_a_failing_call(otel: Otel) -> None:
    stepping = SteppingClock(0.25)  # 1 QPS below: 3 of every 4 arrivals of an Action throttled
    async with Emulator(quota_scale=0.1, quota_clock=stepping, access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=KEY,
            endpoint=emu.endpoint,
            region_id="cn-hangzhou",
            rate_limit=False,
            retry=ZERO,
            hooks=[otel.hooks],
        )
        with set_testing(True):  # the emulator's retry-after hints are not waited for
            async with client:
                created = await client.call("CreateEdgeInstance", {"Name": "traced"})
                calls = [("GetEdgeInstance", {"InstanceId": created["InstanceId"]})] * 4
                with otel.tracer.start_as_current_span("parent") as parent:
                    results = await client.batch(calls, concurrency=2)
                    with pytest.raises(NotFoundError) as missing:
                        await client.call("GetEdgeInstance", {"InstanceId": "F3APnothing"})
    assert all(r.ok for r in results)
    gets = [r for r in emu.requests if r.action == "GetEdgeInstance"]
    throttled = sum(r.outcome == "throttled" for r in gets)
    assert throttled >= 3  # 5 calls at 1 QPS

    spans = otel.spans("Iot.GetEdgeInstance")
    assert len(spans) == 5
    parent_id = parent.get_span_context().span_id
    assert all(s.parent is not None and s.parent.span_id == parent_id for s in spans)
    assert all(s.kind is SpanKind.CLIENT for s in spans)
    for span in spans:
        attrs = dict(span.attributes or {})
        assert attrs["rpc.system"] == "alibaba_cloud"
        assert attrs["rpc.service"] == "Iot"
        assert attrs["rpc.method"] == "GetEdgeInstance"
        assert attrs["cloud.region"] == "cn-hangzhou"
        attempts = [e for e in span.events if e.name == "attempt"]
        assert attrs["http.request.resend_count"] == len(attempts) - 1
        assert [e.attributes["attempt"] for e in attempts] == list(range(1, len(attempts) + 1))
        retries = [e for e in span.events if e.name == "retry"]
        assert len(retries) == len(attempts) - 1
        assert [e.attributes["aioedge.retry.reason"] for e in retries] == ["throttled"] * len(
            retries
        )
        assert (
            attrs["alibaba_cloud.request_id"] == attempts[-1].attributes["alibaba_cloud.request_id"]
        )
    # Every request the emulator saw is an attempt event, every throttle a throttled event.
    assert sum(len([e for e in s.events if e.name == "attempt"]) for s in spans) == len(gets)
    assert sum(len([e for e in s.events if e.name == "throttled"]) for s in spans) == throttled
    ok = [s for s in spans if s.status.status_code is not StatusCode.ERROR]
    assert len(ok) == 4
    (failed,) = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    code = missing.value.code
    assert failed.attributes["error.type"] == code
    assert failed.attributes["alibaba_cloud.error_code"] == code
    assert failed.attributes["alibaba_cloud.request_id"] == missing.value.request_id
    assert failed.status.description == code

    # Metrics: one duration point set per method, counters that match the emulator's records.
    durations = otel.points("rpc.client.call.duration")
    get_points = [p for p in durations if p.attributes["rpc.method"] == "GetEdgeInstance"]
    assert sum(p.count for p in get_points) == 5
    assert {p.attributes.get("error.type") for p in get_points} == {None, code}
    retries_total = sum(p.value for p in otel.points("aioedge.client.retries"))
    throttles_total = sum(p.value for p in otel.points("aioedge.client.throttles"))
    assert retries_total == throttles_total == throttled
    assert_no_secrets(otel)


async def test_quota_slot_waits_are_recorded(otel: Otel) -> None:
    async with Emulator(access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=KEY, endpoint=emu.endpoint, hooks=[otel.hooks], quota_scope="otel-wait"
        )
        async with client:
            await client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
    (span,) = otel.spans("Iot.QueryEdgeInstance")
    assert [e.name for e in span.events] == ["slot_wait", "attempt"]
    (point,) = otel.points("aioedge.client.quota_slot.wait")
    assert point.count == 1 and point.attributes == {"rpc.method": "QueryEdgeInstance"}


async def test_a_watch_is_one_span_with_a_call_span_per_poll(otel: Otel) -> None:
    async with _watched(otel) as env:
        inst, dep = await started_deployment(env.client, "watched")
        with otel.tracer.start_as_current_span("deploy") as root:
            watcher = env.client.watch_deployment(
                inst,
                dep,
                poll_interval=0.5,
                max_poll_interval=1.0,
                clock=env.clock,
                sleep=env.sleep,
                wall_clock=env.clock,
            )
            events = [e async for e in watcher]
    assert events[-1].outcome == "succeeded"
    (watch,) = otel.spans("aioedge.watch_deployment")
    assert watch.parent is not None and watch.parent.span_id == root.get_span_context().span_id
    assert watch.attributes["aioedge.deployment_id"] == dep
    assert watch.attributes["aioedge.watch.outcome"] == "succeeded"
    assert watch.attributes["aioedge.watch.polls"] == watcher.polls
    assert watch.status.status_code is not StatusCode.ERROR
    polls = otel.spans("Iot.GetEdgeInstanceDeployment")
    assert len(polls) == watcher.polls > 1
    wid = watch.get_span_context().span_id
    assert all(p.parent is not None and p.parent.span_id == wid for p in polls)
    poll_events = [e for e in watch.events if e.name == "poll"]
    assert len(poll_events) == watcher.polls
    assert sum(len(e.attributes["aioedge.events"]) for e in poll_events) == len(events)
    # The calls made outside the watch are not its children.
    (create,) = otel.spans("Iot.CreateEdgeInstanceDeployment")
    assert create.parent is None
    assert_no_secrets(otel)


async def test_a_monitor_draws_one_watch_span_per_deployment_with_its_polls_under_it(
    otel: Otel,
) -> None:
    """As a single watcher does: each deployment a monitor follows is one watch span (its
    outcome, its poll count), the parent of that deployment's poll call spans alone."""
    async with _watched(otel) as env:
        good = await started_deployment(env.client, "fine")
        env.emu.fail_deployment_at(stage=8, gateway_id="gw2")
        bad = await started_deployment(env.client, "broken", "gw2")
        with otel.tracer.start_as_current_span("fleet") as root:
            async with DeploymentMonitor(
                env.client,
                pollers=2,
                poll_interval=0.5,
                max_poll_interval=1.0,
                clock=env.clock,
                sleep=env.sleep,
                wall_clock=env.clock,
            ) as monitor:
                monitor.add(*good)
                monitor.add(*bad)
                events = [e async for e in monitor]
    assert monitor.outcomes() == {good: "succeeded", bad: "failed"}
    finals = {e.deployment_id: e for e in events if e.kind == "final"}
    watches = {
        s.attributes["aioedge.deployment_id"]: s
        for s in otel.spans("aioedge.watch_deployment")
        if s.attributes is not None
    }
    assert set(watches) == {good[1], bad[1]}
    polls = otel.spans("Iot.GetEdgeInstanceDeployment")
    per_deployment = monitor.polls_per_deployment()
    for (inst, dep), outcome in monitor.outcomes().items():
        watch = watches[dep]
        assert watch.kind is SpanKind.INTERNAL
        assert watch.parent is not None and watch.parent.span_id == root.get_span_context().span_id
        assert watch.attributes is not None
        assert watch.attributes["aioedge.instance_id"] == inst
        assert watch.attributes["aioedge.watch.outcome"] == outcome
        assert watch.attributes["aioedge.watch.polls"] == per_deployment[(inst, dep)] > 1
        wid = watch.get_span_context().span_id
        children = [p for p in polls if p.parent is not None and p.parent.span_id == wid]
        assert len(children) == per_deployment[(inst, dep)]
        poll_events = [e for e in watch.events if e.name == "poll"]
        assert len(poll_events) == per_deployment[(inst, dep)]
        told = sum(len(e.attributes["aioedge.events"]) for e in poll_events if e.attributes)
        assert told == sum(e.deployment_id == dep for e in events)
    assert len(polls) == sum(per_deployment.values())  # every poll under one watch
    assert watches[good[1]].status.status_code is not StatusCode.ERROR
    assert watches[bad[1]].status.status_code is StatusCode.ERROR
    assert watches[bad[1]].status.description == finals[bad[1]].message
    assert_no_secrets(otel)


async def test_a_monitor_closed_early_ends_its_open_watch_spans_as_cancelled(
    otel: Otel,
) -> None:
    async with _watched(otel) as env:
        pair = await started_deployment(env.client, "left")
        async with DeploymentMonitor(
            env.client, poll_interval=0.5, clock=env.clock, sleep=env.sleep, wall_clock=env.clock
        ) as monitor:
            monitor.add(*pair)
            async for event in monitor:
                if event.kind != "final":
                    break
    (watch,) = otel.spans("aioedge.watch_deployment")
    assert watch.attributes is not None
    assert watch.attributes["aioedge.watch.outcome"] == "cancelled"
    assert watch.status.status_code is StatusCode.ERROR
    assert watch.attributes["aioedge.watch.polls"] == monitor.polls_per_deployment()[pair]


async def test_a_poll_that_failed_without_a_service_code_names_the_error(otel: Otel) -> None:
    # A CredentialsError's own code is the identity service's and may be None: the poll
    # event still carries error.type, the class name, as a final event's error does.
    class Failing:
        away = False

        async def get_credentials(self) -> Credentials:
            if self.away:
                raise CredentialsError("the key store is away")
            return KEY

    keys = Failing()
    async with Emulator(quotas=False, access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=keys,
            endpoint=emu.endpoint,
            rate_limit=False,
            retry=None,
            hooks=[otel.hooks],
        )
        async with client:
            inst, dep = await started_deployment(client, "keyless")
            keys.away = True
            with pytest.raises(CredentialsError):
                async for _ in client.watch_deployment(inst, dep):
                    pass
    (watch,) = otel.spans("aioedge.watch_deployment")
    (poll,) = [e for e in watch.events if e.name == "poll"]
    assert poll.attributes is not None
    assert poll.attributes["error.type"] == "CredentialsError"


async def test_a_call_that_never_reached_the_service_has_no_service_code(otel: Otel) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = EdgeClient(
        credentials=KEY,
        endpoint=f"http://127.0.0.1:{port}",
        rate_limit=False,
        retry=None,
        hooks=[otel.hooks],
    )
    async with client:
        with pytest.raises(TransportError):
            await client.call("QueryEdgeInstance", {"PageSize": 10, "CurrentPage": 1})
    (span,) = otel.spans("Iot.QueryEdgeInstance")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "TransportError"
    assert "alibaba_cloud.error_code" not in span.attributes  # a class name is not its code


async def test_a_stalled_watch_span_has_error_status(otel: Otel) -> None:
    async with _watched(otel) as env:
        env.emu.stall_deployment_at(stage=8)
        inst, dep = await started_deployment(env.client, "stuck")
        watcher = env.client.watch_deployment(
            inst, dep, progress_timeout=3, clock=env.clock, sleep=env.sleep, wall_clock=env.clock
        )
        events = [e async for e in watcher]
    assert events[-1].outcome == "stalled"
    (watch,) = otel.spans("aioedge.watch_deployment")
    assert watch.status.status_code is StatusCode.ERROR
    assert watch.attributes["aioedge.watch.outcome"] == "stalled"
    assert "last change" in (watch.status.description or "")


async def test_paginate_spans_are_children_of_the_callers_span(otel: Otel) -> None:
    async with Emulator(quotas=False, access_keys=[KEY]) as emu:
        client = EdgeClient(
            credentials=KEY, endpoint=emu.endpoint, rate_limit=False, hooks=[otel.hooks]
        )
        async with client:
            for i in range(5):
                await client.call("CreateEdgeInstance", {"Name": f"paged{i}"})
            with otel.tracer.start_as_current_span("listing") as parent:
                items = [
                    item async for item in client.paginate("QueryEdgeInstance", {"PageSize": 2})
                ]
    assert len(items) == 5
    pages = otel.spans("Iot.QueryEdgeInstance")
    assert len(pages) == 3  # 2 + 2 + 1
    pid = parent.get_span_context().span_id
    assert all(p.parent is not None and p.parent.span_id == pid for p in pages)
    creates = otel.spans("Iot.CreateEdgeInstance")
    assert len(creates) == 5 and all(c.parent is None for c in creates)


async def test_a_call_whose_expired_key_cannot_be_renewed_ends_its_span(otel: Otel) -> None:
    """Refused as expired, then the refresh fails twice: the call still ends (status ERROR,
    the refresh's error as error.type), once, its retries counted under expired_token and
    credentials."""
    await a_call_whose_expired_key_cannot_be_renewed(otel.hooks)
    ok, failed = otel.spans("Iot.QueryEdgeInstance")
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "CredentialsError"
    assert failed.attributes["http.request.resend_count"] == 2
    assert [e.name for e in failed.events] == ["attempt", "retry", "attempt", "retry", "attempt"]
    assert failed.events[0].attributes is not None
    assert failed.events[0].attributes["error.type"] == "InvalidSecurityToken.Expired"
    assert otel.hooks._calls == {}  # nothing left open
    retries = {p.attributes["reason"]: p.value for p in otel.points("aioedge.client.retries")}
    assert retries == {"expired_token": 1, "credentials": 1}
    errors = [
        p
        for p in otel.points("rpc.client.call.duration")
        if p.attributes.get("error.type") == "CredentialsError"
    ]
    assert len(errors) == 1 and errors[0].count == 1
