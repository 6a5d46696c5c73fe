"""What the real EdgeClient puts on the wire, seen from a local server (tests/support.py).

- every one of the 34 operations: the form body the client signed and sent carries exactly the
  spec's wire names (2.4 common parameters plus the operation's documented ones), and its
  Signature verifies under an independent implementation of 2.5;
- a call rejected by validation sends nothing, for every rule kind, through ``call``,
  ``paginate`` and the typed methods;
- ``paginate`` over every paged ``Query*`` operation, page by page;
- the client's own settings (``iot_instance_id``) are checked when it is built.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from aioedge import Credentials, EdgeClient, ValidationError
from aioedge._catalog import OPERATIONS, Operation

from .support import ScriptServer, ok_body
from .test_catalog import RULE_CASES
from .test_operations import _documented, _value, all_args, required_args

OPS = list(OPERATIONS.values())
PAGED = [op for op in OPS if op.paged]
STS = Credentials("wire-akid", "wire-secret-value", security_token="wire-sts-token")
DEFAULT_IOT_INSTANCE = "iot-default-0001"
# 2.4's table (Action comes from 2.3), plus SecurityToken, sent with STS credentials.
COMMON = {
    "Action",
    "Format",
    "Version",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "Timestamp",
    "SignatureVersion",
    "SignatureNonce",
    "RegionId",
    "SecurityToken",
}


def _ids(op: Operation) -> str:
    return op.action


def make(srv: ScriptServer, **kwargs: Any) -> EdgeClient:
    return EdgeClient(
        credentials=STS,
        region_id="cn-hangzhou",
        endpoint=srv.endpoint,
        rate_limit=False,
        retry=None,
        **kwargs,
    )


def independent_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Section 2.5, written out again without aioedge: RFC 3986 (only ``-_.~`` kept)."""

    def enc(s: str) -> str:
        return quote(s, safe="~")  # space -> %20, * -> %2A, / -> %2F, UTF-8

    canonical = "&".join(
        f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    to_sign = f"{method}&{enc('/')}&{enc(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# ---------------------------------------------------------------------------- wire names


@pytest.mark.parametrize("op", OPS, ids=_ids)
async def test_each_operation_sends_exactly_the_spec_wire_names(
    op: Operation, script_server: ScriptServer
) -> None:
    script_server.default = op.sample_response
    async with make(script_server, iot_instance_id=DEFAULT_IOT_INSTANCE) as client:
        await getattr(client, op.method_name)(**all_args(op))
    [request] = script_server.requests
    sent = request.params
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")

    # The common parameters, with their documented values.
    assert set(sent) >= COMMON
    assert sent["Action"] == op.action
    assert (sent["Format"], sent["Version"]) == ("JSON", "2018-01-20")
    assert (sent["SignatureMethod"], sent["SignatureVersion"]) == ("HMAC-SHA1", "1.0")
    assert (sent["AccessKeyId"], sent["SecurityToken"]) == ("wire-akid", "wire-sts-token")
    assert sent["RegionId"] == "cn-hangzhou"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent["Timestamp"])
    assert sent["SignatureNonce"]
    assert sent["Signature"] == independent_signature(sent, STS.access_key_secret)

    # The rest: exactly the operation's documented names, every one of them (all arguments
    # were given), each key matching one documented row.
    names, _ = _documented(op)
    own = set(sent) - COMMON
    for key in own:
        assert any(p.fullmatch(key) for p in names), f"{op.action}: {key} is not documented"
    for pattern in names:
        assert any(pattern.fullmatch(key) for key in own), f"{op.action}: {pattern.pattern}"
    if op.param("IotInstanceId") is not None:
        # An explicit IotInstanceId wins over the client's default.
        assert sent["IotInstanceId"] == all_args(op)["iot_instance_id"] != DEFAULT_IOT_INSTANCE


