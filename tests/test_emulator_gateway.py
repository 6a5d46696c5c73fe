"""The emulator checks requests as the service does (2.4, 2.5), over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from aioedge import Credentials
from aioedge._catalog import get_operation
from aioedge._errors import InvalidParameterError
from aioedge._protocol import parse_response, server_time
from aioedge._signing import string_to_sign
from aioedge.testing import Emulator, FakeClock
from aioedge.testing._gateway import NonceStore, parse_timestamp

from .test_emulator_support import Raw, fresh_nonce


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    async with Emulator(quotas=False) as emu, aiohttp.ClientSession() as session:
        yield Raw(emu, session)


async def _driver(raw: Raw) -> str:
    body = await raw.ok(
        "CreateEdgeDriver", {"DriverName": "d1", "DriverProtocol": "modbus", "Runtime": "c"}
    )
    return str(body["DriverId"])


# Characters that percent-encoding must get right: non-ASCII, space, '*', '~', '+', '&', '='.
_TRICKY = "温度传感器 driver *~+&=/ ✓ é"


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_signed_request_is_accepted_and_values_round_trip(raw: Raw, method: str) -> None:
    driver_id = await _driver(raw)
    answer = await raw.call(
        "CreateEdgeDriverVersion",
        {
            "DriverId": driver_id,
            "DriverVersion": "1.0.0",
            "EdgeVersion": "2.4.0",
            "Description": _TRICKY,
        },
        method=method,
    )
    assert answer.ok, answer.body
    got = await raw.ok("GetEdgeDriverVersion", {"DriverId": driver_id, "DriverVersion": "1.0.0"})
    assert got["Data"]["Description"] == _TRICKY
    assert raw.emu.executions[-2].params["Description"] == _TRICKY


async def test_a_wrong_signature_is_refused_with_the_servers_string_to_sign(raw: Raw) -> None:
    params = raw.signed("QueryEdgeInstance", {"Name": "naïve name"}, secret="not-the-secret")
    answer = await raw.send(params)
    assert answer.status == 400
    assert answer.code == "SignatureDoesNotMatch"
    assert set(answer.body) >= {"RequestId", "Code", "Message"}
    expected = string_to_sign("POST", params)
    assert answer.body["Message"].endswith("server string to sign is:" + expected)
    assert raw.emu.stats()["QueryEdgeInstance"] == {
        **raw.emu.stats()["QueryEdgeInstance"],
        "rejected": 1,
        "executed": 0,
    }
    assert raw.emu.executions == []


async def test_the_http_method_is_part_of_the_signature(raw: Raw) -> None:
    params = raw.signed("QueryEdgeInstance", {}, sign_method="GET")
    answer = await raw.send(params, method="POST")
    assert answer.code == "SignatureDoesNotMatch"
    assert "server string to sign is:POST&%2F&" in answer.body["Message"]
    assert (await raw.send(raw.signed("QueryEdgeInstance", {}, method="GET"), method="GET")).ok


async def test_a_tampered_parameter_breaks_the_signature(raw: Raw) -> None:
    params = raw.signed("QueryEdgeInstance", {"Name": "a"})
    params["Name"] = "b"
    assert (await raw.send(params)).code == "SignatureDoesNotMatch"


async def test_an_unknown_access_key_is_not_found(raw: Raw) -> None:
    answer = await raw.call("QueryEdgeInstance", {}, key_id="LTAI-nobody", secret="whatever")
    assert (answer.status, answer.code) == (404, "InvalidAccessKeyId.NotFound")


async def test_extra_access_keys_are_accepted() -> None:
    async with (
        Emulator(access_keys={"LTAI-second": "second-secret"}) as emu,
        aiohttp.ClientSession() as session,
    ):
        raw = Raw(emu, session)
        answer = await raw.call(
            "QueryEdgeInstance", {}, key_id="LTAI-second", secret="second-secret"
        )
        assert answer.ok
        assert emu.requests[-1].access_key_id == "LTAI-second"


async def test_a_reused_nonce_is_refused_and_not_executed(raw: Raw) -> None:
    nonce = fresh_nonce()
    first = await raw.call("CreateEdgeInstance", {"Name": "once"}, nonce=nonce)
    second = await raw.call("CreateEdgeInstance", {"Name": "twice"}, nonce=nonce)
    assert first.ok
    assert (second.status, second.code) == (400, "SignatureNonceUsed")
    assert [e.params["Name"] for e in raw.emu.executions] == ["once"]
    # A bad signature does not burn the nonce: the real request may still use it.
    nonce = fresh_nonce()
    forged = await raw.call("CreateEdgeInstance", {"Name": "forged"}, nonce=nonce, secret="x")
    assert forged.code == "SignatureDoesNotMatch"
    assert (await raw.call("CreateEdgeInstance", {"Name": "real"}, nonce=nonce)).ok


async def test_nonces_are_per_access_key() -> None:
    async with Emulator(access_keys={"K2": "s2"}) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        nonce = fresh_nonce()
        assert (await raw.call("QueryEdgeInstance", {}, nonce=nonce)).ok
        assert (await raw.call("QueryEdgeInstance", {}, nonce=nonce, key_id="K2", secret="s2")).ok


async def test_a_replay_is_refused_for_as_long_as_its_timestamp_is_accepted() -> None:
    # Signed 15 minutes ahead of the emulator's clock: accepted now (the boundary is kept)
    # and until the emulator's clock is 15 minutes past it, 30 minutes after the first use.
    t0 = 1_700_000_000.0
    clock = FakeClock(t0)
    async with Emulator(clock=clock, quotas=False) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        params = raw.signed("CreateEdgeInstance", {"Name": "once"}, timestamp=t0 + 900)
        assert (await raw.send(params)).ok
        for moment in (t0 + 900, t0 + 1800):
            clock.set(moment)
            replay = await raw.send(params)
            assert (replay.status, replay.code) == (400, "SignatureNonceUsed"), moment
        clock.set(t0 + 1801)
        assert (await raw.send(params)).code == "InvalidTimeStamp.Expired"
        assert [e.params["Name"] for e in emu.executions] == ["once"]


def test_the_nonce_memory_keeps_its_boundary() -> None:
    store = NonceStore(ttl=1800.0)
    assert store.use("k", "n", 1000.0)
    assert not store.use("k", "n", 2800.0)  # exactly ttl later: still remembered
    assert store.use("k", "other", 2800.5)
    assert store.use("k", "n", 2800.5)  # forgotten once more than ttl has passed


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-14 * 60, True), (14 * 60, True), (-16 * 60, False), (16 * 60, False)],
)
async def test_timestamps_more_than_15_minutes_off_are_expired(
    offset: float, accepted: bool
) -> None:
    clock = FakeClock(1_700_000_000.0)
    async with Emulator(clock=clock) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        answer = await raw.call("QueryEdgeInstance", {}, timestamp=clock() + offset)
        assert answer.ok is accepted
        if not accepted:
            assert (answer.status, answer.code) == (400, "InvalidTimeStamp.Expired")
        # Every answer carries the service's clock, so a client can correct its skew.
        assert server_time(answer.headers) == clock()
        assert parsedate_to_datetime(answer.headers["Date"]).timestamp() == clock()


async def test_a_client_can_fix_its_skew_from_the_date_header() -> None:
    clock = FakeClock(time.time() + 3600)  # the service is an hour ahead of us
    async with Emulator(clock=clock) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        refused = await raw.call("QueryEdgeInstance", {})
        assert refused.code == "InvalidTimeStamp.Expired"
        skew = (server_time(refused.headers) or 0.0) - time.time()
        retried = await raw.call("QueryEdgeInstance", {}, timestamp=time.time() + skew)
        assert retried.ok


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-01-01 10:00:00",  # a space, no Z
        "2024-01-01T10:00:00",  # no Z
        "2024-01-01T10:00:00.000Z",  # fractional seconds
        "2024-01-01T10:00:00.5Z",
        "2024-01-01T10:00:00+00:00",  # an offset instead of Z
        "2024-01-01T10:00:00z",
        "2024-1-1T10:00:00Z",  # unpadded fields
        "2024-01-01T9:00:00Z",
        "2024-01-01T10:00:5Z",
        "２０２４-01-01T10:00:00Z",  # non-ASCII digits
        "2024-02-30T10:00:00Z",  # no such day
        "2024-01-01T23:59:60Z",  # a leap second
    ],
)
async def test_a_timestamp_not_exactly_in_the_documented_form_is_a_format_error(
    stamp: str,
) -> None:
    # The emulator's clock is at the stamp's moment, so only its form can be wrong (the
    # format is checked before the 15-minute window).
    clock = FakeClock(1_704_103_200.0)  # 2024-01-01T10:00:00Z
    async with Emulator(clock=clock) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        answer = await raw.send(raw.signed("QueryEdgeInstance", {}, common={"Timestamp": stamp}))
        assert (answer.status, answer.code) == (400, "InvalidTimeStamp.Format"), stamp
        assert emu.executions == []
        exact = raw.signed("QueryEdgeInstance", {}, common={"Timestamp": "2024-01-01T10:00:00Z"})
        assert (await raw.send(exact)).ok


def test_parse_timestamp_takes_the_documented_form_only() -> None:
    assert parse_timestamp("2024-01-01T10:00:00Z") == 1_704_103_200.0
    assert parse_timestamp("2024-02-29T00:00:00Z") is not None
    for text in ("2024-01-01T10:00:00.000Z", "2024-1-1T10:00:00Z", "2024-01-01T10:00:00"):
        assert parse_timestamp(text) is None, text


async def test_version_action_and_common_parameters(raw: Raw) -> None:
    wrong_version = raw.signed("QueryEdgeInstance", {}, common={"Version": "2017-04-20"})
    assert (await raw.send(wrong_version)).code == "InvalidVersion"
    unknown = await raw.call("DescribeEverything", {}, validate=False)
    assert (unknown.status, unknown.code) == (404, "InvalidAction.NotFound")
    params = raw.signed("QueryEdgeInstance", {})
    del params["SignatureNonce"]
    missing = await raw.send(params)
    assert (missing.status, missing.code) == (400, "MissingSignatureNonce")
    sha256 = raw.signed("QueryEdgeInstance", {}, common={"SignatureMethod": "HMAC-SHA256"})
    assert (await raw.send(sha256)).code == "InvalidSignatureMethod"
    typed = raw.signed("QueryEdgeInstance", {}, common={"SignatureType": "BEARER"})
    assert (await raw.send(typed)).code == "InvalidSignatureType"
    # The official SDKs send an empty SignatureType: that is fine.
    sdk_like = raw.signed("QueryEdgeInstance", {}, common={"SignatureType": ""})
    assert (await raw.send(sdk_like)).ok


async def test_parameters_in_query_and_form_body_are_merged(raw: Raw) -> None:
    # The official SDKs POST with the parameters in the query string and a form body.
    params = raw.signed("CreateEdgeInstance", {"Name": "merged", "Tags": "k:v"})
    query = {k: v for k, v in params.items() if k != "Tags"}
    url = raw.emu.endpoint + "/"
    async with raw.session.post(url, params=query, data={"Tags": params["Tags"]}) as resp:
        body = json.loads(await resp.read())
    assert body["Success"] is True, body
    assert raw.emu.executions[-1].params == {"Name": "merged", "Tags": "k:v"}


@pytest.mark.parametrize(
    ("action", "params", "status", "code"),
    [
        ("GetEdgeInstance", {}, 400, "MissingInstanceId"),
        # QueryEdgeInstance / QueryEdgeDriver take PageSize 0 as 10 (test_emulator_resources);
        # the other paged operations document 1 to 30.
        (
            "QueryEdgeInstanceHistoricDeployment",
            {"InstanceId": "i", "PageSize": "0"},
            200,
            "iot.common.InvalidParam",
        ),
        ("QueryEdgeInstance", {"PageSize": "31"}, 200, "iot.common.InvalidParam"),
        ("QueryEdgeInstance", {"PageSize": "ten"}, 200, "iot.common.InvalidParam"),
        ("QueryEdgeInstance", {"Colour": "blue"}, 200, "iot.common.InvalidParam"),
        ("CreateEdgeInstance", {"Name": "has space"}, 200, "iot.common.InvalidParam"),
        ("CreateEdgeInstance", {"Name": "a", "Spec": "40"}, 200, "iot.common.InvalidParam"),
        (
            "BatchGetEdgeInstanceDeviceConfig",
            {"InstanceId": "i", **{f"IotIds.{n}": f"d{n}" for n in range(1, 22)}},
            200,
            "iot.common.ParameterSizeLimit",
        ),
        (
            "BatchGetEdgeInstanceDeviceConfig",
            {"InstanceId": "i", "IotIds.1": "a", "IotIds.3": "c"},
            200,
            "iot.common.InvalidFormattedParameter",
        ),
        (
            "CreateEdgeDriverVersion",
            {"DriverId": "x", "DriverVersion": "1", "EdgeVersion": "2", "DriverConfig": "{nope"},
            200,
            "iot.common.InvalidFormattedParameter",
        ),
        ("QueryDeviceProvisioning", {"ProductKey": "pk"}, 400, "MissingDeviceName"),
        (
            "QueryDeviceProvisioning",
            {"ProductKey": "pk", "DeviceName": "d", "Extra": "1"},
            400,
            "iot.common.InvalidParam",
        ),
    ],
)
async def test_parameter_errors_use_the_documented_codes(
    raw: Raw, action: str, params: dict[str, Any], status: int, code: str
) -> None:
    answer = await raw.call(action, params, validate=False)
    assert (answer.status, answer.code) == (status, code), answer.body
    if status == 200:
        assert answer.body["Success"] is False and answer.body["ErrorMessage"]
    else:
        assert answer.body["Message"]
    # A missing parameter is the gateway's refusal (before the quota); the rest are the
    # service's parameter errors.
    counter = "rejected" if code.startswith("Missing") else "invalid"
    assert raw.emu.stats()[action][counter] == 1
    assert raw.emu.executions == []


@pytest.mark.parametrize(
    ("action", "params", "missing"),
    [
        ("GetEdgeInstance", {}, "InstanceId"),
        ("BatchBindDeviceToEdgeInstanceWithDriver", {"InstanceId": "i", "DriverId": "d"}, "IotIds"),
        ("CreateEdgeInstanceDeployment", {"InstanceId": "i"}, "Type"),
    ],
)
async def test_a_missing_required_parameter_is_the_gateways_missing_code(
    raw: Raw, action: str, params: dict[str, Any], missing: str
) -> None:
    # errors.json documents no code for this; Alibaba's API gateway answers it itself, before
    # the Action runs, with HTTP 400 Missing<Param> and a gateway-shaped body.
    answer = await raw.call(action, params, validate=False)
    assert (answer.status, answer.code) == (400, f"Missing{missing}")
    assert set(answer.body) == {"RequestId", "HostId", "Code", "Message"}
    assert missing in answer.body["Message"]
    assert answer.headers["x-acs-request-id"] == answer.body["RequestId"]
    assert raw.emu.executions == []
    error = _client_error(action, answer)
    assert isinstance(error, InvalidParameterError), type(error)
    assert (error.code, error.request_id, error.http_status) == (
        f"Missing{missing}",
        answer.body["RequestId"],
        400,
    )


def _client_error(action: str, answer: Any) -> Exception:
    body = json.dumps(answer.body).encode()
    try:
        parse_response(get_operation(action), answer.status, answer.headers, body)
    except Exception as exc:  # the client's own mapping of the answer
        return exc
    raise AssertionError(f"{action}: the client took {answer.body} for a success")


async def test_sts_tokens_must_match_their_key() -> None:
    sts = Credentials("STS.key", "sts-secret", security_token="the-token")
    async with Emulator(access_keys=[sts]) as emu, aiohttp.ClientSession() as session:
        raw = Raw(emu, session)
        kw: dict[str, Any] = {"key_id": "STS.key", "secret": "sts-secret"}
        missing = await raw.call("QueryEdgeInstance", {}, **kw)
        assert missing.code == "MissingSecurityToken"
        wrong = await raw.call("QueryEdgeInstance", {}, token="other", **kw)
        assert wrong.code == "InvalidSecurityToken.MismatchWithAccessKey"
        assert (await raw.call("QueryEdgeInstance", {}, token="the-token", **kw)).ok
        forged = await raw.call("QueryEdgeInstance", {}, token="the-token", key_id="STS.key")
        assert forged.code == "SignatureDoesNotMatch"
        # Quoted as the service does (its string-to-sign); the client masks it in its errors.
        assert "SecurityToken%3Dthe-token%26" in forged.body["Message"]


async def test_the_emulator_answers_concurrent_requests(raw: Raw) -> None:
    answers = await asyncio.gather(*(raw.call("QueryEdgeInstance", {}) for _ in range(40)))
    assert all(a.ok for a in answers)
    assert len({a.body["RequestId"] for a in answers}) == 40


# --------------------------------------------------------------------------- official SDK


def _sdk_round_trip(endpoint: str, key_id: str, secret: str) -> dict[str, Any]:
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkiot.request.v20180120.CreateEdgeInstanceRequest import (
        CreateEdgeInstanceRequest,
    )
    from aliyunsdkiot.request.v20180120.GetEdgeInstanceRequest import GetEdgeInstanceRequest
    from aliyunsdkiot.request.v20180120.QueryEdgeInstanceRequest import (
        QueryEdgeInstanceRequest,
    )

    host = endpoint.removeprefix("http://")
    out: dict[str, Any] = {}

    def prepare(request: Any) -> Any:
        request.set_endpoint(host)
        request.set_protocol_type("http")
        return request

    client = AcsClient(key_id, secret, "cn-shanghai")
    create = prepare(CreateEdgeInstanceRequest())
    create.set_Name("sdk_made")
    create.set_Tags("room:lab")
    out["create"] = json.loads(client.do_action_with_exception(create))
    out["string_to_sign"] = create.string_to_sign
    get = prepare(GetEdgeInstanceRequest())
    get.set_InstanceId(out["create"]["InstanceId"])
    out["get"] = json.loads(client.do_action_with_exception(get))
    query = prepare(QueryEdgeInstanceRequest())
    query.set_method("GET")
    query.set_PageSize(5)
    query.set_CurrentPage(1)
    out["query"] = json.loads(client.do_action_with_exception(query))
    missing = prepare(GetEdgeInstanceRequest())
    missing.set_InstanceId("no-such-instance")
    out["missing"] = json.loads(client.do_action_with_exception(missing))
    try:
        AcsClient(key_id, "a-wrong-secret", "cn-shanghai").do_action_with_exception(get)
    except ServerException as exc:
        out["wrong_secret"] = (exc.get_http_status(), exc.get_error_code())
    return out


def test_the_official_alibaba_sdk_is_accepted() -> None:
    with Emulator.start_in_thread() as handle:
        creds = handle.credentials
        out = _sdk_round_trip(handle.endpoint, creds.access_key_id, creds.access_key_secret)
        executions = handle.executions()
    assert out["create"]["Success"] is True
    # The SDK signs an empty SignatureType (and sends x-acs-* headers): accepted.
    assert "SignatureType%3D%26" in out["string_to_sign"]
    assert out["get"]["Data"]["Name"] == "sdk_made"
    assert out["get"]["Data"]["Tags"] == "room:lab"
    assert out["query"]["Data"]["Total"] == 1
    assert out["query"]["Data"]["InstanceList"][0]["InstanceId"] == out["create"]["InstanceId"]
    assert out["missing"]["Code"] == "iot.edge.InstanceNotExist"
    # The SDK compares our string-to-sign with its own and, finding them equal, reports
    # a wrong secret: proof that both sides canonicalise the request identically.
    assert out["wrong_secret"] == (400, "InvalidAccessKeySecret")
    assert [e.action for e in executions] == [
        "CreateEdgeInstance",
        "GetEdgeInstance",
        "QueryEdgeInstance",
        "GetEdgeInstance",
    ]
