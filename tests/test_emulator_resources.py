"""Stateful resources, documented business errors (2.6), count limits and paging."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from aioedge._catalog import OPERATIONS, Operation
from aioedge.testing import Emulator, Limits

from .test_emulator_support import Raw, keys_match_spec


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    async with Emulator(quotas=False) as emu, aiohttp.ClientSession() as session:
        yield Raw(emu, session)


async def _instance(raw: Raw, name: str = "inst", **extra: Any) -> str:
    return str((await raw.ok("CreateEdgeInstance", {"Name": name, **extra}))["InstanceId"])


async def _driver(raw: Raw, name: str = "LedDriver", **extra: Any) -> str:
    params = {"DriverName": name, "DriverProtocol": "modbus", "Runtime": "python3", **extra}
    return str((await raw.ok("CreateEdgeDriver", params))["DriverId"])


# --------------------------------------------------------------------------- instances


async def test_instance_lifecycle(raw: Raw) -> None:
    iid = await _instance(raw, "edge_1", Tags="env:test,room:a1", Spec="30")
    got = await raw.ok("GetEdgeInstance", {"InstanceId": iid})
    keys_match_spec(got, "GetEdgeInstance")
    data = got["Data"]
    assert (data["InstanceId"], data["Name"], data["Tags"], data["Spec"]) == (
        iid,
        "edge_1",
        "env:test,room:a1",
        30,
    )
    assert data["BizEnable"] is True and data["Type"] == "0"  # a String here (ERRATA)
    assert "LatestDeploymentStatus" not in data  # no deployment yet
    assert data["GmtCreateTimestamp"] == data["GmtModifiedTimestamp"] > 0
    await raw.ok(
        "UpdateEdgeInstance",
        {"InstanceId": iid, "Name": "edge_2", "BizEnable": "false", "Tags": "env:prod"},
    )
    data = (await raw.ok("GetEdgeInstance", {"InstanceId": iid}))["Data"]
    assert (data["Name"], data["BizEnable"], data["Tags"], data["Spec"]) == (
        "edge_2",
        False,
        "env:prod",
        30,
    )
    listed = await raw.ok("QueryEdgeInstance", {"PageSize": "30"})
    keys_match_spec(listed, "QueryEdgeInstance")
    assert listed["Data"]["InstanceList"][0]["Type"] == 0  # an Integer here (ERRATA)
    await raw.ok("DeleteEdgeInstance", {"InstanceId": iid})
    assert await raw.fail("GetEdgeInstance", {"InstanceId": iid}) == "iot.edge.InstanceNotExist"
    assert await raw.fail("DeleteEdgeInstance", {"InstanceId": iid}) == "iot.edge.InstanceNotExist"
    assert (
        await raw.fail("UpdateEdgeInstance", {"InstanceId": iid, "Name": "x"})
        == "iot.edge.InstanceNotExist"
    )


async def test_instance_names_are_unique(raw: Raw) -> None:
    first = await _instance(raw, "same")
    assert await raw.fail("CreateEdgeInstance", {"Name": "same"}) == "iot.edge.InstanceNameExist"
    other = await _instance(raw, "other")
    assert (
        await raw.fail("UpdateEdgeInstance", {"InstanceId": other, "Name": "same"})
        == "iot.edge.InstanceNameExist"
    )
    await raw.ok("UpdateEdgeInstance", {"InstanceId": first, "Name": "same"})  # itself: fine


async def test_paging_has_real_totals_and_pages(raw: Raw) -> None:
    names = [f"inst_{n:02d}" for n in range(23)]
    for name in names:
        await _instance(raw, name)
    seen: list[str] = []
    for page in (1, 2, 3):
        data = (await raw.ok("QueryEdgeInstance", {"PageSize": "10", "CurrentPage": str(page)}))[
            "Data"
        ]
        assert (data["Total"], data["PageSize"], data["CurrentPage"]) == (23, 10, page)
        seen += [i["Name"] for i in data["InstanceList"]]
    assert seen == names[::-1]  # newest first, every instance exactly once
    beyond = (await raw.ok("QueryEdgeInstance", {"PageSize": "10", "CurrentPage": "9"}))["Data"]
    assert (beyond["Total"], beyond["InstanceList"]) == (23, [])
    default = (await raw.ok("QueryEdgeInstance", {}))["Data"]
    assert (default["PageSize"], default["CurrentPage"], len(default["InstanceList"])) == (
        10,
        1,
        10,
    )
    filtered = (await raw.ok("QueryEdgeInstance", {"Name": "inst_1"}))["Data"]
    assert filtered["Total"] == 10  # inst_1 and inst_10..inst_19


async def _page(raw: Raw, action: str, params: dict[str, str]) -> dict[str, Any]:
    # validate=False: the client's own catalog refuses these values before sending them.
    answer = await raw.call(action, params, validate=False)
    assert answer.ok, answer.body
    return dict(answer.body["Data"])


@pytest.mark.parametrize("below", ["0", "-3"])
async def test_paging_values_below_one_are_the_defaults_where_documented(
    raw: Raw, below: str
) -> None:
    # operations.json, QueryEdgeInstance and QueryEdgeDriver: "values smaller than 1 are
    # treated as 10" (PageSize) and "as 1" (CurrentPage).
    for n in range(12):
        await _instance(raw, f"inst_{n:02d}")
        await _driver(raw, f"Driver{n:02d}")
    for action, extra, key in (
        ("QueryEdgeInstance", {}, "InstanceList"),
        ("QueryEdgeDriver", {"Type": "1"}, "DriverList"),
    ):
        size = await _page(raw, action, {**extra, "PageSize": below, "CurrentPage": "2"})
        assert (size["Total"], size["PageSize"], size["CurrentPage"], len(size[key])) == (
            12,
            10,
            2,
            2,
        )
        page = await _page(raw, action, {**extra, "PageSize": "5", "CurrentPage": below})
        assert (page["PageSize"], page["CurrentPage"], len(page[key])) == (5, 1, 5)
        first = await _page(raw, action, {**extra, "PageSize": "5", "CurrentPage": "1"})
        assert page[key] == first[key]
    # What ran is recorded as it was received.
    assert raw.emu.executions[-2].params == {"Type": "1", "PageSize": "5", "CurrentPage": below}
    # The other paged operations document 1 to 30 and refuse such values.
    iid = await _instance(raw, "other")
    for action, name in (
        ("QueryEdgeInstanceDevice", "PageSize"),
        ("QueryEdgeInstanceDriver", "CurrentPage"),
    ):
        refused = await raw.call(action, {"InstanceId": iid, name: below}, validate=False)
        assert (refused.status, refused.code) == (200, "iot.common.InvalidParam")
        assert name in refused.body["ErrorMessage"]
    # Still not a number: refused.
    text = await raw.call("QueryEdgeInstance", {"PageSize": "zero"}, validate=False)
    assert text.code == "iot.common.InvalidParam"


def _with_default(action: str, name: str, default: Any) -> Operation:
    op = OPERATIONS[action]
    params = tuple(
        dataclasses.replace(p, default=default) if p.name == name else p for p in op.params
    )
    return dataclasses.replace(op, params=params)


async def test_the_defaults_the_service_applies_are_the_catalogs(
    raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spec 20, IsBuiltIn false and PageSize 10 (for a value below 1) are the spec's
    documented defaults: the emulator reads them from the catalog, which the client's docs
    and typed methods read too, so that the two cannot disagree.  Shown by documenting
    other defaults and seeing the emulator follow."""
    for action, name, default in (
        ("CreateEdgeInstance", "Spec", 30),
        ("CreateEdgeDriver", "IsBuiltIn", True),
        ("QueryEdgeInstance", "PageSize", 7),
    ):
        monkeypatch.setitem(OPERATIONS, action, _with_default(action, name, default))
    iid = await _instance(raw, "defaults")
    assert (await raw.ok("GetEdgeInstance", {"InstanceId": iid}))["Data"]["Spec"] == 30
    did = await _driver(raw)
    (driver,) = (await raw.ok("BatchGetEdgeDriver", {"DriverIds.1": did}))["DriverList"]
    assert driver["IsBuiltIn"] is True
    assert (await _page(raw, "QueryEdgeInstance", {"PageSize": "0"}))["PageSize"] == 7


