"""Build signed requests and decipher responses: the sans-I/O heart of the client.

``build_request`` turns validated wire parameters into a signed, form-encoded POST
(``Signer`` does the same with everything fixed for one client computed once: the hot
path); ``parse_response(status, headers, body)`` returns the body dict or raises the right
ApiError.  No sockets, no clocks: time and nonce are arguments.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from ._catalog import API_VERSION, Operation
from ._credentials import Credentials
from ._errors import (
    ApiError,
    EdgeError,
    InvalidResponseError,
    ServiceUnavailableError,
    ThrottledError,
    error_class_for,
    is_throttling,
    turned_away,
)
from ._signing import canonical_query, format_timestamp, percent_encode

__all__ = [
    "SECRET_PARAMS",
    "PreparedRequest",
    "Signer",
    "build_request",
    "common_params",
    "encode_form",
    "incomplete_response",
    "mask_secrets",
    "parse_response",
    "redact",
    "redact_error",
    "request_id_of",
    "retry_after",
    "secret_forms",
]

# Parameters whose values must never reach a log line, repr or error message (the one list:
# aioedge._log masks log fields of these names, in any case and in snake_case, too).
SECRET_PARAMS = frozenset({"Signature", "SecurityToken", "AccessKeySecret", "OIDCToken"})
_SNIPPET = 200


def redact(params: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``params`` safe to log."""
    return {k: ("***" if k in SECRET_PARAMS else v) for k, v in params.items()}


def secret_forms(*secrets: str | None) -> tuple[str, ...]:
    """Every form in which a secret can come back in an answer: as it is, percent-encoded
    once (the canonical query) and twice (the string-to-sign), longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            once = percent_encode(secret)
            forms.update((secret, once, percent_encode(once)))
    return tuple(sorted(forms, key=len, reverse=True))


def mask_secrets(value: Any, forms: tuple[str, ...] | tuple[bytes, ...]) -> Any:
    """``value`` (text, raw answer bytes with ``forms`` encoded alike, or a body of dicts and
    lists) with each of ``forms`` (see :func:`secret_forms`) replaced by ``***``: the one
    masking of secrets.  ``value`` itself when it holds none."""
    if isinstance(value, str | bytes):
        text: Any = value  # str with str forms, bytes with bytes forms
        mask = "***" if isinstance(value, str) else b"***"
        for form in forms:
            if form in text:
                text = text.replace(form, mask)
        return text
    if isinstance(value, dict):
        return {k: mask_secrets(v, forms) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, forms) for v in value]
    return value


def redact_error(err: EdgeError, forms: tuple[str, ...]) -> EdgeError:
    """Mask the ``forms`` of the client's secrets (see :func:`secret_forms`) in ``err``.

    The service's answer may quote them: SignatureDoesNotMatch ends with the service's
    string-to-sign, which holds the SecurityToken.  The message, the kept body (and any
    snippet of an unreadable one), ``recommend`` and the rendered text are masked in place.
    """
    if not forms:
        return err
    if isinstance(err, ApiError):
        err.message = mask_secrets(err.message, forms)
        err.body = mask_secrets(err.body, forms)
        err.recommend = mask_secrets(err.recommend, forms)
        err.args = (err._render(),)
        return err
    message = getattr(err, "message", None)  # TransportError: never quotes an answer today
    if isinstance(message, str):
        err.message = mask_secrets(message, forms)  # type: ignore[attr-defined]
    err.args = tuple(mask_secrets(a, forms) for a in err.args)
    return err


def encode_form(params: Mapping[str, str]) -> bytes:
    """application/x-www-form-urlencoded body using the 2.5 percent-encoding."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode(
        "ascii"
    )


