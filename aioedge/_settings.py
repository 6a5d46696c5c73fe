"""How settings reach the library: each rule once, asked by every reader.

* :func:`env_value`: a variable's value (empty is unset); :func:`env_true`: a ``true`` /
  ``false`` switch, in the environment or a config file.
* :func:`pick_region` / :func:`check_region`: what a region id looks like, the default
  (``$ALIBABA_CLOUD_REGION_ID``, else ``cn-shanghai``) and :func:`iot_endpoint`, the API's
  URL for a region.
* :func:`check_url` / :func:`check_endpoint`: the one check of a URL the library sends
  requests to (the API, STS, the ECS metadata service, a credentials URI): ``http(s)``
  with a host, a port aiohttp can use, and plain ``http`` only to a loopback host unless
  allowed.
* :func:`redact_url`: a URL as it may be shown (reprs, errors, logs): no password, no
  query value; :func:`url_host` names the host a request went to.
* :func:`is_redis_url`: which strings are Redis URLs (for limiters, coordinators, stores).
* :func:`ca_context`: what TLS trusts, for the API and the identity services alike: the
  system's store, or the PEM bundle ``$ALIBABA_CLOUD_CA_BUNDLE`` names.

An error names the setting the value came from: the keyword argument, or the environment
variable when the value was read from there.  Nothing here does I/O but
:func:`ca_context`, which reads the bundle once, when a client or provider is built.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from ipaddress import ip_address
from typing import TypeGuard
from urllib.parse import urlsplit

from yarl import URL

from ._errors import ValidationError, one_line

__all__ = [
    "CA_BUNDLE_ENV",
    "DEFAULT_REGION",
    "IOT_ENDPOINT_ENV",
    "REGION_ENV",
    "ca_context",
    "check_endpoint",
    "check_region",
    "check_url",
    "env_true",
    "env_value",
    "iot_endpoint",
    "is_redis_url",
    "pick_region",
    "redact_url",
    "url_host",
]

#: The region when neither ``region_id=`` nor ``$ALIBABA_CLOUD_REGION_ID`` names one.
DEFAULT_REGION = "cn-shanghai"
REGION_ENV = "ALIBABA_CLOUD_REGION_ID"
#: The command line's fallback for ``--endpoint`` (``EdgeClient`` does not read it); the
#: emulator tells users to export it.
IOT_ENDPOINT_ENV = "ALIBABA_CLOUD_IOT_ENDPOINT"
#: A PEM bundle of the CAs TLS trusts instead of the system's (see :func:`ca_context`).
CA_BUNDLE_ENV = "ALIBABA_CLOUD_CA_BUNDLE"

_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
_LOCAL_HOSTS = frozenset({"localhost", "localhost.localdomain"})
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def env_value(env: Mapping[str, str], var: str) -> str | None:
    """The variable's value, or ``None`` when it is unset or empty: ``VAR=`` means unset,
    as in the shells and the official SDKs."""
    return env.get(var) or None


def env_true(value: str | None) -> bool:
    """``true`` (any case) means yes, as the official SDKs read their switches."""
    return (value or "").strip().lower() == "true"


# --------------------------------------------------------------------------- region


def check_region(value: object, name: str) -> str:
    """``value`` if it looks like a region id (``cn-shanghai``, ``ap-southeast-1``), else a
    ``ValidationError`` naming ``name``."""
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise ValidationError(
            f"{name} must look like 'cn-shanghai', got {value!r}", param=name, rule="format"
        )
    return value


def pick_region(given: str | None, env: Mapping[str, str]) -> str:
    """``given`` (``region_id=``), else ``$ALIBABA_CLOUD_REGION_ID``, else ``cn-shanghai``;
    checked, and a bad value is blamed on where it came from."""
    if given:
        return check_region(given, "region_id")
    value = env_value(env, REGION_ENV)
    if value:
        return check_region(value, REGION_ENV)
    return DEFAULT_REGION


def iot_endpoint(region: str) -> str:
    """The Link IoT Edge API's URL in ``region`` (the client's default endpoint)."""
    return f"https://iot.{region}.aliyuncs.com"


# --------------------------------------------------------------------------- URLs


def _is_local(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(value: object, name: str, *, allow_http: bool = False) -> str:
    """``value`` unchanged if it is a URL the library can send requests to, else a
    ``ValidationError`` naming ``name`` (whose message never shows a password or a query
    value): a string that parses as aiohttp will parse it (a port in range), ``http`` or
    ``https`` with a host, and plain ``http`` only to a loopback host unless ``allow_http``.
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"{name} must be a URL string, got {type(value).__name__}", param=name, rule="type"
        )
    shown = redact_url(value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check: out of range, not a number
        URL(value).port  # noqa: B018 - and what aiohttp will parse when sending
    except ValueError as exc:
        raise ValidationError(
            f"{name} {shown!r} is not a valid URL: {exc}", param=name, rule="format"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"{name} must be an http(s) URL such as {iot_endpoint(DEFAULT_REGION)}, got {shown!r}",
            param=name,
            rule="format",
        )
    if parts.scheme == "http" and not allow_http and not _is_local(parts.hostname):
        raise ValidationError(
            f"{name} {shown!r} uses plain http to a non-local host; use https "
            f"(or pass allow_http=True)",
            param=name,
            rule="scheme",
        )
    return value


def check_endpoint(endpoint: object, *, allow_http: bool = False, name: str = "endpoint") -> str:
    """An endpoint (the URL requests are made under) checked by :func:`check_url`, without
    its trailing ``/``."""
    return check_url(endpoint, name, allow_http=allow_http).rstrip("/")


def redact_url(url: str) -> str:
    """``url`` as it may be shown: the password of its user (``redis://user:***@host``),
    every query value (``?password=***``, ``?token=***``) and any fragment masked, the rest
    as written.  Never raises, even for a URL that does not parse; a password with a
    ``/``, ``?`` or ``#`` in it is masked too."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if ":" not in rest[:at] and ("?" in rest[:at] or "#" in rest[:at]):
        # No password before that "@": it is in the query or fragment (``?email=a@b``).
        query_at = min(i for i in (rest.find("?"), rest.find("#")) if i >= 0)
        at = rest.rfind("@", 0, query_at)
    head = ""
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        head = f"{user}:***@" if colon else rest[: at + 1]
        rest = rest[at + 1 :]
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    if question:
        query = "&".join(
            f"{key}=***" if eq else "***"
            for key, eq, _ in (item.partition("=") for item in query.split("&"))
        )
    return f"{scheme}{sep}{head}{rest}{question}{query}{hash_}{'***' if fragment else ''}"


def url_host(url: str) -> str:
    """The ``host[:port]`` of ``url``, to name where a request went (no user, no password).
    Never raises."""
    rest = redact_url(url).partition("://")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return authority.rpartition("@")[2]


def is_redis_url(url: object) -> TypeGuard[str]:
    """``redis://``, ``rediss://`` or ``unix://`` (any case), as redis-py reads a URL."""
    return isinstance(url, str) and url.lower().startswith(_REDIS_SCHEMES)


def ca_context(env: Mapping[str, str]) -> ssl.SSLContext | bool:
    """What TLS trusts: the system's store (``True``, aiohttp's default), or the CAs of the
    PEM bundle ``$ALIBABA_CLOUD_CA_BUNDLE`` names, in a context built now (once per client
    or provider).  A bundle that cannot be loaded (missing, a directory, no certificate in
    it) is a ValidationError naming the variable: a setting's mistake, told when the
    client or provider is built rather than at its first request."""
    path = env_value(env, CA_BUNDLE_ENV)
    if path is None:
        return True
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        raise ValidationError(
            f"{CA_BUNDLE_ENV}: cannot load {path!r} as a PEM bundle of CAs ({one_line(reason)})",
            param=CA_BUNDLE_ENV,
            rule="invalid",
        ) from None
