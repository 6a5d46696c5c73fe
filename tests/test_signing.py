"""Signature v1 (2.5): the worked example and an independent implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge._signing import (
    canonical_query,
    format_timestamp,
    parse_timestamp,
    percent_encode,
    sign,
    string_to_sign,
    timestamp_text,
)

# The 2.5 example (AccessKey secret "testsecret"); ERRATA: its string-to-sign lacks an '&'.
EXAMPLE = {
    "MessageContent": "aGVsbG93b3JsZA=",
    "Action": "Pub",
    "Timestamp": "2017-10-02T09:39:41Z",
    "SignatureVersion": "1.0",
    "ServiceCode": "iot",
    "Format": "XML",
    "Qos": "0",
    "SignatureNonce": "0715a395-aedf-4a41-bab7-746b43d38d88",
    "Version": "2017-04-20",
    "AccessKeyId": "testid",
    "SignatureMethod": "HMAC-SHA1",
    "RegionId": "cn-shanghai",
    "ProductKey": "12345abcdeZ",
    "TopicFullName": "/productKey/testdevice/get",
}


def test_worked_example_signature() -> None:
    assert sign("GET", EXAMPLE, "testsecret") == "Y9eWn4nF8QPh3c4zAFkM/k/u7eA="


def test_worked_example_string_to_sign() -> None:
    expected = (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DPub%26Format%3DXML%26MessageContent%3D"
        "aGVsbG93b3JsZA%253D%26ProductKey%3D12345abcdeZ%26Qos%3D0%26RegionId%3Dcn-shanghai"
        "%26ServiceCode%3Diot%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D0715a395-aedf"
        "-4a41-bab7-746b43d38d88%26SignatureVersion%3D1.0%26Timestamp%3D2017-10-02T09%253A39"
        "%253A41Z%26TopicFullName%3D%252FproductKey%252Ftestdevice%252Fget%26Version%3D2017-04-20"
    )
    assert string_to_sign("GET", EXAMPLE) == expected


def test_signature_param_is_not_signed() -> None:
    with_sig = {**EXAMPLE, "Signature": "whatever"}
    assert sign("GET", with_sig, "testsecret") == sign("GET", EXAMPLE, "testsecret")


def test_percent_encoding_rules() -> None:
    assert percent_encode("a b") == "a%20b"
    assert percent_encode("*") == "%2A"
    assert percent_encode("~-_.") == "~-_."
    assert percent_encode("+/=&") == "%2B%2F%3D%26"
    assert percent_encode("设备") == "%E8%AE%BE%E5%A4%87"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=253_402_300_799))  # to 9999-12-31T23:59:59Z
def test_parse_timestamp_reads_what_format_timestamp_writes(seconds: int) -> None:
    text = format_timestamp(float(seconds))
    assert parse_timestamp(text) == seconds
    assert timestamp_text(float(seconds)) == text


def test_timestamp_text_shows_an_impossible_time_as_seconds() -> None:
    assert timestamp_text(1e17) == "1e+17s"
    assert timestamp_text(float("inf")) == "inf"
    assert timestamp_text(float("nan")) == "nan"


def test_format_timestamp() -> None:
    cst = timezone(timedelta(hours=8))
    assert format_timestamp(datetime(2016, 1, 4, 20, 0, 0, tzinfo=cst)) == "2016-01-04T12:00:00Z"
    assert format_timestamp(0.0) == "1970-01-01T00:00:00Z"


# ---- an independent implementation of 2.5, written from the text, not from _signing


def _java_style_encode(value: str) -> str:
    # 2.5: java.net.URLEncoder then '+' -> %20, '*' -> %2A, %7E -> '~'
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if ch.isascii() and (ch.isalnum() or ch in ".-*_"):
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def _reference_sign(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items())
    canonical = "&".join(f"{_java_style_encode(k)}={_java_style_encode(v)}" for k, v in pairs)
    to_sign = method + "&" + _java_style_encode("/") + "&" + _java_style_encode(canonical)
    mac = hmac.new((secret + "&").encode(), to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


_keys = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12
)
_values = st.text(max_size=40).filter(
    lambda s: "\x00" not in s and all(not 0xD800 <= ord(c) <= 0xDFFF for c in s)
)


@settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(_keys, _values, min_size=1, max_size=12),
    secret=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30
    ),
    method=st.sampled_from(["GET", "POST"]),
)
def test_signature_matches_independent_implementation(
    params: dict[str, str], secret: str, method: str
) -> None:
    params.pop("Signature", None)
    assert sign(method, params, secret) == _reference_sign(method, params, secret)


@given(st.dictionaries(_keys, _values, max_size=8))
def test_canonical_query_is_sorted(params: dict[str, str]) -> None:
    params.pop("Signature", None)
    keys = [pair.split("=", 1)[0] for pair in canonical_query(params).split("&")] if params else []
    assert keys == [percent_encode(k) for k in sorted(params)]
