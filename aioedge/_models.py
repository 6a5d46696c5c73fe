"""Typed, frozen response models for the 34 operations, and the inputs of the list parameters.

Every model is a frozen, slotted, keyword-only dataclass whose attributes are the wire names
in snake_case (``LatestDeploymentStatus`` → ``latest_deployment_status``).  The rules, in one
place:

- ``raw`` is the mapping the model was parsed from: the whole response body for the object a
  typed method returns, the element dict for nested items.  It is left out of ``repr`` and
  equality.  Fields the service adds later are ignored by the model and stay in ``raw``.
- A value that cannot be converted (a wrong type, a malformed time) leaves the attribute
  ``None``; the original value stays in ``raw``.  A reply is never rejected for its data,
  with one exception: a Create* reply without the ID it exists to return (``instance_id``,
  ``driver_id``, ``deployment_id``, typed ``str``) raises ``InvalidResponseError``.
- Lists become tuples, lists of structures become tuples of models.  Under paged ``Data`` the
  list is ``items`` (``Page``), at the top of a body too (``ListResult``); nested lists drop
  their ``List`` suffix: ``TaskList`` → ``tasks``, ``ResourceSnapshotList`` → ``snapshots``,
  ``ConfigList`` → ``configs``.
- Times.  ``Gmt*`` strings (``"2019-06-26 18:12:29"``) carry no zone; they are the service's
  China Standard Time (UTC+8): the GetEdgeInstanceDeployment sample's snapshot created at
  ``18:12:29`` logs its first entry at 1561543949858 ms = 10:12:29.858 UTC.  They become aware
  datetimes in ``SERVICE_TZ``.  ``*Timestamp`` fields (ms since the epoch) become aware UTC
  datetimes; ERRATA's ``GmtCreateTimeStamp`` spelling is accepted.  QueryDeviceProvisioning's
  ``GmtCreate``/``GmtModified`` are ms timestamps already (its notes) and parse the same way.
  One exception: a ``Log`` entry's ``timestamp`` stays the integer ms the service sends, as
  the watcher's events carry it; ``LogEntry.at`` is its UTC datetime.
- Integers arrive as numbers or numeric strings (GetEdgeInstance ``Data.Type`` is ``"0"``,
  QueryEdgeInstance ``Type`` is ``0``: ERRATA "Responses"); both become ``int``.
- JSON-in-a-string fields (driver-version configs, a snapshot's ``Log``) stay ``str`` as the
  service sent them, with parsed accessors (``parsed_source_config``, ``log_entries``).  A
  ``Log`` is read by ``parse_log`` alone, here and in the watcher: ``LogEntry`` is the one
  class of its entries (a plain value, not a model: it has no ``raw``).

Pure: no I/O.  ``parse_result(action, body)`` turns any operation's body into its model;
the typed methods of ``_operations`` call the per-kind parsers directly for precise types.
"""

# The field helpers (_w, _gmt, _stamp, _one, _many, _log_key) return dataclasses.field();
# RUF009 cannot see through them.
# ruff: noqa: RUF009

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

from ._errors import InvalidResponseError
from ._protocol import request_id_of
from ._wire import SUCCEEDED, is_final, more_pages, ms_to_seconds, stamp_keys, to_int, to_str

# The zone of the service's "yyyy-MM-dd HH:mm:ss" strings (see the module docstring).
SERVICE_TZ = timezone(timedelta(hours=8), "UTC+08:00")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------- converters

Converter = Callable[[Any], Any]


_to_str = to_str  # the service's text (a number's too): one rule, in _wire


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TypeError(f"not a boolean: {value!r}")


def _ms_time(value: Any) -> datetime:
    """Milliseconds since the epoch → aware UTC datetime (exact, no float rounding)."""
    return _EPOCH + timedelta(milliseconds=to_int(value))