async def test_instance_count_limit() -> None:
    async with (
        Emulator(quotas=False, limits=Limits(instances=2)) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        await _instance(raw, "a")
        await _instance(raw, "b")
        assert (
            await raw.fail("CreateEdgeInstance", {"Name": "c"}) == "iot.edge.InstanceNumLimitation"
        )


# --------------------------------------------------------------------------- drivers


async def test_driver_and_version_lifecycle(raw: Raw) -> None:
    did = await _driver(raw, CpuArch="x86-64")
    listed = await raw.ok("BatchGetEdgeDriver", {"DriverIds": [did, "missing"]})
    keys_match_spec(listed, "BatchGetEdgeDriver")
    [driver] = listed["DriverList"]
    assert (driver["DriverName"], driver["Type"], driver["IsBuiltIn"], driver["CpuArch"]) == (
        "LedDriver",
        1,
        False,
        "x86-64",
    )
    await raw.ok(
        "CreateEdgeDriverVersion",
        {
            "DriverId": did,
            "DriverVersion": "1.0.0",
            "EdgeVersion": "2.4.0",
            "Description": "first",
            "DriverConfig": '[{"format":"JSON","content":"{}"}]',
        },
    )
    assert (
        await raw.fail(
            "CreateEdgeDriverVersion",
            {"DriverId": did, "DriverVersion": "1.0.0", "EdgeVersion": "2.4.0"},
        )
        == "iot.edge.DriverVersionAlreadyExist"
    )
    got = await raw.ok("GetEdgeDriverVersion", {"DriverId": did, "DriverVersion": "1.0.0"})
    keys_match_spec(got, "GetEdgeDriverVersion")
    assert got["Data"]["VersionState"] == 0 and got["Data"]["Description"] == "first"
    # 2.8.6: a parameter left out of UpdateEdgeDriverVersion is cleared.
    await raw.ok(
        "UpdateEdgeDriverVersion",
        {"DriverId": did, "DriverVersion": "1.0.0", "EdgeVersion": "2.5.0"},
    )
    got = await raw.ok("GetEdgeDriverVersion", {"DriverId": did, "DriverVersion": "1.0.0"})
    assert got["Data"]["EdgeVersion"] == "2.5.0"
    assert "Description" not in got["Data"] and "DriverConfig" not in got["Data"]
    page = await raw.ok("QueryEdgeDriverVersion", {"DriverId": did, "VersionState": "0"})
    keys_match_spec(page, "QueryEdgeDriverVersion")
    assert page["Data"]["Total"] == 1
    assert (await raw.ok("QueryEdgeDriverVersion", {"DriverId": did, "VersionState": "1"}))["Data"][
        "Total"
    ] == 0
    raw.emu.release_driver_version(did, "1.0.0")
    for action in ("UpdateEdgeDriverVersion", "DeleteEdgeDriverVersion"):
        params = {"DriverId": did, "DriverVersion": "1.0.0", "EdgeVersion": "2.4.0"}
        if action == "DeleteEdgeDriverVersion":
            del params["EdgeVersion"]
        assert await raw.fail(action, params) == "iot.edge.ReleasedVersionCannotBeDeletedOrModified"
    assert (
        await raw.fail("DeleteEdgeDriver", {"DriverId": did}) == "iot.edge.DriverHasReleasedVersion"
    )
    assert (
        await raw.fail("GetEdgeDriverVersion", {"DriverId": did, "DriverVersion": "9.9"})
        == "iot.edge.DriverVersionNotExist"
    )
    assert (
        await raw.fail("GetEdgeDriverVersion", {"DriverId": "nope", "DriverVersion": "1"})
        == "iot.edge.DriverNotExist"
    )


async def test_driver_uniqueness_and_limits() -> None:
    async with (
        Emulator(quotas=False, limits=Limits(custom_drivers=2, driver_versions=2)) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        did = await _driver(raw, "A")
        params = {"DriverName": "A", "DriverProtocol": "modbus", "Runtime": "python3"}
        assert (
            await raw.fail("CreateEdgeDriver", params)
            == "iot.edge.DriverNameProtocolRuntimeCpuArchMustBeUnique"
        )
        await _driver(raw, "A", CpuArch="AArch64")  # differs by CPU architecture: allowed
        assert (
            await raw.fail("CreateEdgeDriver", {**params, "DriverName": "B"})
            == "iot.edge.DriverNumLimitation"
        )
        for version in ("1", "2"):
            await raw.ok(
                "CreateEdgeDriverVersion",
                {"DriverId": did, "DriverVersion": version, "EdgeVersion": "2.4.0"},
            )
        assert (
            await raw.fail(
                "CreateEdgeDriverVersion",
                {"DriverId": did, "DriverVersion": "3", "EdgeVersion": "2.4.0"},
            )
            == "iot.edge.DriverVersionLimitation"
        )


async def test_official_and_custom_drivers_are_listed_separately(raw: Raw) -> None:
    did = await _driver(raw)
    official = await raw.ok("QueryEdgeDriver", {"Type": "0"})
    keys_match_spec(official, "QueryEdgeDriver")
    assert official["Data"]["Total"] >= 1
    assert all(d["Type"] == 0 for d in official["Data"]["DriverList"])
    custom = (await raw.ok("QueryEdgeDriver", {"Type": "1", "DriverName": "Led"}))["Data"]
    assert [d["DriverId"] for d in custom["DriverList"]] == [did]
    official_id = official["Data"]["DriverList"][0]["DriverId"]
    assert (
        await raw.fail("DeleteEdgeDriver", {"DriverId": official_id}) == "iot.edge.DriverNotExist"
    )


async def test_oss_pre_signed_addresses(raw: Raw) -> None:
    did = await _driver(raw)
    body = await raw.ok(
        "CreateEdgeOssPreSignedAddress",
        {
            "FileName": "code.zip",
            "ResourceId": did,
            "ResourceVersion": "1.0.0",
            "Type": "DRIVER_VERSION_CONTENT",
        },
    )
    data = body["Data"]
    assert data["OssAddress"].endswith("/1.0.0/" + data["OssAddress"].split("/")[-2] + "/code.zip")
    assert data["OssPreSignedAddress"].startswith(data["OssAddress"] + "?Expires=")
    assert "Signature=" in data["OssPreSignedAddress"]
    # The address is served: an upload can be read back.
    async with raw.session.put(data["OssPreSignedAddress"], data=b"zip-bytes") as resp:
        assert resp.status == 200
    async with raw.session.get(data["OssAddress"]) as resp:
        assert await resp.read() == b"zip-bytes"
    missing_instance = await raw.fail(
        "CreateEdgeOssPreSignedAddress",
        {
            "FileName": "c.json",
            "ResourceId": did,
            "ResourceVersion": "1",
            "Type": "INSTANCE_DRIVER_VERSION_CONFIG",
            "InstanceId": "nope",
        },
    )
    assert missing_instance == "iot.edge.InstanceNotExist"


# --------------------------------------------------------------------------- gateways


async def test_gateways_bind_by_names_or_iot_id(raw: Raw) -> None:
    iid = await _instance(raw, Spec="20")
    await raw.ok(
        "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw1"}
    )
    known = raw.emu.add_device("pk", "gw2", node_type="gateway", edge_version="2.5.0")
    await raw.ok("BindGatewayToEdgeInstance", {"InstanceId": iid, "IotId": known["IotId"]})
    gateways = await raw.ok("QueryEdgeInstanceGateway", {"InstanceId": iid})
    keys_match_spec(gateways, "QueryEdgeInstanceGateway")
    assert [(g["DeviceName"], g["EdgeVersion"]) for g in gateways["GatewayList"]] == [
        ("gw1", "2.4.0"),
        ("gw2", "2.5.0"),
    ]
    # Standard Edition (Spec 20): two gateways at most.
    assert (
        await raw.fail(
            "BindGatewayToEdgeInstance",
            {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw3"},
        )
        == "iot.edge.InstanceGatewayLimitation"
    )
    other = await _instance(raw, "other", Spec="30")
    assert (
        await raw.fail("BindGatewayToEdgeInstance", {"InstanceId": other, "IotId": known["IotId"]})
        == "iot.edge.GatewayAlreadyBindToInstance"
    )
    sub = raw.emu.add_device("pk", "sensor", node_type="sub")
    assert (
        await raw.fail("BindGatewayToEdgeInstance", {"InstanceId": other, "IotId": sub["IotId"]})
        == "iot.device.DeviceNotGateway"
    )
    off = raw.emu.add_device("pk", "gw-off", enabled=False)
    assert (
        await raw.fail("BindGatewayToEdgeInstance", {"InstanceId": other, "IotId": off["IotId"]})
        == "iot.edge.GatewayDisable"
    )


@pytest.mark.parametrize(("spec", "edition"), [("10", "Lite"), ("30", "Pro")])
async def test_lite_and_pro_editions_take_one_gateway(raw: Raw, spec: str, edition: str) -> None:
    iid = await _instance(raw, f"edition_{edition}", Spec=spec)
    assert (await raw.ok("GetEdgeInstance", {"InstanceId": iid}))["Data"]["Spec"] == int(spec)
    await raw.ok(
        "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw1"}
    )
    second = {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw2"}
    refused = await raw.fail("BindGatewayToEdgeInstance", second)
    assert refused == "iot.edge.InstanceGatewayLimitation"
    gateways = await raw.ok("QueryEdgeInstanceGateway", {"InstanceId": iid})
    assert [g["DeviceName"] for g in gateways["GatewayList"]] == ["gw1"]
    # The refused gateway is still free: another instance can take it.
    spare = await _instance(raw, f"spare_{edition}", Spec=spec)
    await raw.ok("BindGatewayToEdgeInstance", {**second, "InstanceId": spare})


@pytest.mark.parametrize("spec", ["10", "30"])
async def test_an_edition_change_cannot_leave_more_gateways_than_it_allows(
    raw: Raw, spec: str
) -> None:
    iid = await _instance(raw, "standard", Spec="20", Tags="k:v")
    for name in ("gw1", "gw2"):
        await raw.ok(
            "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "pk", "DeviceName": name}
        )
    update = {"InstanceId": iid, "Name": "renamed", "Spec": spec, "Tags": "k:w"}
    assert await raw.fail("UpdateEdgeInstance", update) == "iot.edge.InstanceGatewayLimitation"
    # Refused as a whole: nothing of the update was applied.
    data = (await raw.ok("GetEdgeInstance", {"InstanceId": iid}))["Data"]
    assert (data["Name"], data["Spec"], data["Tags"]) == ("standard", 20, "k:v")
    # An instance whose gateways fit the edition changes it, and then holds one only.
    single = await _instance(raw, "single", Spec="20")
    await raw.ok(
        "BindGatewayToEdgeInstance", {"InstanceId": single, "ProductKey": "pk", "DeviceName": "gw3"}
    )
    await raw.ok("UpdateEdgeInstance", {**update, "InstanceId": single})
    data = (await raw.ok("GetEdgeInstance", {"InstanceId": single}))["Data"]
    assert (data["Name"], data["Spec"]) == ("renamed", int(spec))
    fourth = {"InstanceId": single, "ProductKey": "pk", "DeviceName": "gw4"}
    assert await raw.fail("BindGatewayToEdgeInstance", fourth) == (
        "iot.edge.InstanceGatewayLimitation"
    )


async def test_strict_devices_must_exist() -> None:
    async with (
        Emulator(quotas=False, strict_devices=True) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        iid = await _instance(raw)
        assert (
            await raw.fail("BindGatewayToEdgeInstance", {"InstanceId": iid, "IotId": "ghost000101"})
            == "iot.device.NotExistedDevice"
        )
        answer = await raw.call(
            "QueryDeviceProvisioning", {"ProductKey": "pk", "DeviceName": "ghost"}
        )
        assert (answer.status, answer.code) == (400, "iot.device.NotExistedDevice")
        emu.add_device("pk", "gw", node_type="gateway")
        await raw.ok(
            "BindGatewayToEdgeInstance", {"InstanceId": iid, "ProductKey": "pk", "DeviceName": "gw"}
        )
        found = await raw.ok("QueryDeviceProvisioning", {"ProductKey": "pk", "DeviceName": "gw"})
        assert found["Code"] == "success"  # lowercase for this IoT Platform operation
        keys_match_spec(found, "QueryDeviceProvisioning")


# --------------------------------------------------------------------------- drivers on instances


async def test_instance_drivers_and_their_configs(raw: Raw) -> None:
    iid = await _instance(raw)
    did = await _driver(raw)
    for version in ("1.0.0", "1.1.0"):
        await raw.ok(
            "CreateEdgeDriverVersion",
            {"DriverId": did, "DriverVersion": version, "EdgeVersion": "2.4.0"},
        )
    await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did, "OrderId": "o-1"})
    assert (
        await raw.fail("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
        == "iot.edge.DriverAlreadyBindToInstance"
    )
    listed = await raw.ok("QueryEdgeInstanceDriver", {"InstanceId": iid})
    keys_match_spec(listed, "QueryEdgeInstanceDriver")
    [bound] = listed["Data"]["DriverList"]
    assert (bound["DriverId"], bound["DriverVersion"], bound["OrderId"]) == (did, "1.1.0", "o-1")
    # A bound driver version cannot be deleted.
    assert (
        await raw.fail("DeleteEdgeDriverVersion", {"DriverId": did, "DriverVersion": "1.1.0"})
        == "iot.edge.DriverVersionAlreadyBindToInstance"
    )
    assert (
        await raw.fail("DeleteEdgeDriver", {"DriverId": did})
        == "iot.edge.DriverVersionAlreadyBindToInstance"
    )
    configs = {
        "InstanceId": iid,
        "DriverId": did,
        "Configs": [
            {"Format": "JSON", "Content": '{"port": 502}', "Key": "main"},
            {"Format": "KV", "Content": "a=1"},
        ],
    }
    await raw.ok("SetEdgeInstanceDriverConfigs", configs)
    got = await raw.ok("BatchGetEdgeInstanceDriverConfigs", {"InstanceId": iid, "DriverIds": [did]})
    keys_match_spec(got, "BatchGetEdgeInstanceDriverConfigs")
    [entry] = got["DriverConfigList"]
    assert [(c["Format"], c["Content"], c.get("Key")) for c in entry["ConfigList"]] == [
        ("JSON", '{"port": 502}', "main"),
        ("KV", "a=1", None),
    ]
    assert all(len(c["ConfigId"]) == 32 for c in entry["ConfigList"])
    bad = {**configs, "Configs": [{"Format": "JSON", "Content": "{not json"}]}
    assert await raw.fail("SetEdgeInstanceDriverConfigs", bad) == "iot.edge.DriverConfigIllegal"
    await raw.ok("ClearEdgeInstanceDriverConfigs", {"InstanceId": iid, "DriverId": did})
    got = await raw.ok("BatchGetEdgeInstanceDriverConfigs", {"InstanceId": iid, "DriverIds": [did]})
    assert got["DriverConfigList"][0]["ConfigList"] == []
    assert await raw.fail("DeleteEdgeInstance", {"InstanceId": iid}) == "iot.edge.InstanceHasDriver"
    await raw.ok("UnbindDriverFromEdgeInstance", {"InstanceId": iid, "DriverId": did})
    for action, params in (
        ("UnbindDriverFromEdgeInstance", {"InstanceId": iid, "DriverId": did}),
        ("ClearEdgeInstanceDriverConfigs", {"InstanceId": iid, "DriverId": did}),
        ("BatchGetEdgeInstanceDriverConfigs", {"InstanceId": iid, "DriverIds": [did]}),
    ):
        assert await raw.fail(action, params) == "iot.edge.DriverNotBindToInstance"
    await raw.ok("DeleteEdgeInstance", {"InstanceId": iid})


async def test_drivers_per_instance_limit_is_30(raw: Raw) -> None:
    iid = await _instance(raw)
    for n in range(30):
        did = await _driver(raw, f"Drv{n}", CpuArch="x86")
        await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
    official = (await raw.ok("QueryEdgeDriver", {"Type": "0"}))["Data"]["DriverList"][0]
    assert (
        await raw.fail(
            "BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": official["DriverId"]}
        )
        == "iot.edge.InstanceDriverLimitation"
    )


async def test_same_name_drivers_cannot_share_an_instance(raw: Raw) -> None:
    iid = await _instance(raw)
    first = await _driver(raw, "Twin", CpuArch="x86")
    second = await _driver(raw, "Twin", CpuArch="AArch64")
    await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": first})
    assert (
        await raw.fail("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": second})
        == "iot.edge.InstanceHasSameNameDriver"
    )
    assert (
        await raw.fail("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": "nope"})
        == "iot.edge.DriverNotExist"
    )
    assert (
        await raw.fail(
            "BindDriverToEdgeInstance",
            {"InstanceId": iid, "DriverId": second, "DriverVersion": "7"},
        )
        == "iot.edge.DriverVersionNotExist"
    )


