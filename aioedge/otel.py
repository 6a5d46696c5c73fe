"""OpenTelemetry traces and metrics for aioedge (``pip install 'aioedge[otel]'``).

``EdgeClient(hooks=[OpenTelemetryHooks()])`` gives every logical call one CLIENT span named
``Iot.<Action>``, a child of whatever span is current where the call is made (``batch``
and ``paginate`` run their calls in the caller's context, so their spans nest under it)::

    deploy (the application's span)
    ├── Iot.CreateEdgeInstanceDeployment        CLIENT
    └── aioedge.watch_deployment                INTERNAL, one per watch
        ├── Iot.GetEdgeInstanceDeployment       CLIENT, one per poll
        │     events: slot_wait, attempt, throttled, retry, attempt
        └── Iot.GetEdgeInstanceDeployment
              (the watch span's own events: one ``poll`` per poll: changed, event kinds)

Span attributes: ``rpc.system`` ``"alibaba_cloud"``, ``rpc.service`` ``"Iot"``,
``rpc.method`` (the Action), ``cloud.region``, ``alibaba_cloud.request_id`` (the last
answer's), ``http.request.resend_count`` (attempts after the first).  Each attempt is a span
event.  A failed call has status ERROR and ``error.type`` (``aioedge._errors.error_code``:
the service's code, else the error's class name); ``alibaba_cloud.error_code`` when the
service gave a code.  Nothing secret, no signature and no query string is ever recorded.

Metrics (instruments of the meter ``aioedge``): ``rpc.client.call.duration`` (histogram,
seconds, per call), ``aioedge.client.retries`` (counter; ``rpc.method``, ``reason``),
``aioedge.client.throttles`` (counter; ``rpc.method``), ``aioedge.client.quota_slot.wait``
(histogram, seconds; ``rpc.method``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("aioedge.otel needs OpenTelemetry: pip install 'aioedge[otel]'") from exc

from ._errors import ApiError, error_code
from ._hooks import CallInfo, PollInfo, WatchInfo

__all__ = ["OpenTelemetryHooks"]

_SCOPE = "aioedge"
try:
    _VERSION: str | None = version("aioedge")
except PackageNotFoundError:  # pragma: no cover
    _VERSION = None

SYSTEM = "alibaba_cloud"
SERVICE = "Iot"


def _epoch_ns(monotonic: float) -> int:
    """The wall-clock time (ns) of a ``time.monotonic()`` reading in the past."""
    return time.time_ns() - int((time.monotonic() - monotonic) * 1e9)


class OpenTelemetryHooks:
    """Hooks that trace every call as a CLIENT span and record the client's metrics.

    ``tracer_provider`` / ``meter_provider``: the providers to use (None: the global ones
    that ``opentelemetry.trace.set_tracer_provider`` and its metrics twin set).
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self._tracer = trace.get_tracer(_SCOPE, _VERSION, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, _VERSION or "", meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "rpc.client.call.duration",
            unit="s",
            description="Duration of logical calls (all attempts and waits included)",
        )
        self._retries = meter.create_counter(
            "aioedge.client.retries", unit="{retry}", description="Retries scheduled"
        )
        self._throttles = meter.create_counter(
            "aioedge.client.throttles",
            unit="{answer}",
            description="Answers in which the service throttled the call",
        )
        self._slot_wait = meter.create_histogram(
            "aioedge.client.quota_slot.wait",
            unit="s",
            description="Time an attempt waited for its quota slot",
        )
        self._calls: dict[int, Span] = {}
        self._watches: dict[int, Span] = {}

    def __repr__(self) -> str:
        return f"OpenTelemetryHooks(open_calls={len(self._calls)}, watches={len(self._watches)})"

    # -- calls -----------------------------------------------------------------------------

    def _span(self, info: CallInfo) -> Span:
        span = self._calls.get(info.call_id)
        if span is None:
            # Started at the call's start (a quota wait before the first event included),
            # as a child of the span current in the calling task.
            span = self._tracer.start_span(
                f"{SERVICE}.{info.action}",
                kind=SpanKind.CLIENT,
                start_time=_epoch_ns(info.started),
                attributes={
                    "rpc.system": SYSTEM,
                    "rpc.service": SERVICE,
                    "rpc.method": info.action,
                    "cloud.region": info.region_id,
                },
            )
            self._calls[info.call_id] = span
        return span

    def on_slot_wait(self, info: CallInfo) -> None:
        wait = info.wait or 0.0
        self._span(info).add_event(
            "slot_wait", {"attempt": info.attempt, "aioedge.quota_slot.wait": wait}
        )
        self._slot_wait.record(wait, {"rpc.method": info.action})

    def on_request(self, info: CallInfo) -> None:
        self._span(info)

    def on_response(self, info: CallInfo) -> None:
        span = self._span(info)
        event: dict[str, Any] = {"attempt": info.attempt}
        if info.http_status is not None:
            event["http.response.status_code"] = info.http_status
        if info.request_id:
            event["alibaba_cloud.request_id"] = info.request_id
        if info.latency is not None:
            event["aioedge.latency"] = info.latency
        code = info.code
        if code is not None:
            event["error.type"] = code
        if info.outcome == "cancelled":
            event["error.type"] = "cancelled"
        span.add_event("attempt", event)
        if info.request_id:
            span.set_attribute("alibaba_cloud.request_id", info.request_id)
        if not info.final:
            return
        self._calls.pop(info.call_id, None)
        span.set_attribute("http.request.resend_count", info.attempt - 1)
        attrs: dict[str, Any] = {
            "rpc.system": SYSTEM,
            "rpc.service": SERVICE,
            "rpc.method": info.action,
        }
        if info.outcome != "ok":
            error = code if code is not None else info.outcome or "error"
            span.set_attribute("error.type", error)
            if isinstance(info.error, ApiError):  # a code the service gave, not a class name
                span.set_attribute("alibaba_cloud.error_code", info.error.code)
            span.set_status(Status(StatusCode.ERROR, error))
            attrs["error.type"] = error
        self._duration.record(info.elapsed, attrs)
        span.end()

    def on_throttled(self, info: CallInfo) -> None:
        event: dict[str, Any] = {"attempt": info.attempt}
        if info.retry_after is not None:
            event["alibaba_cloud.retry_after"] = info.retry_after
        self._span(info).add_event("throttled", event)
        self._throttles.add(1, {"rpc.method": info.action})

    def on_retry(self, info: CallInfo) -> None:
        self._span(info).add_event(
            "retry",
            {
                "attempt": info.attempt,
                "aioedge.retry.delay": info.delay or 0.0,
                "aioedge.retry.reason": info.reason or "error",
            },
        )
        self._retries.add(1, {"rpc.method": info.action, "reason": info.reason or "error"})

    # -- watches ---------------------------------------------------------------------------

    def on_watch(self, info: WatchInfo) -> None:
        if info.outcome is None:
            self._watches[info.watch_id] = self._tracer.start_span(
                "aioedge.watch_deployment",
                kind=SpanKind.INTERNAL,
                attributes={
                    "rpc.system": SYSTEM,
                    "rpc.service": SERVICE,
                    "aioedge.instance_id": info.instance_id,
                    "aioedge.deployment_id": info.deployment_id,
                },
            )
            return
        span = self._watches.pop(info.watch_id, None)
        if span is None:
            return
        span.set_attribute("aioedge.watch.outcome", info.outcome)
        span.set_attribute("aioedge.watch.polls", info.polls)
        if info.outcome != "succeeded":
            span.set_status(Status(StatusCode.ERROR, info.message or info.outcome))
        span.end()

    @contextlib.contextmanager
    def poll_scope(self, info: WatchInfo) -> Iterator[None]:
        """Make the watch's span current around one poll: its call span becomes a child."""
        span = self._watches.get(info.watch_id)
        if span is None:
            yield
            return
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield

    def on_poll(self, info: PollInfo) -> None:
        span = self._watches.get(info.watch_id)
        if span is None:
            return
        event: dict[str, Any] = {
            "aioedge.poll": info.poll,
            "aioedge.changed": info.changed,
            "aioedge.events": list(info.events),
        }
        if info.error is not None:
            event["error.type"] = error_code(info.error)
        span.add_event("poll", event)