class PreparedRequest(NamedTuple):
    """A signed request ready to send.  Its repr hides the signature and token.

    A named tuple: immutable, and built in a third of a frozen dataclass's time on the
    per-attempt path.  ``params`` (every signed parameter, decoded) is read back from the
    wire form when asked for, never built on the way out.
    """

    action: str
    method: str
    url: str
    body: bytes
    headers: Mapping[str, str]
    nonce: str

    @property
    def params(self) -> dict[str, str]:
        """Every parameter as signed and sent (common ones and Signature included)."""
        query = self.body.decode("ascii") if self.body else self.url.partition("?")[2]
        return dict(parse_qsl(query, keep_blank_values=True))

    def __repr__(self) -> str:
        return (
            f"PreparedRequest(action={self.action!r}, method={self.method!r}, "
            f"url={self.url.partition('?')[0]!r}, "
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


# A canonical-query template and the picker ordering the values that fill it.
_Plan = tuple[str, Callable[[tuple[str, ...]], tuple[str, ...]]]


class Signer:
    """Signs requests for one key pair, region, endpoint and method (2.4, 2.5).

    What stays the same from one request to the next is computed once: the keyed HMAC,
    the URL, and for each (Action, wire parameter names) the sorted canonical query as a
    template with holes for what changes (nonce, Timestamp, wire values).  :meth:`build`
    then only encodes those values, fills the holes and computes one HMAC.  Same output
    as :func:`canonical_query` + :func:`~aioedge._signing.sign`; its repr shows no secret.
    """

    __slots__ = (
        "_hmac",
        "_plans",
        "_prefix",
        "_stamp",
        "_template",
        "method",
        "url",
    )

    def __init__(
        self, *, endpoint: str, credentials: Credentials, region_id: str, method: str = "POST"
    ) -> None:
        self.method = method.upper()
        self.url = endpoint.rstrip("/") + "/"
        # 2.5: HMAC-SHA1 keyed with secret + "&"; keyed once, copied per request.
        self._hmac = hmac.new(
            (credentials.access_key_secret + "&").encode("utf-8"), digestmod=hashlib.sha1
        )
        self._prefix = f"{self.method}&%2F&"
        # common_params' order, with placeholders for the three that change per attempt.
        self._template = common_params(
            action="",
            access_key_id=credentials.access_key_id,
            region_id=region_id,
            timestamp=0.0,
            nonce="",
            security_token=credentials.security_token,
        )
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}
        self._stamp: tuple[int, str, str] = (-1, "", "")

    def __repr__(self) -> str:
        return f"Signer(url={self.url!r}, method={self.method!r})"

    def _timestamp(self, moment: datetime | float) -> tuple[str, str]:
        """The Timestamp and its encoding (cached: it changes once a second)."""
        if isinstance(moment, datetime):
            text = format_timestamp(moment)
            return text, percent_encode(text)
        second = math.floor(moment)
        cached = self._stamp
        if cached[0] != second:
            text = format_timestamp(second)
            cached = self._stamp = (second, text, percent_encode(text))
        return cached[1], cached[2]

    def _plan(self, action: str, names: tuple[str, ...]) -> _Plan | None:
        """The canonical query (2.5 step 1) of ``action`` with wire parameters ``names``.

        A %-template with one ``%s`` per value that changes, in sorted order, and the
        picker that puts (nonce, Timestamp, *wire values) in that order.  None when a name
        shadows a common parameter (or is Signature).
        """
        if "Signature" in names or not self._template.keys().isdisjoint(names):
            return None
        holes = {"SignatureNonce": 0, "Timestamp": 1}
        parts: list[tuple[str, str, int]] = []
        for k, v in self._template.items():
            if k in holes:
                parts.append((k, f"{percent_encode(k)}=", holes[k]))
            else:
                value = action if k == "Action" else v
                parts.append((k, f"{percent_encode(k)}={percent_encode(value)}", -1))
        parts += [(k, f"{percent_encode(k)}=", i) for i, k in enumerate(names, start=2)]
        parts.sort()  # by name; names are unique, so nothing else decides
        # Encoded text holds '%' escapes: double them; a hole is a %s after its "name=".
        text = "&".join([p.replace("%", "%%") + ("%s" if i >= 0 else "") for _, p, i in parts])
        plan = (text, operator.itemgetter(*[i for _, _, i in parts if i >= 0]))
        if len(self._plans) < _MAX_PLANS:
            self._plans[(action, names)] = plan
        return plan

    def build(
        self,
        op: Operation,
        wire_params: Mapping[str, str],
        *,
        timestamp: datetime | float,
        nonce: str,
    ) -> PreparedRequest:
        """Sign ``wire_params`` (already validated/flattened) for one attempt."""
        action = op.action
        stamp, encoded_stamp = self._timestamp(timestamp)
        names = tuple(wire_params)
        plan = self._plans.get((action, names)) or self._plan(action, names)
        if plan is not None:
            text, pick = plan
            values = (
                percent_encode(nonce),
                encoded_stamp,
                *map(percent_encode, wire_params.values()),
            )
            canonical = text % pick(values)
        else:  # a wire value overrides a common one (as dict.update would): rare, slow path
            params = self._template.copy()
            params.update(Action=action, SignatureNonce=nonce, Timestamp=stamp)
            params.update(wire_params)
            canonical = canonical_query(params)
        # 2.5 step 2: encode(canonical) is three replacements: it holds only unreserved
        # characters, %XY escapes, '=' and '&' ('%' first).
        to_sign = self._prefix + canonical.replace("%", "%25").replace("=", "%3D").replace(
            "&", "%26"
        )
        mac = self._hmac.copy()
        mac.update(to_sign.encode())
        signature = binascii.b2a_base64(mac.digest(), newline=False).decode()
        # One canonical query serves both the signature and the wire form (sorted order is
        # as good as any for a form body or a query string).  Base64 needs only these three.
        sig = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        encoded = f"{canonical}&Signature={sig}"
        if self.method == "POST":
            return PreparedRequest(
                action, "POST", self.url, encoded.encode("ascii"), _FORM_HEADERS, nonce
            )
        return PreparedRequest(
            action, self.method, f"{self.url}?{encoded}", b"", _GET_HEADERS, nonce
        )


