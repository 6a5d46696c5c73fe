"""The pure part of keys that refresh: STS requests, credential answers, the refresh schedule.

Nothing here does I/O or reads a clock: time, nonces and answers are arguments.
``aioedge._providers`` is the thin shell that sends these requests and keeps the keys.

* STS is RPC, Version 2015-04-01.  ``AssumeRole`` is signed v1 (HMAC-SHA1) exactly as the
  Link IoT Edge calls are (``aioedge._signing``), with the source key;
  ``AssumeRoleWithOIDC`` is unsigned (the OIDC token is the proof).
* An STS answer carries ``Credentials`` {AccessKeyId, AccessKeySecret, SecurityToken,
  Expiration}; the ECS metadata service and a credentials URI answer the same four fields
  at the top level (with ``Code: Success``).  ``Expiration`` is ``YYYY-MM-DDTHH:MM:SSZ``.
* A key is refreshed once less than ``min(15 minutes, half its lifetime)`` is left
  (:func:`refresh_at`); a refresh that fails is tried again after :func:`retry_delay`.

Every error names its source in one line, and never quotes a secret: an answer that
quotes one (a string-to-sign with the SecurityToken, an echoed OIDC token) is masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._credentials import Credentials, expired
from ._errors import CredentialsError, ValidationError, one_line
from ._protocol import encode_form, mask_secrets, request_id_of, secret_forms
from ._settings import check_endpoint, check_region, env_true, env_value
from ._signing import format_timestamp, parse_timestamp, sign

__all__ = [
    "DEFAULT_STS_HOST",
    "STS_VERSION",
    "HttpAnswer",
    "StsRequest",
    "StsRole",
    "assume_role_request",
    "assume_role_with_oidc_request",
    "hiccup",
    "parse_credentials_answer",
    "parse_expiration",
    "parse_sts_answer",
    "refresh_at",
    "retry_delay",
    "scrub",
    "sts_endpoint",
]

STS_VERSION = "2015-04-01"
DEFAULT_STS_HOST = "sts.aliyuncs.com"
#: A key is refreshed once less than this much (or half its lifetime) is left.
REFRESH_MARGIN = 15 * 60.0
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_MESSAGE_MAX = 300


def scrub(text: str, secrets: tuple[str | None, ...]) -> str:
    """``text`` with every form of every secret (raw, encoded once and twice) masked."""
    masked: str = mask_secrets(text, secret_forms(*secrets))
    return masked


# --------------------------------------------------------------------------- endpoint


def sts_endpoint(
    explicit: str | None,
    env: Mapping[str, str],
    *,
    region: str | None = None,
    vpc: bool | None = None,
) -> str:
    """The STS URL: ``explicit`` (a provider's ``sts_endpoint=``), else
    ``ALIBABA_CLOUD_STS_ENDPOINT``, else ``sts[-vpc].<region>.aliyuncs.com`` for
    ``region`` / ``ALIBABA_CLOUD_STS_REGION`` (``-vpc`` with ``vpc`` /
    ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true``), else ``sts.aliyuncs.com``.

    An endpoint is a host (``sts.cn-hangzhou.aliyuncs.com``, https) or a full URL;
    ``http://`` only for a loopback host (an emulator).
    """
    if explicit is not None:
        return _endpoint_url(explicit, "sts_endpoint")
    value = env_value(env, "ALIBABA_CLOUD_STS_ENDPOINT")
    if value:
        return _endpoint_url(value, "ALIBABA_CLOUD_STS_ENDPOINT")
    name = "sts_region" if region else "ALIBABA_CLOUD_STS_REGION"
    region = region or env_value(env, "ALIBABA_CLOUD_STS_REGION")
    if vpc is None:
        vpc = env_true(env.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"))
    if region is None:
        if vpc:
            raise ValidationError(
                "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true needs a region for the VPC endpoint "
                "of STS: set ALIBABA_CLOUD_STS_REGION (e.g. cn-hangzhou)",
                param="ALIBABA_CLOUD_STS_REGION",
                rule="dependency",
            )
        return f"https://{DEFAULT_STS_HOST}"
    check_region(region, name)
    return f"https://sts{'-vpc' if vpc else ''}.{region}.aliyuncs.com"


def _endpoint_url(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{name} must be a host or a URL, got {value!r}", param=name, rule="format"
        )
    value = value.strip()
    if "://" not in value:
        if not _HOST.fullmatch(value):
            raise ValidationError(
                f"{name} must be a host such as sts.cn-hangzhou.aliyuncs.com or a full URL, "
                f"got {value!r}",
                param=name,
                rule="format",
            )
        value = f"https://{value}"
    return check_endpoint(value, name=name)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True, kw_only=True)
class StsRequest:
    """One STS call ready to POST.  Its repr shows neither the body nor the headers."""

    action: str
    url: str
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)


class StsRole(Protocol):
    """The role an STS request assumes, as an STS provider holds it."""

    sts_endpoint: str
    role_arn: str
    role_session_name: str
    duration_seconds: int
    policy: str | None


_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


def _optional(params: dict[str, str], **values: str | int | None) -> dict[str, str]:
    for name, value in values.items():
        if value is not None and value != "":
            params[name] = str(value)
    return params


def assume_role_request(
    role: StsRole, *, source: Credentials, external_id: str | None, timestamp: float, nonce: str
) -> StsRequest:
    """``AssumeRole`` signed v1 with ``source`` (its SecurityToken too, when it has one)."""
    params = {
        "Action": "AssumeRole",
        "Format": "JSON",
        "Version": STS_VERSION,
        "AccessKeyId": source.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": format_timestamp(timestamp),
        "RoleArn": role.role_arn,
        "RoleSessionName": role.role_session_name,
        "DurationSeconds": str(role.duration_seconds),
    }
    _optional(
        params, SecurityToken=source.security_token, Policy=role.policy, ExternalId=external_id
    )
    params["Signature"] = sign("POST", params, source.access_key_secret)
    return StsRequest(
        action="AssumeRole", url=role.sts_endpoint + "/", body=encode_form(params), headers=_FORM
    )


def assume_role_with_oidc_request(
    role: StsRole, *, oidc_provider_arn: str, oidc_token: str, timestamp: float, nonce: str
) -> StsRequest:
    """``AssumeRoleWithOIDC``: unsigned; the OIDC token proves who asks."""
    params = {
        "Action": "AssumeRoleWithOIDC",
        "Format": "JSON",
        "Version": STS_VERSION,
        "SignatureNonce": nonce,
        "Timestamp": format_timestamp(timestamp),
        "RoleArn": role.role_arn,
        "OIDCProviderArn": oidc_provider_arn,
        "OIDCToken": oidc_token,
        "RoleSessionName": role.role_session_name,
        "DurationSeconds": str(role.duration_seconds),
    }
    _optional(params, Policy=role.policy)
    return StsRequest(
        action="AssumeRoleWithOIDC",
        url=role.sts_endpoint + "/",
        body=encode_form(params),
        headers=_FORM,
    )


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpAnswer:
    """What the parsers read of an HTTP answer.  Its repr leaves the body out."""

    status: int
    body: bytes = field(repr=False)
    #: The ``x-acs-request-id`` header, for the errors (``None`` without one).
    request_id: str | None = None


def parse_expiration(value: Any, *, source: str) -> float:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC) as UNIX seconds; CredentialsError for anything else."""
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is not None:
        return moment
    shown = one_line(repr(value), 60)
    raise CredentialsError(
        f"{source}: malformed Expiration {shown} (expected YYYY-MM-DDTHH:MM:SSZ)",
        source=source,
    )


def _document(
    data: Mapping[str, Any], *, source: str, request_id: str | None, origin: str
) -> Credentials:
    missing = [
        name
        for name in ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")
        if not isinstance(data.get(name), str) or not data.get(name)
    ]
    if missing:
        raise CredentialsError(
            f"{source}: {origin} has no {', '.join(missing)}{_rid(request_id)}",
            source=source,
            request_id=request_id,
        )
    expiration = parse_expiration(data["Expiration"], source=source)
    return Credentials(
        data["AccessKeyId"],
        data["AccessKeySecret"],
        security_token=data["SecurityToken"],
        expiration=expiration,
        source=source,
    )


def _rid(request_id: str | None) -> str:
    """How an error quotes the RequestId of the answer it is about (nothing without one)."""
    return f" (RequestId {request_id})" if request_id else ""


def _load(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _refusal(
    data: Any, answer: HttpAnswer, *, source: str, secrets: tuple[str | None, ...]
) -> CredentialsError:
    """The error for an answer that says no (or cannot be read), masked and on one line."""
    request_id = answer.request_id
    if isinstance(data, dict):
        code = str(data.get("Code") or f"HTTP{answer.status}")
        message = str(data.get("Message") or data.get("message") or "")
        request_id = request_id_of(data, request_id)
    else:
        code = f"HTTP{answer.status}"
        message = f"unreadable answer: {answer.body[:120].decode('utf-8', 'replace')!r}"
    message = one_line(scrub(message, secrets), _MESSAGE_MAX)
    shown = one_line(code, 80)  # the code as sent stays on the error, for programs
    text = f"{source}: {shown}{': ' + message if message else ''}{_rid(request_id)}"
    return CredentialsError(
        text,
        source=source,
        code=code,
        request_id=request_id,
        transient=hiccup(answer.status, code),
    )


def hiccup(status: int, code: str) -> bool:
    """Is a refusal the identity service's passing trouble (HTTP 5xx or 429, a throttling or
    unavailability code), after which asking again may well succeed?  Not a refusal of the
    request itself (a wrong role, a bad signature, a missing permission)."""
    return (
        status >= 500
        or status == 429
        or code.startswith(("Throttling", "ServiceUnavailable", "InternalError"))
    )


def parse_sts_answer(
    answer: HttpAnswer, *, source: str, secrets: tuple[str | None, ...] = ()
) -> Credentials:
    """The key in an STS answer, or CredentialsError naming ``source``, the code and the
    RequestId (``secrets``: what the request carried, masked wherever the answer quotes it)."""
    data = _load(answer.body)
    if answer.status != 200 or not isinstance(data, dict) or data.get("Code"):
        raise _refusal(data, answer, source=source, secrets=secrets)
    request_id = request_id_of(data, answer.request_id)
    creds = data.get("Credentials")
    if not isinstance(creds, dict):
        raise CredentialsError(
            f"{source}: the answer has no Credentials{_rid(request_id)}",
            source=source,
            request_id=request_id,
        )
    return _document(creds, source=source, request_id=request_id, origin="Credentials")


def parse_credentials_answer(
    answer: HttpAnswer, *, source: str, secrets: tuple[str | None, ...] = ()
) -> Credentials:
    """The key in an ECS metadata or credentials-URI answer: ``Code: Success`` and the
    four fields at the top level."""
    data = _load(answer.body)
    if (
        answer.status != 200
        or not isinstance(data, dict)
        or data.get("Code", "Success") != "Success"
    ):
        raise _refusal(data, answer, source=source, secrets=secrets)
    return _document(data, source=source, request_id=answer.request_id, origin="the answer")


# --------------------------------------------------------------------------- schedule


def refresh_at(fetched_at: float, expiration: float) -> float:
    """When a key fetched at ``fetched_at`` that expires at ``expiration`` is refreshed:
    once less than ``min(15 minutes, half its lifetime)`` is left.

    ``expiration - min(M, L/2)`` with ``L = expiration - fetched_at``: a one-hour key is
    refreshed after 45 minutes, a 20-minute key after 10, a 2-second one after 1.
    """
    lifetime = expiration - fetched_at
    return expiration - min(REFRESH_MARGIN, lifetime / 2)


def retry_delay(failures: int, *, now: float, expiration: float | None) -> float:
    """How long after the ``failures``-th failed refresh in a row to try again.

    Doubling from 1 s up to 60 s; while the old key is valid, also at most a third of
    its time left (so a few more attempts fit before it expires), and after expiry at
    most 10 s (callers are failing meanwhile).
    """
    delay = min(2.0 ** max(failures - 1, 0), 60.0)
    if expiration is None or expired(expiration, now):  # None: no valid key left
        return min(delay, 10.0)
    return max(min(delay, (expiration - now) / 3), 0.01)