def _service_time(value: Any) -> datetime:
    """A ``Gmt*`` value: "yyyy-MM-dd HH:mm:ss" in SERVICE_TZ, or ms since the epoch."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _ms_time(value)
    if not isinstance(value, str):
        raise TypeError(f"not a time: {value!r}")
    text = value.strip()
    if text.isdigit():
        return _ms_time(int(text))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"  # fromisoformat learned "Z" only in 3.11
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=SERVICE_TZ)


_M = TypeVar("_M", bound="Model")


def _model_of(model: type[_M]) -> Converter:
    def convert(value: Any) -> _M:
        if not isinstance(value, Mapping):
            raise TypeError(f"not an object: {value!r}")
        return model.from_dict(value)

    return convert


def _tuple_of(model: type[_M]) -> Converter:
    def convert(value: Any) -> tuple[_M, ...]:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"not a list: {value!r}")
        return tuple(model.from_dict(v) for v in value if isinstance(v, Mapping))

    return convert


def _snippet(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "..."


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- field helpers


def _w(name: str, convert: Converter = _to_str, *aliases: str) -> Any:
    """A field read from wire key ``name`` (or an alias), converted on the way in."""
    return field(default=None, metadata={"wire": (name, *aliases), "convert": convert})


def _one(name: str, model: type[Model]) -> Any:
    """A nested structure (``Config``) → one model."""
    meta = {"wire": (name,), "convert": _model_of(model), "model": model, "many": False}
    return field(default=None, metadata=meta)


def _many(name: str, model: type[Model]) -> Any:
    """A nested list of structures (``TaskList``) → a tuple of models."""
    meta = {"wire": (name,), "convert": _tuple_of(model), "model": model, "many": True}
    return field(default=(), metadata=meta)


def _gmt(name: str) -> Any:
    """``GmtCreate``-style time: a service-time string (or ms, see QueryDeviceProvisioning)."""
    return _w(name, _service_time)


def _stamp(name: str) -> Any:
    """``GmtCreateTimestamp``-style ms time (either spelling, see ``_wire.stamp_keys``)."""
    first, second = stamp_keys(name)
    return _w(first, _ms_time, second)


_WireField = tuple[str, tuple[str, ...], Converter]
_FIELDS: dict[type[Any], tuple[_WireField, ...]] = {}  # a cache of fields() per model class


def _wire_fields(cls: type[Model]) -> tuple[_WireField, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(
            (f.name, f.metadata["wire"], f.metadata["convert"])
            for f in fields(cls)
            if "wire" in f.metadata
        )
    return found


def _wire_names(cls: type[Model]) -> dict[str, str]:
    """wire name (and aliases) → attribute name."""
    return {wire: name for name, wires, _ in _wire_fields(cls) for wire in wires}


# ---------------------------------------------------------------------------- base classes


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Model:
    """Base of every response model: ``raw`` keeps the mapping it was parsed from."""

    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Attributes without which a parsed reply is useless (typed ``str``, not optional).
    _required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(
        cls: type[_M],
        data: Mapping[str, Any],
        *,
        raw: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> _M:
        """Build from a wire dict; unknown keys are ignored, unconvertible values are None.

        ``raw`` defaults to ``data``; ``values`` set attributes directly (already converted).
        """
        kwargs: dict[str, Any] = {}
        if isinstance(data, Mapping):
            get = data.get
            for name, wires, convert in _wire_fields(cls):
                value = get(wires[0])
                if value is None and len(wires) > 1:
                    for wire in wires[1:]:
                        value = get(wire)
                        if value is not None:
                            break
                if value is None:
                    continue
                # Tolerated: an unconvertible value leaves None; the original stays in raw.
                try:  # noqa: SIM105 - suppress() costs ~1 us per field here
                    kwargs[name] = convert(value)
                except (TypeError, ValueError, OverflowError):
                    pass
        kwargs.update(values)
        for name in cls._required:
            if not kwargs.get(name):
                raise InvalidResponseError(
                    "InvalidResponse",
                    f"{cls.__name__}: the reply carries no {name} (body: {_snippet(data)})",
                    request_id=request_id_of(data) if isinstance(data, Mapping) else None,
                )
        return cls(raw=data if raw is None else raw, **kwargs)

    def __repr__(self) -> str:
        # Only the fields that are set: a reply documents many optional fields.
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.repr and value is not None and value != ():
                shown.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def _shown(self) -> list[tuple[str, Any]]:
        """The fields a display shows: those set, as in ``repr``."""
        return [
            (f.name, getattr(self, f.name))
            for f in fields(self)
            if f.repr and getattr(self, f.name) is not None and getattr(self, f.name) != ()
        ]

    def _repr_html_(self) -> str:
        """A notebook shows a model as a table of its set fields."""
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
            f"<td>{_html_value(value)}</td></tr>"
            for name, value in self._shown()
        )
        return (
            f"<table class='aioedge-model'><caption style='text-align:left'>"
            f"<b>{html.escape(type(self).__name__)}</b></caption><tbody>{rows}</tbody></table>"
        )


#: How many items a notebook table of a page or list shows.
HTML_ROWS = 50


def _html_value(value: Any, width: int = 120) -> str:
    if isinstance(value, Model):
        text = repr(value)
    elif isinstance(value, tuple) and value and isinstance(value[0], Model):
        text = f"{len(value)} × {type(value[0]).__name__}"
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    else:
        text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return html.escape(text)


def _items_html(items: Sequence[Model], caption: str) -> str:
    """A table of models, one row each, a column per field any of them has set."""
    shown = items[:HTML_ROWS]
    columns: list[str] = []
    for item in shown:
        for name, _value in item._shown():
            if name not in columns:
                columns.append(name)
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_html_value(getattr(item, c, None) or '', 60)}</td>" for c in columns)
        + "</tr>"
        for item in shown
    )
    if len(items) > len(shown):
        body += (
            f"<tr><td colspan='{max(1, len(columns))}'>… {len(items) - len(shown)} more</td></tr>"
        )
    return (
        f"<table class='aioedge-items'><caption style='text-align:left'>{html.escape(caption)}"
        f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Result(Model):
    """A model a typed method can return: it carries the call's ``request_id``.

    The envelope's other fields are not attributes: a model exists only for a successful
    reply (``Success`` true, ``Code`` "Success"); a failure raises ``ApiError`` whose
    ``.code``, ``.message`` (``ErrorMessage``) and ``.request_id`` carry them.
    """

    request_id: str | None = _w("RequestId")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ActionResult(Result):
    """The reply of a mutating call that returns nothing but its ``RequestId``."""


# ---------------------------------------------------------------------------- 2.7 instances


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class CreatedInstance(Result):
    """CreateEdgeInstance: the ID of the new edge instance."""

    _required = ("instance_id",)
    instance_id: str = _w("InstanceId")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class EdgeInstance(Result):
    """An edge instance (GetEdgeInstance, or an item of QueryEdgeInstance).

    ``type``: 0 you own it, 1 you are authorised to use it.  ``spec``: 10 Lite, 20 Standard,
    30 Pro.  ``latest_deployment_status``: 0 not started, 1 processing, 2 succeeded, 3 failed.
    """

    instance_id: str | None = _w("InstanceId")
    name: str | None = _w("Name")
    tags: str | None = _w("Tags")
    type: int | None = _w("Type", to_int)
    spec: int | None = _w("Spec", to_int)
    biz_enable: bool | None = _w("BizEnable", _to_bool)
    latest_deployment_status: int | None = _w("LatestDeploymentStatus", to_int)
    latest_deployment_type: str | None = _w("LatestDeploymentType")
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")
    gmt_create_timestamp: datetime | None = _stamp("GmtCreate")
    gmt_modified_timestamp: datetime | None = _stamp("GmtModified")
    role_arn: str | None = _w("RoleArn")
    role_name: str | None = _w("RoleName")
    role_attach_time: datetime | None = _gmt("RoleAttachTime")
    role_attach_timestamp: datetime | None = _stamp("RoleAttach")

    @property
    def tag_dict(self) -> dict[str, str]:
        """``tags`` ("k1:v1,k2:v2") as a dict; pairs without ':' are skipped."""
        out: dict[str, str] = {}
        for pair in (self.tags or "").split(","):
            key, sep, value = pair.partition(":")
            if sep and key:
                out[key.strip()] = value.strip()
        return out


# ---------------------------------------------------------------------------- 2.8 drivers


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class CreatedDriver(Result):
    """CreateEdgeDriver: the ID of the new driver."""

    _required = ("driver_id",)
    driver_id: str = _w("DriverId")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class EdgeDriver(Result):
    """A driver (BatchGetEdgeDriver, QueryEdgeDriver).  ``type``: 0 official, 1 custom."""

    driver_id: str | None = _w("DriverId")
    driver_name: str | None = _w("DriverName")
    driver_protocol: str | None = _w("DriverProtocol")
    runtime: str | None = _w("Runtime")
    cpu_arch: str | None = _w("CpuArch")
    type: int | None = _w("Type", to_int)
    is_built_in: bool | None = _w("IsBuiltIn", _to_bool)
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")
    gmt_create_timestamp: datetime | None = _stamp("GmtCreate")
    gmt_modified_timestamp: datetime | None = _stamp("GmtModified")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DriverVersion(Result):
    """A driver version (GetEdgeDriverVersion, QueryEdgeDriverVersion).

    ``version_state``: 0 not published, 1 published (the table says String, the sample sends
    a number: both parse to int).  The four config fields are JSON strings kept verbatim;
    ``parsed_*`` give the decoded value, or None when absent or not valid JSON.
    """

    driver_id: str | None = _w("DriverId")
    driver_version: str | None = _w("DriverVersion")
    edge_version: str | None = _w("EdgeVersion")
    description: str | None = _w("Description")
    argument: str | None = _w("Argument")
    version_state: int | None = _w("VersionState", to_int)
    source_config: str | None = _w("SourceConfig")
    driver_config: str | None = _w("DriverConfig")
    config_check_rule: str | None = _w("ConfigCheckRule")
    container_config: str | None = _w("ContainerConfig")
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")
    gmt_create_timestamp: datetime | None = _stamp("GmtCreate")
    gmt_modified_timestamp: datetime | None = _stamp("GmtModified")

    @property
    def parsed_source_config(self) -> Any:
        """``{"ossAddress": ..., "temporaryOssAddress": ...}`` (the temporary link lasts 5 min)."""
        return _json_or_none(self.source_config)

    @property
    def parsed_driver_config(self) -> Any:
        """A list of ``{"format": "KV"|"JSON"|"FILE", "content": ...}``."""
        return _json_or_none(self.driver_config)

    @property
    def parsed_config_check_rule(self) -> Any:
        """``{"deviceConfig": {"required": bool}, "driverConfig": {"required": bool}}``."""
        return _json_or_none(self.config_check_rule)

    @property
    def parsed_container_config(self) -> Any:
        """``{"privileged", "hostNetworkMode", "portMappings", "devMappings", ...}``."""
        return _json_or_none(self.container_config)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class PresignedAddress(Result):
    """CreateEdgeOssPreSignedAddress: upload with a PUT to ``oss_pre_signed_address``."""

    oss_address: str | None = _w("OssAddress")
    oss_pre_signed_address: str | None = _w("OssPreSignedAddress")


# ---------------------------------------------------------------------------- 2.9 gateways


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Gateway(Model):
    """A gateway bound to an edge instance (QueryEdgeInstanceGateway)."""

    iot_id: str | None = _w("IotId")
    product_key: str | None = _w("ProductKey")
    device_name: str | None = _w("DeviceName")
    edge_version: str | None = _w("EdgeVersion")


# ---------------------------------------------------------------------------- 2.10 instance drivers


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class InstanceDriver(Model):
    """A driver bound to an edge instance (QueryEdgeInstanceDriver)."""

    driver_id: str | None = _w("DriverId")
    driver_version: str | None = _w("DriverVersion")
    order_id: str | None = _w("OrderId")
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DriverConfig(Model):
    """One configuration of an instance driver.  ``format``: KV, JSON or FILE (OSS URL)."""

    config_id: str | None = _w("ConfigId")
    key: str | None = _w("Key")
    format: str | None = _w("Format")
    content: str | None = _w("Content")

    def to_wire(self) -> dict[str, str]:
        """As a ``Configs.N`` entry, so read configurations can be set again."""
        entry = DriverConfigInput(
            format=self.format or "", content=self.content or "", key=self.key
        )
        return entry.to_wire()


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class InstanceDriverConfigs(Model):
    """The configurations of one driver of an instance (BatchGetEdgeInstanceDriverConfigs)."""

    driver_id: str | None = _w("DriverId")
    configs: tuple[DriverConfig, ...] = _many("ConfigList", DriverConfig)


# ---------------------------------------------------------------------------- 2.11 instance devices


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class InstanceDevice(Model):
    """A device bound to an edge instance (QueryEdgeInstanceDevice).

    The device ID is ``deviceId`` in the table, ``IoId`` in the JSON sample and ``IotId`` in
    the XML one; all three are read into ``iot_id``.
    """

    iot_id: str | None = _w("IotId", _to_str, "IoId", "DeviceId", "deviceId")
    product_key: str | None = _w("ProductKey")
    device_name: str | None = _w("DeviceName")
    driver_id: str | None = _w("DriverId")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DeviceConfigContent(Model):
    """A device's configuration.  ``format``: KV, JSON or FILE (``content`` is an OSS URL)."""

    format: str | None = _w("Format")
    content: str | None = _w("Content")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DeviceConfig(Model):
    """One device's configuration (BatchGetEdgeInstanceDeviceConfig)."""

    iot_id: str | None = _w("IotId", _to_str, "DeviceId", "deviceId")
    config: DeviceConfigContent | None = _one("Config", DeviceConfigContent)

    @property
    def format(self) -> str | None:
        """``config.format``."""
        return self.config.format if self.config else None

    @property
    def content(self) -> str | None:
        """``config.content``."""
        return self.config.content if self.config else None

    def to_wire(self) -> dict[str, str]:
        """As a ``DeviceConfigs.N`` entry, so read configurations can be set again."""
        return DeviceConfigInput(iot_id=self.iot_id or "", content=self.content or "").to_wire()


