"""The catalog against the spec, and every validation rule of every operation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aioedge import ValidationError
from aioedge._catalog import (
    OPERATIONS,
    Operation,
    Param,
    get_operation,
    snake_case,
    validate_params,
)

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


def valid_params(op: Operation) -> dict[str, Any]:
    params = {p.name: _valid_value(op, p) for p in op.params if p.required}
    if op.action == "BindGatewayToEdgeInstance":
        params["IotId"] = "gw1"
    return params


def test_packaged_spec_is_the_shared_spec() -> None:
    if not SPEC_DIR.exists():
        pytest.fail(f"shared spec not found at {SPEC_DIR}")
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
    assert err.rule == rule
    assert err.param is not None and err.param.split(".")[0] == param.split(".")[0]
    assert param.split(".")[0] in str(err)
    assert err.action == action


def test_rule_cases_cover_every_parameter() -> None:
    covered = {(a, p.split(".")[0]) for a, _, p, _ in RULE_CASES}
    for action, op in OPERATIONS.items():
        for p in op.params:
            assert (action, p.name) in covered


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


def test_bool_is_not_an_integer() -> None:
    with pytest.raises(ValidationError, match="got bool"):
        validate_params(get_operation("QueryEdgeInstance"), {"PageSize": True})