# The headers of every request (read-only: the transport sends a copy); a GET has no body.
_FORM_HEADERS: Mapping[str, str] = MappingProxyType(
    {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
)
_GET_HEADERS: Mapping[str, str] = MappingProxyType({"Accept": "application/json"})

# Distinct (Action, parameter names) shapes one Signer remembers; more are built each time.
_MAX_PLANS = 1024


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
    key = Credentials(access_key_id, access_key_secret, security_token=security_token)
    signer = Signer(endpoint=endpoint, credentials=key, region_id=region_id, method=method)
    return signer.build(op, wire_params, timestamp=timestamp, nonce=nonce)


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


#: The longest ``x-acs-retry-after`` taken at its word: a larger (or garbled) value is capped
#: here, so one odd header cannot park a client for hours.
MAX_RETRY_AFTER = 300.0


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The service's ``x-acs-retry-after`` hint in seconds (the header counts milliseconds,
    as the official Tea stack reads it); None when absent or not a number >= 0."""
    raw = headers.get("x-acs-retry-after") or headers.get("X-Acs-Retry-After")
    if not raw:
        return None
    try:
        ms = float(raw)
    except ValueError:
        return None
    if not ms >= 0 or math.isinf(ms):  # NaN, negative, inf
        return None
    return min(ms / 1000.0, MAX_RETRY_AFTER)


_SUCCESS_CODES = (None, "Success", "success")


def request_id_of(body: Mapping[str, Any], default: str | None = None) -> str | None:
    """The ``RequestId`` an answer's body carries, as text (a number too: it is still the id
    to quote to support), else ``default`` (e.g. the ``x-acs-request-id`` header)."""
    value = body.get("RequestId")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return default


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
    try:
        # A str parses faster than bytes (no encoding sniffing); the service answers UTF-8.
        data: Any = json.loads(body.decode()) if body else None
    except ValueError:
        try:  # a BOM, UTF-16/32 (json sniffs them from bytes), or not JSON at all
            data = json.loads(body)
        except ValueError:
            data = None
    if 200 <= status < 300 and isinstance(data, dict):
        success = data.get("Success")
        # Some documented samples (QueryEdgeInstanceDriver) carry neither Success nor Code.
        if success is True or (success is None and data.get("Code") in _SUCCESS_CODES):
            return data  # the common case: no header lookups, nothing else to build
    request_id = _header_request_id(headers)
    if not isinstance(data, dict):
        # Not JSON (a proxy page, a truncated body): keep status and a short snippet.
        cls: type[ApiError]
        if is_throttling(None, status):  # HTTP 429
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
    request_id = request_id_of(data, request_id)
    if 200 <= status < 300:  # ERRATA: HTTP 200 with Success false is a failure
        code_text = str(data.get("Code") or "UnknownError")
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


def incomplete_response(
    action: str,
    status: int,
    headers: Mapping[str, str],
    partial: bytes,
    expected: int | None,
) -> InvalidResponseError:
    """The error for an answer whose body was cut off on the wire (connection lost mid-body).

    Like a body that is complete on the wire but truncated JSON, this is an unreadable
    answer: ``InvalidResponseError`` with the HTTP status and a snippet of what arrived,
    whatever the status (a cut-off "success" is not trusted, and a cut-off 503 is not taken
    as proof that nothing ran).  The service may have executed the call, so the retry
    policy repeats it only for a read-only Action.
    """
    of = f" of {expected}" if expected is not None else ""
    err = InvalidResponseError(
        "InvalidResponse",
        f"response body cut off after {len(partial)}{of} bytes (HTTP {status}): "
        f"{_snippet(partial)!r}",
        request_id=_header_request_id(headers),
        http_status=status,
        action=action,
    )
    _attach_time(err, headers)
    return err


def _attach_time(err: ApiError, headers: Mapping[str, str]) -> ApiError:
    err.server_time = server_time(headers)
    # The hint counts only where the service turned the request away before running it.
    if turned_away(err):
        err.retry_after = retry_after(headers)
    return err
