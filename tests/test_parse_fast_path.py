"""parse_response's fast path (str parsing) keeps every encoding json accepts."""

from __future__ import annotations

import json

import pytest

from aioedge._catalog import get_operation
from aioedge._errors import InvalidResponseError, NotFoundError
from aioedge._protocol import parse_response

OP = get_operation("GetEdgeInstance")
OK = {"RequestId": "R1", "Success": True, "Code": "Success", "Data": {"Name": "设备"}}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(OK).encode(),
        json.dumps(OK, ensure_ascii=False).encode("utf-8"),
        b"\xef\xbb\xbf" + json.dumps(OK).encode(),  # UTF-8 with a BOM
        json.dumps(OK, ensure_ascii=False).encode("utf-16"),
        json.dumps(OK, ensure_ascii=False).encode("utf-32-le"),
        json.dumps(OK).encode("utf-32-le"),  # valid UTF-8 too (NULs), but not JSON as such
    ],
)
def test_success_bodies_in_every_json_encoding(body: bytes) -> None:
    assert parse_response(OP, 200, {}, body) == OK


def test_undecodable_body_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_response(OP, 200, {"x-acs-request-id": "H1"}, b"\xff\xfe\xfa garbage")
    assert info.value.request_id == "H1"


def test_business_error_still_reads_the_header_request_id() -> None:
    body = json.dumps({"Success": False, "Code": "iot.edge.InstanceNotExist"}).encode()
    with pytest.raises(NotFoundError) as info:
        parse_response(OP, 200, {"x-acs-request-id": "H2"}, body)
    assert info.value.request_id == "H2"
