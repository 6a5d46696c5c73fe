"""Signer: the precomputed fast path signs exactly like the plain 2.5 functions."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge._catalog import get_operation
from aioedge._credentials import Credentials
from aioedge._protocol import Signer, common_params
from aioedge._signing import sign

from .test_signing import _keys, _reference_sign, _values

OP = get_operation("GetEdgeInstance")
BATCH = get_operation("BatchGetEdgeInstanceDeviceConfig")


def _signer(method: str = "POST", token: str | None = None, secret: str = "s3cret") -> Signer:
    return Signer(
        endpoint="https://iot.cn-shanghai.aliyuncs.com",
        credentials=Credentials("AKID", secret, security_token=token),
        region_id="cn-shanghai",
        method=method,
    )


def _sent(req_body: bytes | str) -> dict[str, str]:
    text = req_body.decode() if isinstance(req_body, bytes) else req_body
    return dict(parse_qsl(text, keep_blank_values=True))


def _expected(wire: dict[str, str], *, ts: float | datetime, nonce: str) -> dict[str, str]:
    out = common_params(
        action=OP.action, access_key_id="AKID", region_id="cn-shanghai", timestamp=ts, nonce=nonce
    )
    out.update(wire)
    return out


@settings(max_examples=200, deadline=None)
@given(
    wire=st.dictionaries(_keys, _values, max_size=8),
    nonce=st.text(max_size=40).filter(lambda s: all(not 0xD800 <= ord(c) <= 0xDFFF for c in s)),
    ts=st.floats(min_value=0, max_value=4e9),
    method=st.sampled_from(["GET", "POST"]),
)
def test_build_matches_the_reference_signer(
    wire: dict[str, str], nonce: str, ts: float, method: str
) -> None:
    signer = _signer(method)
    for _ in range(2):  # the second build comes from the cached plan
        req = signer.build(OP, wire, timestamp=ts, nonce=nonce)
        unsigned = dict(req.params)
        signature = unsigned.pop("Signature")
        expected = _expected(wire, ts=ts, nonce=nonce)
        expected.pop("Signature", None)  # a caller's Signature never counts (2.5)
        assert unsigned == expected
        assert signature == _reference_sign(method, unsigned, "s3cret")
        sent = _sent(req.body) if method == "POST" else _sent(req.url.split("?", 1)[1])
        assert sent == {**unsigned, "Signature": signature}


def test_same_names_new_values_reuse_the_plan_correctly() -> None:
    signer = _signer()
    first = signer.build(OP, {"InstanceId": "a b*~"}, timestamp=1.0, nonce="n1")
    second = signer.build(OP, {"InstanceId": "设备/1"}, timestamp=2.5, nonce="n2")
    for req, iid in ((first, "a b*~"), (second, "设备/1")):
        params = dict(req.params)
        assert params["InstanceId"] == iid
        signature = params.pop("Signature")
        assert signature == sign("POST", params, "s3cret")
    assert _sent(second.body)["Timestamp"] == "1970-01-01T00:00:02Z"


def test_list_indexes_sort_as_text_like_the_service() -> None:
    # IotIds.10 sorts before IotIds.2 (2.5 sorts names as strings), whatever the dict order.
    wire = {"InstanceId": "i", **{f"IotIds.{i}": f"d{i}" for i in range(1, 21)}}
    req = _signer().build(BATCH, wire, timestamp=0.0, nonce="n")
    names = [pair.split("=")[0] for pair in req.body.decode().split("&")][:-1]
    assert names == sorted(names)
    params = dict(req.params)
    assert params.pop("Signature") == sign("POST", params, "s3cret")


def test_a_wire_value_overriding_a_common_one_wins_as_before() -> None:
    req = _signer().build(OP, {"InstanceId": "i", "Version": "2017-04-20"}, timestamp=0, nonce="n")
    params = dict(req.params)
    assert params["Version"] == "2017-04-20"
    assert params.pop("Signature") == sign("POST", params, "s3cret")


def test_security_token_and_datetime_timestamps() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    req = _signer(token="tok/en+").build(OP, {"InstanceId": "i"}, timestamp=moment, nonce="n")
    params = dict(req.params)
    assert params["SecurityToken"] == "tok/en+"
    assert params["Timestamp"] == "2024-05-01T12:00:00Z"
    assert params.pop("Signature") == sign("POST", params, "s3cret")


def test_timestamp_cache_follows_the_clock() -> None:
    signer = _signer()
    stamps = [
        _sent(signer.build(OP, {"InstanceId": "i"}, timestamp=t, nonce="n").body)["Timestamp"]
        for t in (59.9, 60.0, 59.0, 3600.2)
    ]
    assert stamps == [
        "1970-01-01T00:00:59Z",
        "1970-01-01T00:01:00Z",
        "1970-01-01T00:00:59Z",
        "1970-01-01T01:00:00Z",
    ]


def test_repr_shows_no_secret() -> None:
    assert "s3cret" not in repr(_signer(secret="s3cret"))
    assert "s3cret" not in repr(_signer().build(OP, {"InstanceId": "i"}, timestamp=0, nonce="n"))


@given(st.dictionaries(_keys, _values, max_size=4))
def test_many_shapes_beyond_the_plan_cache(wire: dict[str, str]) -> None:
    signer = _signer()
    signer._plans.update({(str(i), ()): ("", lambda v: v) for i in range(2000)})  # full cache
    req = signer.build(OP, wire, timestamp=0.0, nonce="n")
    params = dict(req.params)
    assert params.pop("Signature") == _reference_sign("POST", params, "s3cret")


@given(
    # From one character (Credentials holds no empty secret) to well over the 64-byte block.
    secret=st.text(min_size=1, max_size=150).filter(
        lambda s: all(not 0xD800 <= ord(c) <= 0xDFFF for c in s)
    )
)
def test_any_secret_length_signs_like_hmac(secret: str) -> None:
    # The precomputed HMAC states: short keys are padded, keys over 64 bytes hashed first.
    req = _signer(secret=secret).build(OP, {"InstanceId": "i"}, timestamp=0.0, nonce="n")
    params = dict(req.params)
    assert params.pop("Signature") == _reference_sign("POST", params, secret)
