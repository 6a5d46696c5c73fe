"""The catalog against the spec, and every validation rule of every operation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from aioedge import ValidationError
from aioedge._catalog import (
    INT_BOUNDS,
    OPERATIONS,
    JsonField,
    Operation,
    Param,
    get_operation,
    snake_case,
    validate_params,
)

# The spec the package was built from, beside the repository where there is one (optional).
SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "spec"
PACKAGED = Path(__file__).resolve().parents[1] / "aioedge" / "_spec"


def _valid_value(op: Operation, p: Param) -> Any:
    """A value that passes every rule of ``p``."""
    if p.is_struct_list:
        item = {f.name: (f.values[0] if f.values else "v") for f in p.fields if f.required}
        return [item]
    if p.values:
        scalar: Any = p.values[0]
    elif p.type in ("Integer", "Long"):
        scalar = p.minimum if p.minimum is not None else 1
    elif p.type == "Boolean":
        scalar = True
    elif p.json_string:
        scalar = "{}"
    elif p.name == "FileName":
        scalar = "driver.zip"
    elif p.name == "Tags":
        scalar = "k:v"
    elif p.pattern is not None:
        scalar = "Abc_1"
    else:
        scalar = "x1"
    if p.type in ("Integer", "Long") and p.values:
        scalar = int(scalar)
    return [scalar] if p.repeated else scalar


# ---- JSON documents of JSON-string parameters (their ``json_fields``)

_PATH_SAMPLES = ("/dev/ttyS0", "/var/lib/driver", "data")


def _valid_json_value(f: JsonField) -> Any:
    """A value of one documented JSON member that passes its every rule."""
    if f.values:
        return int(f.values[0]) if f.type in INT_BOUNDS else f.values[0]
    if f.type == "String":
        for sample in _PATH_SAMPLES:
            if f.pattern is None or f.pattern.fullmatch(sample):
                return sample
        raise AssertionError(f"no sample fits {f.name}")  # pragma: no cover
    if f.type in INT_BOUNDS:
        return f.minimum if f.minimum is not None else 1
    if f.type == "Boolean":
        return True
    if f.type == "Object":
        return _valid_json_object(f.fields)
    return [_valid_json_object(f.fields)]  # List


def _valid_json_object(fields: Sequence[JsonField]) -> dict[str, Any]:
    return {f.name: _valid_json_value(f) for f in fields if f.required}


def _json_cases(fields: Sequence[JsonField], label: str) -> Iterator[tuple[str, str, Any]]:
    """(rule, member path, a document breaking that rule of that member and no other)."""
    base = _valid_json_object(fields)
    for f in fields:
        path = f"{label}.{f.name}"
        valid = _valid_json_value(f)

        def put(value: Any, f: JsonField = f) -> dict[str, Any]:
            return {**base, f.name: value}

        yield "type", path, put(12 if f.type == "String" else "12")
        if f.type in INT_BOUNDS:
            yield "type", path, put(True)  # a JSON boolean is not a number
            yield "type", path, put(1.5)
            low, high = INT_BOUNDS[f.type]
            yield "range", path, put(high + 1)
            yield "range", path, put(low - 1)
        if f.required:
            yield "format", path, {k: v for k, v in base.items() if k != f.name}
            yield "format", path, put(None)
        if f.values:
            yield "enum", path, put(7 if f.type in INT_BOUNDS else "__nope__")
        if f.minimum is not None:
            yield "range", path, put(f.minimum - 1)
        if f.maximum is not None:
            yield "range", path, put(f.maximum + 1)
        if f.min_length is not None:
            yield "min_length", path, put(valid[: f.min_length - 1])
        if f.max_length is not None:
            yield "max_length", path, put(valid + "a" * f.max_length)
        if f.pattern is not None:
            yield "pattern", path, put("bad path")
        if f.max_items is not None:
            yield "max_items", path, put(valid * (f.max_items + 1))
        if f.type == "Object":
            for rule, sub, doc in _json_cases(f.fields, path):
                yield rule, sub, put(doc)
        if f.type == "List":
            yield "type", f"{path}[0]", put(["x"])
            for rule, sub, doc in _json_cases(f.fields, f"{path}[0]"):
                yield rule, sub, put([doc])


def json_rule_cases(p: Param) -> Iterator[tuple[str, str, str]]:
    """(rule, member path, wire value) for every documented rule inside ``p``'s JSON."""
    if not p.json_fields:
        return
    yield "type", p.name, json.dumps("a string" if p.json_list else [])
    shapes = [(p.name, lambda doc: doc)]
    if p.json_list:  # one object, or a list of such objects: each is checked
        first = _valid_json_object(p.json_fields)
        shapes.append((f"{p.name}[1]", lambda doc: [first, doc]))
        yield "type", f"{p.name}[0]", json.dumps([[]])
    for label, shape in shapes:
        for rule, path, doc in _json_cases(p.json_fields, label):
            yield rule, path, json.dumps(shape(doc))


