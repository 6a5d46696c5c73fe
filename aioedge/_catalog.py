"""The 34 operations as data, and validation/flattening driven by it.

Everything about an Action that the client, the emulator, the rate limiter, the typed
methods, the CLI and the docs need lives here: wire parameters with their types and
limits, the QPS quota, read-only or mutating, paged or not.  The raw material is the
packaged copy of ``spec/operations.json``; the few rules the JSON states only in prose
(name patterns, tag syntax, parameter dependencies) are added in ``_RULES`` below.

Pure: no I/O beyond reading the packaged JSON once at import.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any

from ._errors import ValidationError

__all__ = [
    "API_VERSION",
    "COMMON_PARAMS",
    "INT_BOUNDS",
    "OPERATIONS",
    "REQUIRED_COMMON_PARAMS",
    "Field",
    "JsonField",
    "Operation",
    "Param",
    "gather_lists",
    "get_operation",
    "snake_case",
    "validate_params",
]

API_VERSION = "2018-01-20"

# 2.4: the common parameters every request must carry (Format, RegionId and SecurityToken
# are optional), in the order the emulator's gateway checks them: it reports the first missing.
REQUIRED_COMMON_PARAMS = (
    "Action",
    "Version",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "Timestamp",
    "SignatureVersion",
    "SignatureNonce",
)

# Parameters the client sets on every request; a caller may not pass them.
COMMON_PARAMS = frozenset(
    (*REQUIRED_COMMON_PARAMS, "Format", "RegionId", "SecurityToken", "SignatureType")
)

# Integer is a signed 32-bit and Long a signed 64-bit number on the service's side.
INT_BOUNDS: Mapping[str, tuple[int, int]] = {
    "Integer": (-(2**31), 2**31 - 1),
    "Long": (-(2**63), 2**63 - 1),
}

_SNAKE_RE = re.compile(r"(?<!^)(?=[A-Z])")

# How much of a bad value an error message quotes, and how deep a JSON document may nest:
# the deepest document the service documents is 3 levels (ContainerConfig.portMappings[i]).
QUOTE_LIMIT = 80
MAX_JSON_DEPTH = 32


def _int_text(value: int) -> str:
    if value.bit_length() <= 200:
        return repr(value)
    return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"


class _Repr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        return _int_text(x)  # repr() refuses integers of over 4,300 digits


def _make_repr() -> reprlib.Repr:
    r = _Repr()
    r.maxlevel = 3
    r.maxstring = r.maxother = r.maxlong = QUOTE_LIMIT
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 6
    return r


_REPR = _make_repr()


def quote(value: Any) -> str:
    """``repr(value)`` for an error message, at most about ``QUOTE_LIMIT`` characters.

    A longer string is cut with an ellipsis and its length; a container is shown a few items
    and levels deep (never recursing through a deep one); a huge integer by its digit count.
    """
    if isinstance(value, str):
        if len(value) <= QUOTE_LIMIT:
            return repr(value)
        return f"{value[:QUOTE_LIMIT]!r}… ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_text(value)
    text = _REPR.repr(value)
    if len(text) > QUOTE_LIMIT:
        size = f", {len(value)} items" if isinstance(value, (list, tuple, dict, set)) else ""
        text = f"{text[:QUOTE_LIMIT]}… ({type(value).__name__}{size})"
    return text


def snake_case(name: str) -> str:
    """``CreateEdgeOssPreSignedAddress`` → ``create_edge_oss_pre_signed_address``."""
    return _SNAKE_RE.sub("_", name).lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field of an element of a list of structures (``DeviceConfigs.N.IotId``)."""

    name: str
    py_name: str
    type: str
    required: bool
    values: tuple[str, ...] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonField:
    """One member of the JSON document a JSON-string parameter holds (spec ``json_fields``).

    ``type`` is String, Integer, Boolean, Object (``fields`` are its members; the spec
    writes them dotted, ``deviceConfig.required``) or List (of objects whose members are
    ``fields``).  Members the spec does not list are accepted as they are.
    """

    name: str
    type: str
    required: bool = False
    values: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    max_items: int | None = None
    pattern: re.Pattern[str] | None = None
    pattern_rule: str = ""
    fields: tuple[JsonField, ...] = ()
    description: str = ""
    constraints: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One request parameter, under its canonical wire name (``IotIds`` for ``IotIds.N``)."""

    name: str
    py_name: str
    type: str  # String | Integer | Long | Boolean
    required: bool
    repeated: bool = False
    fields: tuple[Field, ...] = ()  # non-empty for lists of structures
    max_items: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    max_bytes: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    values: tuple[str, ...] | None = None
    default: Any = None
    pattern: re.Pattern[str] | None = None
    pattern_rule: str = ""
    json_string: bool = False
    # The members a JSON string documents; json_list: also a JSON list of such objects.
    json_fields: tuple[JsonField, ...] = ()
    json_list: bool = False
    # Milliseconds since the epoch: an aware datetime is taken too (and a naive one refused).
    millis: bool = False
    description: str = ""
    example: Any = None

    @property
    def is_struct_list(self) -> bool:
        return bool(self.fields)

    @property
    def python_type(self) -> str:
        """The annotation a typed method uses for this parameter."""
        scalar = {"String": "str", "Integer": "int", "Long": "int", "Boolean": "bool"}[self.type]
        if self.is_struct_list:
            return "Sequence[Mapping[str, str]]"
        if self.repeated:
            return f"Sequence[{scalar}]"
        return scalar


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One Action of the catalog."""

    action: str
    method_name: str
    group: str
    group_title: str
    section: str
    summary: str
    qps: int
    params: tuple[Param, ...]
    read_only: bool
    paged: bool
    items_key: str | None  # for paged operations: the list under Data
    chunk_param: str | None  # the list parameter a batch splits by its max_items
    sample_response: Mapping[str, Any]
    response_fields: tuple[Mapping[str, Any], ...]
    product: str  # "edge" for Link IoT Edge, "iot" for IoT Platform
    success_code: str
    checks: tuple[Callable[[Operation, Mapping[str, Any]], None], ...] = field(
        default=(), repr=False
    )
    # Derived, for validation: params by wire name; for its fast path, the free-form string
    # parameters (no rule but the type) and the required names.
    _by_name: Mapping[str, Param] = field(init=False, repr=False, compare=False)
    _free_strings: frozenset[str] = field(init=False, repr=False, compare=False)
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        free = frozenset(
            p.name
            for p in self.params
            if p.type == "String"
            and not p.repeated
            and (p.min_length or 0) <= 1  # the fast path takes non-empty strings only
            and p.max_length is None
            and p.max_bytes is None
            and p.pattern is None
            and not p.json_string
            and p.values is None
        )
        object.__setattr__(self, "_free_strings", free)
        object.__setattr__(self, "_required", tuple(p.name for p in self.params if p.required))

    def param(self, name: str) -> Param | None:
        return self._by_name.get(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def mutating(self) -> bool:
        return not self.read_only

    @property
    def max_page_size(self) -> int | None:
        """The largest ``PageSize`` a paged operation takes (30), the size a walk over every
        page asks for; ``None`` when the operation is not paged."""
        size = self.param("PageSize")
        return None if size is None or size.maximum is None else int(size.maximum)


# --------------------------------------------------------------------------- rules in prose


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: str | None = None
    rule: str = ""
    max_bytes: int | None = None
    json_string: bool = False
    json_list: bool = False
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    millis: bool = False


_NAME_RULE = _Rule(r"[A-Za-z0-9_-]{1,20}", "1-20 letters, digits, '_' or '-'")
_DRIVER_NAME_RULE = _Rule(
    r"[A-Za-z][A-Za-z0-9_]{0,19}", "1-20 letters, digits or '_', starting with a letter"
)
_DRIVER_VERSION_RULE = _Rule(r"[A-Za-z0-9_.\-]{1,64}", "1-64 letters, digits, '_', '-' or '.'")
_DESCRIPTION_RULE = _Rule(max_bytes=256)
_JSON_RULE = _Rule(json_string=True)
# DriverConfig: described as one {"format","content"} object, but every example (and the
# service's own answers) is a JSON list of such objects; both are taken.
_JSON_LIST_RULE = _Rule(json_string=True, json_list=True)
_PAGE_SIZE_RULE = _Rule(minimum=1, maximum=30)
_CURRENT_PAGE_RULE = _Rule(minimum=1)
_TIME_RULE = _Rule(minimum=0, millis=True)

_RULES: dict[tuple[str, str], _Rule] = {
    ("CreateEdgeInstance", "Name"): _NAME_RULE,
    ("UpdateEdgeInstance", "Name"): _NAME_RULE,
    ("CreateEdgeDriver", "DriverName"): _DRIVER_NAME_RULE,
    ("CreateEdgeDriverVersion", "DriverVersion"): _DRIVER_VERSION_RULE,
    ("CreateEdgeDriverVersion", "Description"): _DESCRIPTION_RULE,
    ("UpdateEdgeDriverVersion", "Description"): _DESCRIPTION_RULE,
    ("CreateEdgeOssPreSignedAddress", "FileName"): _Rule(
        r"[^/\\]+\.[A-Za-z0-9]+", "<file name>.<extension>, no path"
    ),
    ("QueryEdgeInstanceHistoricDeployment", "StartTime"): _TIME_RULE,
    ("QueryEdgeInstanceHistoricDeployment", "EndTime"): _TIME_RULE,
}
for _action in ("CreateEdgeDriverVersion", "UpdateEdgeDriverVersion"):
    for _name in ("SourceConfig", "ConfigCheckRule", "ContainerConfig"):
        _RULES[(_action, _name)] = _JSON_RULE
    _RULES[(_action, "DriverConfig")] = _JSON_LIST_RULE

# Rules of every operation that takes the parameter.  IotInstanceId: None (or leaving it
# out) means "the client's default"; an empty string would send an empty instance id.
_ANY_ACTION_RULES: dict[str, _Rule] = {"IotInstanceId": _Rule(min_length=1)}

# JSON members whose rules ``json_fields`` states in prose (``constraints``), by parameter
# and dotted member path: (pattern, what it means).  Lengths and limits are data already.
_JSON_PATTERNS: dict[tuple[str, str], tuple[str, str]] = {
    ("ContainerConfig", "devMappings.hostPath"): (r"/dev/.*", "a device path starting with /dev/"),
    ("ContainerConfig", "volumeMappings.hostPath"): (r"[^ ]*", "a path without spaces"),
    ("ContainerConfig", "volumeMappings.containerPath"): (
        r"/(?!/*\Z)[^ ]*",
        "an absolute path starting with /, without spaces, not the root directory",
    ),
}

# Tag keys are letters only: the rule as the spec states it, in both CreateEdgeInstance and
# UpdateEdgeInstance ("Tag keys only support letters").  The spec's own example
# "k1:v1,k2:v2" (also CreateEdgeInstance's sample request) breaks that rule, and ERRATA does
# not resolve it; the client follows the stated rule, and the reference pages say so.
_TAG_KEY = re.compile(r"[A-Za-z]{1,20}")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_-]{1,20}")


