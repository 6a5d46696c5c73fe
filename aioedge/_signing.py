"""Signature v1 (HMAC-SHA1) for RPC-style requests, as section 2.5 describes.

Pure: time and nonce are passed in by the caller; nothing here reads a clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import quote

__all__ = [
    "canonical_query",
    "format_timestamp",
    "parse_timestamp",
    "percent_encode",
    "sign",
    "sign_canonical",
    "string_to_sign",
    "timestamp_text",
]

# 2.5: letters, digits, '-', '_', '.', '~' stay; everything else is %XY of its UTF-8 bytes,
# space is %20 (never '+'), '*' is %2A.  urllib's quote with safe="~" does exactly this
# (it always keeps the RFC 3986 unreserved set).
_SAFE = "~"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
# Most values (names, ids, the Version, a hex nonce) need no encoding: one regex scan
# instead of quote()'s byte-by-byte pass; ASCII ones (a Timestamp, a Signature) go through
# str.translate.  Same output as quote(value, safe="~"), a fraction of the cost.
_NEEDS_ENCODING = re.compile(r"[^A-Za-z0-9_.~-]").search
# A str.translate table indexed by code point (a list beats a dict here, ~2x).
_ASCII_ESCAPES = [chr(c) if chr(c) in _UNRESERVED else f"%{c:02X}" for c in range(128)]
# Parameter names repeat on every request (common ones, catalog ones, IotIds.N, ...).
_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_MAX = 4096


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of a UTF-8 string (2.5 step 1.ii)."""
    if _NEEDS_ENCODING(value) is None:
        return value
    if value.isascii():
        return value.translate(_ASCII_ESCAPES)
    return quote(value, safe=_SAFE)


def _encode_key(key: str) -> str:
    encoded = _KEY_CACHE.get(key)
    if encoded is None:
        encoded = percent_encode(key)
        if len(_KEY_CACHE) < _KEY_CACHE_MAX:
            _KEY_CACHE[key] = encoded
    return encoded


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted, encoded ``k=v`` pairs joined by ``&`` (2.5 step 1), Signature excluded."""
    encode = percent_encode
    return "&".join(
        [f"{_encode_key(k)}={encode(v)}" for k, v in sorted(params.items()) if k != "Signature"]
    )


def _string_to_sign(method: str, canonical: str) -> str:
    # The canonical query holds only unreserved characters, %XY escapes, '=' and '&', so
    # percent-encoding it once more is exactly these three replacements ('%' first).
    encoded = canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    return f"{method.upper()}&%2F&{encoded}"


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&encode(canonical)`` (2.5 step 2; ERRATA: the example drops an '&')."""
    return _string_to_sign(method, canonical_query(params))


def sign_canonical(method: str, canonical: str, secret: str) -> str:
    """:func:`sign` for a :func:`canonical_query` already computed (a request reuses it)."""
    key = (secret + "&").encode("utf-8")  # 2.5: key is secret + "&"
    digest = hmac.new(
        key, _string_to_sign(method, canonical).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", string_to_sign)) (2.5 steps 3-4)."""
    return sign_canonical(method, canonical_query(params), secret)


def format_timestamp(moment: datetime | float) -> str:
    """ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SSZ`` (2.4 Timestamp)."""
    if not isinstance(moment, datetime):
        # time.gmtime floors like datetime.fromtimestamp, at a third of the cost.
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_text(moment: float) -> str:
    """:func:`format_timestamp` for showing a time (a message, a repr): one no calendar holds
    (``time.gmtime`` refuses it), an infinity or NaN is shown as the raw seconds instead
    (``1e+17s``, ``inf``), so that showing a time never raises."""
    try:
        return format_timestamp(moment)
    except (ArithmeticError, OSError, TypeError, ValueError):
        return f"{moment!r}s" if math.isfinite(moment) else repr(moment)


# 2.4: exactly ``YYYY-MM-DDTHH:MM:SSZ``: zero-padded ASCII digits, no fraction, no offset.
_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")


def parse_timestamp(text: str) -> float | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (2.4 Timestamp, an STS Expiration) as UNIX seconds; None for
    anything else: fractional seconds, unpadded fields, a missing ``Z`` or an impossible
    date (month 13, February 30, second 60)."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None
    return moment.timestamp()
