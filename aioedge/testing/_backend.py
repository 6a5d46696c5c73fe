"""The emulated service behind the gateway: in-memory state and the 34 Actions.

Pure: no sockets, no clocks.  :meth:`Backend.execute` takes an Action, its validated
wire parameters (``aioedge._catalog.validate_params`` output) and the service's time in
milliseconds, and returns the success body (without ``RequestId``) or raises
:class:`BusinessError`, which the server answers as HTTP 200 ``Success: false``.

Resources: edge instances (2.7), drivers and driver versions (2.8), gateways bound to
instances (2.9), drivers bound to instances with their configs (2.10), devices bound with
a driver and their configs (2.11), deployments (2.12, simulated by ``_deploy``), and
devices as IoT Platform knows them (QueryDeviceProvisioning).  Business errors and count
limits are the ones section 2.6 documents.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any

from .._catalog import OPERATIONS, snake_case
from .._wire import to_int
from ._deploy import (
    FINAL,
    NOT_STARTED,
    DeploymentView,
    Failure,
    Plan,
    Resource,
    SnapshotPlan,
    TaskPlan,
    build_schedule,
)
from ._fleet import FleetSpec, choose_failing, fleet_failure
from ._gateway import format_request_id

__all__ = ["Backend", "BusinessError", "Limits", "UnknownDeployment"]

# The console shows times in China Standard Time: the samples' "2019-06-26 18:12:29"
# matches Description "deploy_1561543948874" (10:12:28 UTC).
_CST = timezone(timedelta(hours=8))


def _load_messages() -> dict[str, str]:
    text = resources.files("aioedge").joinpath("_spec").joinpath("errors.json").read_text("utf-8")
    out: dict[str, str] = {}
    for entry in json.loads(text)["errors"]:
        message = entry.get("message") or entry.get("description_en") or entry["description"]
        out.setdefault(entry["code"], str(message))
    return out


_MESSAGES = _load_messages()


class BusinessError(Exception):
    """A documented service error (2.6), answered as HTTP 200 with ``Success: false``."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        message = _MESSAGES.get(code, code)
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownDeployment(KeyError):
    """A test helper (``timeline``, ``fail_deployment``) named a deployment the emulator
    never made: a ``KeyError`` whose text is ``no deployment <id>``, the same wherever it
    is raised and answered (HTTP 404 from the inspection endpoints)."""

    def __init__(self, deployment_id: str) -> None:
        super().__init__(f"no deployment {deployment_id}")
        self.deployment_id = deployment_id

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Count limits from section 2.6 (lower them in tests to reach them quickly)."""

    instances: int = 100_000  # InstanceNumLimitation
    custom_drivers: int = 50  # DriverNumLimitation
    driver_versions: int = 10  # DriverVersionLimitation
    drivers_per_instance: int = 30  # InstanceDriverLimitation
    devices_per_instance: int = 1000  # InstanceDeviceLimitation
    gateways_standard: int = 2  # InstanceGatewayLimitation, Spec 20
    gateways_other: int = 1  # InstanceGatewayLimitation, Spec 10 and 30


# --------------------------------------------------------------------------- state


@dataclass(slots=True, kw_only=True)
class Device:
    iot_id: str
    product_key: str
    device_name: str
    node_type: str | None  # "gateway" | "sub" | None until first used
    enabled: bool = True
    edge_version: str = "2.4.0"
    created_ms: int = 0
    instance_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "IotId": self.iot_id,
            "ProductKey": self.product_key,
            "DeviceName": self.device_name,
            "NodeType": self.node_type,
            "Enabled": self.enabled,
            "InstanceId": self.instance_id,
        }


# VersionState (QueryEdgeDriverVersion) and a driver's Type (QueryEdgeDriver), as the
# service writes and filters them.
UNPUBLISHED, PUBLISHED = 0, 1
OFFICIAL, CUSTOM = 0, 1

# The optional texts of a driver version (2.8.4), each kept in the DriverVersion field of
# its snake_case name: written by Create/UpdateEdgeDriverVersion, answered when set.
_VERSION_TEXTS = (
    "Description",
    "Argument",
    "SourceConfig",
    "DriverConfig",
    "ConfigCheckRule",
    "ContainerConfig",
)


@dataclass(slots=True, kw_only=True)
class DriverVersion:
    driver_id: str
    version: str
    edge_version: str
    description: str | None = None
    argument: str | None = None
    source_config: str | None = None
    driver_config: str | None = None
    config_check_rule: str | None = None
    container_config: str | None = None
    state: int = UNPUBLISHED
    created_ms: int = 0
    modified_ms: int = 0


def _write_texts(dv: DriverVersion, p: Mapping[str, str]) -> None:
    """The texts as sent: one left out is cleared (2.8.6 Limits)."""
    for name in _VERSION_TEXTS:
        setattr(dv, snake_case(name), p.get(name))


@dataclass(slots=True, kw_only=True)
class Driver:
    driver_id: str
    name: str
    protocol: str
    runtime: str
    cpu_arch: str | None
    is_builtin: bool
    type: int  # OFFICIAL or CUSTOM
    created_ms: int
    modified_ms: int
    versions: dict[str, DriverVersion] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class DriverConfig:
    config_id: str
    format: str
    content: str
    key: str | None


@dataclass(slots=True, kw_only=True)
class BoundDriver:
    driver_id: str
    version: str | None
    order_id: str | None
    created_ms: int
    modified_ms: int
    configs: list[DriverConfig] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class BoundDevice:
    iot_id: str
    driver_id: str
    bound_ms: int
    config: str | None = None


@dataclass(slots=True, kw_only=True)
class Deployment:
    deployment_id: str
    instance_id: str
    type: str
    description: str
    created_ms: int
    plan: Plan
    stage_ms: int
    failure: Failure | None = None
    closed_ms: int | None = None
    view: DeploymentView = field(init=False)

    def __post_init__(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        self.view = DeploymentView(
            build_schedule(
                self.plan,
                created_ms=self.created_ms,
                stage_ms=self.stage_ms,
                failure=self.failure,
                closed_ms=self.closed_ms,
            )
        )

    def status(self, now_ms: int) -> int:
        _, last = self.view.state("deployment", None, None, now_ms)
        return NOT_STARTED if last is None else last.status

    def running(self, now_ms: int) -> bool:
        return self.view.final(now_ms) is None


@dataclass(slots=True, kw_only=True)
class Instance:
    instance_id: str
    name: str
    tags: str | None
    spec: int
    biz_enable: bool
    created_ms: int
    modified_ms: int
    gateways: list[str] = field(default_factory=list)
    drivers: dict[str, BoundDriver] = field(default_factory=dict)
    devices: dict[str, BoundDevice] = field(default_factory=dict)
    deployments: list[Deployment] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def gmt(ms: int) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in China Standard Time, as the samples show."""
    return datetime.fromtimestamp(ms / 1000, tz=_CST).strftime("%Y-%m-%d %H:%M:%S")


