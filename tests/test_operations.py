"""The 34 typed methods: signatures from the catalog, the spec's exact wire names, typed results."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aioedge import EdgeClient, ValidationError
from aioedge._catalog import (
    OPERATIONS,
    Operation,
    Param,
    _spec_text,
    get_operation,
    validate_params,
)
from aioedge._models import (
    RESULTS,
    DeviceConfig,
    DeviceConfigContent,
    DeviceConfigInput,
    DriverConfig,
    DriverConfigInput,
    EdgeInstance,
    ListResult,
    Page,
    parse_result,
)
from aioedge._operations import OperationsMixin
from aioedge.testing import Emulator

from .support import TEST_CREDS, ScriptServer, ok_body

ROOT = Path(__file__).resolve().parent.parent
OPS = list(OPERATIONS.values())
_RAW_OPS = {op["action"]: op for op in json.loads(_spec_text("operations.json"))["operations"]}


def _ids(op: Operation) -> str:
    return op.action


class RecordingClient(OperationsMixin):
    """Stands in for EdgeClient: validates like it, records the wire dict, answers the sample."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        op = get_operation(action)
        wire = validate_params(op, params)
        self.sent.append((action, wire))
        body: dict[str, Any] = json.loads(json.dumps(op.sample_response))  # fresh, as if sent
        return body


# ---------------------------------------------------------------------------- arguments

# Values the documented rules accept where the catalog's examples would not do.
OVERRIDES: dict[tuple[str, str], Any] = {
    ("CreateEdgeInstance", "tags"): "env:prod,zone:sh_1",  # 2.7.1: tag keys are letters only
    ("UpdateEdgeInstance", "tags"): "env:test",
    ("CreateEdgeOssPreSignedAddress", "type"): "INSTANCE_DRIVER_VERSION_CONFIG",
    ("QueryEdgeDriverVersion", "driver_version"): "1.2.0",  # its example is a description
    ("QueryEdgeInstanceHistoricDeployment", "start_time"): 1561543948874,
    ("QueryEdgeInstanceHistoricDeployment", "end_time"): 1561543998639,
}


def _value(op: Operation, p: Param) -> Any:
    if (op.action, p.py_name) in OVERRIDES:
        return OVERRIDES[(op.action, p.py_name)]
    if p.is_struct_list:
        return [
            {f.py_name: (f.values[0] if f.values else f"{f.py_name}-{i}") for f in p.fields}
            for i in (1, 2)
        ]
    if p.values is not None:
        last = p.values[-1]
        return int(last) if p.type in ("Integer", "Long") else last
    if p.type == "Boolean":
        return True
    if p.type in ("Integer", "Long"):
        return 2 if p.maximum is None or p.maximum >= 2 else p.maximum
    if p.repeated:
        return [f"{p.example or 'id'}-{i}" for i in (1, 2, 3)]
    return str(p.example) if p.example is not None else f"{p.py_name}-value"


def all_args(op: Operation) -> dict[str, Any]:
    return {p.py_name: _value(op, p) for p in op.params}


def required_args(op: Operation) -> dict[str, Any]:
    args = {p.py_name: _value(op, p) for p in op.params if p.required and p.default is None}
    if op.action == "BindGatewayToEdgeInstance":
        args["iot_id"] = "gw-iot-id"  # 2.9.1: IotId, or ProductKey with DeviceName
    if op.action == "CreateEdgeOssPreSignedAddress":
        args["type"] = "DRIVER_VERSION_CONTENT"  # the instance-config type needs InstanceId
    return args


def _documented(op: Operation) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]]]:
    """(every documented request name, the required ones) as patterns over flattened keys."""
    names, required = [], []
    for row in _RAW_OPS[op.action]["request"]:
        pattern = re.compile(re.escape(row["name"]).replace(r"\.N", r"\.[1-9][0-9]*"))
        names.append(pattern)
        if row.get("required"):
            required.append(pattern)
    return names, required


# ---------------------------------------------------------------------------- signatures


def test_one_async_method_per_operation() -> None:
    public = {
        name
        for name, fn in inspect.getmembers(OperationsMixin, inspect.iscoroutinefunction)
        if not name.startswith("_") and name != "call"
    }
    assert public == {op.method_name for op in OPS}
    assert len(public) == 34
    for name in (
        "get_edge_instance",
        "create_edge_oss_pre_signed_address",
        "query_device_provisioning",
    ):
        assert name in public


