"""One request through the emulated service, minus the sockets.

:class:`Service` wires the pure parts together in the order the real service applies
them: gateway checks (``_gateway``, then its check for a missing required parameter),
the per-AccessKeyId quota (``_quota``), parameter validation with the client's own
catalog (``aioedge._catalog.validate_params``), then the Action (``_backend``).  It
keeps the records tests inspect: every request with its arrival time and outcome, every
execution, every fault, and per-Action counters.

Before validation, a PageSize / CurrentPage smaller than 1 becomes its documented default
(10 / 1, read from the catalog) for QueryEdgeInstance and QueryEdgeDriver, as
operations.json says the service treats them (the execution record keeps the values as
received).  Other documented defaults (Spec, IsBuiltIn) are the catalog's too
(``_backend.documented_default``).

Parameter errors map from ``ValidationError.rule`` onto the documented codes:

==========================  ===================================================
``required``                HTTP 400 ``Missing<Param>`` (the gateway's answer, before
                            the quota: it does not count against it)
``max_items``               ``iot.common.ParameterSizeLimit``
``format``                  ``iot.common.InvalidFormattedParameter``
anything else               ``iot.common.InvalidParam``
==========================  ===================================================

``iot.common.*`` codes are business answers: HTTP 200 with ``Success: false`` for the
Link IoT Edge Actions, HTTP 400 ``{RequestId, Code, Message}`` for
QueryDeviceProvisioning, whose page documents HttpCode 400 for them.  The business form
of throttling, ``iot.common.HighFrequentDeny``, is answered the same way.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

from .._argtypes import check_positive
from .._catalog import COMMON_PARAMS, OPERATIONS, Operation, validate_params
from .._credentials import Credentials
from .._errors import ValidationError
from ._backend import Backend, BusinessError, Limits, documented_default
from ._faults import FaultPlan, FaultRecord, FaultSpec
from ._fleet import FleetSpec
from ._gateway import SERVICE_UNAVAILABLE, Gateway, Rejection, missing
from ._quota import SlidingWindow

__all__ = [
    "DEFAULT_CREDENTIALS",
    "THROTTLE_STYLES",
    "EmulatorOptions",
    "Execution",
    "ExecutionRecord",
    "Reply",
    "RequestRecord",
    "Service",
]

DEFAULT_CREDENTIALS = Credentials(
    "LTAI5tEmulatorAccessKeyId", "emulator-access-key-secret", source="emulator"
)
THROTTLE_STYLES = ("alternate", "http", "business", "random")
DEFAULT_REGION = "cn-shanghai"
_THROTTLED = Rejection(400, "Throttling.User", "Request was denied due to user flow control.")


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorOptions:
    """Everything ``Emulator(**options)`` accepts (see docs/testing.md)."""

    host: str = "127.0.0.1"
    port: int = 0
    credentials: Credentials = DEFAULT_CREDENTIALS
    access_keys: tuple[Credentials, ...] = ()
    region_id: str | None = None  # None: any RegionId is accepted
    quotas: bool = True
    quota_scale: float = 1.0
    throttle_style: str = "alternate"
    speed: float = 1.0
    stage_seconds: float = 2.0
    faults: tuple[FaultSpec, ...] = ()
    seed: int = 0
    clock: Callable[[], float] | None = None
    quota_clock: Callable[[], float] | None = None
    strict_devices: bool = False
    timestamp_tolerance: float = 900.0
    limits: Limits = field(default_factory=Limits)
    max_records: int = 100_000
    # A fleet to rehearse rollouts on (``_fleet``): instances, gateways each, failing share.
    fleet: int = 0
    fleet_gateways: int = 1
    fail_rate: float = 0.0
    token_lifetime: float = 3600.0
    imds_v1: bool = True
    imds_v2: bool = True
    ecs_role_name: str = "EcsRamRole"
    # Send x-acs-retry-after (ms until the quota window frees a place) with throttled answers.
    retry_after_hint: bool = True

    def __post_init__(self) -> None:
        FleetSpec(size=self.fleet, gateways=self.fleet_gateways, fail_rate=self.fail_rate)
        for name in ("speed", "quota_scale", "token_lifetime"):  # a ValueError, NaN included
            check_positive(getattr(self, name), param=name)
        if self.throttle_style not in THROTTLE_STYLES:
            raise ValueError(
                f"throttle_style must be one of {', '.join(THROTTLE_STYLES)}, "
                f"got {self.throttle_style!r}"
            )

    @property
    def stage_ms(self) -> int:
        return max(1, round(self.stage_seconds * 1000 / self.speed))

    def quota_for(self, op: Operation) -> int:
        return max(1, int(op.qps * self.quota_scale))


class Execution(NamedTuple):
    """What ran: the Action, the business parameters as received, the request's nonce."""

    action: str
    params: dict[str, str]
    nonce: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionRecord:
    action: str
    params: dict[str, str]
    nonce: str
    request_id: str
    access_key_id: str
    time_ms: int
    code: str  # "Success" / "success", or the business error code

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One request as the service saw it.

    ``outcome``: ``fault`` (a fault struck before execution), ``rejected`` (the gateway
    refused it, a missing required parameter included), ``throttled``, ``invalid`` (a
    parameter error) or ``executed``.
    ``arrival`` is the quota clock when the quota was consulted (or when the request
    arrived, for those that never got that far); ``invalid`` and ``executed`` requests
    are the ones the quota accepted.
    """

    action: str
    access_key_id: str | None
    arrival: float
    outcome: str
    nonce: str | None
    request_id: str

    @property
    def quota_accepted(self) -> bool:
        return self.outcome in ("invalid", "executed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    request_id: str
    executed: bool
    # x-acs-retry-after (milliseconds), sent with a throttled answer.
    retry_after_ms: int | None = None


_COUNTERS = (
    "requests",
    "faults",
    "rejected",
    "throttled",
    "invalid",
    "executed",
    "succeeded",
    "failed",
)


# operations.json "constraints": for these two Actions the service takes a PageSize or
# CurrentPage smaller than 1 as its default (the catalog's: 10 and 1) instead of refusing
# it.  The client's catalog keeps min 1 (it refuses such values before any I/O), so the
# service side maps them first.  The other paged Actions document 1 to 30 and refuse them.
_BELOW_ONE = frozenset({"QueryEdgeInstance", "QueryEdgeDriver"})
_PAGING = ("PageSize", "CurrentPage")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _missing_param(op: Operation, business: Mapping[str, str]) -> str | None:
    """The first required parameter (without a default) absent from ``business``, or None.

    A list ``X`` is present when some ``X.N`` (or ``X.N.Field``) key has a value.  Checked
    before any other rule, as the gateway does, so an unknown parameter next to a missing
    one still gets ``Missing<Param>``."""
    for p in op.params:
        if not p.required or p.default is not None:
            continue
        prefix = p.name + "."
        if not any(v and (k == p.name or k.startswith(prefix)) for k, v in business.items()):
            return p.name
    return None


def _below_one(action: str, business: dict[str, str]) -> dict[str, str]:
    """``business`` with a PageSize / CurrentPage below 1 replaced by its default where the
    doc says so."""
    if action not in _BELOW_ONE:
        return business
    out = dict(business)
    for name in _PAGING:
        value = out.get(name)
        if value is not None and _INTEGER.fullmatch(value) and int(value) < 1:
            out[name] = str(documented_default(action, name))
    return out


class Service:
    """The emulated service's state, checks and records."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.clock: Callable[[], float] = options.clock or time.time
        self.quota_clock: Callable[[], float] = options.quota_clock or time.monotonic
        # RegionId None accepts any region; answers then speak for the default one.
        region_id = options.region_id or DEFAULT_REGION
        keys = {c.access_key_id: c for c in (options.credentials, *options.access_keys)}
        self.gateway = Gateway(
            keys, tolerance=options.timestamp_tolerance, region_id=options.region_id
        )
        self.window = SlidingWindow(1.0)
        self.faults = FaultPlan(options.faults, seed=options.seed)
        self.backend = Backend(
            seed=options.seed,
            stage_ms=options.stage_ms,
            strict_devices=options.strict_devices,
            limits=options.limits,
            region_id=region_id,
            fleet=FleetSpec(
                size=options.fleet, gateways=options.fleet_gateways, fail_rate=options.fail_rate
            ),
        )
        self._limits = {a: options.quota_for(op) for a, op in OPERATIONS.items()}
        self._host_id = f"iot.{region_id}.aliyuncs.com"
        self.reset()

    def reset(self) -> None:
        """Forget resources, records, counters, nonces and quota windows (keep options)."""
        cap = self.options.max_records
        self.backend.reset()
        self.gateway.nonces.clear()
        self.window.clear()
        self.faults.configure(self.faults.specs)
        self.requests: deque[RequestRecord] = deque(maxlen=cap)
        self.executions: deque[ExecutionRecord] = deque(maxlen=cap)
        self.fault_log: deque[FaultRecord] = deque(maxlen=cap)
        self.counters: dict[str, dict[str, int]] = {}
        self._throttle_rng = random.Random(self.options.seed)
        self._throttles = 0
        self.oss: dict[str, bytes] = {}
        # API requests being handled right now, and the most there ever were at once.
        self.in_flight = 0
        self.peak_in_flight = 0

    # ----------------------------------------------------------------- records

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def count(self, action: str, counter: str) -> None:
        per = self.counters.get(action)
        if per is None:
            per = self.counters[action] = dict.fromkeys(_COUNTERS, 0)
        per[counter] += 1

    def stats(self) -> dict[str, dict[str, int]]:
        return {action: dict(c) for action, c in sorted(self.counters.items())}

    def record_fault(
        self, action: str, kind: str, params: Mapping[str, str], *, executed: bool, request_id: str
    ) -> None:
        self.count(action, "faults")
        self.fault_log.append(
            FaultRecord(
                action=action,
                kind=kind,
                nonce=params.get("SignatureNonce"),
                executed=executed,
                time=self.clock(),
                request_id=request_id,
            )
        )
        if not executed and kind != "delay":  # a delayed request goes on to its own outcome
            self.requests.append(
                RequestRecord(
                    action=action,
                    access_key_id=params.get("AccessKeyId"),
                    arrival=self.quota_clock(),
                    outcome="fault",
                    nonce=params.get("SignatureNonce"),
                    request_id=request_id,
                )
            )

    # ----------------------------------------------------------------- answers

    def _error(self, rid: str, rejection: Rejection) -> Reply:
        # 4xx/5xx bodies are {RequestId, HostId, Code, Message} (ERRATA: Responses).
        return Reply(rejection.http_status, rejection.body(rid, self._host_id), rid, False)

    def _business(self, op: Operation, rid: str, code: str, message: str, executed: bool) -> Reply:
        if op.product == "iot":
            return Reply(400, {"RequestId": rid, "Code": code, "Message": message}, rid, executed)
        body = {"RequestId": rid, "Success": False, "Code": code, "ErrorMessage": message}
        return Reply(200, body, rid, executed)

    def unavailable(self, rid: str) -> Reply:
        return self._error(rid, SERVICE_UNAVAILABLE)

    def _throttle(self, op: Operation, rid: str) -> Reply:
        style = self.options.throttle_style
        if style == "alternate":
            use_http = self._throttles % 2 == 0
        elif style == "random":
            use_http = self._throttle_rng.random() < 0.5
        else:
            use_http = style == "http"
        self._throttles += 1
        if use_http:
            return self._error(rid, _THROTTLED)
        # A business code like any other iot.common.*: in the operation's own error shape.
        return self._business(
            op,
            rid,
            "iot.common.HighFrequentDeny",
            "You have made the request too many times. Try again later.",
            False,
        )

    # ----------------------------------------------------------------- the request

    def process(self, method: str, params: Mapping[str, str]) -> Reply:
        """Gateway, quota, validation, execution: the answer to one request."""
        rid = self.backend.request_id()
        action = params.get("Action", "")
        key_id = params.get("AccessKeyId")
        nonce = params.get("SignatureNonce")
        rejection = self.gateway.check(method, params, self.clock())
        if rejection is not None:
            self._record(action, key_id, self.quota_clock(), "rejected", nonce, rid)
            return self._error(rid, rejection)
        assert key_id is not None and nonce is not None  # the gateway requires them
        op = OPERATIONS[action]
        business = {k: v for k, v in params.items() if k not in COMMON_PARAMS}
        # The gateway refuses a request that misses a required parameter before the quota
        # (it does not count against it); other parameter errors are the service's.
        absent = _missing_param(op, business)
        invalid: ValidationError | None = None
        wire: dict[str, str] = {}
        if absent is None:
            try:
                wire = validate_params(op, _below_one(action, business))
            except ValidationError as exc:
                if exc.rule == "required":  # an empty value, a list item without a field
                    absent = exc.param or "parameter"
                else:
                    invalid = exc
        if absent is not None:
            self._record(action, key_id, self.quota_clock(), "rejected", nonce, rid)
            return self._error(rid, missing(absent))
        # 2.2 quotas: the arrival time is read and recorded with no await in between, so
        # the window sees arrivals in order.
        arrival = self.quota_clock()
        if self.options.quotas and not self.window.try_acquire(
            key_id, action, self._limits[action], arrival
        ):
            self._record(action, key_id, arrival, "throttled", nonce, rid)
            reply = self._throttle(op, rid)
            if self.options.retry_after_hint:
                free_in = self.window.free_in(key_id, action, arrival)
                # At least 1 ms: the header says "later", never "now".
                reply = replace(reply, retry_after_ms=max(1, math.ceil(free_in * 1000)))
            return reply
        if invalid is not None:
            self._record(action, key_id, arrival, "invalid", nonce, rid)
            return self._invalid(op, rid, invalid)
        now_ms = self.now_ms()
        self._record(action, key_id, arrival, "executed", nonce, rid)
        try:
            result = self.backend.execute(action, wire, now_ms)
        except BusinessError as exc:
            self.count(action, "failed")
            self._executed(op, business, nonce, rid, key_id, now_ms, exc.code)
            return self._business(op, rid, exc.code, exc.message, True)
        self.count(action, "succeeded")
        self._executed(op, business, nonce, rid, key_id, now_ms, op.success_code)
        body = {"RequestId": rid, **result, "Code": op.success_code, "Success": True}
        return Reply(200, body, rid, True)

    def _invalid(self, op: Operation, rid: str, exc: ValidationError) -> Reply:
        if exc.rule == "max_items":
            code = "iot.common.ParameterSizeLimit"
        elif exc.rule == "format":
            code = "iot.common.InvalidFormattedParameter"
        else:
            code = "iot.common.InvalidParam"
        return self._business(op, rid, code, exc.message, False)

    def _record(
        self,
        action: str,
        key_id: str | None,
        arrival: float,
        outcome: str,
        nonce: str | None,
        rid: str,
    ) -> None:
        """Count a request's outcome and keep its record."""
        self.count(action, outcome)
        self.requests.append(
            RequestRecord(
                action=action,
                access_key_id=key_id,
                arrival=arrival,
                outcome=outcome,
                nonce=nonce,
                request_id=rid,
            )
        )

    def _executed(
        self,
        op: Operation,
        business: dict[str, str],
        nonce: str,
        rid: str,
        key_id: str,
        now_ms: int,
        code: str,
    ) -> None:
        self.executions.append(
            ExecutionRecord(
                action=op.action,
                params=business,
                nonce=nonce,
                request_id=rid,
                access_key_id=key_id,
                time_ms=now_ms,
                code=code,
            )
        )
