"""The emulated API gateway: the checks the service makes before any Action runs.

Everything that decides "is this request acceptable at all" lives here, in the order the
gateway applies it: required common parameters, Version, Action, signature method and
version, Timestamp (2.4: within 15 minutes), AccessKeyId, STS token (present, matching,
not expired: ``InvalidSecurityToken.Expired``), the signature
(2.5, recomputed from the received parameters with the client's own ``aioedge._signing``)
and finally the SignatureNonce (2.4: never reused).  Pure: time is passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .. import _signing
from .._catalog import API_VERSION, OPERATIONS, REQUIRED_COMMON_PARAMS
from .._credentials import Credentials, expired
from .._signing import sign, string_to_sign

__all__ = [
    "ACTION_NOT_FOUND",
    "INVALID_VERSION",
    "SERVICE_UNAVAILABLE",
    "Gateway",
    "NonceStore",
    "Rejection",
    "format_request_id",
    "missing",
    "parse_timestamp",
]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is refused: the HTTP status, the service code and its message.

    Every refusal of the emulated API and of its STS is one of these, and its body is
    :meth:`body`: the one shape of an error answer (ERRATA: Responses)."""

    http_status: int
    code: str
    message: str

    def body(self, request_id: str, host_id: str) -> dict[str, str]:
        """The answer's body: ``{RequestId, HostId, Code, Message}``."""
        return {
            "RequestId": request_id,
            "HostId": host_id,
            "Code": self.code,
            "Message": self.message,
        }


def missing(name: str) -> Rejection:
    """A required parameter left out (or empty): HTTP 400 ``Missing<Name>``."""
    return Rejection(400, f"Missing{name}", f"{name} is mandatory for this action.")


INVALID_VERSION = Rejection(400, "InvalidVersion", "Specified parameter Version is not valid.")
ACTION_NOT_FOUND = Rejection(
    404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
)
SERVICE_UNAVAILABLE = Rejection(
    503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."
)

#: The common parameters a signed request carries (every one but Action and Version).
SIGNED_PARAMS = tuple(name for name in REQUIRED_COMMON_PARAMS if name not in ("Action", "Version"))


def format_request_id(bits: int) -> str:
    """A RequestId as the service writes one: 128 bits as upper-case 8-4-4-4-12 hex."""
    h = f"{bits:032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: ``aioedge._signing.parse_timestamp`` (anything else is ``InvalidTimeStamp.Format``),
#: cached: requests within one second share their Timestamp.
parse_timestamp = lru_cache(maxsize=1024)(_signing.parse_timestamp)


class NonceStore:
    """Nonces seen per AccessKeyId, forgotten once no valid Timestamp could reuse them.

    A nonce first used at ``t`` is remembered while ``now - t <= ttl``: the boundary is
    kept, as the Timestamp check keeps ``abs(now - sent) == tolerance``.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._seen: set[tuple[str, str]] = set()
        self._used: deque[tuple[float, tuple[str, str]]] = deque()  # (first use, entry)

    def use(self, key_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False if it was already used."""
        while self._used and now - self._used[0][0] > self.ttl:
            self._seen.discard(self._used.popleft()[1])
        entry = (key_id, nonce)
        if entry in self._seen:
            return False
        self._seen.add(entry)
        self._used.append((now, entry))
        return True

    def clear(self) -> None:
        self._seen.clear()
        self._used.clear()


class Gateway:
    """Known key pairs plus the nonce memory; :meth:`check` is the whole gate."""

    def __init__(
        self,
        keys: Mapping[str, Credentials],
        *,
        tolerance: float = 900.0,
        region_id: str | None = None,
    ) -> None:
        self.keys = dict(keys)
        self.tolerance = tolerance
        self.region_id = region_id
        # A nonce only matters while some Timestamp could still be accepted with it: one
        # first used at t came with a Timestamp of at most t + tolerance, which is accepted
        # up to t + 2 * tolerance inclusive.
        self.nonces = NonceStore(ttl=2 * tolerance)
        # Requests refused because their (STS) key had expired: the identity side's tests
        # assert that a client that refreshes in time never meets one.
        self.expired_refusals = 0

    def check(self, method: str, params: Mapping[str, str], now: float) -> Rejection | None:
        """None when the request may proceed, else the gateway's refusal."""
        for name in REQUIRED_COMMON_PARAMS:
            if not params.get(name):
                return missing(name)
        if params["Version"] != API_VERSION:
            return INVALID_VERSION
        if params["Action"] not in OPERATIONS:
            return ACTION_NOT_FOUND
        fmt = params.get("Format")
        if fmt is not None and fmt.upper() not in ("JSON", "XML"):
            return Rejection(400, "InvalidParameter", "Specified parameter Format is not valid.")
        if self.region_id is not None and params.get("RegionId", self.region_id) != self.region_id:
            return Rejection(
                400, "InvalidRegionId", f"Specified region {params.get('RegionId')!r} is not valid."
            )
        rejection = self.check_signed(method, params, now)
        if rejection is not None and rejection.code == "InvalidSecurityToken.Expired":
            self.expired_refusals += 1
        return rejection

    def check_signed(self, method: str, params: Mapping[str, str], now: float) -> Rejection | None:
        """The signature v1 checks alone (the API's and STS AssumeRole's): the signed
        common parameters, signature method and version, Timestamp, AccessKeyId, its
        SecurityToken and expiry, the signature, then the nonce."""
        for name in SIGNED_PARAMS:
            if not params.get(name):
                return missing(name)
        if params["SignatureMethod"] != "HMAC-SHA1":
            return Rejection(
                400, "InvalidSignatureMethod", "Specified signature method is not supported."
            )
        if params["SignatureVersion"] != "1.0":
            return Rejection(
                400, "InvalidSignatureVersion", "Specified signature version is not supported."
            )
        # The official SDKs send an empty SignatureType; any other value is unknown to v1.
        if params.get("SignatureType", "") != "":
            return Rejection(400, "InvalidSignatureType", "Specified signature type is not valid.")
        sent = parse_timestamp(params["Timestamp"])
        if sent is None:
            return Rejection(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        if abs(now - sent) > self.tolerance:
            return Rejection(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        creds = self.keys.get(params["AccessKeyId"])
        if creds is None:
            return Rejection(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        token = params.get("SecurityToken")
        if creds.security_token is not None and not token:
            return missing("SecurityToken")
        if token is not None and token != creds.security_token:
            return Rejection(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        if expired(creds.expiration, now):
            return Rejection(
                400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
            )
        expected = sign(method, params, creds.access_key_secret)
        if params["Signature"] != expected:
            return Rejection(400, "SignatureDoesNotMatch", _mismatch_message(method, params))
        if not self.nonces.use(params["AccessKeyId"], params["SignatureNonce"], now):
            return Rejection(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        return None


def _mismatch_message(method: str, params: Mapping[str, str]) -> str:
    # 2.5: the service shows its own string-to-sign so callers can diff it with theirs,
    # SecurityToken included, as it is (the client masks its own secrets in the error).
    text = string_to_sign(method, params)
    return (
        f"Specified signature is not matched with our calculation. server string to sign is:{text}"
    )