@pytest.mark.parametrize("op", OPS, ids=_ids)
def test_signature_follows_the_catalog(op: Operation) -> None:
    sig = inspect.signature(getattr(OperationsMixin, op.method_name))
    params = list(sig.parameters.values())
    assert params[0].name == "self"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    by_name = {p.name: p for p in params[1:]}
    assert set(by_name) == {p.py_name for p in op.params}
    for p in op.params:
        default = by_name[p.py_name].default
        if p.required and p.default is None:
            assert default is inspect.Parameter.empty, p.py_name
        elif p.required:
            assert default == p.default, p.py_name  # CurrentPage 1, PageSize 10
        else:
            assert default is None, p.py_name
    if op.product == "edge":
        assert by_name["iot_instance_id"].default is None
    spec = RESULTS[op.action]
    assert sig.return_annotation == spec.annotation
    doc = inspect.getdoc(getattr(OperationsMixin, op.method_name)) or ""
    assert f"``{op.action}``" in doc and f"{op.qps} QPS" in doc
    assert ("read-only" in doc) == op.read_only


# ---------------------------------------------------------------------------- wire names


@pytest.mark.parametrize("op", OPS, ids=_ids)
async def test_all_arguments_send_exactly_documented_names(op: Operation) -> None:
    client = RecordingClient()
    result = await getattr(client, op.method_name)(**all_args(op))
    [(action, wire)] = client.sent
    assert action == op.action
    names, required = _documented(op)
    for key in wire:
        assert any(p.fullmatch(key) for p in names), f"{op.action}: {key} is not documented"
    for pattern in required:
        assert any(pattern.fullmatch(key) for key in wire), (
            f"{op.action}: {pattern.pattern} missing"
        )
    # Every argument reached the wire under its own name.
    for p in op.params:
        assert any(k == p.name or k.startswith(p.name + ".") for k in wire), p.name
    assert result == parse_result(op.action, op.sample_response)
    assert type(result) is {"page": Page, "list": ListResult}.get(
        RESULTS[op.action].kind, RESULTS[op.action].model
    )


@pytest.mark.parametrize("op", OPS, ids=_ids)
async def test_omitted_arguments_are_not_sent(op: Operation) -> None:
    client = RecordingClient()
    await getattr(client, op.method_name)(**required_args(op))
    [(_, wire)] = client.sent
    given = {p.name for p in op.params if p.required} | (
        {"IotId"} if op.action == "BindGatewayToEdgeInstance" else set()
    )
    assert {k.split(".")[0] for k in wire} == given


async def test_values_reach_the_wire_converted() -> None:
    client = RecordingClient()
    await client.update_edge_instance(
        instance_id="i-1", name="edge_1", spec=30, biz_enable=False, iot_instance_id="iot-x"
    )
    await client.batch_get_edge_instance_device_config(instance_id="i-1", iot_ids=("a", "b"))
    await client.query_edge_instance(current_page=3, page_size=30, name="n")
    assert client.sent[0][1] == {
        "InstanceId": "i-1",
        "Name": "edge_1",
        "Spec": "30",
        "BizEnable": "false",
        "IotInstanceId": "iot-x",
    }
    assert client.sent[1][1] == {"InstanceId": "i-1", "IotIds.1": "a", "IotIds.2": "b"}
    assert client.sent[2][1] == {"CurrentPage": "3", "PageSize": "30", "Name": "n"}