# --------------------------------------------------------------------------- devices on instances


async def test_devices_bound_with_a_driver_and_their_configs(raw: Raw) -> None:
    iid = await _instance(raw)
    did = await _driver(raw)
    ids = [f"dev{n:02d}aaaaaaaaaaaaa000101" for n in range(3)]
    assert (
        await raw.fail(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": did, "IotIds": ids},
        )
        == "iot.edge.DriverNotBindToInstance"
    )
    await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
    await raw.ok(
        "BatchBindDeviceToEdgeInstanceWithDriver",
        {"InstanceId": iid, "DriverId": did, "IotIds": ids},
    )
    assert (
        await raw.fail(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": did, "IotIds": ids[:1]},
        )
        == "iot.edge.DeviceAlreadyBindToInstance"
    )
    page = await raw.ok("QueryEdgeInstanceDevice", {"InstanceId": iid, "PageSize": "2"})
    keys_match_spec(page, "QueryEdgeInstanceDevice")
    assert page["Data"]["Total"] == 3 and len(page["Data"]["DeviceList"]) == 2
    assert {d["DriverId"] for d in page["Data"]["DeviceList"]} == {did}
    await raw.ok(
        "BatchSetEdgeInstanceDeviceConfig",
        {"InstanceId": iid, "DeviceConfigs": [{"IotId": ids[0], "Content": '{"unit": "C"}'}]},
    )
    got = await raw.ok("BatchGetEdgeInstanceDeviceConfig", {"InstanceId": iid, "IotIds": ids[:2]})
    keys_match_spec(got, "BatchGetEdgeInstanceDeviceConfig")
    assert got["DeviceConfigList"] == [
        {"IotId": ids[0], "Config": {"Format": "JSON", "Content": '{"unit": "C"}'}},
        {"IotId": ids[1]},
    ]
    await raw.ok("BatchClearEdgeInstanceDeviceConfig", {"InstanceId": iid, "IotIds": ids[:1]})
    got = await raw.ok("BatchGetEdgeInstanceDeviceConfig", {"InstanceId": iid, "IotIds": ids[:1]})
    assert got["DeviceConfigList"] == [{"IotId": ids[0]}]
    assert (
        await raw.fail("UnbindDriverFromEdgeInstance", {"InstanceId": iid, "DriverId": did})
        == "iot.edge.DriverHasDevice"
    )
    assert await raw.fail("DeleteEdgeInstance", {"InstanceId": iid}) == "iot.edge.InstanceHasDevice"
    other = await _instance(raw, "other")
    other_driver = await _driver(raw, "Other")
    await raw.ok("BindDriverToEdgeInstance", {"InstanceId": other, "DriverId": other_driver})
    assert (
        await raw.fail(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": other, "DriverId": other_driver, "IotIds": ids[:1]},
        )
        == "iot.device.DeviceAlreadyBindToOtherInstance"
    )
    await raw.ok("BatchUnbindDeviceFromEdgeInstance", {"InstanceId": iid, "IotIds": ids})
    for action, params in (
        ("BatchUnbindDeviceFromEdgeInstance", {"InstanceId": iid, "IotIds": ids[:1]}),
        ("BatchGetEdgeInstanceDeviceConfig", {"InstanceId": iid, "IotIds": ids[:1]}),
        ("BatchClearEdgeInstanceDeviceConfig", {"InstanceId": iid, "IotIds": ids[:1]}),
        (
            "BatchSetEdgeInstanceDeviceConfig",
            {"InstanceId": iid, "DeviceConfigs": [{"IotId": ids[0], "Content": "{}"}]},
        ),
    ):
        assert await raw.fail(action, params) == "iot.edge.DeviceNotBindToInstance"
    # Unbound devices may join another instance.
    await raw.ok(
        "BatchBindDeviceToEdgeInstanceWithDriver",
        {"InstanceId": other, "DriverId": other_driver, "IotIds": ids[:1]},
    )