# ---------------------------------------------------------------------------- 2.12 deployments


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class CreatedDeployment(Result):
    """CreateEdgeInstanceDeployment: the ID of the new deployment."""

    _required = ("deployment_id",)
    deployment_id: str = _w("DeploymentId")


def _log_str(value: Any, key: str) -> str | None:
    return None if value is None else str(value)


def _log_int(value: Any, key: str) -> int | None:
    """Strict, unlike a model's fields: an entry whose number is not one makes the Log
    malformed (``parse_log`` says so and leaves the entry out)."""
    return None if value is None or value == "" else to_int(value, key)


def _log_key(key: str, read: Callable[[Any, str], Any] = _log_str) -> Any:
    """A ``LogEntry`` field: its key in the ``Log`` JSON and how its value is read."""
    return field(default=None, metadata={"wire": (key,), "read": read})


def shown_code(code: str | None) -> str | None:
    """``code`` when it is worth showing people, else ``None``: a ``Log`` entry's code is
    absent, empty or ``"0"`` (success) unless something failed (ERRATA: Deployments).

    The one rule for ``code=…`` in every view (``str(event)``, the tree, the HTML, a
    ``FailureCause``); a non-zero code also marks an entry as :attr:`LogEntry.failed`.
    """
    return None if code is None or code in ("", "0") else code


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One entry of a snapshot's ``Log`` JSON string (ERRATA: Deployments).

    ``timestamp`` is in milliseconds since the epoch, as the service sends it; ``at`` is the
    same moment as an aware UTC datetime.  One class serves ``ResourceSnapshot.log_entries``
    and a watcher's ``log`` events (``aioedge.watch.LogEntry``); a plain value, not a
    response model (it has no ``raw``).

    Changed: ``log_entries`` used to yield a model of its own whose ``timestamp`` was a UTC
    datetime; it yields this class now: ``timestamp`` is the integer ms, ``at`` the datetime.
    """

    resource_id: str | None = _log_key("resourceId")
    code: str | None = _log_key("code")
    stage: int | None = _log_key("stage", _log_int)
    level: str | None = _log_key("level")
    message: str | None = _log_key("message")
    resource_type: str | None = _log_key("resourceType")
    timestamp: int | None = _log_key("timestamp", _log_int)

    @property
    def failed(self) -> bool:
        """True when the entry reports a failure (level ERROR, or a non-zero code)."""
        level = (self.level or "").upper()
        return level in ("ERROR", "FATAL") or self.shown_code is not None

    @property
    def shown_code(self) -> str | None:
        """The code when it is worth showing: not absent, empty or "0" (else ``None``)."""
        return shown_code(self.code)

    @property
    def time(self) -> float | None:
        """``timestamp`` in seconds since the epoch, as events date things."""
        return ms_to_seconds(self.timestamp)

    @property
    def at(self) -> datetime | None:
        """``timestamp`` as an aware UTC datetime; ``None`` when absent or past year 9999."""
        if self.timestamp is None:
            return None
        try:
            return _ms_time(self.timestamp)
        except (OverflowError, ValueError):
            return None

    def sort_key(self) -> tuple[int, int, str, str, str, str, str]:
        """A total order: time first, then every field, so equal logs sort equally."""
        return (
            -1 if self.timestamp is None else self.timestamp,
            -1 if self.stage is None else self.stage,
            self.code or "",
            self.level or "",
            self.message or "",
            self.resource_id or "",
            self.resource_type or "",
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire spelling, as found in the ``Log`` string."""
        return {key: getattr(self, name) for name, key, _read in _LOG_KEYS}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LogEntry:
        """Read one wire entry; raises ``ValueError``/``TypeError`` on a wrong shape."""
        return cls(**{name: read(raw.get(key), key) for name, key, read in _LOG_KEYS})


