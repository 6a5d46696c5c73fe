"""Build signed requests and decipher responses: the sans-I/O heart of the client.

``build_request`` turns validated wire parameters into a signed, form-encoded POST;
``parse_response(status, headers, body)`` returns the body dict or raises the right
ApiError.  No sockets, no clocks: time and nonce are arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ._catalog import API_VERSION, Operation
from ._errors import (
    ApiError,
    InvalidResponseError,
    ServiceUnavailableError,
    ThrottledError,
    error_class_for,
)
from ._signing import format_timestamp, percent_encode, sign

__all__ = [
    "SECRET_PARAMS",
    "PreparedRequest",
    "build_request",
    "common_params",
    "encode_form",
    "parse_response",
    "redact",
]

# Parameters whose values must never reach a log line, repr or error message.
SECRET_PARAMS = frozenset({"Signature", "SecurityToken", "AccessKeySecret"})
_SNIPPET = 200


def redact(params: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``params`` safe to log."""
    return {k: ("***" if k in SECRET_PARAMS else v) for k, v in params.items()}


def encode_form(params: Mapping[str, str]) -> bytes:
    """application/x-www-form-urlencoded body using the 2.5 percent-encoding."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode(
        "ascii"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRequest:
    """A signed request ready to send.  Its repr hides the signature and token."""

    action: str
    method: str
    url: str
    params: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    nonce: str

    def __repr__(self) -> str:
        return (
            f"PreparedRequest(action={self.action!r}, method={self.method!r}, url={self.url!r}, "
            f"params={redact(self.params)!r})"
        )


def common_params(
    *,
    action: str,
    access_key_id: str,
    region_id: str,
    timestamp: datetime | float,
    nonce: str,
    security_token: str | None = None,
) -> dict[str, str]:
    """The 2.4 common parameters of one attempt (a fresh nonce and timestamp each time)."""
    out = {
        "Action": action,
        "Format": "JSON",
        "Version": API_VERSION,
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": format_timestamp(timestamp),
        "RegionId": region_id,
    }
    if security_token:
        out["SecurityToken"] = security_token
    return out


def build_request(
    op: Operation,
    wire_params: Mapping[str, str],
    *,
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    region_id: str,
    timestamp: datetime | float,
    nonce: str,
    security_token: str | None = None,
    method: str = "POST",
) -> PreparedRequest:
    """Sign ``wire_params`` (already validated/flattened) for one attempt."""
    params = common_params(
        action=op.action,
        access_key_id=access_key_id,
        region_id=region_id,
        timestamp=timestamp,
        nonce=nonce,
        security_token=security_token,
    )
    params.update(wire_params)
    params["Signature"] = sign(method, params, access_key_secret)
    url = endpoint.rstrip("/") + "/"
    if method.upper() == "POST":
        body = encode_form(params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
    else:
        url = url + "?" + encode_form(params).decode("ascii")
        body = b""
        headers = {"Accept": "application/json"}
    return PreparedRequest(
        action=op.action,
        method=method.upper(),
        url=url,
        params=params,
        body=body,
        headers=headers,
        nonce=nonce,
    )


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > _SNIPPET else "")


def server_time(headers: Mapping[str, str]) -> float | None:
    """The service's clock from the ``Date`` header, as a UNIX timestamp, if readable."""
    raw = headers.get("Date") or headers.get("date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _header_request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-acs-request-id") or headers.get("X-Acs-Request-Id")


def parse_response(
    op: Operation, status: int, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """Return the parsed body of a successful answer, or raise the matching ApiError.

    ERRATA (Responses): success is HTTP 200 with ``Success: true``; HTTP 200 with
    ``Success: false`` is a failure (``Code`` + ``ErrorMessage``); 4xx/5xx bodies are
    ``{RequestId, Code, Message}``; throttling may come either way.
    """
    request_id = _header_request_id(headers)
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        # Not JSON (a proxy page, a truncated body): keep status and a short snippet.
        cls: type[ApiError]
        if status == 429:
            cls, code = ThrottledError, "Throttling"
        elif status >= 500:
            cls, code = ServiceUnavailableError, f"HTTP{status}"
        else:
            cls, code = InvalidResponseError, "InvalidResponse"
        raise _attach_time(
            cls(
                code,
                f"unreadable response body (HTTP {status}): {_snippet(body)!r}",
                request_id=request_id,
                http_status=status,
                action=op.action,
            ),
            headers,
        )
    request_id = str(data.get("RequestId") or request_id or "") or None
    if 200 <= status < 300:
        success = data.get("Success")
        raw_code = data.get("Code")
        # Some documented samples (QueryEdgeInstanceDriver) carry neither Success nor Code.
        if success is True or (success is None and raw_code in (None, "Success", "success")):
            return data
        code_text = str(raw_code or "UnknownError")
        message = str(data.get("ErrorMessage") or data.get("Message") or "")
    else:
        code_text = str(data.get("Code") or f"HTTP{status}")
        message = str(data.get("Message") or data.get("ErrorMessage") or "")
    cls = error_class_for(code_text, status if status >= 300 else None)
    raise _attach_time(
        cls(
            code_text,
            message,
            request_id=request_id,
            http_status=status,
            action=op.action,
            body=data,
            recommend=str(data["Recommend"]) if data.get("Recommend") else None,
        ),
        headers,
    )


def _attach_time(err: ApiError, headers: Mapping[str, str]) -> ApiError:
    err.server_time = server_time(headers)
    return err