async def test_struct_lists_accept_inputs_models_and_mappings() -> None:
    client = RecordingClient()
    forms: list[Any] = [
        [DeviceConfigInput(iot_id="d1", content="{}"), DeviceConfigInput(iot_id="d2", content="x")],
        [
            DeviceConfig(iot_id="d1", config=DeviceConfigContent(format="JSON", content="{}")),
            DeviceConfig(iot_id="d2", config=DeviceConfigContent(format="KV", content="x")),
        ],
        [{"iot_id": "d1", "content": "{}"}, {"IotId": "d2", "Content": "x"}],
    ]
    for form in forms:
        await client.batch_set_edge_instance_device_config(instance_id="i-1", device_configs=form)
    expected = {
        "InstanceId": "i-1",
        "DeviceConfigs.1.IotId": "d1",
        "DeviceConfigs.1.Content": "{}",
        "DeviceConfigs.2.IotId": "d2",
        "DeviceConfigs.2.Content": "x",
    }
    assert [wire for _, wire in client.sent] == [expected] * 3

    await client.set_edge_instance_driver_configs(
        instance_id="i-1",
        driver_id="drv",
        configs=[
            DriverConfigInput(format="KV", content="a=1", key="a"),
            DriverConfig(config_id="ignored", format="JSON", content="{}"),
            {"format": "FILE", "content": "https://oss/x.json"},
        ],
    )
    assert client.sent[-1][1] == {
        "InstanceId": "i-1",
        "DriverId": "drv",
        "Configs.1.Format": "KV",
        "Configs.1.Content": "a=1",
        "Configs.1.Key": "a",
        "Configs.2.Format": "JSON",
        "Configs.2.Content": "{}",
        "Configs.3.Format": "FILE",
        "Configs.3.Content": "https://oss/x.json",
    }


async def test_time_window_takes_aware_datetimes() -> None:
    client = RecordingClient()
    start = datetime(2019, 6, 26, 18, 12, 28, 874000, tzinfo=timezone(timedelta(hours=8)))
    await client.query_edge_instance_historic_deployment(
        instance_id="i-1", start_time=start, end_time=1561543998639
    )
    wire = client.sent[0][1]
    assert wire["StartTime"] == "1561543948874" and wire["EndTime"] == "1561543998639"


async def test_rejected_arguments_send_nothing() -> None:
    client = RecordingClient()
    with pytest.raises(ValidationError) as naive:
        await client.query_edge_instance_historic_deployment(
            instance_id="i-1", start_time=datetime(2019, 6, 26)
        )
    assert naive.value.param == "StartTime" and naive.value.rule == "type"
    with pytest.raises(ValidationError) as too_big:
        await client.query_edge_instance(page_size=31)
    assert too_big.value.param == "PageSize" and too_big.value.rule == "range"
    with pytest.raises(ValidationError) as not_a_list:
        await client.batch_clear_edge_instance_device_config(instance_id="i", iot_ids="abc")
    assert not_a_list.value.param == "IotIds"
    with pytest.raises(ValidationError) as bad_enum:
        await client.create_edge_instance_deployment(instance_id="i", type="redeploy")  # type: ignore[arg-type]
    assert bad_enum.value.param == "Type" and bad_enum.value.rule == "enum"
    assert client.sent == []


