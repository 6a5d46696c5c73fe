"""``Emulator``: the emulated Link IoT Edge API on 127.0.0.1, for tests and demos.

::

    async with Emulator(speed=50) as emu:
        async with EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client:
            ...
        emu.stats()["CreateEdgeInstance"]["executed"]

``Emulator.start_in_thread()`` serves the same from a background thread for synchronous
code (the official SDK, subprocess tests): the handle has ``.endpoint``,
``.credentials`` and ``.stop()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from .._credentials import Credentials
from .._log import get_logger
from ._backend import Limits
from ._deploy import Failure
from ._faults import FaultRecord, FaultsInput, check_fault_actions, normalize_faults
from ._identity import Identity, add_identity_routes
from ._server import build_app
from ._service import (
    DEFAULT_CREDENTIALS,
    EmulatorOptions,
    Execution,
    ExecutionRecord,
    RequestRecord,
    Service,
)

__all__ = ["Emulator", "EmulatorThread"]

T = TypeVar("T")


def _credentials(value: Any) -> Credentials:
    if isinstance(value, Credentials):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3):
        return Credentials(*value[:2], security_token=value[2] if len(value) == 3 else None)
    raise TypeError(f"expected Credentials or (access_key_id, secret), got {type(value).__name__}")


def _access_keys(value: Any) -> tuple[Credentials, ...]:
    if value is None:
        return ()
    if isinstance(value, Credentials):
        return (value,)
    if isinstance(value, Mapping):
        return tuple(Credentials(str(k), str(v)) for k, v in value.items())
    return tuple(_credentials(v) for v in value)


class Emulator:
    """The emulated API, served on ``host`` (127.0.0.1) at a free port while started.

    Options (all keyword; see docs/testing.md): ``quotas=True``, ``quota_scale=1.0``,
    ``throttle_style="alternate"`` (or ``"http"``, ``"business"``, ``"random"``),
    ``speed=1.0``, ``stage_seconds=2.0``, ``faults=None``, ``seed=0``, ``clock=None``,
    ``quota_clock=None``, ``access_keys=()``, ``credentials=``, ``region_id=None``,
    ``strict_devices=False``, ``timestamp_tolerance=900``, ``limits=Limits()``,
    ``host="127.0.0.1"``, ``port=0``, ``max_records=100_000``, ``retry_after_hint=True``.

    A fleet to rehearse rollouts on (``aioedge.testing._fleet``): ``fleet`` (instances,
    ``fleet-0000`` …, each with ``fleet_gateways`` gateways and a bound driver) and
    ``fail_rate`` (the seeded share of the fleet whose every deployment fails; see
    :attr:`fleet` and :meth:`fail_instances`).

    The identity side (``aioedge.testing._identity``): ``token_lifetime`` (seconds of the
    emulator's clock an STS, metadata or URI key lives), ``imds_v1`` / ``imds_v2`` (which
    metadata protocols are spoken), ``ecs_role_name`` (the instance's RAM role).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Credentials | tuple[str, ...] = DEFAULT_CREDENTIALS,
        access_keys: Credentials | Mapping[str, str] | Iterable[Any] | None = (),
        region_id: str | None = None,
        quotas: bool = True,
        quota_scale: float = 1.0,
        throttle_style: str = "alternate",
        speed: float = 1.0,
        stage_seconds: float = 2.0,
        faults: FaultsInput = None,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        quota_clock: Callable[[], float] | None = None,
        strict_devices: bool = False,
        timestamp_tolerance: float = 900.0,
        limits: Limits | Mapping[str, int] | None = None,
        max_records: int = 100_000,
        fleet: int = 0,
        fleet_gateways: int = 1,
        fail_rate: float = 0.0,
        token_lifetime: float = 3600.0,
        imds_v1: bool = True,
        imds_v2: bool = True,
        ecs_role_name: str = "EcsRamRole",
        retry_after_hint: bool = True,
    ) -> None:
        self.options = EmulatorOptions(
            host=host,
            port=port,
            credentials=_credentials(credentials),
            access_keys=_access_keys(access_keys),
            region_id=region_id,
            quotas=quotas,
            quota_scale=quota_scale,
            throttle_style=throttle_style,
            speed=speed,
            stage_seconds=stage_seconds,
            # Every spelling of faults= (a spec string, per-Action mapping, FaultSpec list)
            # is read here, once: set_faults and --faults read the same way.
            faults=check_fault_actions(normalize_faults(faults)),
            seed=seed,
            clock=clock,
            quota_clock=quota_clock,
            strict_devices=strict_devices,
            timestamp_tolerance=timestamp_tolerance,
            limits=Limits(**limits) if isinstance(limits, Mapping) else limits or Limits(),
            max_records=max_records,
            fleet=fleet,
            fleet_gateways=fleet_gateways,
            fail_rate=fail_rate,
            token_lifetime=token_lifetime,
            imds_v1=imds_v1,
            imds_v2=imds_v2,
            ecs_role_name=ecs_role_name,
            retry_after_hint=retry_after_hint,
        )
        self.service = Service(self.options)
        self.identity = Identity(self.service.gateway, self.options, clock=self.service.clock)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> Emulator:
        if self._runner is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.options.host, self.options.port))
        except OSError:
            sock.close()
            raise
        app = build_app(self.service)
        add_identity_routes(app, self.identity)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            # A client that hangs up cancels its request's handler: a held-back answer
            # ("delay" fault) stops waiting.  Execution itself never awaits, so it is
            # never cut in half.
            handler_cancellation=True,
        )
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self._port = int(sock.getsockname()[1])
        self.service.backend.oss_base = self.endpoint
        get_logger().info("aioedge.emulator_started", endpoint=self.endpoint)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            get_logger().info("aioedge.emulator_stopped", endpoint=self.endpoint)

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    def start_in_thread(cls, **options: Any) -> EmulatorThread:
        """Serve from a background thread (its own event loop); returns a started handle."""
        return EmulatorThread(**options).start()

    # ----------------------------------------------------------------- connection

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started (use `async with Emulator()`)")
        return self._port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, for ``EdgeClient(endpoint=...)``."""
        return f"http://{self.options.host}:{self.port}"

    @property
    def credentials(self) -> Credentials:
        """The key pair the emulator knows, for ``EdgeClient(credentials=...)``."""
        return self.options.credentials

    @property
    def sts_endpoint(self) -> str:
        """The emulated STS, for ``sts_endpoint=`` / ``ALIBABA_CLOUD_STS_ENDPOINT``."""
        return f"{self.endpoint}/sts"

    @property
    def metadata_endpoint(self) -> str:
        """The emulated ECS metadata service, for ``EcsRamRoleProvider(endpoint=...)``."""
        return self.endpoint

    @property
    def credentials_uri(self) -> str:
        """A credentials URI, for ``URICredentialsProvider`` /
        ``ALIBABA_CLOUD_CREDENTIALS_URI``."""
        return f"{self.endpoint}/identity/credentials"

    @property
    def clock(self) -> Callable[[], float]:
        """The service's clock (UNIX seconds): timestamps, deployments, the Date header."""
        return self.service.clock

    def now_ms(self) -> int:
        return self.service.now_ms()

    # ----------------------------------------------------------------- inspection

    def stats(self) -> dict[str, dict[str, int]]:
        """Per Action: requests, faults, rejected, throttled, invalid, executed,
        succeeded (executed and answered Success) and failed (business errors)."""
        return self.service.stats()

    @property
    def executions(self) -> list[Execution]:
        """What ran, in order: ``(action, params, nonce)`` (business errors included)."""
        return [Execution(e.action, e.params, e.nonce) for e in self.service.executions]

    @property
    def peak_in_flight(self) -> int:
        """The most API requests the emulator was handling at once (since start or reset)."""
        return self.service.peak_in_flight

    @property
    def execution_log(self) -> list[ExecutionRecord]:
        """:attr:`executions` with request id, AccessKeyId, time and answer code."""
        return list(self.service.executions)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request with its quota-clock arrival time and outcome."""
        return list(self.service.requests)

    @property
    def fault_log(self) -> list[FaultRecord]:
        return list(self.service.fault_log)

    def timeline(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every transition of a deployment up to now, in time order (ground truth).

        Each entry: ``kind`` ("deployment" | "task" | "snapshot"), ``deployment_id``,
        ``task_id`` (None for the deployment), ``snapshot_id`` (None unless a snapshot),
        ``stage`` (None for the deployment), ``status``, ``timestamp_ms``.  Every object's
        initial state is its first entry.
        """
        return self.service.backend.timeline(deployment_id, self.now_ms())

    # ----------------------------------------------------------------- steering

    def set_faults(self, faults: FaultsInput) -> None:
        """Replace the fault rules (same forms as the ``faults=`` option)."""
        self.service.faults.configure(check_fault_actions(normalize_faults(faults)))

    def clear_faults(self) -> None:
        self.service.faults.configure(())

    def add_device(
        self,
        product_key: str,
        device_name: str,
        *,
        iot_id: str | None = None,
        node_type: str | None = None,
        enabled: bool = True,
        edge_version: str = "2.4.0",
    ) -> dict[str, Any]:
        """Register a device as IoT Platform would know it; returns its IotId and names.

        ``node_type`` "gateway" or "sub" makes the matching binding checks apply
        (``iot.device.DeviceNotGateway`` / ``DeviceNotSubDevice``); ``enabled=False``
        makes binds fail with ``iot.edge.GatewayDisable`` / ``iot.device.Disabled``.
        """
        device = self.service.backend.add_device(
            product_key,
            device_name,
            iot_id=iot_id,
            node_type=node_type,
            enabled=enabled,
            edge_version=edge_version,
            now_ms=self.now_ms(),
        )
        return device.to_dict()

    def release_driver_version(self, driver_id: str, version: str) -> None:
        """Publish a driver version (VersionState 1), as the console's release does."""
        self.service.backend.release_driver_version(driver_id, version, self.now_ms())

    def fail_deployment_at(
        self,
        resource_id: str | None = None,
        stage: int = 16,
        *,
        gateway_id: str | None = None,
        deployment_id: str | None = None,
        message: str = "injected failure",
    ) -> None:
        """Make a snapshot fail at ``stage`` with an ERROR log entry.

        ``gateway_id`` (the IotId of a bound gateway) picks the subtask, None the first;
        ``resource_id`` picks the snapshot in it (a DriverId, a driver ConfigId or a
        device's IotId), None the first.  Without ``deployment_id`` the failure is armed
        for the next deployment that has that gateway and resource; with one, a running
        deployment is re-planned (ValueError if it has no such snapshot or that snapshot
        is already past ``stage``).
        """
        failure = Failure(
            stage=stage, resource_id=resource_id, gateway_id=gateway_id, message=message
        )
        self.service.backend.fail_deployment(failure, deployment_id, self.now_ms())

    @property
    def fleet(self) -> tuple[str, ...]:
        """The fleet's instance ids (``fleet=N``), in order of their names ``fleet-0000`` …."""
        return self.service.backend.fleet_ids

    @property
    def failing_instances(self) -> frozenset[str]:
        """Instances whose every deployment fails (``fail_rate``'s share, or chosen)."""
        return frozenset(self.service.backend.instance_failures)

    def fail_instances(
        self,
        instance_ids: Iterable[str],
        *,
        stage: int = 16,
        message: str = "injected failure",
        fail: bool = True,
        stall: bool = False,
    ) -> None:
        """Make every later deployment of these instances fail at ``stage`` (``stall=True``:
        hang there, as :meth:`stall_deployment_at` does; ``fail=False``: succeed again).
        KeyError for an unknown instance, before anything changes."""
        failure = Failure(stage=stage, message=message, stall=stall) if fail else None
        self.service.backend.fail_instances(list(instance_ids), failure)

    def stall_deployment_at(
        self,
        resource_id: str | None = None,
        stage: int = 16,
        *,
        gateway_id: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        """Make a snapshot hang at ``stage``: it reaches it (status 1) and never moves again,
        so its subtask and the deployment stay running for ever (until closed).

        Picks the snapshot, and arms or re-plans, as :meth:`fail_deployment_at` does.
        """
        failure = Failure(stage=stage, resource_id=resource_id, gateway_id=gateway_id, stall=True)
        self.service.backend.fail_deployment(failure, deployment_id, self.now_ms())

    def reset(self) -> None:
        """Forget resources, records, counters, nonces and quota windows (and the identity
        side's records, counters and fault; the keys it issued stay valid)."""
        self.service.reset()
        self.identity.reset()

    def __repr__(self) -> str:
        where = self.endpoint if self._port is not None else "not started"
        return f"Emulator({where}, speed={self.options.speed}, quotas={self.options.quotas})"


class EmulatorThread:
    """An :class:`Emulator` running in a background thread with its own event loop."""

    def __init__(self, **options: Any) -> None:
        self.emulator = Emulator(**options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.emulator.start())
        except BaseException as exc:  # handed to start() in the caller's thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.emulator.stop())
            loop.close()

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="aioedge-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the emulator thread did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return self.emulator.endpoint

    @property
    def credentials(self) -> Credentials:
        return self.emulator.credentials

    def call(self, fn: Callable[[Emulator], T]) -> T:
        """Run ``fn(emulator)`` on the emulator's loop (thread-safe access to its state)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(self.emulator)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(self.emulator))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result()

    def stats(self) -> dict[str, dict[str, int]]:
        return self.call(lambda emu: emu.stats())

    def executions(self) -> list[Execution]:
        return self.call(lambda emu: emu.executions)

    def timeline(self, deployment_id: str) -> list[dict[str, Any]]:
        return self.call(lambda emu: emu.timeline(deployment_id))

    def reset(self) -> None:
        self.call(lambda emu: emu.reset())

    @property
    def fleet(self) -> tuple[str, ...]:
        return self.call(lambda emu: emu.fleet)

    def __repr__(self) -> str:
        return f"EmulatorThread({self.emulator!r})"
