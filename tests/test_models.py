"""Typed response models: the documented samples, every documented field, tolerance, times."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import aioedge.watch
from aioedge._catalog import OPERATIONS, Operation
from aioedge._errors import ApiError, InvalidResponseError
from aioedge._models import (
    RESULTS,
    SERVICE_TZ,
    ActionResult,
    Deployment,
    DeviceConfig,
    DeviceConfigContent,
    DeviceConfigInput,
    DriverConfig,
    DriverConfigInput,
    DriverVersion,
    EdgeInstance,
    InstanceDevice,
    ListResult,
    LogEntry,
    Model,
    Page,
    ResourceSnapshot,
    Result,
    attribute_path,
    parse_data,
    parse_list,
    parse_page,
    parse_result,
)
from aioedge._protocol import parse_response
from aioedge.watch import DeploymentState

UTC8 = timezone(timedelta(hours=8))
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ENVELOPE = {"Success", "Code", "ErrorMessage"}
OPS = list(OPERATIONS.values())


def _ids(op: Operation) -> str:
    return op.action


def _expected_model(op: Operation) -> type[Model]:
    spec = RESULTS[op.action]
    return {"page": Page, "list": ListResult}.get(spec.kind, spec.model)


# ---------------------------------------------------------------------------- the samples


def test_every_operation_has_a_result_spec() -> None:
    assert set(RESULTS) == set(OPERATIONS)
    for op in OPS:
        spec = RESULTS[op.action]
        assert (spec.kind == "page") == op.paged, op.action
        if op.paged:
            assert spec.items_key == op.items_key, op.action


@pytest.mark.parametrize("op", OPS, ids=_ids)
def test_sample_response_parses_into_its_model(op: Operation) -> None:
    body = op.sample_response
    result = parse_result(op.action, body)
    assert type(result) is _expected_model(op)
    assert result.raw is body  # the original body, untouched
    assert result.request_id == body["RequestId"]
    assert "raw" not in repr(result) and "Success" not in repr(result)
    if isinstance(result, (Page, ListResult)):
        spec = RESULTS[op.action]
        assert all(type(item) is spec.model for item in result.items)
        assert spec.items_key is not None
        listed: list[Any] = (body.get("Data") or {}).get(spec.items_key) or body[spec.items_key]
        assert len(result) == len(listed) > 0
        assert [item.raw for item in result] == listed  # each item keeps its own dict


# What a reader of each sample would check first: converted values, not just presence.
SPOT_CHECKS: dict[str, dict[str, Any]] = {
    "CreateEdgeInstance": {"instance_id": "F3APY0tPLhmgGtx0****"},
    "DeleteEdgeInstance": {"request_id": "F29C33E5-BF22-48FE-9fef-8A24146E3388"},
    "GetEdgeInstance": {
        "instance_id": "F3APY0tPLhmgGtx0****",
        "name": "Test instance new",
        "spec": 30,
        "biz_enable": True,
        "latest_deployment_status": 2,
        "latest_deployment_type": "deploy",
        "gmt_create": datetime(2019, 6, 26, 12, 33, 25, tzinfo=UTC8),
        "gmt_modified": datetime(2019, 6, 26, 16, 16, 22, tzinfo=UTC8),
        "tags": "k1:v1,k2:v2",
        "tag_dict": {"k1": "v1", "k2": "v2"},
        "type": None,  # not in the sample
    },
    "QueryEdgeInstance": {
        "total": 201,
        "page_size": 2,
        "current_page": 1,
        "has_more": True,
        "items[1].instance_id": "ZpbCxkQpbb2kpmm0****",
        "items[1].latest_deployment_status": 1,
        "items[1].latest_deployment_type": "reset",
        "items[0].latest_deployment_status": None,
        "items[0].gmt_modified": datetime(2019, 7, 17, 14, 51, 38, tzinfo=UTC8),
    },
    "CreateEdgeDriver": {"driver_id": "fec565038d7544978d9aed5c1a*****"},
    "BatchGetEdgeDriver": {
        "items[0].driver_name": "MyLedDriver",
        "items[0].type": 1,
        "items[0].is_built_in": False,
        "items[0].cpu_arch": "x86-64",
        "items[0].gmt_create": datetime(2019, 12, 1, 22, 28, tzinfo=UTC8),
    },
    "QueryEdgeDriver": {"total": 1, "page_size": 15, "has_more": False, "items[0].runtime": "c"},
    "GetEdgeDriverVersion": {
        "driver_version": "1.2.0",
        "edge_version": "2.0.0",
        "version_state": 0,
        "description": "LED driver",
        "parsed_config_check_rule": {
            "deviceConfig": {"required": False},
            "driverConfig": {"required": False},
        },
        "parsed_container_config.privileged": 1,
        "parsed_driver_config": [
            {"content": '{"defaultConfig":"this is default driver config demo"}', "format": "JSON"}
        ],
    },
    "QueryEdgeDriverVersion": {
        "items[0].version_state": 0,
        "items[0].driver_id": "fec565038d7544978d9aed5c1a*****",
    },
    "CreateEdgeOssPreSignedAddress": {
        "oss_address": (
            "http://xxxx.oss-cn-shanghai.aliyuncs.com/driver/a534d3b81*****8fe7da0/"
            "DRIVER_VERSION_CONTENT/df9b9f441*****4c90d0c21d14/2.0.0/1581586102750/driver_code.zip"
        ),
    },
    "QueryEdgeInstanceGateway": {
        "items[0].iot_id": "LuD9x5hiRUdVemWU****000101",
        "items[0].edge_version": "v1.0.0",
    },
    "QueryEdgeInstanceDriver": {
        "total": 1,
        "page_size": 30,
        "items[0].driver_id": "9c1ae7bd59f1469abbdccc959228****",
        "items[0].gmt_create": datetime(2019, 6, 26, 17, 22, 25, tzinfo=UTC8),
    },
    "BatchGetEdgeInstanceDriverConfigs": {
        "items[0].driver_id": "021d154d2a2f4dd7a489773d9e04****",
        "items[0].configs[0].format": "JSON",
        "items[0].configs[0].content": '{"test":123}',
        "items[0].configs[0].config_id": "dac71722ceac4a299dbf3e8dc3c8****",
    },
    "QueryEdgeInstanceDevice": {
        "total": 4,
        "items[0].iot_id": "XSpPdtxzE6ebtCkx****000101",  # the JSON sample says "IoId"
        "items[3].device_name": "device01",
    },
    "BatchGetEdgeInstanceDeviceConfig": {
        "items[1].iot_id": "BXPV9Ks3bxwM9fd****0000101",
        "items[0].config.format": "JSON",
        "items[0].content": '{"test": "device_config_demo"}',
    },
    "CreateEdgeInstanceDeployment": {"deployment_id": "38d544b1222d45b4b425240167bf****"},
    "GetEdgeInstanceDeployment": {
        "status": 2,
        "type": "deploy",
        "finished": True,
        "succeeded": True,
        "tasks[0].task_id": "49ea651529014bf8b5645d5f9062****",
        "tasks[0].stage": 32,
        "tasks[0].snapshots[0].operate_type": 0,
        "tasks[0].snapshots[0].resource_type": "device_config",
        "tasks[0].snapshots[0].gmt_completed": datetime(2019, 6, 26, 18, 12, 34, tzinfo=UTC8),
    },
    "QueryEdgeInstanceHistoricDeployment": {
        "total": 6,
        "items[0].deployment_id": "e4803e566b424fa68e7f4b1c747c****",
        "items[1].gmt_completed": datetime(2019, 6, 26, 18, 12, 35, tzinfo=UTC8),
    },
    "QueryDeviceProvisioning": {
        "target_region": "ap-southeast-1",
        "source_iot_instance_id": "iot-6ja****",
        # A Long here (its notes): 1676297683000 ms.
        "gmt_create": datetime(2023, 2, 13, 14, 14, 43, tzinfo=timezone.utc),
    },
}


def _walk(obj: Any, path: str) -> Any:
    for part in path.split("."):
        m = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", part)
        assert m, part
        obj = obj[m.group(1)] if isinstance(obj, Mapping) else getattr(obj, m.group(1))
        if m.group(2) is not None:
            obj = obj[int(m.group(2))]
    return obj


@pytest.mark.parametrize("action", sorted(SPOT_CHECKS))
def test_sample_spot_checks(action: str) -> None:
    result = parse_result(action, OPERATIONS[action].sample_response)
    for path, expected in SPOT_CHECKS[action].items():
        assert _walk(result, path) == expected, path


def test_gmt_strings_are_utc8_as_the_deployment_sample_shows() -> None:
    # The snapshot created "18:12:29" logs its first entry at 1561543949858 ms.
    dep = parse_data(Deployment, OPERATIONS["GetEdgeInstanceDeployment"].sample_response)
    snap = dep.tasks[0].snapshots[0]
    first = snap.log_entries[0]
    assert snap.gmt_create is not None and first.at is not None
    assert first.timestamp == 1561543949858 and first.at.tzinfo == timezone.utc
    assert timedelta(0) <= first.at - snap.gmt_create < timedelta(seconds=1)
    assert snap.gmt_create.utcoffset() == timedelta(hours=8)
    assert SERVICE_TZ.utcoffset(None) == timedelta(hours=8)


def test_log_entries_are_typed_in_stage_order() -> None:
    dep = parse_data(Deployment, OPERATIONS["GetEdgeInstanceDeployment"].sample_response)
    snap = dep.tasks[0].snapshots[0]
    assert isinstance(snap.log, str)  # kept as sent
    entries = snap.log_entries
    assert [e.stage for e in entries] == [0, 8, 16, 32]
    assert [e.message for e in entries] == [
        "init success",
        "assembly success",
        "package success",
        "download success",
    ]
    # timestamp is the service's integer ms (as events carry it); at is that moment in UTC.
    assert entries[-1].timestamp == 1561543954149
    assert entries[-1].at == EPOCH + timedelta(milliseconds=1561543954149)
    assert entries[0].resource_type == "DEVICE_CONFIG" and entries[0].code == "0"
    assert entries[0].level == "INFO" and entries[0].resource_id == "device_config"


# ---------------------------------------------------------------------------- every field


# String-typed in the tables, numbers in the samples: the models read them as int (ERRATA).
INT_FROM_STRING = {
    ("GetEdgeInstance", "Data.Type"),
    ("GetEdgeDriverVersion", "Data.VersionState"),
    ("QueryEdgeDriverVersion", "Data.DriverVersionList[].VersionState"),
}


def _example(op: Operation, field: Mapping[str, Any]) -> Any:
    if "example" in field:
        return field["example"]
    if (op.action, field["path"]) in INT_FROM_STRING:
        return "1"
    return {"String": "text", "Integer": 7, "Long": 1581912859713, "Boolean": True}[field["type"]]


def _full_body(op: Operation) -> dict[str, Any]:
    """A body holding every documented response field, each set to its example."""
    body: dict[str, Any] = {}
    for f in op.response_fields:
        if f["type"] in ("Struct", "Array"):
            continue
        node: Any = body
        parts = f["path"].split(".")
        for part in parts[:-1]:
            if part.endswith("[]"):
                node = node.setdefault(part[:-2], [{}])[0]
            else:
                node = node.setdefault(part, {})
        node[parts[-1]] = _example(op, f)
    return body


def _expected(op: Operation, field: Mapping[str, Any]) -> Any:
    """The converted value, computed independently of the models."""
    value = _example(op, field)
    name = field["path"].rsplit(".", 1)[-1]
    if field["type"] == "Long" and (name.startswith("Gmt") or "Timestamp" in name):
        return EPOCH + timedelta(milliseconds=value)
    if field["type"] == "String" and (name.startswith("Gmt") or name.endswith("Time")):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC8)
    if field["type"] == "Integer" or (op.action, field["path"]) in INT_FROM_STRING:
        return int(value)
    return value


def _walk_attr(obj: Any, attr_path: str) -> Any:
    for part in attr_path.split("."):
        if not part:
            continue
        obj = getattr(obj, part.removesuffix("[]"))
        if part.endswith("[]"):
            assert len(obj) == 1
            obj = obj[0]
    return obj


@pytest.mark.parametrize("op", OPS, ids=_ids)
def test_every_documented_response_field_is_an_attribute(op: Operation) -> None:
    body = _full_body(op)
    result = parse_result(op.action, body)
    checked = 0
    for f in op.response_fields:
        path = f["path"]
        attr = attribute_path(op.action, path)
        if path in ENVELOPE:
            assert attr is None
            continue
        assert attr is not None
        assert re.fullmatch(r"[a-z_\[\].]*", attr), attr  # snake_case all the way
        value = _walk_attr(result, attr)
        if f["type"] in ("Struct", "Array"):
            assert value is not None and value != (), path
            continue
        assert value == _expected(op, f), (path, attr, value)
        checked += 1
    assert checked >= 1 or all(f["path"] in ENVELOPE | {"RequestId"} for f in op.response_fields)


@pytest.mark.parametrize("op", OPS, ids=_ids)
def test_envelope_fields_surface_on_api_error(op: Operation) -> None:
    # Success/Code/ErrorMessage are not model attributes: a failure raises, carrying them.
    documented = {f["path"] for f in op.response_fields if "." not in f["path"]}
    assert documented >= ENVELOPE
    failure = {
        "RequestId": "R-1",
        "Success": False,
        "Code": "iot.edge.InstanceNotExist",
        "ErrorMessage": "no such instance",
    }
    with pytest.raises(ApiError) as info:
        parse_response(op, 200, {}, json.dumps(failure).encode())
    err = info.value
    assert (err.code, err.message, err.request_id) == (
        "iot.edge.InstanceNotExist",
        "no such instance",
        "R-1",
    )


def test_attribute_path_examples() -> None:
    assert attribute_path("GetEdgeInstance", "Data.LatestDeploymentStatus") == (
        "latest_deployment_status"
    )
    assert attribute_path("GetEdgeInstance", "Data") == ""
    assert attribute_path("QueryEdgeInstance", "Data.InstanceList[].Spec") == "items[].spec"
    assert attribute_path(
        "GetEdgeInstanceDeployment", "Data.TaskList[].ResourceSnapshotList[].Log"
    ) == ("tasks[].snapshots[].log")
    assert attribute_path(
        "BatchGetEdgeInstanceDeviceConfig", "DeviceConfigList[].Config.Format"
    ) == ("items[].config.format")
    assert attribute_path("CreateEdgeInstance", "RequestId") == "request_id"
    assert attribute_path("CreateEdgeInstance", "Code") is None
    with pytest.raises(KeyError):
        attribute_path("GetEdgeInstance", "Data.NoSuchField")


# ---------------------------------------------------------------------------- errata spellings


def test_errata_spellings_and_types() -> None:
    inst = EdgeInstance.from_dict(
        {
            "GmtCreateTimeStamp": 1581912859713,  # ERRATA: capital S
            "GmtModifiedTimestamp": "1581912859714",  # a numeric string
            "Type": "1",  # GetEdgeInstance: String
            "Spec": "20",
            "BizEnable": "false",
        }
    )
    assert inst.gmt_create_timestamp == EPOCH + timedelta(milliseconds=1581912859713)
    assert inst.gmt_modified_timestamp == EPOCH + timedelta(milliseconds=1581912859714)
    assert (inst.type, inst.spec, inst.biz_enable) == (1, 20, False)
    assert EdgeInstance.from_dict({"Type": 0}).type == 0  # QueryEdgeInstance: Integer
    assert InstanceDevice.from_dict({"IotId": "a"}).iot_id == "a"
    assert InstanceDevice.from_dict({"IoId": "b"}).iot_id == "b"
    assert InstanceDevice.from_dict({"deviceId": "c"}).iot_id == "c"
    assert DriverVersion.from_dict({"VersionState": "1"}).version_state == 1


def test_time_forms() -> None:
    when = EdgeInstance.from_dict(
        {
            "GmtCreate": "2020-02-19 11:25:48",
            "GmtModified": "2020-02-19T03:25:48Z",
            "RoleAttachTime": "2020-02-19T11:25:48+08:00",
            "RoleAttachTimestamp": 1582082748000,
        }
    )
    assert when.gmt_create == when.gmt_modified == when.role_attach_time
    assert when.role_attach_timestamp == when.gmt_create
    assert when.gmt_create is not None and when.gmt_create.tzinfo is SERVICE_TZ


# ---------------------------------------------------------------------------- tolerance


def test_unknown_fields_are_tolerated_and_kept_in_raw() -> None:
    body = {
        "RequestId": "R",
        "Success": True,
        "Code": "Success",
        "Brand": "new",
        "Data": {"InstanceId": "i-1", "Name": "n", "FutureField": {"x": 1}, "Spec": 10},
    }
    inst = parse_data(EdgeInstance, body)
    assert (inst.instance_id, inst.name, inst.spec, inst.request_id) == ("i-1", "n", 10, "R")
    assert inst.raw["Data"]["FutureField"] == {"x": 1}
    assert not hasattr(inst, "future_field")


def test_unconvertible_values_become_none_not_errors() -> None:
    data = {
        "InstanceId": 12345,  # a number where a string is documented: still readable
        "Spec": "thirty",
        "BizEnable": "maybe",
        "GmtCreate": "yesterday",
        "GmtCreateTimestamp": [],
        "LatestDeploymentStatus": True,
        "Name": {"nested": 1},
    }
    inst = EdgeInstance.from_dict(data)
    assert inst.instance_id == "12345"
    assert inst.spec is None and inst.biz_enable is None and inst.gmt_create is None
    assert inst.gmt_create_timestamp is None and inst.latest_deployment_status is None
    assert inst.name is None
    assert inst.raw is data


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ("CreateEdgeInstance", "InstanceId"),
        ("CreateEdgeDriver", "DriverId"),
        ("CreateEdgeInstanceDeployment", "DeploymentId"),
    ],
)
def test_a_create_reply_without_its_id_is_an_invalid_response(action: str, field: str) -> None:
    body = {k: v for k, v in OPERATIONS[action].sample_response.items() if k != field}
    with pytest.raises(InvalidResponseError) as info:
        parse_result(action, body)
    assert info.value.request_id == body["RequestId"] and field[:-2].lower() in str(info.value)
    with pytest.raises(InvalidResponseError):
        parse_result(action, {**body, field: ""})


def test_missing_or_malformed_containers() -> None:
    page = parse_page(EdgeInstance, "InstanceList", {"RequestId": "R"})
    assert (page.items, page.total, page.has_more, page.request_id) == ((), None, False, "R")
    page = parse_page(EdgeInstance, "InstanceList", {"Data": {"InstanceList": "oops"}})
    assert page.items == ()
    listed = parse_list(EdgeInstance, "X", {"X": [{"Name": "a"}, "junk", None]})
    assert [i.name for i in listed] == ["a"]
    dep = parse_data(Deployment, {"Data": "not an object"})
    assert dep.tasks == () and dep.deployment_id is None
    assert parse_data(Deployment, {"Data": {"TaskList": None}}).tasks == ()


def test_log_entries_are_the_watchers_log_entries() -> None:
    # One LogEntry and one reader of the Log string, for the models and the watcher alike.
    log = json.dumps(
        [
            {"stage": 16, "level": "ERROR", "code": "1", "message": "disk full", "timestamp": 9},
            {"stage": "eight", "timestamp": 5},  # not an integer: left out, as the watcher does
            {"stage": 8, "level": "INFO", "code": "0", "message": "ok", "timestamp": "5"},
        ]
    )
    snap = ResourceSnapshot.from_dict({"SnapshotId": "s", "Log": log})
    state = DeploymentState.from_response(
        {
            "Data": {
                "DeploymentId": "d",
                "TaskList": [
                    {"TaskId": "t", "ResourceSnapshotList": [{"SnapshotId": "s", "Log": log}]}
                ],
            }
        }
    )
    assert LogEntry is aioedge.watch.LogEntry
    assert snap.log_entries == state.tasks[0].snapshots[0].log
    assert [(e.stage, e.timestamp, e.failed) for e in snap.log_entries] == [
        (8, 5, False),
        (16, 9, True),
    ]
    problem = state.tasks[0].snapshots[0].log_problem
    assert problem is not None and problem.startswith("entry 1: ")
    # The wire spelling, in the Log's own key order (JSON output stays byte for byte).
    assert json.dumps(snap.log_entries[0].to_dict()) == (
        '{"resourceId": null, "code": "0", "stage": 8, "level": "INFO", "message": "ok", '
        '"resourceType": null, "timestamp": 5}'
    )
    assert [LogEntry.from_dict(e.to_dict()) for e in snap.log_entries] == list(snap.log_entries)


def test_log_entry_at_is_the_timestamp_in_utc() -> None:
    assert LogEntry(timestamp=1561543954149).at == EPOCH + timedelta(milliseconds=1561543954149)
    assert LogEntry(timestamp=0).at == EPOCH and LogEntry(timestamp=0).time == 0.0
    assert LogEntry().at is None and LogEntry().time is None
    assert LogEntry(timestamp=10**20).at is None  # no calendar holds it: unknown, not an error


def test_malformed_json_strings_leave_the_text_and_parse_to_none() -> None:
    snap = ResourceSnapshot.from_dict({"Log": "[{broken"})
    assert snap.log == "[{broken" and snap.log_entries == ()
    assert ResourceSnapshot.from_dict({"Log": '{"not": "a list"}'}).log_entries == ()
    assert ResourceSnapshot.from_dict({}).log_entries == ()
    ver = DriverVersion.from_dict({"SourceConfig": "{oops", "DriverConfig": ""})
    assert ver.parsed_source_config is None and ver.parsed_driver_config is None
    assert ver.parsed_container_config is None


# ---------------------------------------------------------------------------- model properties


def test_models_are_frozen_slotted_and_hashable() -> None:
    inst = parse_data(EdgeInstance, OPERATIONS["GetEdgeInstance"].sample_response)
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.name = "other"  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        inst.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(inst, "__dict__")
    assert hash(inst) == hash(EdgeInstance.from_dict(inst.raw["Data"], request_id=inst.request_id))
    dep = parse_result(
        "GetEdgeInstanceDeployment", OPERATIONS["GetEdgeInstanceDeployment"].sample_response
    )
    assert isinstance(hash(dep), int)  # nested tuples of models hash too


def test_equality_ignores_raw() -> None:
    a = EdgeInstance.from_dict({"Name": "n", "Extra": 1})
    b = EdgeInstance.from_dict({"Name": "n"})
    assert a == b and a.raw != b.raw
    assert a != EdgeInstance.from_dict({"Name": "m"})


def test_models_take_keyword_arguments_only() -> None:
    with pytest.raises(TypeError):
        EdgeInstance("i-1")  # type: ignore[arg-type, call-arg]
    inst = EdgeInstance(instance_id="i-1", name="n")
    assert inst.raw == {} and inst.spec is None


def test_repr_shows_only_set_fields() -> None:
    inst = EdgeInstance.from_dict({"Name": "n", "Spec": 20}, request_id="R")
    assert repr(inst) == "EdgeInstance(request_id='R', name='n', spec=20)"
    assert repr(ActionResult.from_dict({"RequestId": "R"})) == "ActionResult(request_id='R')"


def test_every_returned_model_is_a_result_with_request_id() -> None:
    for action, spec in RESULTS.items():
        if spec.kind in ("body", "data"):
            assert issubclass(spec.model, Result), action
        for f in dataclasses.fields(spec.model):
            assert f.name == f.name.lower(), (action, f.name)


def test_page_and_list_behave_like_sequences() -> None:
    page = parse_result("QueryEdgeInstance", OPERATIONS["QueryEdgeInstance"].sample_response)
    assert isinstance(page, Page)
    assert [i.name for i in page] == ["test_le1", "test_le1"]
    assert page[-1].spec == 30 and len(page[:1]) == 1
    last = parse_page(
        EdgeInstance,
        "InstanceList",
        {"Data": {"Total": 3, "PageSize": 2, "CurrentPage": 2, "InstanceList": [{}]}},
    )
    assert not last.has_more


# ---------------------------------------------------------------------------- configs round trip


def test_config_models_convert_back_to_wire_entries() -> None:
    configs = parse_result(
        "BatchGetEdgeInstanceDriverConfigs",
        OPERATIONS["BatchGetEdgeInstanceDriverConfigs"].sample_response,
    )
    assert isinstance(configs, ListResult)
    cfg = configs[0].configs[0]
    assert isinstance(cfg, DriverConfig)
    assert cfg.to_wire() == {"Format": "JSON", "Content": '{"test":123}'}
    keyed = DriverConfig(key="k", format="KV", content="v")
    assert keyed.to_wire() == {"Format": "KV", "Content": "v", "Key": "k"}
    dev = DeviceConfig(iot_id="d1", config=DeviceConfigContent(format="JSON", content="{}"))
    assert dev.to_wire() == {"IotId": "d1", "Content": "{}"}
    assert (dev.format, dev.content) == ("JSON", "{}")
    assert DeviceConfigInput(iot_id="d1", content="{}").to_wire() == dev.to_wire()
    assert DriverConfigInput(format="KV", content="v", key="k").to_wire() == keyed.to_wire()
    assert DriverConfigInput(format="JSON", content="{}").to_wire() == {
        "Format": "JSON",
        "Content": "{}",
    }