#: (attribute, key in the ``Log`` JSON, reader) of each ``LogEntry`` field, in wire order.
_LOG_KEYS: tuple[tuple[str, str, Callable[[Any, str], Any]], ...] = tuple(
    (f.name, f.metadata["wire"][0], f.metadata["read"]) for f in fields(LogEntry)
)


def parse_log(raw: Any) -> tuple[tuple[LogEntry, ...], str | None]:
    """Parse a snapshot's ``Log`` (a JSON *string* holding a list, ERRATA: Deployments).

    Returns ``(entries, problem)``: the well-formed entries in time order, and a short
    description of what was wrong, or ``None``.  Never raises.
    """
    if raw is None or raw == "":
        return (), None
    items: Any = raw
    if isinstance(raw, str):
        try:
            items = json.loads(raw)
        except ValueError as exc:
            return (), f"Log is not valid JSON ({exc.__class__.__name__}: {exc})"
        except RecursionError:
            return (), "Log is not valid JSON (nested too deeply)"
    if items is None:
        return (), None
    if not isinstance(items, list):
        return (), f"Log is a JSON {type(items).__name__}, not a list"
    entries: list[LogEntry] = []
    bad: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            bad.append(f"entry {index} is not an object")
            continue
        try:
            entries.append(LogEntry.from_dict(item))
        except (TypeError, ValueError) as exc:
            # A huge or non-finite number (JSON 1e999, Infinity, NaN) is a ValueError too
            # (_wire.to_int never lets an OverflowError out).
            bad.append(f"entry {index}: {exc}")
    entries.sort(key=LogEntry.sort_key)
    problem = "; ".join(bad) if bad else None
    return tuple(entries), problem


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ResourceSnapshot(Model):
    """One resource of a deployment subtask.

    ``operate_type``: 0 deploy, 1 delete.  ``stage``: 0 initial, 8 assembling, 16 packaging,
    24 dispatching, 32 complete.  ``status``: 0 not started, 1 processing, 2 succeeded,
    3 failed.  ``log`` is the JSON string as sent; ``log_entries`` parses it.
    """

    snapshot_id: str | None = _w("SnapshotId")
    resource_id: str | None = _w("ResourceId")
    resource_name: str | None = _w("ResourceName")
    resource_type: str | None = _w("ResourceType")
    operate_type: int | None = _w("OperateType", to_int)
    stage: int | None = _w("Stage", to_int)
    status: int | None = _w("Status", to_int)
    log: str | None = _w("Log")
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")
    gmt_completed: datetime | None = _gmt("GmtCompleted")
    gmt_create_timestamp: datetime | None = _stamp("GmtCreate")
    gmt_modified_timestamp: datetime | None = _stamp("GmtModified")
    gmt_completed_timestamp: datetime | None = _stamp("GmtCompleted")

    @property
    def log_entries(self) -> tuple[LogEntry, ...]:
        """The parsed ``Log`` (ERRATA "Deployments") in time order; empty when absent or
        malformed, and without the entries that do not parse (``parse_log`` reads it).

        A ``Log`` sent as a list rather than its JSON text leaves ``log`` None (it is no
        string) and is read from ``raw``, as the watcher reads it.  (Changed: such a Log
        used to give no entries here while the watcher's events told them.)"""
        return parse_log(self.raw.get("Log") if self.log is None else self.log)[0]

    @property
    def finished(self) -> bool:
        """True once the snapshot succeeded (2) or failed (3)."""
        return is_final(self.status)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DeploymentTask(Model):
    """A deployment subtask: one per gateway, with its resource snapshots."""

    task_id: str | None = _w("TaskId")
    gateway_id: str | None = _w("GatewayId")
    stage: int | None = _w("Stage", to_int)
    status: int | None = _w("Status", to_int)
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")
    gmt_completed: datetime | None = _gmt("GmtCompleted")
    gmt_create_timestamp: datetime | None = _stamp("GmtCreate")
    gmt_modified_timestamp: datetime | None = _stamp("GmtModified")
    gmt_completed_timestamp: datetime | None = _stamp("GmtCompleted")
    snapshots: tuple[ResourceSnapshot, ...] = _many("ResourceSnapshotList", ResourceSnapshot)

    @property
    def finished(self) -> bool:
        """True once the subtask succeeded (2) or failed (3)."""
        return is_final(self.status)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class HistoricDeployment(Result):
    """A deployment as QueryEdgeInstanceHistoricDeployment lists it (no subtasks).

    ``type``: deploy or reset.  ``status``: 0 not started, 1 processing, 2 succeeded,
    3 failed.
    """

    deployment_id: str | None = _w("DeploymentId")
    description: str | None = _w("Description")
    type: str | None = _w("Type")
    status: int | None = _w("Status", to_int)
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")
    gmt_completed: datetime | None = _gmt("GmtCompleted")
    gmt_create_timestamp: datetime | None = _stamp("GmtCreate")
    gmt_modified_timestamp: datetime | None = _stamp("GmtModified")
    gmt_completed_timestamp: datetime | None = _stamp("GmtCompleted")

    @property
    def finished(self) -> bool:
        """True once the deployment succeeded (2) or failed (3)."""
        return is_final(self.status)

    @property
    def succeeded(self) -> bool:
        """True when the deployment succeeded (2)."""
        return self.status == SUCCEEDED


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Deployment(HistoricDeployment):
    """A deployment with its subtasks (GetEdgeInstanceDeployment)."""

    tasks: tuple[DeploymentTask, ...] = _many("TaskList", DeploymentTask)