def _check_tags(op: Operation, params: Mapping[str, Any]) -> None:
    tags = params.get("Tags")
    if tags is None:
        return
    seen: set[str] = set()
    for pair in str(tags).split(","):
        key, sep, value = pair.partition(":")
        if not sep:
            raise _fail(
                op, "Tags", "format", f"must be comma-separated key:value pairs, got {quote(pair)}"
            )
        if not _TAG_KEY.fullmatch(key):
            raise _fail(op, "Tags", "pattern", f"key {quote(key)} must be 1-20 letters")
        if not _TAG_VALUE.fullmatch(value):
            raise _fail(
                op,
                "Tags",
                "pattern",
                f"value {quote(value)} must be 1-20 letters, digits, '_' or '-'",
            )
        if key in seen:
            raise _fail(
                op, "Tags", "unique", f"key {quote(key)} appears twice; keys must be unique"
            )
        seen.add(key)


def _check_gateway_identity(op: Operation, params: Mapping[str, Any]) -> None:
    # 2.9.1: IotId, or ProductKey together with DeviceName.
    pk, dn, iot_id = params.get("ProductKey"), params.get("DeviceName"), params.get("IotId")
    if (pk is None) != (dn is None):
        missing, given = (
            ("DeviceName", "ProductKey") if dn is None else ("ProductKey", "DeviceName")
        )
        raise _fail(op, missing, "dependency", f"is required when {given} is given")
    if iot_id is None and pk is None:
        raise _fail(
            op, "IotId", "required", "is required unless ProductKey and DeviceName are given"
        )