async def test_device_kind_and_state_checks(raw: Raw) -> None:
    iid = await _instance(raw)
    did = await _driver(raw)
    await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
    gateway = raw.emu.add_device("pk", "gw", node_type="gateway")
    disabled = raw.emu.add_device("pk", "off", enabled=False)
    fresh = raw.emu.add_device("pk", "fresh")
    batch = {"InstanceId": iid, "DriverId": did}
    assert (
        await raw.fail(
            "BatchBindDeviceToEdgeInstanceWithDriver", {**batch, "IotIds": [gateway["IotId"]]}
        )
        == "iot.device.DeviceNotSubDevice"
    )
    # A batch is all or nothing: the good device in a failing batch is not bound.
    assert (
        await raw.fail(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {**batch, "IotIds": [fresh["IotId"], disabled["IotId"]]},
        )
        == "iot.device.Disabled"
    )
    page = await raw.ok("QueryEdgeInstanceDevice", {"InstanceId": iid})
    assert page["Data"]["Total"] == 0


async def test_devices_per_instance_limit_is_1000(raw: Raw) -> None:
    iid = await _instance(raw)
    did = await _driver(raw)
    await raw.ok("BindDriverToEdgeInstance", {"InstanceId": iid, "DriverId": did})
    for batch in range(50):
        ids = [f"d{batch:03d}{n:02d}xxxxxxxxxxxx000101" for n in range(20)]
        await raw.ok(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": did, "IotIds": ids},
        )
    assert (await raw.ok("QueryEdgeInstanceDevice", {"InstanceId": iid}))["Data"]["Total"] == 1000
    assert (
        await raw.fail(
            "BatchBindDeviceToEdgeInstanceWithDriver",
            {"InstanceId": iid, "DriverId": did, "IotIds": ["one-too-many000101"]},
        )
        == "iot.edge.InstanceDeviceLimitation"
    )


async def test_every_operation_answers_with_its_documented_shape(raw: Raw) -> None:
    """Success answers carry RequestId, Code and Success like every sample does."""
    iid = await _instance(raw)
    for action, params in (
        ("QueryEdgeInstanceGateway", {"InstanceId": iid}),
        ("QueryEdgeInstanceHistoricDeployment", {"InstanceId": iid}),
        ("QueryDeviceProvisioning", {"ProductKey": "pk", "DeviceName": "dn"}),
    ):
        body = await raw.ok(action, params)
        keys_match_spec(body, action)
        sample = OPERATIONS[action].sample_response
        assert body["Code"] == sample["Code"]
        assert set(sample) <= set(body) | {"Data"}