@pytest.mark.parametrize("op", OPS, ids=_ids)
async def test_required_only_gets_the_default_iot_instance_id_where_documented(
    op: Operation, script_server: ScriptServer
) -> None:
    script_server.default = op.sample_response
    async with make(script_server, iot_instance_id=DEFAULT_IOT_INSTANCE) as client:
        await getattr(client, op.method_name)(**required_args(op))
    sent = script_server.params()
    names, required = _documented(op)
    own = set(sent) - COMMON
    assert all(any(p.fullmatch(k) for p in names) for k in own)
    assert all(any(p.fullmatch(k) for k in own) for p in required)
    if op.product == "edge":
        assert sent["IotInstanceId"] == DEFAULT_IOT_INSTANCE
    else:  # QueryDeviceProvisioning takes none
        assert op.param("IotInstanceId") is None and "IotInstanceId" not in sent
    assert sent["Signature"] == independent_signature(sent, STS.access_key_secret)


# ---------------------------------------------------------------------------- rejected calls

TAG_CASES = [
    ("CreateEdgeInstance", "format", "Tags", {"Name": "n1", "Tags": "novalue"}),
    ("CreateEdgeInstance", "pattern", "Tags", {"Name": "n1", "Tags": "k1:v1"}),  # key: letters
    ("UpdateEdgeInstance", "pattern", "Tags", {"InstanceId": "i", "Name": "n", "Tags": "k:v!"}),
    ("CreateEdgeInstance", "unique", "Tags", {"Name": "n1", "Tags": "env:a,env:b"}),
]


async def test_every_rejected_call_sends_nothing(script_server: ScriptServer) -> None:
    cases = [*RULE_CASES, *TAG_CASES]
    kinds = {rule for _, rule, _, _ in cases}
    assert {
        "required",
        "unknown",
        "type",
        "range",
        "pattern",
        "max_length",
        "max_items",
        "enum",
        "format",
    } <= kinds
    async with make(script_server) as client:
        for action, rule, param, params in cases:
            with pytest.raises(ValidationError) as info:
                await client.call(action, params)
            err = info.value
            assert (err.action, err.rule) == (action, rule), (action, param, str(err))
            assert err.param is not None and err.param.split(".")[0] == param.split(".")[0]
        assert client.session is None  # not even a session was opened
    assert script_server.requests == []


async def test_rejected_typed_method_calls_send_nothing(script_server: ScriptServer) -> None:
    async with make(script_server) as client:
        bad: list[tuple[str, dict[str, Any], str, str]] = [
            ("get_edge_instance", {"instance_id": None}, "InstanceId", "required"),
            ("get_edge_instance", {"instance_id": 12}, "InstanceId", "type"),
            ("query_edge_instance", {"page_size": 31}, "PageSize", "range"),
            ("create_edge_instance", {"name": "bad name!"}, "Name", "pattern"),
            ("create_edge_instance", {"name": "n1", "spec": 15}, "Spec", "enum"),
            ("create_edge_instance", {"name": "n1", "tags": "k1:v1"}, "Tags", "pattern"),
            (
                "batch_bind_device_to_edge_instance_with_driver",
                {"instance_id": "i", "driver_id": "d", "iot_ids": [f"d{i}" for i in range(21)]},
                "IotIds",
                "max_items",
            ),
        ]
        for method, kwargs, param, rule in bad:
            with pytest.raises(ValidationError) as info:
                await getattr(client, method)(**kwargs)
            assert (info.value.param, info.value.rule) == (param, rule), method
        with pytest.raises(TypeError):  # not a parameter at all: Python says so
            await client.get_edge_instance(instance_id="i", bogus=1)  # type: ignore[call-arg]
    assert script_server.requests == []


# ---------------------------------------------------------------------------- paginate


