"""The aiohttp application: sockets in, :class:`Service` decisions, sockets out.

``/`` answers the RPC API (GET query strings and POST form bodies; the official SDKs
POST with the parameters in the query string, so both are merged).  Faults that concern
the connection itself (a reset, a held-back answer, a truncated body, a lost response)
happen here; whether to inject them is decided by ``_faults``.  ``/_emulator/...`` are unsigned
inspection endpoints for tests that run the emulator in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from aiohttp import web

from .._log import get_logger
from ._backend import UnknownDeployment
from ._deploy import Failure
from ._faults import FaultSpec, check_fault_actions, normalize_faults
from ._service import Reply, Service

__all__ = ["build_app", "dumps", "read_params", "respond"]

_SERVICE_KEY = web.AppKey("service", Service)


def dumps(body: Any) -> bytes:
    """A JSON answer's bytes, as the service writes them (compact, UTF-8)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def respond(
    clock: Callable[[], float],
    status: int,
    body: bytes,
    request_id: str | None = None,
    retry_after_ms: int | None = None,
    *,
    content_type: str = "application/json",
) -> web.Response:
    """One answer of the emulated services (the API, its STS, ECS metadata, the
    credentials URI): ``Date`` from the emulator's clock, ``x-acs-request-id`` when the
    answer has one, ``x-acs-retry-after`` when given."""
    # The service's own clock: a client corrects its clock skew from this header.
    headers = {"Date": formatdate(clock(), usegmt=True)}
    if request_id:
        headers["x-acs-request-id"] = request_id
    if retry_after_ms is not None:
        headers["x-acs-retry-after"] = str(retry_after_ms)
    return web.Response(
        body=body, status=status, headers=headers, content_type=content_type, charset="utf-8"
    )


def _response(
    service: Service,
    status: int,
    body: bytes,
    request_id: str | None,
    retry_after_ms: int | None = None,
) -> web.Response:
    return respond(service.clock, status, body, request_id, retry_after_ms)