def _check_presigned_instance(op: Operation, params: Mapping[str, Any]) -> None:
    if params.get("Type") == "INSTANCE_DRIVER_VERSION_CONFIG" and params.get("InstanceId") is None:
        raise _fail(
            op, "InstanceId", "required", "is required when Type is INSTANCE_DRIVER_VERSION_CONFIG"
        )


def _check_time_window(op: Operation, params: Mapping[str, Any]) -> None:
    start, end = params.get("StartTime"), params.get("EndTime")
    if start is not None and end is not None and int(start) > int(end):
        raise _fail(op, "StartTime", "range", f"({start}) must not be after EndTime ({end})")


_CHECKS: dict[str, tuple[Callable[[Operation, Mapping[str, Any]], None], ...]] = {
    "CreateEdgeInstance": (_check_tags,),
    "UpdateEdgeInstance": (_check_tags,),
    "BindGatewayToEdgeInstance": (_check_gateway_identity,),
    "CreateEdgeOssPreSignedAddress": (_check_presigned_instance,),
    "QueryEdgeInstanceHistoricDeployment": (_check_time_window,),
}

# --------------------------------------------------------------------------- building


def _spec_text(name: str) -> str:
    return resources.files("aioedge").joinpath("_spec").joinpath(name).read_text(encoding="utf-8")