@pytest.mark.parametrize(
    ("params", "param", "rule"),
    [
        ({"CurrentPage": "abc"}, "CurrentPage", "type"),
        ({"CurrentPage": 0}, "CurrentPage", "range"),
        ({"CurrentPage": -3}, "CurrentPage", "range"),
        ({"CurrentPage": 1.5}, "CurrentPage", "type"),
        ({"CurrentPage": True}, "CurrentPage", "type"),
        ({"PageSize": 0}, "PageSize", "range"),
        ({"PageSize": 31}, "PageSize", "range"),
        ({"PageSize": "many"}, "PageSize", "type"),
        ({"Nmae": "x"}, "Nmae", "unknown"),
    ],
)
async def test_paginate_validates_page_parameters_before_any_io(
    script_server: ScriptServer, params: dict[str, Any], param: str, rule: str
) -> None:
    async with make(script_server) as client:
        with pytest.raises(ValidationError) as info:
            async for _ in client.paginate("QueryEdgeInstance", params):
                pass
    assert (info.value.param, info.value.rule) == (param, rule)
    assert param in str(info.value)
    assert script_server.requests == []


def _pager(op: Operation, total: int) -> Any:
    """A handler serving ``total`` numbered items of ``op`` page by page, as the service does."""
    assert op.items_key is not None
    items_key = op.items_key

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        page, size = int(str(form["CurrentPage"])), int(str(form["PageSize"]))
        start = (page - 1) * size
        items = [{"Seq": i} for i in range(start, min(start + size, total))]
        data = {"Total": total, "CurrentPage": page, "PageSize": size, items_key: items}
        body = ok_body(Data=data)
        return web.Response(text=json.dumps(body), content_type="application/json")

    return handle


def _required_wire(op: Operation) -> dict[str, Any]:
    return {
        p.name: _value(op, p)
        for p in op.params
        if p.required and p.default is None and p.name not in ("CurrentPage", "PageSize")
    }


def test_six_paged_operations() -> None:
    assert sorted(op.action for op in PAGED) == [
        "QueryEdgeDriver",
        "QueryEdgeDriverVersion",
        "QueryEdgeInstance",
        "QueryEdgeInstanceDevice",
        "QueryEdgeInstanceDriver",
        "QueryEdgeInstanceHistoricDeployment",
    ]


@pytest.mark.parametrize("op", PAGED, ids=_ids)
async def test_paginate_walks_every_page_of_every_paged_operation(
    op: Operation, script_server: ScriptServer
) -> None:
    script_server.default = _pager(op, total=65)
    required = _required_wire(op)
    async with make(script_server, iot_instance_id=DEFAULT_IOT_INSTANCE) as client:
        seqs = [
            item["Seq"] async for item in client.paginate(op.action, {**required, "PageSize": 7})
        ]
    assert seqs == list(range(65))  # 9 full pages of 7, then 2
    sent = [r.params for r in script_server.requests]
    assert [s["CurrentPage"] for s in sent] == [str(n) for n in range(1, 11)]
    for s in sent:
        assert s["Action"] == op.action and s["PageSize"] == "7"
        assert s["IotInstanceId"] == DEFAULT_IOT_INSTANCE
        for name, value in required.items():
            assert s[name] == str(value), name


@pytest.mark.parametrize("op", PAGED, ids=_ids)
async def test_paginate_starts_at_the_callers_page(
    op: Operation, script_server: ScriptServer
) -> None:
    script_server.default = _pager(op, total=30)
    async with make(script_server) as client:
        seqs = [
            item["Seq"]
            async for item in client.paginate(
                op.action, {**_required_wire(op), "CurrentPage": "3", "PageSize": 10}
            )
        ]
    assert seqs == list(range(20, 30))
    assert [r.params["CurrentPage"] for r in script_server.requests] == ["3"]


# ---------------------------------------------------------------------------- client settings


@pytest.mark.parametrize("bad", [123, "", "   ", b"iot-1", ["iot-1"]])
def test_default_iot_instance_id_is_validated_at_construction(bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        EdgeClient(credentials=STS, rate_limit=False, iot_instance_id=bad)
    assert info.value.param == "iot_instance_id"
    assert "iot_instance_id" in str(info.value)
    assert "wire-secret-value" not in str(info.value)


def test_default_iot_instance_id_accepts_a_string_or_none() -> None:
    assert EdgeClient(credentials=STS, iot_instance_id="iot-1").iot_instance_id == "iot-1"
    assert EdgeClient(credentials=STS).iot_instance_id is None