def _reset_connection(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashed peer would."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)  # never reaches the wire: the transport is gone


async def read_params(request: web.Request) -> dict[str, str]:
    """The request's parameters: its query string, then its form body over it."""
    params = dict(request.query)
    if request.method == "POST" and request.body_exists:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
    return params


async def _api(request: web.Request) -> web.StreamResponse:
    service = request.app[_SERVICE_KEY]
    service.in_flight += 1
    service.peak_in_flight = max(service.peak_in_flight, service.in_flight)
    try:
        return await _handle_api(request, service)
    finally:
        service.in_flight -= 1


async def _handle_api(request: web.Request, service: Service) -> web.StreamResponse:
    params = await read_params(request)
    action = params.get("Action", "")
    service.count(action, "requests")
    delay: FaultSpec | None = None
    if service.faults.active:
        fault = service.faults.pick(action, "pre")
        if fault is not None and fault.kind == "delay":
            delay = fault
        elif fault is not None:
            rid = service.backend.request_id()
            get_logger().debug("aioedge.emulator_fault", action=action, kind=fault.kind)
            service.record_fault(action, fault.kind, params, executed=False, request_id=rid)
            if fault.kind == "unavailable":
                reply = service.unavailable(rid)
                return _response(service, reply.status, dumps(reply.body), rid)
            return _reset_connection(request)  # reset
    reply = service.process(request.method, params)
    if delay is not None:
        # The request has had its outcome (executed, throttled, refused...): only its
        # answer is held back.  A client that gives up meanwhile closes the connection,
        # which cancels this handler (handler_cancellation): nothing is sent.
        get_logger().debug("aioedge.emulator_fault", action=action, kind="delay")
        service.record_fault(
            action, "delay", params, executed=reply.executed, request_id=reply.request_id
        )
        await asyncio.sleep(delay.delay)
    if reply.executed and service.faults.active:
        fault = service.faults.pick(action, "post")
        if fault is not None:
            get_logger().debug("aioedge.emulator_fault", action=action, kind=fault.kind)
            service.record_fault(
                action, fault.kind, params, executed=True, request_id=reply.request_id
            )
            if fault.kind == "lost":
                return _reset_connection(request)
            body = dumps(reply.body)
            return _response(
                service, reply.status, body[: max(1, len(body) // 2)], reply.request_id
            )
    return _answer(service, reply)


def _answer(service: Service, reply: Reply) -> web.Response:
    return _response(
        service, reply.status, dumps(reply.body), reply.request_id, reply.retry_after_ms
    )


# --------------------------------------------------------------------------- inspection


def _ok(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def _problem(status: int, message: str) -> web.Response:
    return _ok({"error": message}, status)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


async def _info(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    opts = service.options
    return _ok(
        {
            "access_key_id": opts.credentials.access_key_id,
            "region_id": opts.region_id,
            "quotas": opts.quotas,
            "quota_scale": opts.quota_scale,
            "throttle_style": opts.throttle_style,
            "speed": opts.speed,
            "stage_seconds": opts.stage_seconds,
            "seed": opts.seed,
            "strict_devices": opts.strict_devices,
            "now_ms": service.now_ms(),
        }
    )


async def _stats(request: web.Request) -> web.Response:
    return _ok(request.app[_SERVICE_KEY].stats())


async def _executions(request: web.Request) -> web.Response:
    return _ok([e.to_dict() for e in request.app[_SERVICE_KEY].executions])


async def _requests(request: web.Request) -> web.Response:
    return _ok([r.to_dict() for r in request.app[_SERVICE_KEY].requests])


async def _faults_get(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    return _ok(
        {"rules": service.faults.describe(), "log": [f.to_dict() for f in service.fault_log]}
    )


async def _faults_put(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    try:
        data = await _json_body(request)
        if "spec" in data:
            specs = normalize_faults(str(data["spec"]))
        else:
            specs = tuple(FaultSpec(**rule) for rule in data.get("rules", []))
        specs = check_fault_actions(specs)
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    service.faults.configure(specs)
    return _ok({"rules": service.faults.describe()})


async def _faults_delete(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    service.faults.configure(())
    return _ok({"rules": []})


async def _timeline(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    deployment_id = request.match_info["deployment_id"]
    try:
        return _ok(service.backend.timeline(deployment_id, service.now_ms()))
    except UnknownDeployment as exc:
        return _problem(404, str(exc))


async def _fleet(request: web.Request) -> web.Response:
    backend = request.app[_SERVICE_KEY].backend
    failing = set(backend.instance_failures)
    return _ok(
        {
            "instances": list(backend.fleet_ids),
            "failing": [i for i in backend.fleet_ids if i in failing],
        }
    )


async def _reset(request: web.Request) -> web.Response:
    request.app[_SERVICE_KEY].reset()
    return _ok({"reset": True})


async def _devices(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    try:
        data = await _json_body(request)
        device = service.backend.add_device(
            str(data["ProductKey"]),
            str(data["DeviceName"]),
            iot_id=data.get("IotId"),
            node_type=data.get("NodeType"),
            enabled=bool(data.get("Enabled", True)),
            now_ms=service.now_ms(),
        )
    except (KeyError, ValueError, TypeError) as exc:
        return _problem(400, f"bad device: {exc}")
    return _ok(device.to_dict(), 201)


async def _deployment_failures(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    try:
        data = await _json_body(request)
        failure = Failure(
            stage=int(data["stage"]),
            resource_id=data.get("resource_id"),
            gateway_id=data.get("gateway_id"),
            message=str(data.get("message", "injected failure")),
            stall=data.get("stall", False) is True,
        )
        service.backend.fail_deployment(failure, data.get("deployment_id"), service.now_ms())
    except UnknownDeployment as exc:
        return _problem(404, str(exc))
    except (KeyError, ValueError, TypeError) as exc:
        return _problem(400, f"bad failure: {exc}")
    return _ok({"armed": True}, 201)


async def _oss_put(request: web.Request) -> web.Response:
    # Pre-signed addresses point here, so an upload step in a test has somewhere to go.
    service = request.app[_SERVICE_KEY]
    service.oss[request.match_info["path"]] = await request.read()
    return web.Response(status=200)


async def _oss_get(request: web.Request) -> web.Response:
    data = request.app[_SERVICE_KEY].oss.get(request.match_info["path"])
    if data is None:
        return _problem(404, "no such object")
    return web.Response(body=data, content_type="application/octet-stream")


def build_app(service: Service) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[_SERVICE_KEY] = service
    app.router.add_route("GET", "/", _api)
    app.router.add_route("POST", "/", _api)
    app.router.add_get("/_emulator", _info)
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_get("/_emulator/executions", _executions)
    app.router.add_get("/_emulator/requests", _requests)
    app.router.add_get("/_emulator/faults", _faults_get)
    app.router.add_put("/_emulator/faults", _faults_put)
    app.router.add_post("/_emulator/faults", _faults_put)
    app.router.add_delete("/_emulator/faults", _faults_delete)
    app.router.add_get("/_emulator/timeline/{deployment_id}", _timeline)
    app.router.add_get("/_emulator/fleet", _fleet)
    app.router.add_post("/_emulator/reset", _reset)
    app.router.add_post("/_emulator/devices", _devices)
    app.router.add_post("/_emulator/deployment-failures", _deployment_failures)
    app.router.add_put("/_emulator/oss/{path:.+}", _oss_put)
    app.router.add_get("/_emulator/oss/{path:.+}", _oss_get)
    return app