async def test_a_time_argument_is_one_rule_for_typed_methods_call_and_batch() -> None:
    """StartTime and EndTime are milliseconds, or an aware datetime the catalog converts: the
    same wire value, and the same ValidationError for a naive datetime, whether the typed
    method, ``call`` or ``batch`` sends it."""
    action = "QueryEdgeInstanceHistoricDeployment"
    naive = datetime(2019, 6, 26)
    aware = datetime(2019, 6, 26, 18, 12, 28, 874000, tzinfo=timezone(timedelta(hours=8)))
    async with (
        Emulator() as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        iid = (await client.create_edge_instance(name="times")).instance_id
        assert iid
        params = {"InstanceId": iid, "StartTime": naive}
        with pytest.raises(ValidationError) as typed:
            await client.query_edge_instance_historic_deployment(instance_id=iid, start_time=naive)
        with pytest.raises(ValidationError) as called:
            await client.call(action, params)
        [batched] = await client.batch([(action, params)])
        errors = [typed.value, called.value, batched.error]
        assert all(isinstance(e, ValidationError) for e in errors)
        seen = {(e.message, e.param, e.rule, e.action) for e in errors}  # type: ignore[union-attr]
        assert len(seen) == 1, seen
        assert seen.pop()[1:] == ("StartTime", "type", action)
        assert emu.execution_log[-1].action == "CreateEdgeInstance"  # none of them was sent

        await client.query_edge_instance_historic_deployment(instance_id=iid, end_time=aware)
        await client.call(action, {"InstanceId": iid, "EndTime": aware})
        (await client.batch([(action, {"InstanceId": iid, "EndTime": aware})])).raise_first()
        sent = [r.params.get("EndTime") for r in emu.execution_log if r.action == action]
        assert sent == ["1561543948874"] * 3


@pytest.mark.parametrize(
    ("method", "args", "param"),
    [
        ("set_edge_instance_driver_configs", {"configs": 5}, "Configs"),
        ("set_edge_instance_driver_configs", {"configs": [1]}, "Configs.1"),
        ("set_edge_instance_driver_configs", {"configs": [None]}, "Configs.1"),
        ("set_edge_instance_driver_configs", {"configs": object()}, "Configs"),
        ("batch_set_edge_instance_device_config", {"device_configs": [None]}, "DeviceConfigs.1"),
        (
            "batch_set_edge_instance_device_config",
            {"device_configs": [{"iot_id": "d", "content": "c"}, "x"]},
            "DeviceConfigs.2",
        ),
    ],
)
async def test_bad_struct_list_entries_are_validation_errors(
    method: str, args: dict[str, Any], param: str
) -> None:
    """Not a list, or entries that are neither mappings nor models: a ValidationError naming
    the parameter (these were TypeError and AttributeError inside the typed method)."""
    client = RecordingClient()
    base = {"instance_id": "i", "driver_id": "d"} if "driver" in method else {"instance_id": "i"}
    with pytest.raises(ValidationError) as info:
        await getattr(client, method)(**base, **args)
    assert info.value.param == param
    assert param in str(info.value)
    assert client.sent == []


# ---------------------------------------------------------------------------- generated file


def _load_tool(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_operations_are_up_to_date() -> None:
    gen = _load_tool("gen_operations")
    committed = (ROOT / "aioedge" / "_operations.py").read_text(encoding="utf-8")
    assert gen.render() == committed, "run: python tools/gen_operations.py"
    pinned = (ROOT / "aioedge" / "_spec" / "SHA256SUMS").read_text(encoding="utf-8")
    assert gen.render_checksums() == pinned, "run: python tools/gen_operations.py"
    assert gen.main(["--check"]) == 0


def test_reference_documents_every_checked_json_member() -> None:
    page = (ROOT / "docs" / "reference" / "driver.md").read_text(encoding="utf-8")
    for action in ("CreateEdgeDriverVersion", "UpdateEdgeDriverVersion"):
        section = page.split(f"## {action}\n", 1)[1].split("\n## ", 1)[0]
        op = get_operation(action)
        for p in op.params:
            if not p.json_fields:
                continue
            table = section.split(f"#### `{p.name}`: JSON members\n", 1)[1].split("\n#", 1)[0]
            stack = [(f, "") for f in p.json_fields]
            while stack:
                f, prefix = stack.pop()
                assert f"| `{prefix}{f.name}` |" in table, (action, p.name, f.name)
                sub = f"{prefix}{f.name}[]." if f.type == "List" else f"{prefix}{f.name}."
                stack += [(g, sub) for g in f.fields]
    assert "| `portMappings[].hostPort` | Integer | yes | 1 to 65535 |" in page
    assert "a device path starting with /dev/" in page


def test_reference_pages_are_up_to_date() -> None:
    pages: dict[str, str] = _load_tool("gen_docs").render_all()
    folder = ROOT / "docs" / "reference"
    assert {p.name for p in folder.glob("*.md")} == set(pages), "run: python tools/gen_docs.py"
    for name, text in pages.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{name}: run tools/gen_docs.py"
    # One page per group, every operation on its group's page and in the index.
    groups = {op.group for op in OPS}
    assert {f"{g}.md" for g in groups} | {"index.md", "models.md", "api.md"} == set(pages)
    for op in OPS:
        page = pages[f"{op.group}.md"]
        assert f"## {op.action}\n" in page
        assert f"async def {op.method_name}(" in page and f"{op.qps} QPS" in page
        assert f"({op.group}.md#{op.action.lower()})" in pages["index.md"]
        for p in op.params:
            assert f"`{p.py_name}`" in page, (op.action, p.py_name)


# ---------------------------------------------------------------------------- over real sockets


def _client(srv: ScriptServer, **kw: Any) -> EdgeClient:
    return EdgeClient(
        credentials=TEST_CREDS, endpoint=srv.endpoint, rate_limit=False, retry=None, **kw
    )


async def test_typed_call_round_trip(script_server: ScriptServer) -> None:
    script_server.default = OPERATIONS["GetEdgeInstance"].sample_response
    async with _client(script_server) as client:
        inst = await client.get_edge_instance(instance_id="F3APY0tPLhmgGtx0****")
    assert isinstance(inst, EdgeInstance)
    assert inst.name == "Test instance new" and inst.spec == 30
    assert inst.request_id == "16645053-546B-4D7C-832E-E519B0E23CF1"
    sent = script_server.params()
    assert sent["Action"] == "GetEdgeInstance" and sent["InstanceId"] == "F3APY0tPLhmgGtx0****"


async def test_typed_struct_list_and_default_instance_over_the_wire(
    script_server: ScriptServer,
) -> None:
    script_server.default = ok_body()
    async with _client(script_server, iot_instance_id="iot-default") as client:
        done = await client.batch_set_edge_instance_device_config(
            instance_id="i-1",
            device_configs=[DeviceConfigInput(iot_id="d1", content='{"a": 1}')],
        )
        await client.delete_edge_instance(instance_id="i-1", iot_instance_id="iot-explicit")
        await client.query_device_provisioning(product_key="pk", device_name="dn")
    assert done.request_id == "REQ-OK"
    first, second, third = (script_server.params(i) for i in range(3))
    assert first["DeviceConfigs.1.IotId"] == "d1" and first["DeviceConfigs.1.Content"] == '{"a": 1}'
    assert first["IotInstanceId"] == "iot-default"
    assert second["IotInstanceId"] == "iot-explicit"
    assert "IotInstanceId" not in third  # QueryDeviceProvisioning takes none


# ---------------------------------------------------------------------------- against the emulator


async def test_all_34_typed_methods_against_the_emulator() -> None:
    from aioedge.testing import Emulator, FakeClock

    clock = FakeClock()  # the rollout advances with the fake clock, not with real sleeps
    async with (
        Emulator(clock=clock, quotas=False) as emu,
        EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False, retry=None
        ) as c,
    ):
        created = await c.create_edge_instance(name="edge_1", tags="env:test", spec=20)
        iid = created.instance_id
        assert iid is not None and created.request_id
        inst = await c.get_edge_instance(instance_id=iid)
        assert (inst.name, inst.spec, inst.tag_dict, inst.type) == (
            "edge_1",
            20,
            {"env": "test"},
            0,
        )
        # The service's local-time string and its ms timestamp name the same instant.
        assert inst.gmt_create is not None and inst.gmt_create_timestamp is not None
        assert timedelta(0) <= inst.gmt_create_timestamp - inst.gmt_create < timedelta(seconds=1)
        await c.update_edge_instance(instance_id=iid, name="edge_2", biz_enable=True)
        page = await c.query_edge_instance(page_size=30)
        assert [i.name for i in page if i.instance_id == iid] == ["edge_2"]

        drv = await c.create_edge_driver(
            driver_name="LedDriver", driver_protocol="customize", runtime="python3"
        )
        did = drv.driver_id
        assert did is not None
        assert [d.driver_name for d in await c.batch_get_edge_driver(driver_ids=[did])] == [
            "LedDriver"
        ]
        assert did in {d.driver_id for d in await c.query_edge_driver(type=1)}
        upload = await c.create_edge_oss_pre_signed_address(
            file_name="code.zip",
            resource_id=did,
            resource_version="1.0.0",
            type="DRIVER_VERSION_CONTENT",
        )
        assert upload.oss_address and upload.oss_pre_signed_address
        await c.create_edge_driver_version(
            driver_id=did,
            driver_version="1.0.0",
            edge_version="2.4.0",
            source_config=json.dumps({"ossAddress": upload.oss_address}),
        )
        await c.update_edge_driver_version(
            driver_id=did, driver_version="1.0.0", edge_version="2.4.0", description="v1"
        )
        version = await c.get_edge_driver_version(driver_id=did, driver_version="1.0.0")
        assert (version.description, version.edge_version) == ("v1", "2.4.0")
        versions = await c.query_edge_driver_version(driver_id=did)
        assert [v.driver_version for v in versions] == ["1.0.0"]

        await c.bind_gateway_to_edge_instance(
            instance_id=iid, product_key="a1pk", device_name="gw1"
        )
        gateways = await c.query_edge_instance_gateway(instance_id=iid)
        assert [(g.product_key, g.device_name) for g in gateways] == [("a1pk", "gw1")]
        await c.bind_driver_to_edge_instance(instance_id=iid, driver_id=did, driver_version="1.0.0")
        assert [d.driver_id for d in await c.query_edge_instance_driver(instance_id=iid)] == [did]
        await c.set_edge_instance_driver_configs(
            instance_id=iid, driver_id=did, configs=[DriverConfigInput(format="JSON", content="{}")]
        )
        [driver_configs] = await c.batch_get_edge_instance_driver_configs(
            instance_id=iid, driver_ids=[did]
        )
        assert [(x.format, x.content) for x in driver_configs.configs] == [("JSON", "{}")]
        await c.batch_bind_device_to_edge_instance_with_driver(
            instance_id=iid, driver_id=did, iot_ids=["dev1", "dev2"]
        )
        devices = await c.query_edge_instance_device(instance_id=iid)
        assert (devices.total, sorted(d.iot_id or "" for d in devices)) == (2, ["dev1", "dev2"])
        await c.batch_set_edge_instance_device_config(
            instance_id=iid, device_configs=[DeviceConfigInput(iot_id="dev1", content='{"a": 1}')]
        )
        configs = await c.batch_get_edge_instance_device_config(instance_id=iid, iot_ids=["dev1"])
        assert [(x.iot_id, x.content) for x in configs] == [("dev1", '{"a": 1}')]

        dep = await c.create_edge_instance_deployment(instance_id=iid, type="deploy")
        assert dep.deployment_id is not None
        clock.advance(120)  # past every stage of the simulated rollout
        done = await c.get_edge_instance_deployment(
            instance_id=iid, deployment_id=dep.deployment_id
        )
        assert done.finished and done.succeeded and done.tasks
        snapshots = [s for t in done.tasks for s in t.snapshots]
        assert snapshots and all(s.finished for s in snapshots)
        assert all(s.log_entries and s.log_entries[-1].stage == 32 for s in snapshots)
        history = await c.query_edge_instance_historic_deployment(
            instance_id=iid, end_time=datetime.now(timezone.utc) + timedelta(days=1)
        )
        assert dep.deployment_id in {h.deployment_id for h in history}
        second = await c.create_edge_instance_deployment(instance_id=iid, type="reset")
        await c.close_edge_instance_deployment(instance_id=iid)
        closed = await c.get_edge_instance_deployment(
            instance_id=iid, deployment_id=second.deployment_id or ""
        )
        assert closed.finished

        await c.batch_clear_edge_instance_device_config(instance_id=iid, iot_ids=["dev1"])
        await c.batch_unbind_device_from_edge_instance(instance_id=iid, iot_ids=["dev1", "dev2"])
        await c.clear_edge_instance_driver_configs(instance_id=iid, driver_id=did)
        await c.unbind_driver_from_edge_instance(instance_id=iid, driver_id=did)
        await c.delete_edge_driver_version(driver_id=did, driver_version="1.0.0")
        await c.delete_edge_driver(driver_id=did)
        await c.delete_edge_instance(instance_id=iid)
        where = await c.query_device_provisioning(product_key="a1pk", device_name="gw1")
        assert (where.product_key, where.device_name) == ("a1pk", "gw1")
    stats = emu.stats()
    assert {a for a, s in stats.items() if s["succeeded"] >= 1} == set(OPERATIONS)


def test_configuration_page_matches_the_constructor() -> None:
    """docs/configuration.md shows EdgeClient's real parameters, order and defaults."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = page.split("```python\naioedge.EdgeClient(\n", 1)[1].split("\n)\n", 1)[0]
    shown = [
        re.match(r"\s*(\w+)=(.*?),\s*(#.*)?$", line)
        for line in block.splitlines()
        if not line.strip().startswith(("*", "#"))
    ]
    assert all(shown), block
    documented = [(m[1], m[2]) for m in shown if m]
    sig = inspect.signature(EdgeClient.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    assert [name for name, _ in documented] == [p.name for p in params]
    keyword_only = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert block.index("*,") < block.index(f"{keyword_only[0]}=")
    for (_, text), p in zip(documented, params, strict=True):
        if isinstance(p.default, (str, int, float, bool)) or p.default is None:
            assert text == repr(p.default).replace("'", '"'), p.name
    # Every option has its own place on the page.
    for p in params:
        assert f"`{p.name}`" in page, p.name