def _enum(raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    values = raw.get("values")
    if not values or raw.get("type") == "Boolean":
        return None
    return tuple(str(v) for v in values)


def _build_json_fields(
    param: str, raws: Sequence[Mapping[str, Any]], prefix: str = ""
) -> tuple[JsonField, ...]:
    """``json_fields`` rows as a tree: dotted names become members of an Object."""
    out: list[JsonField] = []
    nested: dict[str, list[Mapping[str, Any]]] = {}
    for raw in raws:
        head, dot, rest = raw["name"].partition(".")
        if dot:
            if head not in nested:
                nested[head] = []
                out.append(JsonField(name=head, type="Object"))
            nested[head].append({**raw, "name": rest})
            continue
        path = f"{prefix}{head}"
        pattern, pattern_rule = _JSON_PATTERNS.get((param, path), (None, ""))
        out.append(
            JsonField(
                name=head,
                type=raw["type"],
                required=bool(raw.get("required")),
                values=_enum(raw),
                minimum=raw.get("min"),
                maximum=raw.get("max"),
                min_length=raw.get("min_length"),
                max_length=raw.get("max_length"),
                max_items=raw.get("max_items"),
                pattern=re.compile(pattern, re.S) if pattern else None,
                pattern_rule=pattern_rule,
                fields=_build_json_fields(param, raw.get("items", ()), f"{path}."),
                description=str(raw.get("description", "")),
                constraints=str(raw.get("constraints", "")),
            )
        )
    return tuple(
        dataclasses.replace(
            f, fields=_build_json_fields(param, nested[f.name], f"{prefix}{f.name}.")
        )
        if f.name in nested
        else f
        for f in out
    )


def _build_param(action: str, raw: Mapping[str, Any]) -> Param:
    name = raw["name"].removesuffix(".N")
    rule = _RULES.get((action, name)) or _ANY_ACTION_RULES.get(name) or _Rule()
    minimum = raw.get("min", rule.minimum)
    maximum = raw.get("max", rule.maximum)
    if name == "PageSize":
        minimum, maximum = _PAGE_SIZE_RULE.minimum, raw.get("max", _PAGE_SIZE_RULE.maximum)
    elif name == "CurrentPage":
        minimum = _CURRENT_PAGE_RULE.minimum
    default = raw.get("default")
    if name == "CurrentPage" and default is None:
        default = 1  # every paged operation starts at page 1
    return Param(
        name=name,
        py_name=snake_case(name),
        type=raw["type"],
        required=bool(raw.get("required")),
        repeated=bool(raw.get("repeated")),
        max_items=raw.get("max_items"),
        min_length=raw.get("min_length", rule.min_length),
        max_length=raw.get("max_length"),
        max_bytes=rule.max_bytes,
        minimum=minimum,
        maximum=maximum,
        values=_enum(raw),
        default=default,
        pattern=re.compile(rule.pattern) if rule.pattern else None,
        pattern_rule=rule.rule,
        json_string=rule.json_string,
        json_fields=_build_json_fields(name, raw.get("json_fields", ())),
        json_list=rule.json_list,
        millis=rule.millis,
        description=raw.get("description", ""),
        example=raw.get("example"),
    )


def _build_params(action: str, raw_params: Sequence[Mapping[str, Any]]) -> tuple[Param, ...]:
    """Group ``X.N.Field`` rows into one struct-list Param; keep the rest in doc order."""
    out: list[Param] = []
    structs: dict[str, list[Mapping[str, Any]]] = {}
    for raw in raw_params:
        parts = raw["name"].split(".")
        if len(parts) == 3 and parts[1] == "N":
            if parts[0] not in structs:
                structs[parts[0]] = []
                out.append(Param(name=parts[0], py_name="", type="String", required=False))
            structs[parts[0]].append(raw)
        else:
            out.append(_build_param(action, raw))
    for i, p in enumerate(out):
        rows = structs.get(p.name)
        if rows is None or p.py_name:
            continue
        fields = tuple(
            Field(
                name=r["name"].split(".")[2],
                py_name=snake_case(r["name"].split(".")[2]),
                type=r["type"],
                required=bool(r.get("required")),
                values=_enum(r),
                description=r.get("description", ""),
            )
            for r in rows
        )
        limits = [r["max_items"] for r in rows if r.get("max_items")]
        out[i] = Param(
            name=p.name,
            py_name=snake_case(p.name),
            type="String",
            required=any(f.required for f in fields),
            repeated=True,
            fields=fields,
            max_items=min(limits) if limits else None,
            description=rows[0].get("description", ""),
        )
    # Required first, then optional, as the typed methods and docs present them.
    return tuple(sorted(out, key=lambda p: not p.required))


def _items_key(raw: Mapping[str, Any]) -> str | None:
    for f in raw.get("response", ()):
        path = f["path"]
        if path.startswith("Data.") and path.count(".") == 1 and f["type"] == "Array":
            return str(path.split(".", 1)[1])
    return None


def _build_operation(raw: Mapping[str, Any]) -> Operation:
    action = raw["action"]
    params = _build_params(action, raw["request"])
    paged = any(p.name == "CurrentPage" for p in params)
    chunk = next((p.name for p in params if p.repeated and p.max_items), None)
    checks = _CHECKS.get(action, ())
    product = "iot" if raw["group"] == "device_provisioning" else "edge"
    return Operation(
        action=action,
        method_name=snake_case(action),
        group=raw["group"],
        group_title=raw.get("group_title", raw["group"]),
        section=raw.get("section", ""),
        summary=raw.get("summary", ""),
        qps=int(raw["qps"]),
        params=params,
        read_only=action.startswith(("Get", "Query", "BatchGet")),
        paged=paged,
        items_key=_items_key(raw) if paged else None,
        chunk_param=chunk,
        sample_response=raw.get("sample_json_response") or {},
        response_fields=tuple(raw.get("response", ())),
        product=product,
        success_code="success" if product == "iot" else "Success",
        checks=checks,
    )


def _load() -> dict[str, Operation]:
    data = json.loads(_spec_text("operations.json"))
    return {raw["action"]: _build_operation(raw) for raw in data["operations"]}


OPERATIONS: Mapping[str, Operation] = _load()


def get_operation(action: str) -> Operation:
    """Look an Action up, with a "did you mean" hint for near misses."""
    if not isinstance(action, str):  # (an unhashable one could not even be looked up)
        raise ValidationError(
            f"Action must be a string, got {type(action).__name__}",
            param="Action",
            rule="type",
        )
    op = OPERATIONS.get(action)
    if op is not None:
        return op
    close = difflib.get_close_matches(action, OPERATIONS, n=1) if len(action) < 200 else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValidationError(f"unknown Action {quote(action)}{hint}", param="Action", rule="unknown")


# --------------------------------------------------------------------------- validation


def _fail(op: Operation, param: str, rule: str, text: str) -> ValidationError:
    label = param if len(param) <= QUOTE_LIMIT else quote(param)  # a made-up name, say
    return ValidationError(f"{op.action}: {label} {text}", param=param, rule=rule, action=op.action)


def _check_text(op: Operation, label: str, value: str) -> str:
    """A string the wire can carry: it is sent (and signed) as UTF-8."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _fail(
                op,
                label,
                "encoding",
                f"must be text encodable as UTF-8; {quote(value[exc.start : exc.end])} at "
                f"position {exc.start} is not (a lone surrogate)",
            ) from None
    return value


def _coerce_scalar(op: Operation, label: str, type_: str, value: Any) -> str | int | bool:
    """Check one value's type; wire-form strings are accepted for every type."""
    if type_ == "String":
        if isinstance(value, str):
            return _check_text(op, label, value)
        raise _fail(op, label, "type", f"must be a string, got {type(value).__name__}")
    if type_ in ("Integer", "Long"):
        if isinstance(value, bool):
            raise _fail(op, label, "type", "must be an integer, got bool")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", text := value.strip()):
            sign, digits = ("-", text[1:]) if text[0] == "-" else ("", text)
            digits = digits.lstrip("0") or "0"
            if len(digits) > 30:  # far out of range; int() refuses over 4,300 digits anyway
                low, high = INT_BOUNDS[type_]
                raise _fail(
                    op, label, "range", f"must be {low} to {high}, got {len(digits)} digits"
                )
            return int(sign + digits)
        raise _fail(op, label, "type", f"must be an integer, got {quote(value)}")
    if type_ == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _fail(op, label, "type", f"must be a boolean (true/false), got {quote(value)}")
    raise AssertionError(f"unknown catalog type {type_}")  # pragma: no cover


def _wire(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_range(
    op: Operation,
    label: str,
    type_: str,
    v: int,
    minimum: int | None,
    maximum: int | None,
) -> None:
    if minimum is not None and v < minimum:
        raise _fail(op, label, "range", f"must be >= {minimum}, got {quote(v)}")
    if maximum is not None and v > maximum:
        raise _fail(op, label, "range", f"must be <= {maximum}, got {quote(v)}")
    low, high = INT_BOUNDS[type_]
    if not low <= v <= high:
        bits = 32 if type_ == "Integer" else 64
        raise _fail(
            op,
            label,
            "range",
            f"must fit a signed {bits}-bit {type_} ({low} to {high}), got {quote(v)}",
        )


def _check_length(
    op: Operation, label: str, v: str, min_length: int | None, max_length: int | None
) -> None:
    if min_length is not None and len(v) < min_length:
        text = (
            "must not be empty" if min_length == 1 else f"must be at least {min_length} characters"
        )
        raise _fail(op, label, "min_length", text)
    if max_length is not None and len(v) > max_length:
        raise _fail(op, label, "max_length", f"must be at most {max_length} characters")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _epoch_ms(op: Operation, label: str, value: datetime) -> int:
    """An aware datetime as milliseconds since the epoch; a naive one is refused (its zone
    would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(
            op,
            label,
            "type",
            "must be a timezone-aware datetime or milliseconds since the epoch, "
            "got a naive datetime",
        )
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _check_scalar(op: Operation, p: Param, label: str, value: Any) -> str | int | bool:
    if p.millis and isinstance(value, datetime):
        value = _epoch_ms(op, label, value)
    v = _coerce_scalar(op, label, p.type, value)
    if isinstance(v, str):
        if p.required and not v:
            raise _fail(op, label, "required", "must not be empty")
        _check_length(op, label, v, p.min_length, p.max_length)
        if p.max_bytes is not None and len(v.encode("utf-8")) > p.max_bytes:
            raise _fail(op, label, "max_length", f"must be at most {p.max_bytes} bytes (UTF-8)")
        if p.pattern is not None and not p.pattern.fullmatch(v):
            raise _fail(op, label, "pattern", f"must be {p.pattern_rule}, got {quote(v)}")
        if p.json_string:
            try:
                doc = json.loads(v)
            except ValueError:
                raise _fail(op, label, "format", "must be a JSON string") from None
            except RecursionError:  # nested deeper than the parser goes
                doc = None
                depth = MAX_JSON_DEPTH + 1
            else:
                depth = _json_depth(doc)
            if depth > MAX_JSON_DEPTH:
                raise _fail(
                    op, label, "format", f"must not nest deeper than {MAX_JSON_DEPTH} levels"
                )
            if p.json_fields:
                _check_json_document(op, p, label, doc)
    elif isinstance(v, int) and not isinstance(v, bool):
        _check_range(op, label, p.type, v, p.minimum, p.maximum)
    if p.values is not None and _wire(v) not in p.values:
        allowed = ", ".join(p.values)
        raise _fail(op, label, "enum", f"must be one of {allowed}, got {quote(_wire(v))}")
    return v


def _check_json_document(op: Operation, p: Param, label: str, doc: Any) -> None:
    """The members ``json_fields`` documents, in the JSON a parameter holds."""
    if p.json_list and isinstance(doc, list):
        for i, item in enumerate(doc):
            _check_json_object(op, p.json_fields, f"{label}[{i}]", item)
        return
    if not isinstance(doc, dict):
        shape = "a JSON object or a list of objects" if p.json_list else "a JSON object"
        raise _fail(op, label, "type", f"must hold {shape}, got {_json_type(doc)}")
    _check_json_object(op, p.json_fields, label, doc)


def _json_depth(doc: Any) -> int:
    """How deep a parsed JSON document nests (1 for a scalar), counted without recursion;
    stops counting past ``MAX_JSON_DEPTH``."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        if isinstance(value, dict):
            stack += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value]
    return deepest


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {quote(value)}"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _check_json_object(op: Operation, fields: Sequence[JsonField], label: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(op, label, "type", f"must be a JSON object, got {_json_type(value)}")
    for f in fields:
        member = value.get(f.name)
        path = f"{label}.{f.name}"
        if member is None:  # absent or null: not given
            if f.required:
                # The parameter is there; the document it holds lacks a member: its format.
                raise _fail(op, path, "format", "is required in the JSON")
            continue
        _check_json_value(op, f, path, member)


def _check_json_value(op: Operation, f: JsonField, path: str, v: Any) -> None:
    if f.type == "String":
        if not isinstance(v, str):
            raise _fail(op, path, "type", f"must be a JSON string, got {_json_type(v)}")
        _check_length(op, path, v, f.min_length, f.max_length)
        if f.pattern is not None and not f.pattern.fullmatch(v):
            raise _fail(op, path, "pattern", f"must be {f.pattern_rule}, got {quote(v)}")
    elif f.type in INT_BOUNDS:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _fail(op, path, "type", f"must be a JSON integer, got {_json_type(v)}")
        _check_range(op, path, f.type, v, f.minimum, f.maximum)
    elif f.type == "Boolean":
        if not isinstance(v, bool):
            raise _fail(op, path, "type", f"must be true or false, got {_json_type(v)}")
    elif f.type == "Object":
        _check_json_object(op, f.fields, path, v)
    elif f.type == "List":
        if not isinstance(v, list):
            raise _fail(op, path, "type", f"must be a JSON list, got {_json_type(v)}")
        if f.max_items is not None and len(v) > f.max_items:
            raise _fail(op, path, "max_items", f"has {len(v)} items; at most {f.max_items}")
        for i, item in enumerate(v):
            _check_json_object(op, f.fields, f"{path}[{i}]", item)
        return
    else:  # pragma: no cover - the catalog has no other JSON types
        raise AssertionError(f"unknown JSON field type {f.type}")
    if f.values is not None and str(v) not in f.values:
        allowed = ", ".join(f.values)
        raise _fail(op, path, "enum", f"must be one of {allowed}, got {quote(v)}")


_FLAT_RE = re.compile(r"^([A-Za-z]+)\.(\d+)(?:\.([A-Za-z]+))?$")


def _gather_flattened(
    op: Operation, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[int, Any]]]:
    """Split caller params into plain keys and already-flattened ``X.n[.F]`` keys."""
    plain: dict[str, Any] = {}
    flat: dict[str, dict[int, Any]] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise ValidationError(
                f"{op.action}: parameter names must be strings, got {quote(key)}",
                param=quote(key),
                rule="type",
                action=op.action,
            )
        m = _FLAT_RE.match(key) if "." in key else None
        if m is None:
            plain[key] = value
            continue
        base, index, sub = m.group(1), int(m.group(2)), m.group(3)
        p = op.param(base)
        if p is None or not p.repeated or (sub is None) == p.is_struct_list:
            raise _unknown(op, key)
        if index < 1:
            raise _fail(op, key, "format", "list indexes start at 1")
        slot = flat.setdefault(base, {})
        if sub is None:
            slot[index] = value
        else:
            slot.setdefault(index, {})[sub] = value
    return plain, flat


