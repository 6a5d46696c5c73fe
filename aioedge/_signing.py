"""Signature v1 (HMAC-SHA1) for RPC-style requests, as section 2.5 describes.

Pure: time and nonce are passed in by the caller; nothing here reads a clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import quote

__all__ = [
    "canonical_query",
    "format_timestamp",
    "percent_encode",
    "sign",
    "string_to_sign",
]

# 2.5: letters, digits, '-', '_', '.', '~' stay; everything else is %XY of its UTF-8 bytes,
# space is %20 (never '+'), '*' is %2A.  urllib's quote with safe="~" does exactly this
# (it always keeps the RFC 3986 unreserved set).
_SAFE = "~"


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of a UTF-8 string (2.5 step 1.ii)."""
    return quote(value, safe=_SAFE)


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted, encoded ``k=v`` pairs joined by ``&`` (2.5 step 1), Signature excluded."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(params[k])}"
        for k in sorted(params)
        if k != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&encode(canonical)`` (2.5 step 2; ERRATA: the example drops an '&')."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", string_to_sign)) (2.5 steps 3-4)."""
    key = (secret + "&").encode("utf-8")  # 2.5: key is secret + "&"
    digest = hmac.new(key, string_to_sign(method, params).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def format_timestamp(moment: datetime | float) -> str:
    """ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SSZ`` (2.4 Timestamp)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
