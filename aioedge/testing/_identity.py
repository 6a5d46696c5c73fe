"""The identity side of the emulator: STS, the ECS metadata service, a credentials URI.

Keys it issues expire after ``token_lifetime`` seconds of the emulator's clock (or the
``DurationSeconds`` asked for, if shorter) and are known to the emulated API gateway
meanwhile; once expired, the gateway refuses them with ``InvalidSecurityToken.Expired``
(HTTP 400), before anything runs.

* ``POST {endpoint}/sts`` — STS (Version 2015-04-01): ``AssumeRole`` (signed v1 with a
  key the emulator knows, checked like an API request: signature, timestamp, nonce,
  SecurityToken) and ``AssumeRoleWithOIDC`` (unsigned; any non-empty OIDCToken);
* ``PUT {endpoint}/latest/api/token`` — an IMDSv2 session token (header
  ``X-aliyun-ecs-metadata-token-ttl-seconds``), then ``GET
  {endpoint}/latest/meta-data/ram/security-credentials/[ROLE]`` with it in
  ``X-aliyun-ecs-metadata-token`` (``imds_v1=False``: refused without it;
  ``imds_v2=False``: no token endpoint, as on an older image);
* ``GET {endpoint}/identity/credentials`` — a credentials URI.

``set_fault(kind)`` breaks them on purpose: ``"unavailable"`` (HTTP 503),
``"no_credentials"`` (an answer without its key), ``"bad_expiration"``, ``"echo_secrets"``
(a refusal whose message quotes every secret the request carried, as a real
SignatureDoesNotMatch quotes the string-to-sign).  ``records`` lists what was asked.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .._argtypes import check_count
from .._credentials import Credentials, expired, format_expiration
from .._signing import string_to_sign
from ._gateway import (
    ACTION_NOT_FOUND,
    INVALID_VERSION,
    SERVICE_UNAVAILABLE,
    Gateway,
    Rejection,
    format_request_id,
    missing,
)
from ._server import dumps, read_params, respond
from ._service import EmulatorOptions

__all__ = ["IDENTITY_FAULTS", "Identity", "IdentityRecord", "add_identity_routes"]

STS_VERSION = "2015-04-01"
IDENTITY_FAULTS = ("unavailable", "no_credentials", "bad_expiration", "echo_secrets")
_ROLE_ARN = re.compile(r"acs:ram::[0-9]+:role/[A-Za-z0-9._@-]+")
_TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityRecord:
    """One request to the identity side: what was asked (``kind``: ``AssumeRole``,
    ``AssumeRoleWithOIDC``, ``metadata-token``, ``metadata``, ``uri``), its outcome
    (``issued`` or the error code), the key issued, the OIDC token presented."""

    kind: str
    outcome: str
    time: float
    access_key_id: str | None = None
    role: str | None = None
    imds_token: bool = False
    oidc_token: str | None = field(default=None, repr=False)


class Identity:
    """Issues keys and answers the identity endpoints; shares the API gateway's key table."""

    def __init__(
        self, gateway: Gateway, options: EmulatorOptions, *, clock: Callable[[], float]
    ) -> None:
        self.gateway = gateway
        self.options = options  # token_lifetime, imds_v1, imds_v2, ecs_role_name, seed
        self.clock = clock
        self.fault: str | None = None
        self._fault_times: int | None = None  # requests the fault still answers (None: all)
        self.records: list[IdentityRecord] = []
        self.issued: Counter[str] = Counter()
        self._rng = random.Random(options.seed)
        self._serial = itertools.count(1)
        self._imds_tokens: dict[str, float] = {}
        self._issued_keys: list[str] = []

    # ----------------------------------------------------------------- steering

    def reset(self) -> None:
        """Forget records, counters and the fault (issued keys stay valid until they expire)."""
        self.set_fault(None)
        self.records.clear()
        self.issued.clear()
        self.gateway.expired_refusals = 0

    def set_fault(self, kind: str | None, *, times: int | None = None) -> None:
        """Break the identity endpoints (``IDENTITY_FAULTS``) or, with None, mend them.
        ``times``: the fault answers that many requests, then they mend themselves (a
        passing outage); None: until mended."""
        if kind is not None and kind not in IDENTITY_FAULTS:
            raise ValueError(f"fault must be one of {', '.join(IDENTITY_FAULTS)} or None")
        if times is not None:
            check_count(times, param="times", minimum=1)  # a ValidationError, a ValueError
        self.fault = kind
        self._fault_times = times if kind is not None else None

    def _fault(self, kind: str) -> bool:
        """Does the fault ``kind`` answer this request?  The one check of every endpoint,
        which counts the request against ``times``."""
        if self.fault != kind:
            return False
        if self._fault_times is not None:
            self._fault_times -= 1
            if self._fault_times == 0:
                self.set_fault(None)
        return True

    def expire_keys(self) -> int:
        """Make every key issued so far expire now (the gateway refuses it from now on)."""
        now = self.clock()
        n = 0
        for key_id in self._issued_keys:
            creds = self.gateway.keys.get(key_id)
            if creds is not None and not expired(creds.expiration, now):
                self.gateway.keys[key_id] = dataclasses.replace(creds, expiration=now)
                n += 1
        return n

    @property
    def expired_refusals(self) -> int:
        """API requests the gateway refused with InvalidSecurityToken.Expired."""
        return self.gateway.expired_refusals

    # ----------------------------------------------------------------- keys

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def issue(self, kind: str, duration: float | None = None) -> Credentials:
        now = self.clock()
        lifetime = self.options.token_lifetime
        if duration is not None:
            lifetime = min(duration, lifetime)
        serial = next(self._serial)
        creds = Credentials(
            f"STS.Emu{serial:06d}{self._hex(8)}",
            self._hex(32),
            security_token=f"CAIS{self._hex(48)}",
            expiration=now + lifetime,
            source=f"emulator {kind}",
        )
        self._forget_old(now)
        self.gateway.keys[creds.access_key_id] = creds
        self._issued_keys.append(creds.access_key_id)
        self.issued[kind] += 1
        return creds

    def _forget_old(self, now: float) -> None:
        """Drop keys that expired long ago (a long run issues thousands)."""
        keep: list[str] = []
        for key_id in self._issued_keys:
            creds = self.gateway.keys.get(key_id)
            if creds is None:
                continue
            if expired(creds.expiration, now - 3600):  # an hour after its end
                del self.gateway.keys[key_id]
            else:
                keep.append(key_id)
        self._issued_keys = keep

    def _document(self, creds: Credentials) -> dict[str, Any]:
        expiration = format_expiration(creds.expiration or self.clock())
        if self._fault("bad_expiration"):
            expiration = "in an hour or so"
        return {
            "AccessKeyId": creds.access_key_id,
            "AccessKeySecret": creds.access_key_secret,
            "SecurityToken": creds.security_token,
            "Expiration": expiration,
        }

    def _record(self, kind: str, outcome: str, **extra: Any) -> None:
        self.records.append(IdentityRecord(kind=kind, outcome=outcome, time=self.clock(), **extra))

    # ----------------------------------------------------------------- STS

    def _request_id(self) -> str:
        return format_request_id(int(self._hex(32), 16))

    def sts(self, method: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """One STS request: (HTTP status, body)."""
        rid = self._request_id()
        action = params.get("Action", "")

        def error(rejection: Rejection) -> tuple[int, dict[str, Any]]:
            self._record(action or "STS", rejection.code, oidc_token=params.get("OIDCToken"))
            return rejection.http_status, rejection.body(rid, "sts.aliyuncs.com")

        if self._fault("unavailable"):
            return error(SERVICE_UNAVAILABLE)
        if params.get("Version") != STS_VERSION:
            return error(INVALID_VERSION)
        if action not in ("AssumeRole", "AssumeRoleWithOIDC"):
            return error(ACTION_NOT_FOUND)
        if self._fault("echo_secrets"):
            quoted = " ".join(
                params.get(name, "") for name in ("OIDCToken", "SecurityToken", "Signature")
            )
            return error(
                Rejection(
                    400,
                    "SignatureDoesNotMatch",
                    f"Specified signature is not matched with our calculation. "
                    f"server string to sign is:{string_to_sign(method, params)} got:{quoted}",
                )
            )
        for name in (
            "RoleArn",
            *(("OIDCProviderArn", "OIDCToken") if action != "AssumeRole" else ()),
        ):
            if not params.get(name):
                return error(missing(name))
        role = params["RoleArn"]
        if not _ROLE_ARN.fullmatch(role):
            return error(
                Rejection(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrong.")
            )
        try:
            duration = int(params.get("DurationSeconds", "3600"))
        except ValueError:
            duration = -1
        if not 900 <= duration <= 43200:
            return error(
                Rejection(
                    400,
                    "InvalidParameter.DurationSeconds",
                    "The DurationSeconds must be between 900 and 43200.",
                )
            )
        if action == "AssumeRole":
            # Signed v1 like an API request, and checked by the same gateway rule.
            refusal = self.gateway.check_signed(method, params, self.clock())
            if refusal is not None:
                return error(refusal)
        creds = self.issue(action, duration)
        session = params.get("RoleSessionName") or "session"
        self._record(
            action,
            "issued",
            access_key_id=creds.access_key_id,
            role=role,
            oidc_token=params.get("OIDCToken"),
        )
        body: dict[str, Any] = {
            "RequestId": rid,
            "AssumedRoleUser": {
                "Arn": f"{role.replace(':role/', ':assumed-role/')}/{session}",
                "AssumedRoleId": f"3{self._hex(17)}:{session}",
            },
        }
        if action == "AssumeRoleWithOIDC":
            body["OIDCTokenInfo"] = {"Subject": "system:serviceaccount:default:app"}
        if not self._fault("no_credentials"):
            body["Credentials"] = self._document(creds)
        return 200, body

    # ----------------------------------------------------------------- ECS metadata

    def metadata_token(self, ttl: str | None) -> tuple[int, str]:
        if not self.options.imds_v2:
            return self._refuse("metadata-token", 404)
        if self._fault("unavailable"):
            return self._refuse("metadata-token", 503)
        try:
            seconds = int(ttl or "")
        except ValueError:
            seconds = 0
        if not 1 <= seconds <= 21600:
            self._record("metadata-token", "HTTP400")
            return 400, f"{_TTL_HEADER} must be 1 to 21600"
        token = self._hex(40)
        self._imds_tokens[token] = self.clock() + seconds
        self._record("metadata-token", "issued")
        return 200, token

    def _imds_allowed(self, token: str | None) -> int | None:
        """None when the request may read metadata, else the HTTP status refusing it."""
        if token is None:
            return None if self.options.imds_v1 else 403
        expires = self._imds_tokens.get(token)
        if expires is None or self.clock() >= expires:
            return 401
        return None

    def metadata(self, role: str, token: str | None) -> tuple[int, Any]:
        """``role`` "" lists the role; else that role's key (JSON)."""
        refused = self._imds_allowed(token)
        if refused is None and self._fault("unavailable"):
            refused = 503
        if refused is not None:
            return self._refuse(
                "metadata", refused, role=role or None, imds_token=token is not None
            )
        if not role:
            self._record("metadata", "listed", imds_token=token is not None)
            return 200, self.options.ecs_role_name
        if role != self.options.ecs_role_name:
            return self._refuse("metadata", 404, role=role, imds_token=token is not None)
        return 200, self._key_answer("metadata", role=role, imds_token=token is not None)

    def _refuse(self, kind: str, status: int, **extra: Any) -> tuple[int, str]:
        """A metadata refusal: recorded as ``HTTP<status>``, answered with its reason phrase."""
        self._record(kind, f"HTTP{status}", **extra)
        return status, HTTPStatus(status).phrase

    def uri(self) -> tuple[int, Any]:
        if self._fault("unavailable"):
            self._record("uri", f"HTTP{SERVICE_UNAVAILABLE.http_status}")
            body = {"Code": SERVICE_UNAVAILABLE.code, "Message": SERVICE_UNAVAILABLE.message}
            return SERVICE_UNAVAILABLE.http_status, body
        return 200, self._key_answer("uri")

    def _key_answer(self, kind: str, **extra: Any) -> dict[str, Any]:
        creds = self.issue(kind)
        self._record(kind, "issued", access_key_id=creds.access_key_id, **extra)
        now = format_expiration(self.clock())
        if self._fault("no_credentials"):
            return {"Code": "Success", "LastUpdated": now}
        return {"Code": "Success", "LastUpdated": now, **self._document(creds)}


# --------------------------------------------------------------------------- routes

_IDENTITY_KEY = web.AppKey("identity", Identity)


def _answer(identity: Identity, status: int, body: Any) -> web.Response:
    """JSON or text, built as every emulated answer is (``_server.respond``)."""
    if isinstance(body, dict):
        rid = body.get("RequestId")
        return respond(identity.clock, status, dumps(body), rid if isinstance(rid, str) else None)
    return respond(identity.clock, status, str(body).encode(), content_type="text/plain")


async def _sts(request: web.Request) -> web.Response:
    identity = request.app[_IDENTITY_KEY]
    status, body = identity.sts(request.method, await read_params(request))
    return _answer(identity, status, body)


async def _metadata_token(request: web.Request) -> web.Response:
    identity = request.app[_IDENTITY_KEY]
    return _answer(identity, *identity.metadata_token(request.headers.get(_TTL_HEADER)))


async def _metadata(request: web.Request) -> web.Response:
    identity = request.app[_IDENTITY_KEY]
    role = request.match_info.get("role", "")
    return _answer(identity, *identity.metadata(role, request.headers.get(_TOKEN_HEADER)))


async def _uri(request: web.Request) -> web.Response:
    identity = request.app[_IDENTITY_KEY]
    return _answer(identity, *identity.uri())


def add_identity_routes(app: web.Application, identity: Identity) -> None:
    """Serve ``identity`` from ``app`` (before it starts)."""
    app[_IDENTITY_KEY] = identity
    app.router.add_route("POST", "/sts", _sts)
    app.router.add_route("GET", "/sts", _sts)
    app.router.add_route("POST", "/sts/", _sts)
    app.router.add_put("/latest/api/token", _metadata_token)
    app.router.add_get("/latest/meta-data/ram/security-credentials/", _metadata)
    app.router.add_get("/latest/meta-data/ram/security-credentials/{role}", _metadata)
    app.router.add_get("/identity/credentials", _uri)
