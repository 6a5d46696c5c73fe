"""Request building and response parsing: the sans-I/O core."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest

from aioedge import (
    AlreadyExistsError,
    ApiError,
    AuthError,
    ConflictError,
    InvalidParameterError,
    InvalidResponseError,
    LimitExceededError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottledError,
)
from aioedge._catalog import OPERATIONS, get_operation, validate_params
from aioedge._errors import TransportError, error_class_for
from aioedge._log import redact_processor
from aioedge._protocol import (
    build_request,
    mask_secrets,
    parse_response,
    redact,
    redact_error,
    secret_forms,
)
from aioedge._signing import percent_encode, sign

OP = get_operation("GetEdgeInstance")


def _build(**kw: Any) -> Any:
    args: dict[str, Any] = dict(
        endpoint="https://iot.cn-shanghai.aliyuncs.com",
        access_key_id="AKID",
        access_key_secret="s3cr3t-value",
        region_id="cn-shanghai",
        timestamp=1_700_000_000.0,
        nonce="n-1",
    )
    args.update(kw)
    return build_request(OP, validate_params(OP, {"InstanceId": "F3AP"}), **args)


def test_build_request_has_common_params_and_valid_signature() -> None:
    req = _build(security_token="tok-123")
    sent = dict(parse_qsl(req.body.decode(), keep_blank_values=True))
    assert sent["Action"] == "GetEdgeInstance"
    assert sent["Version"] == "2018-01-20"
    assert sent["Format"] == "JSON"
    assert sent["SignatureMethod"] == "HMAC-SHA1" and sent["SignatureVersion"] == "1.0"
    assert sent["Timestamp"] == "2023-11-14T22:13:20Z"
    assert sent["SignatureNonce"] == "n-1"
    assert sent["RegionId"] == "cn-shanghai"
    assert sent["SecurityToken"] == "tok-123"
    assert sent["InstanceId"] == "F3AP"
    signature = sent.pop("Signature")
    assert signature == sign("POST", sent, "s3cr3t-value")
    assert req.method == "POST" and req.url == "https://iot.cn-shanghai.aliyuncs.com/"


def test_get_request_puts_params_in_query() -> None:
    req = _build(method="GET")
    assert req.body == b"" and "?" in req.url
    sent = dict(parse_qsl(req.url.split("?", 1)[1]))
    signature = sent.pop("Signature")
    assert signature == sign("GET", sent, "s3cr3t-value")


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_repr_hides_secrets(method: str) -> None:
    req = _build(security_token="tok-123", method=method)
    text = repr(req)
    assert "tok-123" not in text and req.params["Signature"] not in text
    assert quote(req.params["Signature"], safe="") not in text
    assert "s3cr3t-value" not in text
    assert redact(req.params)["Signature"] == "***"


def test_every_secret_name_is_masked_in_params_and_in_log_fields() -> None:
    # One list (SECRET_PARAMS): an OIDC token is a secret too, as a parameter (AssumeRoleWithOIDC)
    # and as a log field, whatever its case or spelling.
    params = {"OIDCToken": "eyJ-oidc", "SecurityToken": "tok", "Action": "AssumeRoleWithOIDC"}
    assert redact(params) == {
        "OIDCToken": "***",
        "SecurityToken": "***",
        "Action": params["Action"],
    }
    secret = ["oidc_token", "OIDCToken", "Signature", "security_token", "SecurityToken"]
    secret += ["access_key_secret", "AccessKeySecret", "secret"]
    plain = ["event", "oidc_token_file", "access_key_id", "request_id"]
    event = {name: f"value-of-{name}" for name in secret + plain}
    out = redact_processor(None, "info", dict(event))
    assert {k for k, v in out.items() if v == "***"} == set(secret)


def _parse(status: int, body: Any, headers: dict[str, str] | None = None, op: Any = OP) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_response(op, status, headers or {}, raw)


@pytest.mark.parametrize("action", sorted(OPERATIONS))
def test_every_documented_sample_parses(action: str) -> None:
    op = OPERATIONS[action]
    assert _parse(200, dict(op.sample_response), op=op) == op.sample_response


def test_http_200_success_false_is_an_error() -> None:
    with pytest.raises(NotFoundError) as info:
        _parse(
            200,
            {
                "Success": False,
                "Code": "iot.edge.InstanceNotExist",
                "ErrorMessage": "gone",
                "RequestId": "R1",
            },
        )
    err = info.value
    assert (err.code, err.message, err.request_id, err.http_status, err.action) == (
        "iot.edge.InstanceNotExist",
        "gone",
        "R1",
        200,
        "GetEdgeInstance",
    )
    assert "R1" in str(err) and "iot.edge.InstanceNotExist" in str(err)


def test_4xx_body_uses_message() -> None:
    with pytest.raises(AuthError) as info:
        _parse(400, {"RequestId": "R2", "Code": "SignatureDoesNotMatch", "Message": "bad sig"})
    assert info.value.message == "bad sig" and info.value.http_status == 400


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"Code": "Throttling.User", "Message": "slow down", "RequestId": "R"}),
        (503, {"Code": "Throttling", "Message": "x", "RequestId": "R"}),
        (429, {"Code": "TooMany", "Message": "x", "RequestId": "R"}),
        (429, b"<html>too many</html>"),
        (
            200,
            {
                "Success": False,
                "Code": "iot.common.HighFrequentDeny",
                "ErrorMessage": "x",
                "RequestId": "R",
            },
        ),
        (400, {"Code": "Throttling.Api", "Message": "x", "RequestId": "R"}),
    ],
)
def test_every_throttling_form(status: int, body: Any) -> None:
    with pytest.raises(ThrottledError):
        _parse(status, body)


def test_success_without_success_or_code_is_accepted() -> None:
    # The QueryEdgeInstanceDriver sample has neither field.
    assert _parse(200, {"RequestId": "R", "Data": {}})["RequestId"] == "R"


def test_lowercase_success_code() -> None:
    op = get_operation("QueryDeviceProvisioning")
    assert _parse(200, {"Code": "success", "Data": {}}, op=op)["Code"] == "success"


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (200, b"not json at all", InvalidResponseError),
        (200, b'{"Success": true, "Data": {"Instan', InvalidResponseError),
        (502, b"<html>bad gateway</html>", ServiceUnavailableError),
        (200, b"[1, 2]", InvalidResponseError),
        (200, b"", InvalidResponseError),
    ],
)
def test_unreadable_bodies_are_typed_errors(status: int, body: Any, cls: type[ApiError]) -> None:
    with pytest.raises(cls) as info:
        _parse(status, body, {"x-acs-request-id": "HDR-1"})
    assert info.value.http_status == status
    assert info.value.request_id == "HDR-1"


def test_snippet_is_short() -> None:
    with pytest.raises(InvalidResponseError) as info:
        _parse(200, b"x" * 5000)
    assert len(str(info.value)) < 400


def test_server_time_from_date_header() -> None:
    with pytest.raises(AuthError) as info:
        _parse(
            400,
            {"Code": "InvalidTimeStamp.Expired", "Message": "old", "RequestId": "R"},
            {"Date": "Tue, 14 Nov 2023 22:13:20 GMT"},
        )
    assert info.value.server_time == 1_700_000_000.0


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("iot.edge.InstanceNotExist", NotFoundError),
        ("iot.edge.DriverVersionNotExist", NotFoundError),
        ("iot.edge.DeviceNotBindToInstance", NotFoundError),
        ("iot.device.NotExistedDevice", NotFoundError),
        ("iot.edge.deploySheetNotExist", NotFoundError),
        ("iot.edge.InstanceNameExist", AlreadyExistsError),
        ("iot.edge.DriverAlreadyBindToInstance", AlreadyExistsError),
        ("iot.edge.DeviceAlreadyBindToInstance", AlreadyExistsError),
        ("iot.edge.DriverVersionAlreadyExist", AlreadyExistsError),
        ("iot.edge.InstanceNumLimitation", LimitExceededError),
        ("iot.edge.InstanceDriverLimitation", LimitExceededError),
        ("iot.common.ParameterSizeLimit", LimitExceededError),
        ("iot.edge.deploySheetAlreadyExist", ConflictError),
        ("iot.edge.InstanceHasDevice", ConflictError),
        ("iot.common.RamActionPermissionDeny", AuthError),
        ("iot.common.InvalidParam", InvalidParameterError),
        ("iot.system.SystemException", ServiceUnavailableError),
        ("iot.common.HighFrequentDeny", ThrottledError),
    ],
)
def test_code_mapping(code: str, cls: type[ApiError]) -> None:
    assert error_class_for(code) is cls


def test_every_documented_code_maps_to_a_specific_class() -> None:
    from pathlib import Path

    errors = json.loads(
        (Path(__file__).resolve().parents[1] / "aioedge" / "_spec" / "errors.json").read_text()
    )
    generic = [e["code"] for e in errors["errors"] if error_class_for(e["code"]) is ApiError]
    assert generic == []


def test_api_error_pickles_with_fields() -> None:
    import pickle

    err = NotFoundError(
        "iot.edge.InstanceNotExist",
        "gone",
        request_id="R",
        http_status=200,
        action="GetEdgeInstance",
    )
    back = pickle.loads(pickle.dumps(err))
    assert (
        type(back) is NotFoundError and back.request_id == "R" and back.action == "GetEdgeInstance"
    )


# ---- the client's secrets, quoted back by the service


TOKEN, SECRET = "CAIS+tok/en=", "sec+ret/value"


def _all_forms(*secrets: str) -> list[str]:
    return [f for s in secrets for f in (s, percent_encode(s), percent_encode(percent_encode(s)))]


def test_secret_forms_are_raw_and_percent_encoded_once_and_twice_longest_first() -> None:
    forms = secret_forms(TOKEN, None, SECRET, "")
    assert set(forms) == set(_all_forms(TOKEN, SECRET))
    assert [len(f) for f in forms] == sorted((len(f) for f in forms), reverse=True)
    assert secret_forms(None) == ()


@pytest.mark.parametrize("status", [400, 200])
def test_redact_error_masks_every_form_in_message_body_and_rendering(status: int) -> None:
    quoted = " ".join(_all_forms(TOKEN, SECRET))
    text_key = "Message" if status == 400 else "ErrorMessage"
    body = {
        "RequestId": "R1",
        "Code": "SignatureDoesNotMatch",
        text_key: f"server string to sign is:{quoted}",
        "Recommend": f"see {TOKEN}",
        "Success": False,
        "Detail": [{"token": percent_encode(TOKEN)}],
    }
    with pytest.raises(AuthError) as info:
        _parse(status, body)
    err = redact_error(info.value, secret_forms(TOKEN, SECRET))
    assert err is info.value
    assert err.message == "server string to sign is:" + " ".join(["***"] * 6)
    assert err.recommend == "see ***" and err.body["Detail"] == [{"token": "***"}]
    assert err.code == "SignatureDoesNotMatch" and err.request_id == "R1"
    for text in (str(err), repr(err), err.message, repr(err.body), repr(err.__reduce__())):
        for form in _all_forms(TOKEN, SECRET):
            assert form not in text


def test_redact_error_masks_the_snippet_of_an_unreadable_answer() -> None:
    with pytest.raises(InvalidResponseError) as info:
        _parse(404, f"<html>proxy said {percent_encode(TOKEN)}</html>".encode())
    err = redact_error(info.value, secret_forms(TOKEN))
    assert percent_encode(TOKEN) not in str(err) and "proxy said ***" in err.message


def test_redact_error_masks_transport_errors_too_and_leaves_others_alone() -> None:
    err = redact_error(TransportError(f"failed near {TOKEN}"), secret_forms(TOKEN))
    assert isinstance(err, TransportError)
    assert err.message == "failed near ***" and str(err) == "failed near ***"
    plain = ApiError("Code", "nothing secret here")
    assert str(redact_error(plain, secret_forms(TOKEN))) == "Code: nothing secret here"
    assert redact_error(plain, ()) is plain


def test_mask_secrets_masks_text_bytes_and_bodies_alike() -> None:
    forms = secret_forms("s/cr+t")  # raw, encoded once and twice
    assert forms == ("s%252Fcr%252Bt", "s%2Fcr%2Bt", "s/cr+t")
    text = "a s/cr+t b s%2Fcr%2Bt c s%252Fcr%252Bt"
    assert mask_secrets(text, forms) == "a *** b *** c ***"
    raw = text.encode()
    assert mask_secrets(raw, tuple(f.encode() for f in forms)) == b"a *** b *** c ***"
    body = {"Message": text, "List": [text, 3], "Code": None}
    assert mask_secrets(body, forms) == {
        "Message": "a *** b *** c ***",
        "List": ["a *** b *** c ***", 3],
        "Code": None,
    }
    clean = b"nothing to hide"
    assert mask_secrets(clean, (b"s/cr+t",)) is clean  # untouched: the client keeps its tuple