def _times(prefix: str, ms: int, *, stamp: bool = True) -> dict[str, Any]:
    """A time as the service writes it: ``<prefix>`` (:func:`gmt`) and, where the Action
    documents it, ``<prefix>Timestamp`` (milliseconds)."""
    return {prefix: gmt(ms), f"{prefix}Timestamp": ms} if stamp else {prefix: gmt(ms)}


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    return default if raw is None else to_int(raw, name)


def documented_default(action: str, name: str) -> Any:
    """The default operations.json gives an optional parameter, which the service applies
    when a request leaves it out: read from the catalog, as the client's docs and typed
    methods are (Spec 20, IsBuiltIn false, PageSize 10...)."""
    param = OPERATIONS[action].param(name)
    if param is None or param.default is None:
        raise KeyError(f"{action} documents no default for {name}")
    return param.default


def _bool(params: Mapping[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    return default if raw is None else raw.lower() == "true"


def _items(params: Mapping[str, str], name: str) -> list[str]:
    out: list[str] = []
    i = 1
    while f"{name}.{i}" in params:
        out.append(params[f"{name}.{i}"])
        i += 1
    return out


def _structs(params: Mapping[str, str], name: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    i = 1
    while any(f"{name}.{i}.{f}" in params for f in fields):
        out.append({f: params[f"{name}.{i}.{f}"] for f in fields if f"{name}.{i}.{f}" in params})
        i += 1
    return out


def _page(items: list[dict[str, Any]], params: Mapping[str, str], key: str) -> dict[str, Any]:
    # Validated parameters: the catalog gave both their defaults, and both are >= 1.
    size = to_int(params["PageSize"], "PageSize")
    current = to_int(params["CurrentPage"], "CurrentPage")
    start = (current - 1) * size
    return {
        "Data": {
            "Total": len(items),
            "PageSize": size,
            "CurrentPage": current,
            key: items[start : start + size],
        }
    }


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


_ALNUM = string.ascii_letters + string.digits

Handler = Callable[[Mapping[str, str], int], dict[str, Any]]


class Backend:
    """All resources of one emulated account, and the 34 Actions over them."""

    def __init__(
        self,
        *,
        region_id: str,  # the service's default is the emulator's (_service.DEFAULT_REGION)
        seed: int = 0,
        stage_ms: int = 2000,
        strict_devices: bool = False,
        limits: Limits | None = None,
        oss_base: str = "http://127.0.0.1",
        fleet: FleetSpec | None = None,
    ) -> None:
        self.seed = seed
        self.fleet = fleet or FleetSpec()
        self.stage_ms = stage_ms
        self.strict_devices = strict_devices
        self.limits = limits or Limits()
        self.region_id = region_id
        self.oss_base = oss_base
        self._handlers: dict[str, Handler] = {
            action: getattr(self, f"_op_{op.method_name}") for action, op in OPERATIONS.items()
        }
        self.reset()

    # ----------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        """Forget every resource; ids start again from the seed."""
        self.rng = random.Random(self.seed)
        self.instances: dict[str, Instance] = {}
        self.drivers: dict[str, Driver] = {}
        self.devices: dict[str, Device] = {}
        self.devices_by_name: dict[tuple[str, str], Device] = {}
        self.deployments: dict[str, Deployment] = {}
        self.pending_failure: Failure | None = None
        # Instances whose every deployment fails (the fleet's share, or chosen by hand).
        self.instance_failures: dict[str, Failure] = {}
        self.fleet_ids: tuple[str, ...] = ()
        self._seed_official_drivers()
        self._populate_fleet()

    def _seed_official_drivers(self) -> None:
        # QueryEdgeDriver Type=0 lists official drivers; two published ones to bind.
        for name, protocol in (("ModbusDriver", "modbus"), ("OpcUaDriver", "opc-ua")):
            driver = Driver(
                driver_id=self._hex32(),
                name=name,
                protocol=protocol,
                runtime="nodejs8",
                cpu_arch=None,
                is_builtin=True,
                type=OFFICIAL,
                created_ms=1561543948000,
                modified_ms=1561543948000,
            )
            driver.versions["1.0.0"] = DriverVersion(
                driver_id=driver.driver_id,
                version="1.0.0",
                edge_version="2.0.0",
                description=f"official {protocol} driver",
                state=PUBLISHED,
                created_ms=driver.created_ms,
                modified_ms=driver.created_ms,
            )
            self.drivers[driver.driver_id] = driver

    def _populate_fleet(self) -> None:
        """The fleet of ``_fleet.FleetSpec``: instances with gateways and a bound driver."""
        spec = self.fleet
        if not spec.size:
            return
        born = 1561543948000
        modbus = next(d for d in self.drivers.values() if d.name == "ModbusDriver")
        ids: list[str] = []
        for index in range(spec.size):
            inst = Instance(
                instance_id=self._alnum(20),
                name=spec.name(index),
                tags=None,
                spec=20,
                biz_enable=True,
                created_ms=born,
                modified_ms=born,
            )
            for g in range(spec.gateways):
                gateway = self.add_device(
                    "a1FleetGateway", f"{inst.name}-gw{g}", node_type="gateway", now_ms=born
                )
                gateway.instance_id = inst.instance_id
                inst.gateways.append(gateway.iot_id)
            inst.drivers[modbus.driver_id] = BoundDriver(
                driver_id=modbus.driver_id,
                version="1.0.0",
                order_id=None,
                created_ms=born,
                modified_ms=born,
            )
            self.instances[inst.instance_id] = inst
            ids.append(inst.instance_id)
        self.fleet_ids = tuple(ids)
        for instance_id in choose_failing(ids, spec.fail_rate, self.seed):
            self.instance_failures[instance_id] = fleet_failure()

    def fail_instances(self, instance_ids: Sequence[str], failure: Failure | None) -> None:
        """Every later deployment of these instances fails (``None``: succeeds again)."""
        missing = [i for i in instance_ids if i not in self.instances]
        if missing:
            raise KeyError(f"no instance {missing[0]}")
        for instance_id in instance_ids:
            if failure is None:
                self.instance_failures.pop(instance_id, None)
            else:
                self.instance_failures[instance_id] = failure

    # ----------------------------------------------------------------- ids

    def _hex32(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _alnum(self, n: int) -> str:
        return "".join(self.rng.choice(_ALNUM) for _ in range(n))

    def request_id(self) -> str:
        return format_request_id(self.rng.getrandbits(128))

    # ----------------------------------------------------------------- dispatch

    def execute(self, action: str, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """Run one validated Action; the success body without RequestId/Code/Success."""
        return self._handlers[action](params, now_ms)

    # ----------------------------------------------------------------- test helpers

    def add_device(
        self,
        product_key: str,
        device_name: str,
        *,
        iot_id: str | None = None,
        node_type: str | None = None,
        enabled: bool = True,
        edge_version: str = "2.4.0",
        now_ms: int = 0,
    ) -> Device:
        if node_type not in (None, "gateway", "sub"):
            raise ValueError(f"node_type must be 'gateway', 'sub' or None, got {node_type!r}")
        if (product_key, device_name) in self.devices_by_name:
            raise ValueError(f"device {product_key}/{device_name} already exists")
        if iot_id is not None and iot_id in self.devices:
            raise ValueError(f"device {iot_id} already exists")
        device = Device(
            iot_id=iot_id or f"{self._alnum(20)}000101",
            product_key=product_key,
            device_name=device_name,
            node_type=node_type,
            enabled=enabled,
            edge_version=edge_version,
            created_ms=now_ms,
        )
        self.devices[device.iot_id] = device
        self.devices_by_name[(product_key, device_name)] = device
        return device

    def release_driver_version(self, driver_id: str, version: str, now_ms: int) -> None:
        """Publish a version (the console's "release"; no API Action of the 34 does it)."""
        dv = self._version(self._driver(driver_id), version)
        if dv.state == PUBLISHED:
            raise BusinessError("iot.edge.DriverVersionHasBeenReleased", version)
        dv.state, dv.modified_ms = PUBLISHED, now_ms

    def fail_deployment(self, failure: Failure, deployment_id: str | None, now_ms: int) -> None:
        """Arm a failure for the next deployment, or re-plan a running one."""
        if deployment_id is None:
            self.pending_failure = failure
            return
        dep = self.deployment(deployment_id)
        failure.locate(dep.plan)  # ValueError before anything changes
        before = [_shape(e) for e in dep.view.events if e.time_ms <= now_ms]
        old = dep.failure
        dep.failure = failure
        dep.rebuild()
        after = [_shape(e) for e in dep.view.events if e.time_ms <= now_ms]
        if before != after:
            dep.failure = old
            dep.rebuild()
            raise ValueError(
                f"deployment {deployment_id} is past stage {failure.stage} of that snapshot"
            )

    def timeline(self, deployment_id: str, now_ms: int) -> list[dict[str, Any]]:
        return self.deployment(deployment_id).view.timeline(deployment_id, now_ms)

    def deployment(self, deployment_id: str) -> Deployment:
        """The deployment with this id, for the test helpers; UnknownDeployment if none."""
        dep = self.deployments.get(deployment_id)
        if dep is None:
            raise UnknownDeployment(deployment_id)
        return dep

    # ----------------------------------------------------------------- lookups

    def _instance(self, params: Mapping[str, str]) -> Instance:
        instance_id = params["InstanceId"]
        inst = self.instances.get(instance_id)
        if inst is None:
            raise BusinessError("iot.edge.InstanceNotExist", instance_id)
        return inst

    def _driver(self, driver_id: str) -> Driver:
        driver = self.drivers.get(driver_id)
        if driver is None:
            raise BusinessError("iot.edge.DriverNotExist", driver_id)
        return driver

    def _custom_driver(self, driver_id: str) -> Driver:
        driver = self._driver(driver_id)
        if driver.type != CUSTOM:  # official drivers are not the caller's to change
            raise BusinessError("iot.edge.DriverNotExist", f"{driver_id} is not a custom driver")
        return driver

    def _version(self, driver: Driver, version: str) -> DriverVersion:
        dv = driver.versions.get(version)
        if dv is None:
            raise BusinessError("iot.edge.DriverVersionNotExist", f"{driver.driver_id} {version}")
        return dv

    def _bound_driver(self, inst: Instance, driver_id: str) -> BoundDriver:
        bound = inst.drivers.get(driver_id)
        if bound is None:
            raise BusinessError("iot.edge.DriverNotBindToInstance", driver_id)
        return bound

    def _bound_device(self, inst: Instance, iot_id: str) -> BoundDevice:
        bound = inst.devices.get(iot_id)
        if bound is None:
            raise BusinessError("iot.edge.DeviceNotBindToInstance", iot_id)
        return bound

    def _resolve_device(
        self,
        now_ms: int,
        *,
        iot_id: str | None = None,
        pk: str | None = None,
        dn: str | None = None,
    ) -> Device:
        """Find a device; unknown ones are created unless ``strict_devices``."""
        if iot_id is not None:
            device = self.devices.get(iot_id)
            if device is None and not self.strict_devices:
                device = self.add_device(
                    f"a1{iot_id[:9]}", f"device_{iot_id[:12]}", iot_id=iot_id, now_ms=now_ms
                )
            if device is None:
                raise BusinessError("iot.device.NotExistedDevice", iot_id)
            return device
        assert pk is not None and dn is not None  # the catalog checks the pair
        device = self.devices_by_name.get((pk, dn))
        if device is None and not self.strict_devices:
            device = self.add_device(pk, dn, now_ms=now_ms)
        if device is None:
            raise BusinessError("iot.device.NotExistedDevice", f"{pk}/{dn}")
        return device

    def _latest(self, inst: Instance) -> Deployment | None:
        return inst.deployments[-1] if inst.deployments else None

    # ----------------------------------------------------------------- 2.7 instances

    def _instance_fields(self, inst: Instance, now_ms: int, *, stamps: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "InstanceId": inst.instance_id,
            "Name": inst.name,
            "Spec": inst.spec,
            "BizEnable": inst.biz_enable,
            # GetEdgeInstance documents the *Timestamp fields, QueryEdgeInstance not.
            **_times("GmtCreate", inst.created_ms, stamp=stamps),
            **_times("GmtModified", inst.modified_ms, stamp=stamps),
        }
        if inst.tags:
            out["Tags"] = inst.tags
        latest = self._latest(inst)
        if latest is not None:
            out["LatestDeploymentStatus"] = latest.status(now_ms)
            out["LatestDeploymentType"] = latest.type
        return out

    def _op_create_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        name = p["Name"]
        if any(i.name == name for i in self.instances.values()):
            raise BusinessError("iot.edge.InstanceNameExist", name)
        if len(self.instances) >= self.limits.instances:
            raise BusinessError("iot.edge.InstanceNumLimitation")
        inst = Instance(
            instance_id=self._alnum(20),
            name=name,
            tags=p.get("Tags"),
            spec=_int(p, "Spec", documented_default("CreateEdgeInstance", "Spec")),
            biz_enable=True,
            created_ms=now,
            modified_ms=now,
        )
        self.instances[inst.instance_id] = inst
        return {"InstanceId": inst.instance_id}

    def _op_delete_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        latest = self._latest(inst)
        if latest is not None and latest.running(now):
            raise BusinessError("iot.edge.deploySheetAlreadyExist", latest.deployment_id)
        if inst.devices:
            raise BusinessError("iot.edge.InstanceHasDevice", f"{len(inst.devices)} devices")
        if inst.drivers:
            raise BusinessError("iot.edge.InstanceHasDriver", f"{len(inst.drivers)} drivers")
        for iot_id in inst.gateways:
            self.devices[iot_id].instance_id = None
        del self.instances[inst.instance_id]
        return {}

    def _op_update_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        name = p["Name"]
        if any(i.name == name and i is not inst for i in self.instances.values()):
            raise BusinessError("iot.edge.InstanceNameExist", name)
        spec = _int(p, "Spec", inst.spec)
        limit = self._gateway_limit(spec)
        if len(inst.gateways) > limit:  # the edition cannot hold the gateways bound now
            raise BusinessError(
                "iot.edge.InstanceGatewayLimitation",
                f"Spec {spec} allows {limit}, {len(inst.gateways)} bound",
            )
        inst.name = name
        if "Tags" in p:
            inst.tags = p["Tags"]
        inst.spec = spec
        inst.biz_enable = _bool(p, "BizEnable", inst.biz_enable)
        inst.modified_ms = now
        return {}

    def _op_get_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        # GetEdgeInstance types Data.Type as a String, QueryEdgeInstance as an Integer.
        return {"Data": {**self._instance_fields(inst, now, stamps=True), "Type": "0"}}

    def _op_query_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        name = p.get("Name")
        found = [i for i in self.instances.values() if name is None or name in i.name]
        found.reverse()  # newest first, as the sample lists them
        items = [{**self._instance_fields(i, now, stamps=False), "Type": 0} for i in found]
        return _page(items, p, "InstanceList")

    # ----------------------------------------------------------------- 2.8 drivers

    def _driver_fields(self, d: Driver) -> dict[str, Any]:
        out: dict[str, Any] = {
            "DriverId": d.driver_id,
            "DriverName": d.name,
            "DriverProtocol": d.protocol,
            "Runtime": d.runtime,
            "IsBuiltIn": d.is_builtin,
            "Type": d.type,
            **_times("GmtCreate", d.created_ms),
            **_times("GmtModified", d.modified_ms),
        }
        if d.cpu_arch:
            out["CpuArch"] = d.cpu_arch
        return out

    def _version_fields(self, v: DriverVersion) -> dict[str, Any]:
        out: dict[str, Any] = {
            "DriverId": v.driver_id,
            "DriverVersion": v.version,
            "EdgeVersion": v.edge_version,
            "VersionState": v.state,  # the JSON sample returns a number
            **_times("GmtCreate", v.created_ms),
            **_times("GmtModified", v.modified_ms),
        }
        for name in _VERSION_TEXTS:
            value = getattr(v, snake_case(name))
            if value is not None:
                out[name] = value
        return out

    def _op_create_edge_driver(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        key = (p["DriverName"], p["DriverProtocol"], p["Runtime"], p.get("CpuArch"))
        custom = [d for d in self.drivers.values() if d.type == CUSTOM]
        if any((d.name, d.protocol, d.runtime, d.cpu_arch) == key for d in custom):
            raise BusinessError("iot.edge.DriverNameProtocolRuntimeCpuArchMustBeUnique")
        if len(custom) >= self.limits.custom_drivers:
            raise BusinessError("iot.edge.DriverNumLimitation")
        driver = Driver(
            driver_id=self._hex32(),
            name=p["DriverName"],
            protocol=p["DriverProtocol"],
            runtime=p["Runtime"],
            cpu_arch=p.get("CpuArch"),
            is_builtin=_bool(p, "IsBuiltIn", documented_default("CreateEdgeDriver", "IsBuiltIn")),
            type=CUSTOM,
            created_ms=now,
            modified_ms=now,
        )
        self.drivers[driver.driver_id] = driver
        return {"DriverId": driver.driver_id}

    def _op_delete_edge_driver(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        driver = self._custom_driver(p["DriverId"])
        if any(v.state == PUBLISHED for v in driver.versions.values()):
            raise BusinessError("iot.edge.DriverHasReleasedVersion")
        if any(driver.driver_id in i.drivers for i in self.instances.values()):
            raise BusinessError("iot.edge.DriverVersionAlreadyBindToInstance")
        del self.drivers[driver.driver_id]
        return {}

    def _op_batch_get_edge_driver(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        found = [self.drivers[i] for i in _items(p, "DriverIds") if i in self.drivers]
        return {"DriverList": [self._driver_fields(d) for d in found]}

    def _op_query_edge_driver(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        kind = to_int(p["Type"], "Type")  # required: the catalog refuses a request without
        name = p.get("DriverName")
        found = [
            d for d in self.drivers.values() if d.type == kind and (name is None or name in d.name)
        ]
        found.reverse()
        return _page([self._driver_fields(d) for d in found], p, "DriverList")

    def _op_create_edge_driver_version(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        driver = self._custom_driver(p["DriverId"])
        version = p["DriverVersion"]
        if version in driver.versions:
            raise BusinessError("iot.edge.DriverVersionAlreadyExist", version)
        if len(driver.versions) >= self.limits.driver_versions:
            raise BusinessError("iot.edge.DriverVersionLimitation")
        dv = DriverVersion(
            driver_id=driver.driver_id,
            version=version,
            edge_version=p["EdgeVersion"],
            created_ms=now,
            modified_ms=now,
        )
        _write_texts(dv, p)
        driver.versions[version] = dv
        driver.modified_ms = now
        return {}

    def _op_delete_edge_driver_version(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        driver = self._custom_driver(p["DriverId"])
        dv = self._version(driver, p["DriverVersion"])
        if dv.state == PUBLISHED:
            raise BusinessError("iot.edge.ReleasedVersionCannotBeDeletedOrModified")
        for inst in self.instances.values():
            bound = inst.drivers.get(driver.driver_id)
            if bound is not None and bound.version == dv.version:
                raise BusinessError("iot.edge.DriverVersionAlreadyBindToInstance")
        del driver.versions[dv.version]
        return {}

    def _op_update_edge_driver_version(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        driver = self._custom_driver(p["DriverId"])
        dv = self._version(driver, p["DriverVersion"])
        if dv.state == PUBLISHED:
            raise BusinessError("iot.edge.ReleasedVersionCannotBeDeletedOrModified")
        dv.edge_version = p["EdgeVersion"]
        _write_texts(dv, p)
        dv.modified_ms = now
        return {}

    def _op_get_edge_driver_version(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        driver = self._driver(p["DriverId"])
        return {"Data": self._version_fields(self._version(driver, p["DriverVersion"]))}

    def _op_query_edge_driver_version(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        driver = self._driver(p["DriverId"])
        version, state = p.get("DriverVersion"), p.get("VersionState")
        found = [
            v
            for v in driver.versions.values()
            if (version is None or v.version == version)
            and (state is None or str(v.state) == state)
        ]
        found.reverse()
        return _page([self._version_fields(v) for v in found], p, "DriverVersionList")

    def _op_create_edge_oss_pre_signed_address(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        kind = p["Type"]
        self._driver(p["ResourceId"])
        parts = ["driver", p["ResourceId"], kind]
        if kind == "INSTANCE_DRIVER_VERSION_CONFIG":
            parts.append(self._instance(p).instance_id)
        parts += [p["ResourceVersion"], str(now), p["FileName"]]
        address = f"{self.oss_base}/_emulator/oss/" + "/".join(parts)
        signature = self._alnum(27)
        presigned = (
            f"{address}?Expires={now // 1000 + 300}&OSSAccessKeyId=EMULATOR&Signature={signature}"
        )
        return {"Data": {"OssAddress": address, "OssPreSignedAddress": presigned}}

    # ----------------------------------------------------------------- 2.9 gateways

    def _op_bind_gateway_to_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        device = self._resolve_device(
            now, iot_id=p.get("IotId"), pk=p.get("ProductKey"), dn=p.get("DeviceName")
        )
        if device.node_type == "sub":
            raise BusinessError("iot.device.DeviceNotGateway", device.iot_id)
        if not device.enabled:
            raise BusinessError("iot.edge.GatewayDisable", device.iot_id)
        if device.instance_id is not None:
            raise BusinessError("iot.edge.GatewayAlreadyBindToInstance", device.instance_id)
        limit = self._gateway_limit(inst.spec)
        if len(inst.gateways) >= limit:
            raise BusinessError("iot.edge.InstanceGatewayLimitation", f"at most {limit}")
        device.node_type = "gateway"
        device.instance_id = inst.instance_id
        inst.gateways.append(device.iot_id)
        inst.modified_ms = now
        return {}

    def _gateway_limit(self, spec: int) -> int:
        """Gateways an instance of this edition may have: two for Standard (Spec 20)."""
        return self.limits.gateways_standard if spec == 20 else self.limits.gateways_other

    def _op_query_edge_instance_gateway(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        gateways = [self.devices[i] for i in inst.gateways]
        return {
            "GatewayList": [
                {
                    "IotId": g.iot_id,
                    "ProductKey": g.product_key,
                    "DeviceName": g.device_name,
                    "EdgeVersion": g.edge_version,
                }
                for g in gateways
            ]
        }

    # ----------------------------------------------------------------- 2.10 drivers

    def _op_bind_driver_to_edge_instance(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        driver = self._driver(p["DriverId"])
        version = p.get("DriverVersion")
        if version is not None:
            self._version(driver, version)
        elif driver.versions:
            version = next(reversed(driver.versions))  # the newest version
        if driver.driver_id in inst.drivers:
            raise BusinessError("iot.edge.DriverAlreadyBindToInstance", driver.driver_id)
        if any(self.drivers[d].name == driver.name for d in inst.drivers):
            raise BusinessError("iot.edge.InstanceHasSameNameDriver", driver.name)
        if len(inst.drivers) >= self.limits.drivers_per_instance:
            raise BusinessError("iot.edge.InstanceDriverLimitation")
        inst.drivers[driver.driver_id] = BoundDriver(
            driver_id=driver.driver_id,
            version=version,
            order_id=p.get("OrderId"),
            created_ms=now,
            modified_ms=now,
        )
        inst.modified_ms = now
        return {}

    def _op_unbind_driver_from_edge_instance(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        bound = self._bound_driver(inst, p["DriverId"])
        if any(d.driver_id == bound.driver_id for d in inst.devices.values()):
            raise BusinessError("iot.edge.DriverHasDevice", bound.driver_id)
        del inst.drivers[bound.driver_id]
        inst.modified_ms = now
        return {}

    def _op_query_edge_instance_driver(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        items: list[dict[str, Any]] = []
        for b in inst.drivers.values():
            item: dict[str, Any] = {
                "DriverId": b.driver_id,
                **_times("GmtCreate", b.created_ms, stamp=False),
                **_times("GmtModified", b.modified_ms, stamp=False),
            }
            if b.version is not None:
                item["DriverVersion"] = b.version
            if b.order_id is not None:
                item["OrderId"] = b.order_id
            items.append(item)
        return _page(items, p, "DriverList")

    def _op_set_edge_instance_driver_configs(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        bound = self._bound_driver(inst, p["DriverId"])
        configs: list[DriverConfig] = []
        for item in _structs(p, "Configs", ("Format", "Content", "Key")):
            if item["Format"] == "JSON" and not _is_json(item["Content"]):
                raise BusinessError("iot.edge.DriverConfigIllegal", "Content is not JSON")
            configs.append(
                DriverConfig(
                    config_id=self._hex32(),
                    format=item["Format"],
                    content=item["Content"],
                    key=item.get("Key"),
                )
            )
        bound.configs = configs
        bound.modified_ms = now
        return {}

    def _op_clear_edge_instance_driver_configs(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        bound = self._bound_driver(inst, p["DriverId"])
        bound.configs = []
        bound.modified_ms = now
        return {}

    def _op_batch_get_edge_instance_driver_configs(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        out: list[dict[str, Any]] = []
        for driver_id in _items(p, "DriverIds"):
            bound = self._bound_driver(inst, driver_id)
            config_list: list[dict[str, Any]] = []
            for c in bound.configs:
                entry: dict[str, Any] = {
                    "ConfigId": c.config_id,
                    "Format": c.format,
                    "Content": c.content,
                }
                if c.key is not None:
                    entry["Key"] = c.key
                config_list.append(entry)
            out.append({"DriverId": driver_id, "ConfigList": config_list})
        return {"DriverConfigList": out}

    # ----------------------------------------------------------------- 2.11 devices

    def _op_batch_bind_device_to_edge_instance_with_driver(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        driver_id = self._bound_driver(inst, p["DriverId"]).driver_id
        chosen: dict[str, Device] = {}
        for iot_id in _items(p, "IotIds"):
            device = self._resolve_device(now, iot_id=iot_id)
            if device.node_type == "gateway":
                raise BusinessError("iot.device.DeviceNotSubDevice", iot_id)
            if not device.enabled:
                raise BusinessError("iot.device.Disabled", iot_id)
            if device.instance_id == inst.instance_id:
                raise BusinessError("iot.edge.DeviceAlreadyBindToInstance", iot_id)
            if device.instance_id is not None:
                raise BusinessError("iot.device.DeviceAlreadyBindToOtherInstance", iot_id)
            chosen[iot_id] = device
        if len(inst.devices) + len(chosen) > self.limits.devices_per_instance:
            raise BusinessError(
                "iot.edge.InstanceDeviceLimitation", f"at most {self.limits.devices_per_instance}"
            )
        for iot_id, device in chosen.items():
            device.node_type = "sub"
            device.instance_id = inst.instance_id
            inst.devices[iot_id] = BoundDevice(iot_id=iot_id, driver_id=driver_id, bound_ms=now)
        inst.modified_ms = now
        return {}

    def _op_batch_unbind_device_from_edge_instance(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        iot_ids = _items(p, "IotIds")
        for iot_id in iot_ids:
            self._bound_device(inst, iot_id)
        for iot_id in iot_ids:
            inst.devices.pop(iot_id, None)
            self.devices[iot_id].instance_id = None
        inst.modified_ms = now
        return {}

    def _op_query_edge_instance_device(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        items = []
        for b in inst.devices.values():
            d = self.devices[b.iot_id]
            items.append(
                {
                    "IotId": d.iot_id,
                    "DriverId": b.driver_id,
                    "ProductKey": d.product_key,
                    "DeviceName": d.device_name,
                }
            )
        return _page(items, p, "DeviceList")

    def _op_batch_set_edge_instance_device_config(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        items = _structs(p, "DeviceConfigs", ("IotId", "Content"))
        bound = [self._bound_device(inst, item["IotId"]) for item in items]
        for b, item in zip(bound, items, strict=True):
            b.config = item["Content"]
        return {}

    def _op_batch_clear_edge_instance_device_config(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        bound = [self._bound_device(inst, i) for i in _items(p, "IotIds")]
        for b in bound:
            b.config = None
        return {}

    def _op_batch_get_edge_instance_device_config(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        out: list[dict[str, Any]] = []
        for iot_id in _items(p, "IotIds"):
            b = self._bound_device(inst, iot_id)
            entry: dict[str, Any] = {"IotId": iot_id}
            if b.config is not None:
                fmt = "JSON" if _is_json(b.config) else "KV"
                entry["Config"] = {"Format": fmt, "Content": b.config}
            out.append(entry)
        return {"DeviceConfigList": out}

    # ----------------------------------------------------------------- 2.12 deployments

    def _plan(self, inst: Instance, deployment_id: str) -> Plan:
        resources: list[Resource] = []
        for bound in inst.drivers.values():
            driver = self.drivers.get(bound.driver_id)
            name = driver.name if driver is not None else bound.driver_id
            resources.append(
                Resource(resource_id=bound.driver_id, resource_name=name, resource_type="driver")
            )
            for c in bound.configs:
                resources.append(
                    Resource(
                        resource_id=c.config_id,
                        resource_name=c.key or f"{name}_config",
                        resource_type="driver_config",
                    )
                )
        for b in inst.devices.values():
            if b.config is not None:
                resources.append(
                    Resource(
                        resource_id=b.iot_id,
                        resource_name=self.devices[b.iot_id].device_name,
                        resource_type="device_config",
                    )
                )
        tasks = tuple(
            TaskPlan(
                task_id=self._hex32(),
                gateway_id=gateway,
                snapshots=tuple(
                    SnapshotPlan(snapshot_id=self._hex32(), resource=r) for r in resources
                ),
            )
            for gateway in inst.gateways
        )
        return Plan(deployment_id=deployment_id, tasks=tasks)

    def _op_create_edge_instance_deployment(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        latest = self._latest(inst)
        if latest is not None and latest.running(now):
            raise BusinessError("iot.edge.deploySheetAlreadyExist", latest.deployment_id)
        if not inst.gateways:
            raise BusinessError("iot.edge.InstanceHasNoGateway")
        kind = p["Type"]
        deployment_id = self._hex32()
        plan = self._plan(inst, deployment_id)
        if kind == "reset":
            plan = Plan(deployment_id=deployment_id, tasks=plan.tasks, operate_type=1)
        failure = self.pending_failure
        if failure is not None and not failure.fits(plan):
            failure = None  # stays armed until a deployment has that gateway and resource
        if failure is not None:
            self.pending_failure = None
        doomed = self.instance_failures.get(inst.instance_id)
        if failure is None and doomed is not None and doomed.fits(plan):
            failure = doomed
        dep = Deployment(
            deployment_id=deployment_id,
            instance_id=inst.instance_id,
            type=kind,
            description=f"{kind}_{now}",
            created_ms=now,
            plan=plan,
            stage_ms=self.stage_ms,
            failure=failure,
        )
        inst.deployments.append(dep)
        self.deployments[deployment_id] = dep
        return {"DeploymentId": deployment_id}

    def _op_close_edge_instance_deployment(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        latest = self._latest(inst)
        if latest is None:
            raise BusinessError("iot.edge.deploySheetNotExist")
        if not latest.running(now):
            raise BusinessError("iot.edge.deploySheetAlreadyFinish", latest.deployment_id)
        latest.closed_ms = now
        latest.rebuild()
        return {}

    def _deployment_fields(self, dep: Deployment, now: int) -> dict[str, Any]:
        view = dep.view
        first, last = view.state("deployment", None, None, now)
        assert first is not None and last is not None
        out: dict[str, Any] = {
            "DeploymentId": dep.deployment_id,
            "Description": dep.description,
            "Type": dep.type,
            "Status": last.status,
            **_times("GmtCreate", dep.created_ms),
            **_times("GmtModified", last.time_ms),
        }
        if last.status in FINAL:
            out.update(_times("GmtCompleted", last.time_ms))
        return out

    def _op_get_edge_instance_deployment(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        inst = self._instance(p)
        dep = self.deployments.get(p["DeploymentId"])
        if dep is None or dep.instance_id != inst.instance_id:
            raise BusinessError("iot.edge.deploySheetNotExist", p["DeploymentId"])
        view = dep.view
        tasks: list[dict[str, Any]] = []
        for task in dep.plan.tasks:
            t_first, t_last = view.state("task", task.task_id, None, now)
            assert t_first is not None and t_last is not None
            snapshots: list[dict[str, Any]] = []
            for snap in task.snapshots:
                s_first, s_last = view.state("snapshot", task.task_id, snap.snapshot_id, now)
                assert s_first is not None and s_last is not None
                res = snap.resource
                entry: dict[str, Any] = {
                    "SnapshotId": snap.snapshot_id,
                    "ResourceId": res.resource_id,
                    "ResourceName": res.resource_name,
                    "ResourceType": res.resource_type,
                    "OperateType": dep.plan.operate_type,
                    "Stage": s_last.stage,
                    "Status": s_last.status,
                    "Log": view.log(task.task_id, snap.snapshot_id, now),
                    **_times("GmtCreate", s_first.time_ms),
                    **_times("GmtModified", s_last.time_ms),
                }
                if s_last.status in FINAL:
                    entry.update(_times("GmtCompleted", s_last.time_ms))
                snapshots.append(entry)
            task_entry: dict[str, Any] = {
                "TaskId": task.task_id,
                "GatewayId": task.gateway_id,
                "Stage": t_last.stage,
                "Status": t_last.status,
                "ResourceSnapshotList": snapshots,
                **_times("GmtCreate", t_first.time_ms),
                **_times("GmtModified", t_last.time_ms),
            }
            if t_last.status in FINAL:
                task_entry.update(_times("GmtCompleted", t_last.time_ms))
            tasks.append(task_entry)
        return {"Data": {**self._deployment_fields(dep, now), "TaskList": tasks}}

    def _op_query_edge_instance_historic_deployment(
        self, p: Mapping[str, str], now: int
    ) -> dict[str, Any]:
        inst = self._instance(p)
        start, end = p.get("StartTime"), p.get("EndTime")
        found = [
            d
            for d in reversed(inst.deployments)
            if (start is None or d.created_ms >= int(start))
            and (end is None or d.created_ms <= int(end))
        ]
        return _page([self._deployment_fields(d, now) for d in found], p, "DeploymentList")

    # ----------------------------------------------------------------- provisioning

    def _op_query_device_provisioning(self, p: Mapping[str, str], now: int) -> dict[str, Any]:
        device = self._resolve_device(now, pk=p["ProductKey"], dn=p["DeviceName"])
        # Not distributed: the task times are the server's current time (the doc says so).
        return {
            "Data": {
                "ProductKey": device.product_key,
                "DeviceName": device.device_name,
                "AliyunUid": "emulator@example.com",
                "SourceRegion": self.region_id,
                "TargetRegion": self.region_id,
                "SourceIotInstanceId": "iot-emulator",
                "TargetIotInstanceId": "iot-emulator",
                "GmtCreate": now,
                "GmtModified": now,
            }
        }


def _shape(e: Any) -> tuple[Any, ...]:
    return (e.time_ms, e.kind, e.task_id, e.snapshot_id, e.stage, e.status)