# ---------------------------------------------------------------------------- IoT Platform


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DeviceProvisioning(Result):
    """QueryDeviceProvisioning: where a device is provisioned.

    ``gmt_create``/``gmt_modified`` belong to the provisioning task (ms timestamps on the
    wire); for a device never provisioned they are the server's current time.
    """

    product_key: str | None = _w("ProductKey")
    device_name: str | None = _w("DeviceName")
    aliyun_uid: str | None = _w("AliyunUid")
    source_region: str | None = _w("SourceRegion")
    source_iot_instance_id: str | None = _w("SourceIotInstanceId")
    target_region: str | None = _w("TargetRegion")
    target_iot_instance_id: str | None = _w("TargetIotInstanceId")
    gmt_create: datetime | None = _gmt("GmtCreate")
    gmt_modified: datetime | None = _gmt("GmtModified")


# ---------------------------------------------------------------------------- containers

_T = TypeVar("_T", bound=Model)
_R = TypeVar("_R", bound=Result)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class _Items(Result, Generic[_T]):
    """A reply that is iterable, sized and indexable like its ``items``."""

    items: tuple[_T, ...] = ()

    def __iter__(self) -> Iterator[_T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[_T, ...]: ...
    def __getitem__(self, index: int | slice) -> _T | tuple[_T, ...]:
        return self.items[index]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ListResult(_Items[_T]):
    """A reply whose body is one list (BatchGet*, QueryEdgeInstanceGateway).

    Iterable, sized and indexable like its ``items``.
    """

    def _repr_html_(self) -> str:
        kind = type(self.items[0]).__name__ if self.items else "item"
        return _items_html(self.items, f"{len(self.items)} × {kind}")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Page(_Items[_T]):
    """One page of a paged ``Query*`` operation: ``items`` plus the paging fields.

    Iterable, sized and indexable like its ``items``; ``has_more`` says whether a later page
    exists (``client.paginate`` walks them all).
    """

    total: int | None = _w("Total", to_int)
    page_size: int | None = _w("PageSize", to_int)
    current_page: int | None = _w("CurrentPage", to_int)

    def _repr_html_(self) -> str:
        kind = type(self.items[0]).__name__ if self.items else "item"
        page, size = self.current_page or 1, self.page_size or len(self.items)
        first = (page - 1) * size + 1
        span = f"{first}–{first + len(self.items) - 1}" if self.items else "none"
        total = f" of {self.total}" if self.total is not None else ""
        more = "; client.paginate() reads every page" if self.has_more else ""
        return _items_html(self.items, f"page {page}: {kind} {span}{total}{more}")

    @property
    def has_more(self) -> bool:
        """Whether a later page may exist, by the rule ``client.paginate`` follows: not after
        an empty or short page, nor once ``current_page * page_size`` reaches ``total``; a
        full page without a ``Total`` may be followed by more."""
        page, size = self.current_page or 1, self.page_size or len(self.items)
        return more_pages(page, size, len(self.items), self.total)


# ---------------------------------------------------------------------------- parsing bodies


def _data(body: Mapping[str, Any]) -> Mapping[str, Any]:
    data = body.get("Data")
    return data if isinstance(data, Mapping) else {}


def _items(model: type[_T], value: Any) -> tuple[_T, ...]:
    try:
        items: tuple[_T, ...] = _tuple_of(model)(value)
    except TypeError:
        return ()
    return items


def parse_data(model: type[_R], body: Mapping[str, Any]) -> _R:
    """A Get*-style body: the model is read from ``Data``; ``raw`` is the whole body."""
    return model.from_dict(_data(body), raw=body, request_id=request_id_of(body))


def parse_page(model: type[_T], items_key: str, body: Mapping[str, Any]) -> Page[_T]:
    """A paged body: ``Data.<items_key>`` → ``items``, with Total/PageSize/CurrentPage."""
    data = _data(body)
    page: Page[_T] = Page.from_dict(
        data, raw=body, request_id=request_id_of(body), items=_items(model, data.get(items_key))
    )
    return page


def parse_list(model: type[_T], items_key: str, body: Mapping[str, Any]) -> ListResult[_T]:
    """A body holding one top-level list ``<items_key>`` → ``items``."""
    result: ListResult[_T] = ListResult.from_dict(body, items=_items(model, body.get(items_key)))
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultSpec:
    """How an operation's body becomes its model.

    ``kind``: ``body`` (model read from the body itself), ``data`` (from ``Data``),
    ``page`` (Page of ``model`` under ``Data.<items_key>``), ``list`` (ListResult of
    ``model`` under ``<items_key>``).
    """

    kind: Literal["body", "data", "page", "list"]
    model: type[Model]
    items_key: str | None = None

    @property
    def annotation(self) -> str:
        """The return type as a typed method spells it."""
        if self.kind == "page":
            return f"Page[{self.model.__name__}]"
        if self.kind == "list":
            return f"ListResult[{self.model.__name__}]"
        return self.model.__name__


def _body(model: type[Model]) -> ResultSpec:
    return ResultSpec(kind="body", model=model)


def _in_data(model: type[Model]) -> ResultSpec:
    return ResultSpec(kind="data", model=model)


def _page(model: type[Model], key: str) -> ResultSpec:
    return ResultSpec(kind="page", model=model, items_key=key)


def _list(model: type[Model], key: str) -> ResultSpec:
    return ResultSpec(kind="list", model=model, items_key=key)


_ACTION = _body(ActionResult)

RESULTS: Mapping[str, ResultSpec] = {
    # 2.7 instances
    "CreateEdgeInstance": _body(CreatedInstance),
    "DeleteEdgeInstance": _ACTION,
    "UpdateEdgeInstance": _ACTION,
    "GetEdgeInstance": _in_data(EdgeInstance),
    "QueryEdgeInstance": _page(EdgeInstance, "InstanceList"),
    # 2.8 drivers
    "CreateEdgeDriver": _body(CreatedDriver),
    "DeleteEdgeDriver": _ACTION,
    "BatchGetEdgeDriver": _list(EdgeDriver, "DriverList"),
    "QueryEdgeDriver": _page(EdgeDriver, "DriverList"),
    "CreateEdgeDriverVersion": _ACTION,
    "DeleteEdgeDriverVersion": _ACTION,
    "UpdateEdgeDriverVersion": _ACTION,
    "GetEdgeDriverVersion": _in_data(DriverVersion),
    "QueryEdgeDriverVersion": _page(DriverVersion, "DriverVersionList"),
    "CreateEdgeOssPreSignedAddress": _in_data(PresignedAddress),
    # 2.9 gateways
    "BindGatewayToEdgeInstance": _ACTION,
    "QueryEdgeInstanceGateway": _list(Gateway, "GatewayList"),
    # 2.10 instance drivers
    "BindDriverToEdgeInstance": _ACTION,
    "UnbindDriverFromEdgeInstance": _ACTION,
    "QueryEdgeInstanceDriver": _page(InstanceDriver, "DriverList"),
    "SetEdgeInstanceDriverConfigs": _ACTION,
    "ClearEdgeInstanceDriverConfigs": _ACTION,
    "BatchGetEdgeInstanceDriverConfigs": _list(InstanceDriverConfigs, "DriverConfigList"),
    # 2.11 instance devices
    "BatchBindDeviceToEdgeInstanceWithDriver": _ACTION,
    "BatchUnbindDeviceFromEdgeInstance": _ACTION,
    "QueryEdgeInstanceDevice": _page(InstanceDevice, "DeviceList"),
    "BatchSetEdgeInstanceDeviceConfig": _ACTION,
    "BatchClearEdgeInstanceDeviceConfig": _ACTION,
    "BatchGetEdgeInstanceDeviceConfig": _list(DeviceConfig, "DeviceConfigList"),
    # 2.12 deployments
    "CreateEdgeInstanceDeployment": _body(CreatedDeployment),
    "CloseEdgeInstanceDeployment": _ACTION,
    "GetEdgeInstanceDeployment": _in_data(Deployment),
    "QueryEdgeInstanceHistoricDeployment": _page(HistoricDeployment, "DeploymentList"),
    # IoT Platform
    "QueryDeviceProvisioning": _in_data(DeviceProvisioning),
}


def parse_result(action: str, body: Mapping[str, Any]) -> Result:
    """Any operation's successful body → its typed model (``RESULTS[action]``)."""
    spec = RESULTS[action]
    if spec.kind == "page":
        assert spec.items_key is not None
        return parse_page(spec.model, spec.items_key, body)
    if spec.kind == "list":
        assert spec.items_key is not None
        return parse_list(spec.model, spec.items_key, body)
    if not issubclass(spec.model, Result):  # pragma: no cover - RESULTS is static
        raise TypeError(f"{spec.model.__name__} is not a Result")
    if spec.kind == "data":
        return parse_data(spec.model, body)
    return spec.model.from_dict(body)


# ---------------------------------------------------------------------------- wire path → attribute

_ENVELOPE = frozenset({"Success", "Code", "ErrorMessage"})


def _nested(cls: type[Model], attr: str) -> tuple[type[Model] | None, bool]:
    """The model a nested attribute holds, and whether it is a tuple of them."""
    for f in fields(cls):
        if f.name == attr and "model" in f.metadata:
            return f.metadata["model"], bool(f.metadata["many"])
    return None, False


def attribute_path(action: str, wire_path: str) -> str | None:
    """Where a documented response field lives on the parsed model.

    ``attribute_path("GetEdgeInstanceDeployment", "Data.TaskList[].ResourceSnapshotList[].Log")``
    → ``"tasks[].snapshots[].log"``; ``"Data"`` of a Get* reply → ``""`` (the model itself);
    the envelope fields (Success, Code, ErrorMessage) → None: they surface as ``ApiError``.
    Raises KeyError when a documented field has no attribute (a bug the tests catch).
    """
    if wire_path in _ENVELOPE:
        return None
    spec = RESULTS[action]
    parts = wire_path.replace("[]", "").split(".")
    out: list[str] = []
    cls: type[Model]
    if spec.kind in ("data", "page") and parts[0] == "Data":
        parts = parts[1:]
    if spec.kind in ("page", "list"):
        cls = Page if spec.kind == "page" else ListResult
        if parts and parts[0] == spec.items_key:
            out.append("items[]" if len(parts) > 1 else "items")
            parts = parts[1:]
            cls = spec.model
    else:
        cls = spec.model
    for i, part in enumerate(parts):
        attr = _wire_names(cls).get(part)
        if attr is None:
            raise KeyError(f"{action}: {wire_path}: no attribute for {part!r} on {cls.__name__}")
        nested, many = _nested(cls, attr)
        out.append(attr + ("[]" if many and i < len(parts) - 1 else ""))
        if nested is not None:
            cls = nested
    return ".".join(out)


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceConfigInput:
    """One ``DeviceConfigs.N`` entry of BatchSetEdgeInstanceDeviceConfig."""

    iot_id: str
    content: str

    def to_wire(self) -> dict[str, str]:
        """The entry under its wire names."""
        return {"IotId": self.iot_id, "Content": self.content}


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverConfigInput:
    """One ``Configs.N`` entry of SetEdgeInstanceDriverConfigs.

    ``format``: KV (key-value pairs), JSON, or FILE (``content`` is the OSS URL of the file).
    """

    format: str
    content: str
    key: str | None = None

    def to_wire(self) -> dict[str, str]:
        """The entry under its wire names (``Key`` only when given)."""
        entry = {"Format": self.format, "Content": self.content}
        if self.key is not None:
            entry["Key"] = self.key
        return entry