def gather_lists(op: Operation, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with each list given as ``X.N`` (or ``X.N.Field``) keys gathered under
    ``X``, in index order; every other key as it is, an unknown one included.

    The one reading of the flattened form: validation and a batch's split both use it.
    Raises ValidationError for a name that is not a string, an ``X.N`` key of no list
    parameter, an index below 1, a list given both ways, or indexes with gaps.
    """
    plain, flat = _gather_flattened(op, params)
    for base, slots in flat.items():
        if base in plain:
            raise _fail(op, base, "format", f"given both as a list and as {base}.N keys")
        indexes = sorted(slots)
        if indexes != list(range(1, len(indexes) + 1)):
            raise _fail(op, base, "format", f"indexes must be contiguous from 1, got {indexes}")
        plain[base] = [slots[i] for i in indexes]
    return plain


def _unknown(op: Operation, key: str) -> ValidationError:
    if key in COMMON_PARAMS:
        return _fail(
            op, key, "unknown", "is a common parameter the client sets itself; do not pass it"
        )
    candidates = list(op.param_names) + [p.py_name for p in op.params]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower().replace("_", ""): c for c in op.param_names}
        hit = lowered.get(key.lower().replace("_", ""))
        close = [hit] if hit else []
    if close:
        name = close[0]
        wire = next((p.name for p in op.params if name in (p.name, p.py_name)), name)
        hint = f"; did you mean {wire!r}?"
    else:
        hint = f"; known parameters: {', '.join(op.param_names)}"
    # A blank name would leave the message (and .param) naming nothing: quote it.
    return _fail(
        op, key if key.strip() else repr(key), "unknown", f"is not a parameter of {op.action}{hint}"
    )


def _as_items(op: Operation, p: Param, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _fail(op, p.name, "type", f"must be a list, got {type(value).__name__}")
    return list(value)


def _validate_struct(op: Operation, p: Param, index: int, item: Any) -> dict[str, str]:
    label = f"{p.name}.{index}"
    if not isinstance(item, Mapping):
        raise _fail(
            op, label, "type", f"must be a mapping of {', '.join(f.name for f in p.fields)}"
        )
    by_name = {f.name: f for f in p.fields}
    by_py = {f.py_name: f for f in p.fields}
    out: dict[str, str] = {}
    for key, value in item.items():
        fld = by_name.get(key) or by_py.get(key)
        if fld is None:
            raise _fail(
                op,
                f"{label}.{key}",
                "unknown",
                f"is not a field of {p.name} (fields: {', '.join(by_name)})",
            )
        if value is None:
            continue
        sub = Param(
            name=fld.name,
            py_name=fld.py_name,
            type=fld.type,
            required=fld.required,
            values=fld.values,
        )
        out[fld.name] = _wire(_check_scalar(op, sub, f"{label}.{fld.name}", value))
    for fld in p.fields:
        if fld.required and fld.name not in out:
            raise _fail(op, f"{label}.{fld.name}", "required", "is required")
    return out


def validate_params(
    op: Operation, params: Mapping[str, Any] | None, *, apply_defaults: bool = True
) -> dict[str, str]:
    """Validate caller parameters against the catalog and flatten them for the wire.

    Accepts wire names (``"IotIds": [...]``, ``"DeviceConfigs": [{"IotId":..., "Content":...}]``)
    or already-flattened keys (``"IotIds.1"``).  ``None`` values mean "not given".
    Raises ValidationError naming the parameter and the rule; returns ``{wire: str}``.
    """
    if type(params) is dict and not op.checks:
        fast = _free_strings_only(op, params)
        if fast is not None:
            return fast
    return _validate_full(op, params, apply_defaults=apply_defaults)


def _free_strings_only(op: Operation, params: dict[str, Any]) -> dict[str, str] | None:
    """The common case in one pass: every key an exact name of a free-form string parameter
    with a non-empty str value (or None) that UTF-8 can encode, every required one present.
    Anything else (lists, numbers, enums, patterns, flattened keys, errors, defaults)
    returns None for the full path, which gives the same answer for these inputs (a test
    checks it)."""
    free = op._free_strings
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None and key in free:
            continue
        if type(value) is not str or not value or key not in free:
            return None
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return None  # the full path names the parameter and the rule
        out[key] = value
    for name in op._required:
        if name not in out:
            return None
    return out


def _validate_full(
    op: Operation, params: Mapping[str, Any] | None, *, apply_defaults: bool
) -> dict[str, str]:
    params = params or {}
    if type(params) is not dict and not isinstance(params, Mapping):
        raise ValidationError(
            f"{op.action}: params must be a mapping, got {type(params).__name__}",
            param="params",
            rule="type",
            action=op.action,
        )
    plain = gather_lists(op, params)
    out: dict[str, str] = {}
    checked: dict[str, Any] = {}
    for key, value in plain.items():
        p = op.param(key)
        if p is None:
            raise _unknown(op, key)
        if value is None:
            continue
        if p.repeated:
            items = _as_items(op, p, value)
            if not items:
                if p.required:
                    raise _fail(op, p.name, "required", "must have at least one item")
                continue
            if p.max_items is not None and len(items) > p.max_items:
                raise _fail(
                    op,
                    p.name,
                    "max_items",
                    f"has {len(items)} items; at most {p.max_items} per call "
                    f"(client.batch splits larger lists)",
                )
            for i, item in enumerate(items, start=1):
                if p.is_struct_list:
                    for sub, v in _validate_struct(op, p, i, item).items():
                        out[f"{p.name}.{i}.{sub}"] = v
                else:
                    out[f"{p.name}.{i}"] = _wire(_check_scalar(op, p, f"{p.name}.{i}", item))
            checked[p.name] = items
        else:
            scalar = _check_scalar(op, p, p.name, value)
            out[p.name] = _wire(scalar)
            checked[p.name] = scalar

    for p in op.params:
        if p.name in checked:
            continue
        if apply_defaults and p.default is not None and p.required:
            out[p.name] = _wire(p.default)
            checked[p.name] = p.default
        elif p.required:
            raise _fail(op, p.name, "required", "is required")
    for check in op.checks:
        check(op, checked)
    return out