def valid_params(op: Operation) -> dict[str, Any]:
    params = {p.name: _valid_value(op, p) for p in op.params if p.required}
    if op.action == "BindGatewayToEdgeInstance":
        params["IotId"] = "gw1"
    return params


def test_packaged_spec_matches_its_committed_checksums() -> None:
    """The packaged spec is the one the typed methods were generated from (the generator
    writes these checksums with ``_operations.py``; its staleness test checks both)."""
    lines = (PACKAGED / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    pinned = dict(reversed(line.split("  ", 1)) for line in lines)
    names = {p.name for p in PACKAGED.glob("*.json")}
    assert set(pinned) == names == {"operations.json", "errors.json"}
    for name, digest in pinned.items():
        assert hashlib.sha256((PACKAGED / name).read_bytes()).hexdigest() == digest, name


def test_packaged_spec_is_the_shared_spec() -> None:
    if not SPEC_DIR.exists():
        pytest.skip(f"no spec beside the repository ({SPEC_DIR}); the checksums still hold")
    for name in ("operations.json", "errors.json"):
        assert json.loads((PACKAGED / name).read_text()) == json.loads(
            (SPEC_DIR / name).read_text()
        )


def test_34_operations_with_quotas_from_errata() -> None:
    assert len(OPERATIONS) == 34
    qps = {a: op.qps for a, op in OPERATIONS.items()}
    assert qps["QueryDeviceProvisioning"] == 50
    assert qps["GetEdgeInstanceDeployment"] == 5
    assert qps["DeleteEdgeDriver"] == 5
    assert qps["GetEdgeInstance"] == 10
    assert sorted(set(qps.values())) == [5, 10, 50]


def test_method_names() -> None:
    assert get_operation("CreateEdgeOssPreSignedAddress").method_name == (
        "create_edge_oss_pre_signed_address"
    )
    assert snake_case("IotIds") == "iot_ids"
    assert len({op.method_name for op in OPERATIONS.values()}) == 34


def test_read_only_and_paged() -> None:
    ro = {a for a, op in OPERATIONS.items() if op.read_only}
    assert "GetEdgeInstanceDeployment" in ro and "BatchGetEdgeDriver" in ro
    assert (
        "CreateEdgeInstanceDeployment" not in ro
        and "BatchBindDeviceToEdgeInstanceWithDriver" not in ro
    )
    paged = {a: op.items_key for a, op in OPERATIONS.items() if op.paged}
    assert paged == {
        "QueryEdgeInstance": "InstanceList",
        "QueryEdgeDriver": "DriverList",
        "QueryEdgeDriverVersion": "DriverVersionList",
        "QueryEdgeInstanceDriver": "DriverList",
        "QueryEdgeInstanceDevice": "DeviceList",
        "QueryEdgeInstanceHistoricDeployment": "DeploymentList",
    }


def test_errata_wire_names() -> None:
    for action, op in OPERATIONS.items():
        names = set(op.param_names)
        assert not any(n[-2:] == "ld" and n.lower().endswith("instanceld") for n in names)
        if op.product == "edge":
            assert "IotInstanceId" in names, action
    assert get_operation("BatchSetEdgeInstanceDeviceConfig").param("DeviceConfigs") is not None
    fields = {
        f.name
        for f in get_operation("BatchSetEdgeInstanceDeviceConfig").param("DeviceConfigs").fields
    }  # type: ignore[union-attr]
    assert fields == {"IotId", "Content"}
    assert "DeploymentId" in get_operation("GetEdgeInstanceDeployment").param_names


@pytest.mark.parametrize("action", sorted(OPERATIONS))
def test_valid_params_pass(action: str) -> None:
    op = OPERATIONS[action]
    wire = validate_params(op, valid_params(op))
    assert all(isinstance(v, str) for v in wire.values())


# ---- every rule of every operation, generated from the catalog


def _rule_cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    cases: list[tuple[str, str, str, dict[str, Any]]] = []
    for action, op in sorted(OPERATIONS.items()):
        base = valid_params(op)
        cases.append((action, "unknown", "NoSuchParam", {**base, "NoSuchParam": "x"}))
        for p in op.params:
            if p.required and p.default is None and action != "BindGatewayToEdgeInstance":
                cases.append(
                    (action, "required", p.name, {k: v for k, v in base.items() if k != p.name})
                )
            if p.type == "String" and not p.is_struct_list:
                lone = ["\udcff"] if p.repeated else "ok \udcff"
                label = f"{p.name}.1" if p.repeated else p.name
                cases.append((action, "encoding", label, {**base, p.name: lone}))
            if p.type in INT_BOUNDS:
                low, high = INT_BOUNDS[p.type]
                for out_of_bounds in (high + 1, low - 1, str(high + 1)):
                    cases.append((action, "range", p.name, {**base, p.name: out_of_bounds}))
            if p.min_length is not None:
                cases.append(
                    (action, "min_length", p.name, {**base, p.name: "a" * (p.min_length - 1)})
                )
            for rule, path, wire in json_rule_cases(p):
                cases.append((action, rule, path, {**base, p.name: wire}))
            wrong: Any = 12 if p.type == "String" and not p.repeated else "not-a-number"
            if p.type == "Boolean":
                wrong = "maybe"
            if p.repeated:
                wrong = "not-a-list"
            cases.append((action, "type", p.name, {**base, p.name: wrong}))
            if p.values and not p.repeated:
                bad_enum: Any = 7 if p.type in ("Integer", "Long") else "__nope__"
                cases.append((action, "enum", p.name, {**base, p.name: bad_enum}))
            if p.minimum is not None:
                cases.append((action, "range", p.name, {**base, p.name: p.minimum - 1}))
            if p.maximum is not None:
                cases.append((action, "range", p.name, {**base, p.name: p.maximum + 1}))
            if p.max_length is not None:
                cases.append(
                    (action, "max_length", p.name, {**base, p.name: "a" * (p.max_length + 1)})
                )
            if p.max_bytes is not None:
                cases.append(
                    (action, "max_length", p.name, {**base, p.name: "é" * (p.max_bytes // 2 + 1)})
                )
            if p.pattern is not None:
                cases.append((action, "pattern", p.name, {**base, p.name: "bad name!"}))
            if p.json_string:
                cases.append((action, "format", p.name, {**base, p.name: "{not json"}))
            if p.max_items is not None:
                item = _valid_value(op, p)[0]
                cases.append(
                    (action, "max_items", p.name, {**base, p.name: [item] * (p.max_items + 1)})
                )
            if p.is_struct_list:
                cases.append(
                    (
                        action,
                        "unknown",
                        f"{p.name}.1.Bogus",
                        {**base, p.name: [{**_valid_value(op, p)[0], "Bogus": "x"}]},
                    )
                )
                for f in p.fields:
                    if f.required:
                        item = {k: v for k, v in _valid_value(op, p)[0].items() if k != f.name}
                        cases.append(
                            (action, "required", f"{p.name}.1.{f.name}", {**base, p.name: [item]})
                        )
                    if f.values:
                        item = {**_valid_value(op, p)[0], f.name: "__nope__"}
                        cases.append(
                            (action, "enum", f"{p.name}.1.{f.name}", {**base, p.name: [item]})
                        )
                    if f.type == "String":
                        item = {**_valid_value(op, p)[0], f.name: "\udcff"}
                        cases.append(
                            (action, "encoding", f"{p.name}.1.{f.name}", {**base, p.name: [item]})
                        )
    return cases


RULE_CASES = _rule_cases()


@pytest.mark.parametrize(
    ("action", "rule", "param", "params"),
    RULE_CASES,
    ids=[f"{a}-{r}-{p}" for a, r, p, _ in RULE_CASES],
)
def test_every_rule_is_enforced(action: str, rule: str, param: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        validate_params(OPERATIONS[action], params)
    err = info.value
    assert (err.param, err.rule) == (param, rule), str(err)
    assert param in str(err)
    assert err.action == action


def _json_paths(fields: Sequence[JsonField], label: str) -> Iterator[str]:
    for f in fields:
        yield f"{label}.{f.name}"
        yield from _json_paths(f.fields, f"{label}.{f.name}" + ("[0]" if f.type == "List" else ""))


def test_rule_cases_cover_every_parameter_and_json_member() -> None:
    covered = {(a, p.split(".")[0]) for a, _, p, _ in RULE_CASES}
    cases = {(a, r, p) for a, r, p, _ in RULE_CASES}
    for action, op in OPERATIONS.items():
        for p in op.params:
            assert (action, p.name) in covered
            for path in _json_paths(p.json_fields, p.name):
                assert (action, "type", path) in cases, path
    json_params = {(a, p.name) for a, op in OPERATIONS.items() for p in op.params if p.json_fields}
    spec = json.loads((PACKAGED / "operations.json").read_text())["operations"]
    assert json_params == {
        (op["action"], row["name"]) for op in spec for row in op["request"] if "json_fields" in row
    }


def test_did_you_mean() -> None:
    with pytest.raises(ValidationError, match="did you mean 'PageSize'"):
        validate_params(get_operation("QueryEdgeInstance"), {"PageSise": 3})
    with pytest.raises(ValidationError, match="did you mean 'InstanceId'"):
        validate_params(get_operation("GetEdgeInstance"), {"instance_id": "x"})
    with pytest.raises(ValidationError, match="did you mean 'GetEdgeInstance'"):
        get_operation("GetEdgeInstances")


def test_common_params_are_rejected_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="common parameter") as info:
        validate_params(
            get_operation("GetEdgeInstance"), {"InstanceId": "x", "RegionId": "cn-beijing"}
        )
    assert info.value.param == "RegionId"


def test_list_flattening_both_forms() -> None:
    op = get_operation("BatchGetEdgeInstanceDeviceConfig")
    a = validate_params(op, {"InstanceId": "i", "IotIds": ["a", "b", "c"]})
    b = validate_params(op, {"InstanceId": "i", "IotIds.1": "a", "IotIds.2": "b", "IotIds.3": "c"})
    assert a == b == {"InstanceId": "i", "IotIds.1": "a", "IotIds.2": "b", "IotIds.3": "c"}
    with pytest.raises(ValidationError, match="contiguous") as info:
        validate_params(op, {"InstanceId": "i", "IotIds.1": "a", "IotIds.3": "c"})
    assert info.value.param == "IotIds"
    with pytest.raises(ValidationError, match="both"):
        validate_params(op, {"InstanceId": "i", "IotIds.1": "a", "IotIds": ["b"]})


def test_struct_list_flattening() -> None:
    op = get_operation("BatchSetEdgeInstanceDeviceConfig")
    wire = validate_params(
        op,
        {
            "InstanceId": "i",
            "DeviceConfigs": [{"IotId": "d1", "Content": "a"}, {"iot_id": "d2", "content": "b"}],
        },
    )
    assert wire == {
        "InstanceId": "i",
        "DeviceConfigs.1.IotId": "d1",
        "DeviceConfigs.1.Content": "a",
        "DeviceConfigs.2.IotId": "d2",
        "DeviceConfigs.2.Content": "b",
    }
    flat = validate_params(
        op, {"InstanceId": "i", "DeviceConfigs.1.IotId": "d1", "DeviceConfigs.1.Content": "a"}
    )
    assert flat == {
        "InstanceId": "i",
        "DeviceConfigs.1.IotId": "d1",
        "DeviceConfigs.1.Content": "a",
    }


def test_wire_values_are_strings() -> None:
    op = get_operation("UpdateEdgeInstance")
    wire = validate_params(op, {"InstanceId": "i", "Name": "n", "Spec": 30, "BizEnable": False})
    assert wire["Spec"] == "30" and wire["BizEnable"] == "false"
    # wire-form strings are accepted (the emulator validates what it receives)
    assert (
        validate_params(op, {"InstanceId": "i", "Name": "n", "BizEnable": "true"})["BizEnable"]
        == "true"
    )


def test_paging_defaults() -> None:
    assert validate_params(get_operation("QueryEdgeInstance"), {}) == {
        "CurrentPage": "1",
        "PageSize": "10",
    }
    with pytest.raises(ValidationError, match="required"):
        validate_params(get_operation("QueryEdgeDriver"), {})  # Type has no default


def test_tags_rules() -> None:
    op = get_operation("CreateEdgeInstance")
    assert validate_params(op, {"Name": "n", "Tags": "k:v,kk:v_2-x"})["Tags"] == "k:v,kk:v_2-x"
    for bad, rule in [
        ("k", "format"),
        ("k1:v", "pattern"),
        ("k:", "pattern"),
        ("k:v,k:w", "unique"),
    ]:
        with pytest.raises(ValidationError) as info:
            validate_params(op, {"Name": "n", "Tags": bad})
        assert (info.value.param, info.value.rule) == ("Tags", rule)


def test_spec_tags_example_breaks_its_own_rule_and_the_reference_says_so() -> None:
    """The spec's Tags example has digits in its keys; its stated rule allows letters only.

    The client follows the rule (ERRATA does not resolve this); the generated reference
    carries a note for both operations that take Tags.
    """
    spec = {
        op["action"]: op
        for op in json.loads((PACKAGED / "operations.json").read_text())["operations"]
    }
    page = (PACKAGED.parent.parent / "docs" / "reference" / "instance.md").read_text()
    for action in ("CreateEdgeInstance", "UpdateEdgeInstance"):
        op = get_operation(action)
        tags = op.param("Tags")
        assert tags is not None and tags.example == "k1:v1,k2:v2"
        [row] = [r for r in spec[action]["request"] if r["name"] == "Tags"]
        assert "letters only" in row["constraints"]
        base = {k: v for k, v in valid_params(op).items() if k != "Tags"}
        with pytest.raises(ValidationError) as info:
            validate_params(op, {**base, "Tags": tags.example})
        assert (info.value.param, info.value.rule) == ("Tags", "pattern")
        section = page.split(f"## {action}\n", 1)[1].split("\n## ", 1)[0]
        assert "the documented example breaks the documented rule" in section
        assert "`k1:v1,k2:v2`" in section
    sample = spec["CreateEdgeInstance"]["sample_request_params"]
    with pytest.raises(ValidationError, match="Tags key 'k1'"):
        validate_params(get_operation("CreateEdgeInstance"), {"Name": "n", "Tags": sample["Tags"]})


def test_dependencies() -> None:
    bind = get_operation("BindGatewayToEdgeInstance")
    assert validate_params(bind, {"InstanceId": "i", "ProductKey": "pk", "DeviceName": "dn"})
    with pytest.raises(ValidationError) as info:
        validate_params(bind, {"InstanceId": "i", "ProductKey": "pk"})
    assert (info.value.param, info.value.rule) == ("DeviceName", "dependency")
    with pytest.raises(ValidationError) as info:
        validate_params(bind, {"InstanceId": "i"})
    assert info.value.param == "IotId"
    oss = get_operation("CreateEdgeOssPreSignedAddress")
    base = {"FileName": "a.zip", "ResourceId": "d", "ResourceVersion": "1"}
    assert validate_params(oss, {**base, "Type": "DRIVER_VERSION_CONTENT"})
    with pytest.raises(ValidationError) as info:
        validate_params(oss, {**base, "Type": "INSTANCE_DRIVER_VERSION_CONFIG"})
    assert info.value.param == "InstanceId"
    hist = get_operation("QueryEdgeInstanceHistoricDeployment")
    with pytest.raises(ValidationError) as info:
        validate_params(hist, {"InstanceId": "i", "StartTime": 10, "EndTime": 5})
    assert (info.value.param, info.value.rule) == ("StartTime", "range")


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        (
            "BindGatewayToEdgeInstance",
            {"InstanceId": "i", "DeviceName": "dn"},
            "BindGatewayToEdgeInstance: ProductKey is required when DeviceName is given",
        ),
        (
            "BindGatewayToEdgeInstance",
            {"InstanceId": "i"},
            "BindGatewayToEdgeInstance: IotId is required unless ProductKey and DeviceName "
            "are given",
        ),
        (
            "QueryEdgeInstanceHistoricDeployment",
            {"InstanceId": "i", "StartTime": 10, "EndTime": 5},
            "QueryEdgeInstanceHistoricDeployment: StartTime (10) must not be after EndTime (5)",
        ),
        (
            "UpdateEdgeInstance",
            {"InstanceId": "i", "Name": "n", "Tags": "a:b,a:c"},
            "UpdateEdgeInstance: Tags key 'a' appears twice; keys must be unique",
        ),
    ],
)
def test_cross_parameter_errors_name_the_action_and_the_parameters(
    action: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_params(get_operation(action), params)
    assert str(info.value) == message
    assert info.value.action == action


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(ValidationError, match="got bool"):
        validate_params(get_operation("QueryEdgeInstance"), {"PageSize": True})


def _driver_version_ops() -> list[Operation]:
    return [get_operation("CreateEdgeDriverVersion"), get_operation("UpdateEdgeDriverVersion")]


@pytest.mark.parametrize("op", _driver_version_ops(), ids=lambda op: op.action)
def test_documented_json_examples_pass(op: Operation) -> None:
    spec = {
        o["action"]: o for o in json.loads((PACKAGED / "operations.json").read_text())["operations"]
    }[op.action]
    base = valid_params(op)
    for p in op.params:
        if p.json_fields:
            assert validate_params(op, {**base, p.name: p.example})[p.name] == p.example
    # The sample request's JSON strings too (its DriverConfig over-escapes its inner quotes,
    # as the spec's notes say, and is not JSON at all).
    for name, value in spec.get("sample_request_params", {}).items():
        p = op.param(name)
        if p is not None and p.json_fields and name != "DriverConfig":
            assert validate_params(op, {**base, name: value})[name] == value


def test_json_members_the_spec_does_not_list_and_nulls_are_accepted() -> None:
    op = get_operation("CreateEdgeDriverVersion")
    base = valid_params(op)
    container = {
        "privileged": 0,
        "hostNetworkMode": None,
        "runtime": "docker",
        "portMappings": [
            {"hostPort": 65535, "containerPort": 1, "protocol": "udp", "note": "x"},
        ],
        "devMappings": [{"hostPath": "/dev/ttyUSB0", "permission": "rw", "comment": None}],
        "volumeMappings": [
            {"hostPath": "relative/dir", "containerPath": "/data", "permission": "ro"}
        ],
    }
    check_rule = {"deviceConfig": {"required": True, "extra": 1}, "future": {}}
    for name, doc in [
        ("ContainerConfig", container),
        ("ConfigCheckRule", check_rule),
        ("DriverConfig", {"format": "KV", "content": "a=1", "version": 2}),
        ("DriverConfig", [{"format": "FILE"}, {}]),
        ("SourceConfig", {"ossAddress": "http://x/a.zip", "md5": "y"}),
    ]:
        assert validate_params(op, {**base, name: json.dumps(doc)})[name] == json.dumps(doc)


def test_json_member_errors_name_the_path() -> None:
    op = get_operation("UpdateEdgeDriverVersion")
    base = valid_params(op)
    mapping = {"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}
    doc = {"portMappings": [mapping, {**mapping, "hostPort": 70000}]}
    with pytest.raises(ValidationError) as info:
        validate_params(op, {**base, "ContainerConfig": json.dumps(doc)})
    err = info.value
    assert (err.param, err.rule) == ("ContainerConfig.portMappings[1].hostPort", "range")
    assert str(err) == (
        "UpdateEdgeDriverVersion: ContainerConfig.portMappings[1].hostPort must be <= 65535, "
        "got 70000"
    )
    with pytest.raises(ValidationError) as info:
        validate_params(op, {**base, "ContainerConfig": json.dumps({"portMappings": [{}]})})
    assert (info.value.param, info.value.rule) == (
        "ContainerConfig.portMappings[0].hostPort",
        "format",
    )


def test_integers_are_bounded_by_their_type() -> None:
    query = get_operation("QueryEdgeInstance")
    for page in (10**20, 2**31, "2147483648"):
        with pytest.raises(ValidationError) as info:
            validate_params(query, {"CurrentPage": page})
        assert (info.value.param, info.value.rule) == ("CurrentPage", "range")
    assert validate_params(query, {"CurrentPage": 2**31 - 1})["CurrentPage"] == "2147483647"
    hist = get_operation("QueryEdgeInstanceHistoricDeployment")
    assert {p.name: p.type for p in hist.params}["StartTime"] == "Long"
    ms = 2**63 - 1
    assert validate_params(hist, {"InstanceId": "i", "StartTime": 0, "EndTime": ms})
    with pytest.raises(ValidationError) as info:
        validate_params(hist, {"InstanceId": "i", "EndTime": ms + 1})
    assert (info.value.param, info.value.rule) == ("EndTime", "range")


@pytest.mark.parametrize(
    "action", sorted(a for a, op in OPERATIONS.items() if op.product == "edge")
)
def test_empty_iot_instance_id_is_refused_and_none_means_not_given(action: str) -> None:
    op = OPERATIONS[action]
    base = valid_params(op)
    with pytest.raises(ValidationError) as info:
        validate_params(op, {**base, "IotInstanceId": ""})
    assert (info.value.param, info.value.rule) == ("IotInstanceId", "min_length")
    assert "IotInstanceId" in str(info.value)
    assert "IotInstanceId" not in validate_params(op, {**base, "IotInstanceId": None})


# ---- bad values are quoted briefly, and deep nesting is refused


@pytest.mark.parametrize(
    ("action", "params", "param"),
    [
        ("QueryEdgeInstance", {"CurrentPage": "a" * 1_000_000}, "CurrentPage"),
        ("QueryEdgeInstance", {"CurrentPage": list(range(10_000))}, "CurrentPage"),
        ("QueryEdgeInstance", {"PageSize": {"k" * 500: "v" * 500}}, "PageSize"),
        ("QueryEdgeInstance", {"CurrentPage": 10**5000}, "CurrentPage"),
        ("QueryEdgeInstance", {"CurrentPage": "9" * 5000}, "CurrentPage"),
        ("CreateEdgeInstance", {"Name": "n", "Tags": "x" * 100_000}, "Tags"),
        ("GetEdgeInstance", {"InstanceId": "i", "Bogus" * 10_000: 1}, "Bogus" * 10_000),
        ("CreateEdgeInstanceDeployment", {"InstanceId": "i", "Type": "x" * 100_000}, "Type"),
        ("BatchGetEdgeDriver", {"DriverIds": [list(range(10_000))]}, "DriverIds.1"),
    ],
)
def test_error_messages_quote_at_most_a_short_excerpt(
    action: str, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_params(OPERATIONS[action], params)
    assert info.value.param == param
    assert len(str(info.value)) < 300, str(info.value)[:400]


def test_a_long_string_is_quoted_with_an_ellipsis_and_its_length() -> None:
    with pytest.raises(ValidationError) as info:
        validate_params(OPERATIONS["QueryEdgeInstance"], {"CurrentPage": "a" * 1_000_000})
    assert "'" + "a" * 80 + "'… (1000000 characters)" in str(info.value)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [40, 3_000, 100_000])
def test_deep_nesting_is_a_validation_error_not_a_recursion_error(depth: int) -> None:
    op = get_operation("CreateEdgeDriverVersion")
    base = valid_params(op)
    doc = "[" * depth + "]" * depth
    with pytest.raises(ValidationError) as info:
        validate_params(op, {**base, "ContainerConfig": doc})
    assert (info.value.param, info.value.rule) == ("ContainerConfig", "format")
    assert "nest" in str(info.value)
    with pytest.raises(ValidationError) as info:
        validate_params(get_operation("QueryEdgeInstance"), {"PageSize": _nested(depth)})
    assert (info.value.param, info.value.rule) == ("PageSize", "type")
    assert len(str(info.value)) < 300


def test_documents_nested_as_deep_as_the_limit_pass() -> None:
    from aioedge._catalog import MAX_JSON_DEPTH

    op = get_operation("CreateEdgeDriverVersion")
    inner: Any = {}
    for _ in range(MAX_JSON_DEPTH - 2):
        inner = {"x": inner}
    doc = json.dumps({"future": inner})
    assert validate_params(op, {**valid_params(op), "ContainerConfig": doc})["ContainerConfig"]


@pytest.mark.parametrize("action", [["GetEdgeInstance"], 5, None, b"GetEdgeInstance"])
def test_an_action_that_is_not_a_string(action: Any) -> None:
    with pytest.raises(ValidationError) as info:
        get_operation(action)
    assert (info.value.param, info.value.rule) == ("Action", "type")


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_parameter_name_is_named_quoted(blank: str) -> None:
    op = get_operation("BatchBindDeviceToEdgeInstanceWithDriver")
    with pytest.raises(ValidationError) as exc:
        validate_params(op, {blank: "[]"})
    assert exc.value.param == repr(blank) and exc.value.rule == "unknown"
    assert repr(blank) in str(exc.value)
