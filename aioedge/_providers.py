"""Providers of keys that refresh: STS (OIDC / RRSA, AssumeRole), ECS metadata, a URI.

Each is a thin I/O shell around ``aioedge._sts`` (requests, answers, the schedule).  What
they share lives in :class:`RefreshingProvider`:

* ``get_credentials()`` returns the cached key while more than ``min(15 min, half its
  lifetime)`` is left (one clock read, no lock, no await of anything else);
* past that point one caller refreshes (single flight: an ``asyncio.Lock``); the others
  keep using the old key while it is valid, or wait for the refresh when it is not;
* a refresh that fails while the old key is valid keeps the old key, logs
  ``aioedge.credentials_refresh_failed`` and is tried again after a backoff
  (``_sts.retry_delay``); once the key has expired, callers get ``CredentialsError``
  naming the source and the service's code and RequestId;
* ``refresh(stale=key)`` forces a new key (the client calls it when the service answers
  ``InvalidSecurityToken.Expired``); concurrent calls for the same stale key share one
  refresh, and its failure too.  From then on the refused key counts as expired: it is not
  handed out again, and callers meet the failure until its backoff is over;
* a failure is ``transient`` when the service could not be reached, failed or throttled
  (``_sts.hiccup``; not a certificate that could not be verified), with ``retry_after``
  the backoff left: the client retries the call, a watch polls again.

Nothing blocks the event loop: HTTP goes through aiohttp and the OIDC token file is read
with ``anyio`` (a worker thread), afresh at every refresh (the kubelet rotates it).  TLS
trusts what the client does (``_settings.ca_context``: ``$ALIBABA_CLOUD_CA_BUNDLE``, read
when the provider is built).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import anyio

from ._credentials import Credentials, CredentialsProvider, expired, format_expiration
from ._errors import CredentialsError, ValidationError
from ._log import get_logger
from ._settings import (
    ca_context,
    check_endpoint,
    check_url,
    env_true,
    env_value,
    redact_url,
    url_host,
)
from ._sts import (
    HttpAnswer,
    StsRequest,
    assume_role_request,
    assume_role_with_oidc_request,
    hiccup,
    parse_credentials_answer,
    parse_sts_answer,
    refresh_at,
    retry_delay,
)
from ._sts import sts_endpoint as _sts_url  # the providers' sts_endpoint= would shadow it

__all__ = [
    "EcsRamRoleProvider",
    "OIDCRoleArnProvider",
    "RamRoleArnProvider",
    "RefreshingProvider",
    "StaticCredentialsProvider",
    "URICredentialsProvider",
]

Clock = Callable[[], float]
_STS_TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=5.0)
# The metadata service is on the host's link: it answers at once or is not there.
_METADATA_TIMEOUT = aiohttp.ClientTimeout(total=5.0, connect=1.0)
_METADATA_TOKEN_TTL = "21600"
_TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
_TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
_CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"


def _nonce() -> str:
    return secrets.token_hex(16)


async def _http(
    method: str,
    url: str,
    *,
    source: str,
    timeout: aiohttp.ClientTimeout,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    tls: ssl.SSLContext | bool = True,
) -> HttpAnswer:
    """One request on a short-lived session (a refresh is rare), trusting ``tls`` (the
    provider's :func:`~aioedge._settings.ca_context`); network failures become a
    ``CredentialsError`` (code ``ConnectionError``) naming the source and the host only,
    ``transient`` but for a certificate that could not be verified (a setting to fix)."""
    try:
        async with (
            aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(ssl=tls)
            ) as session,
            session.request(method, url, data=data, headers=dict(headers or {})) as resp,
        ):
            return HttpAnswer(
                status=resp.status,
                body=await resp.read(),
                request_id=resp.headers.get("x-acs-request-id") or None,
            )
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        kind = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
        raise CredentialsError(
            f"{source}: cannot reach {url_host(url)} ({kind})",
            source=source,
            code="ConnectionError",
            transient=not isinstance(exc, aiohttp.ClientSSLError),
        ) from None


def _check_str(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{name} must be a non-empty string, got {type(value).__name__}",
            param=name,
            rule="type",
        )
    return value.strip()


def _check_duration(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 900 <= value <= 43200:
        raise ValidationError(
            f"duration_seconds must be an integer from 900 to 43200 (STS), got {value!r}",
            param="duration_seconds",
            rule="range",
        )
    return value


class _LoopLock:
    """An ``asyncio.Lock`` per event loop: a provider kept at module level may serve one
    ``asyncio.run()`` after another (an asyncio lock belongs to the loop it first waited
    in).  Consulted only when a key is due, never on the cached path."""

    __slots__ = ("_lock", "_loop")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:
                self._lock = asyncio.Lock()
            self._loop = loop
        return self._lock


class StaticCredentialsProvider:
    """A fixed key behind the provider interface (what the chain returns for AK modes)."""

    __slots__ = ("credentials",)

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self.credentials

    @property
    def scope(self) -> str:
        return self.credentials.access_key_id

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self.credentials!r})"


class RefreshingProvider:
    """The cache, the schedule and the single flight every refreshing provider shares.

    Subclasses set ``source`` (a name for errors and logs) and implement ``_fetch()``.
    ``refreshes`` counts keys fetched, ``failures`` refreshes that failed.
    """

    source: str = "credentials provider"

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._current: Credentials | None = None
        self._refresh_at = -math.inf
        self._retry_at = -math.inf
        self._failures = 0
        self._last_error: CredentialsError | None = None
        self._locks = _LoopLock()
        self._log = get_logger()
        self.refreshes = 0
        self.failures = 0

    @property
    def scope(self) -> str:
        """What stays the same across refreshes (for rate-limit scopes): the source."""
        return self.source

    async def _fetch(self) -> Credentials:
        raise NotImplementedError

    async def get_credentials(self) -> Credentials:
        """The current key, refreshed first if it is due (see the module text)."""
        current = self._current
        if current is not None and self._clock() < self._refresh_at:
            return current
        return await self._due()

    def _valid(self, creds: Credentials | None, now: float) -> bool:
        return creds is not None and not expired(creds.expiration, now)

    async def _due(self) -> Credentials:
        current = self._current
        now = self._clock()
        lock = self._locks.get()
        if self._valid(current, now) and (lock.locked() or now < self._retry_at):
            assert current is not None
            return current  # someone is refreshing, or we wait out a backoff: old key
        async with lock:
            now = self._clock()
            current = self._current
            if current is not None and now < self._refresh_at:
                return current  # refreshed while we waited
            valid = self._valid(current, now)
            if now < self._retry_at:
                if valid:
                    assert current is not None
                    return current
                if self._last_error is not None:
                    raise self._copy(self._last_error, self._retry_at - now)
            return await self._refresh_locked(current, now, valid)

    async def refresh(self, *, stale: Credentials | None = None) -> Credentials:
        """A new key now.  With ``stale`` (a key the service refused as expired), only if
        the current key is still that one: a caller holding an older key gets the one
        fetched since, with no new request.  The refused key is expired from then on for
        every caller, whatever its Expiration said: it is never handed out again, and a
        refresh for it that failed is not tried again before its backoff is over (the
        callers refused with it share that failure, as they share a success)."""
        async with self._locks.get():
            current = self._current
            now = self._clock()
            if stale is not None and current is not None:
                if current != stale:
                    return current
                self._expire(current, now)
                if now < self._retry_at and self._last_error is not None:
                    raise self._copy(self._last_error, self._retry_at - now)
            return await self._refresh_locked(None, now, False)

    def _expire(self, current: Credentials, now: float) -> None:
        """The service refused ``current`` as expired: so it is, for :meth:`_valid` too."""
        if not expired(current.expiration, now):
            self._current = dataclasses.replace(current, expiration=now)
        self._refresh_at = -math.inf

    async def _refresh_locked(
        self, current: Credentials | None, now: float, valid: bool
    ) -> Credentials:
        failure: CredentialsError | None = None
        try:
            fresh = await self._fetch()
        except CredentialsError as exc:
            # A copy raised from here, unchained: the frames below (the OIDC token, the
            # signed request, the answer) never reach an error tracker's frame locals.
            failure = self._copy(exc)
        if failure is not None:
            err = failure
            del failure
            self._failures += 1
            self.failures += 1
            expiration = current.expiration if (valid and current is not None) else None
            delay = retry_delay(self._failures, now=now, expiration=expiration)
            self._retry_at = now + delay
            if err.transient:
                err.retry_after = delay
            if valid and current is not None:
                self._log.warning(
                    "aioedge.credentials_refresh_failed",
                    source=self.source,
                    code=err.code,
                    request_id=err.request_id,
                    error=str(err),
                    retry_in_s=round(delay, 3),
                    expires_in_s=(
                        round(current.expiration - now, 3) if current.expiration else None
                    ),
                )
                return current
            self._last_error = err
            raise err
        done = self._clock()
        if fresh.expiration is not None:
            if expired(fresh.expiration, done):
                stale = CredentialsError(
                    f"{self.source}: the new key expired already "
                    f"(Expiration {format_expiration(fresh.expiration)}; is the clock right?)",
                    source=self.source,
                )
                self._last_error = stale
                self._failures += 1
                self.failures += 1
                self._retry_at = done + retry_delay(self._failures, now=done, expiration=None)
                raise stale
            self._refresh_at = refresh_at(done, fresh.expiration)
        else:
            self._refresh_at = math.inf
        self._current = fresh
        self._failures = 0
        self._retry_at = -math.inf
        self._last_error = None
        self.refreshes += 1
        self._log.info(
            "aioedge.credentials_refreshed",
            source=self.source,
            access_key_id=fresh.access_key_id,
            expiration=format_expiration(fresh.expiration) if fresh.expiration else None,
        )
        return fresh

    @staticmethod
    def _copy(err: CredentialsError, retry_in: float | None = None) -> CredentialsError:
        """``err`` anew, unchained; a transient one says when this provider asks again."""
        return CredentialsError(
            str(err),
            tried=err.tried,
            source=err.source,
            code=err.code,
            request_id=err.request_id,
            transient=err.transient,
            retry_after=max(retry_in, 0.0) if err.transient and retry_in is not None else None,
        )

    def __repr__(self) -> str:
        key = self._current.access_key_id if self._current is not None else None
        return f"{type(self).__name__}(source={self.source!r}, access_key_id={key!r})"


class _StsProvider(RefreshingProvider):
    def __init__(
        self,
        *,
        role_arn: str,
        role_session_name: str | None,
        duration_seconds: int,
        policy: str | None,
        sts_endpoint: str | None,
        sts_region: str | None,
        enable_vpc: bool | None,
        env: Mapping[str, str],
        clock: Clock,
    ) -> None:
        super().__init__(clock=clock)
        self.role_arn = role_arn
        self.role_session_name = (
            _check_str(role_session_name, "role_session_name", optional=True)
            or f"aioedge-{int(clock())}"
        )
        self.duration_seconds = _check_duration(duration_seconds)
        self.policy = _check_str(policy, "policy", optional=True)
        self.sts_endpoint = _sts_url(sts_endpoint, env, region=sts_region, vpc=enable_vpc)
        self._tls = ca_context(env)

    @property
    def scope(self) -> str:
        return self.role_arn

    async def _post(self, request: StsRequest, secrets: tuple[str | None, ...]) -> Credentials:
        answer = await _http(
            "POST",
            request.url,
            source=self.source,
            timeout=_STS_TIMEOUT,
            data=request.body,
            headers=request.headers,
            tls=self._tls,
        )
        return parse_sts_answer(answer, source=self.source, secrets=secrets)


class OIDCRoleArnProvider(_StsProvider):
    """RRSA on ACK: STS ``AssumeRoleWithOIDC`` with the pod's OIDC token (unsigned).

    Each argument left ``None`` comes from its environment variable:
    ``ALIBABA_CLOUD_ROLE_ARN``, ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN``,
    ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` (``ALIBABA_CLOUD_ROLE_SESSION_NAME`` for the
    session name); a missing one is a ``CredentialsError`` naming it.  The token file is
    read again at every refresh: the kubelet rotates it.
    """

    def __init__(
        self,
        role_arn: str | None = None,
        oidc_provider_arn: str | None = None,
        oidc_token_file: str | os.PathLike[str] | None = None,
        *,
        role_session_name: str | None = None,
        duration_seconds: int = 3600,
        policy: str | None = None,
        sts_endpoint: str | None = None,
        sts_region: str | None = None,
        enable_vpc: bool | None = None,
        env: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        env = os.environ if env is None else env
        values = {
            "ALIBABA_CLOUD_ROLE_ARN": role_arn,
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": oidc_provider_arn,
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE": (
                os.fspath(oidc_token_file) if oidc_token_file is not None else None
            ),
        }
        for var, value in values.items():
            if value is None:
                values[var] = env_value(env, var)
        missing = [var for var, value in values.items() if not value]
        if missing:
            given = [var for var in values if var not in missing]
            also = (
                f" ({', '.join(given)} {'is' if len(given) == 1 else 'are'} set)" if given else ""
            )
            raise CredentialsError(
                f"OIDC (RRSA): {' and '.join(missing)} not set{also}; "
                "pass the value or set the variable",
                source="OIDC (RRSA)",
            )
        self.oidc_provider_arn = str(values["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"])
        self.oidc_token_file = str(values["ALIBABA_CLOUD_OIDC_TOKEN_FILE"])
        arn = str(values["ALIBABA_CLOUD_ROLE_ARN"])
        # An empty variable is unset: the default session name, not an error.
        session_name = role_session_name or env_value(env, "ALIBABA_CLOUD_ROLE_SESSION_NAME")
        super().__init__(
            role_arn=arn,
            role_session_name=session_name,
            duration_seconds=duration_seconds,
            policy=policy,
            sts_endpoint=sts_endpoint,
            sts_region=sts_region,
            enable_vpc=enable_vpc,
            env=env,
            clock=clock,
        )
        self.source = f"STS AssumeRoleWithOIDC ({arn})"

    async def _read_token(self) -> str:
        try:
            token = (await anyio.Path(self.oidc_token_file).read_text(encoding="utf-8")).strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"{self.source}: cannot read the OIDC token file {self.oidc_token_file} "
                f"({type(exc).__name__}"
                f"{': ' + exc.strerror if isinstance(exc, OSError) and exc.strerror else ''})",
                source=self.source,
            ) from None
        if not token:
            raise CredentialsError(
                f"{self.source}: the OIDC token file {self.oidc_token_file} is empty",
                source=self.source,
            )
        return token

    async def _fetch(self) -> Credentials:
        token = await self._read_token()
        request = assume_role_with_oidc_request(
            self,
            oidc_provider_arn=self.oidc_provider_arn,
            oidc_token=token,
            timestamp=self._clock(),
            nonce=_nonce(),
        )
        return await self._post(request, (token,))


class RamRoleArnProvider(_StsProvider):
    """STS ``AssumeRole`` signed (v1) with ``source``: a ``Credentials`` or a provider
    (asked for its current key at every refresh: role chaining)."""

    def __init__(
        self,
        role_arn: str,
        *,
        source: Credentials | CredentialsProvider,
        role_session_name: str | None = None,
        duration_seconds: int = 3600,
        policy: str | None = None,
        external_id: str | None = None,
        sts_endpoint: str | None = None,
        sts_region: str | None = None,
        enable_vpc: bool | None = None,
        env: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        arn = _check_str(role_arn, "role_arn")
        assert arn is not None
        if not isinstance(source, Credentials) and not isinstance(source, CredentialsProvider):
            raise ValidationError(
                f"source must be aioedge.Credentials or a credentials provider, got "
                f"{type(source).__name__}",
                param="source",
                rule="type",
            )
        super().__init__(
            role_arn=arn,
            role_session_name=role_session_name,
            duration_seconds=duration_seconds,
            policy=policy,
            sts_endpoint=sts_endpoint,
            sts_region=sts_region,
            enable_vpc=enable_vpc,
            env=os.environ if env is None else env,
            clock=clock,
        )
        self.source_credentials = source
        self.external_id = _check_str(external_id, "external_id", optional=True)
        self.source = f"STS AssumeRole ({arn})"

    async def _fetch(self) -> Credentials:
        source = self.source_credentials
        key = source if isinstance(source, Credentials) else await source.get_credentials()
        request = assume_role_request(
            self, source=key, external_id=self.external_id, timestamp=self._clock(), nonce=_nonce()
        )
        return await self._post(request, (key.access_key_secret, key.security_token))


class EcsRamRoleProvider(RefreshingProvider):
    """The RAM role of an ECS instance, from its metadata service.

    IMDSv2 first: ``PUT /latest/api/token`` for a session token, sent back in the header
    ``X-aliyun-ecs-metadata-token``; when that fails, plain (v1) requests, unless
    ``disable_imds_v1`` (or ``ALIBABA_CLOUD_IMDSV1_DISABLED=true``).  ``role_name``
    ``None``: ``ALIBABA_CLOUD_ECS_METADATA``, else the role the service lists.
    """

    def __init__(
        self,
        role_name: str | None = None,
        *,
        endpoint: str = "http://100.100.100.200",
        disable_imds_v1: bool = False,
        env: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        env = os.environ if env is None else env
        self.role_name = _check_str(
            role_name or env_value(env, "ALIBABA_CLOUD_ECS_METADATA"),
            "role_name",
            optional=True,
        )
        # Plain http: the metadata service is on the host's own link, not the internet.
        self.endpoint = check_endpoint(endpoint, allow_http=True)
        self.disable_imds_v1 = bool(disable_imds_v1) or env_true(
            env.get("ALIBABA_CLOUD_IMDSV1_DISABLED")
        )
        self.source = f"ECS metadata ({url_host(self.endpoint)})"
        self._tls = ca_context(env)

    @property
    def scope(self) -> str:
        return f"ecs-ram-role:{self.role_name or '?'}"

    async def _metadata_token(self) -> str | None:
        """An IMDSv2 token, or None to go on with v1 (refused when v1 is disabled)."""
        try:
            answer = await _http(
                "PUT",
                self.endpoint + "/latest/api/token",
                source=self.source,
                timeout=_METADATA_TIMEOUT,
                headers={_TOKEN_TTL_HEADER: _METADATA_TOKEN_TTL},
                tls=self._tls,
            )
        except CredentialsError:
            raise  # nothing answers there at all: v1 would not either
        if answer.status == 200 and answer.body.strip():
            return answer.body.decode("utf-8", "replace").strip()
        if self.disable_imds_v1:
            raise CredentialsError(
                f"{self.source}: no IMDSv2 token (HTTP {answer.status} for "
                "PUT /latest/api/token) and IMDSv1 is disabled",
                source=self.source,
                code=f"HTTP{answer.status}",
                request_id=answer.request_id,
                transient=hiccup(answer.status, ""),
            )
        self._log.debug("aioedge.imds_v1_fallback", source=self.source, http_status=answer.status)
        return None

    async def _get(self, path: str, token: str | None) -> HttpAnswer:
        return await _http(
            "GET",
            self.endpoint + path,
            source=self.source,
            timeout=_METADATA_TIMEOUT,
            headers={_TOKEN_HEADER: token} if token else None,
            tls=self._tls,
        )

    async def _fetch(self) -> Credentials:
        token = await self._metadata_token()
        role = self.role_name
        if role is None:
            listing = await self._get(_CREDENTIALS_PATH, token)
            status = listing.status
            names = listing.body.decode("utf-8", "replace").split() if status == 200 else []
            if not names:
                raise CredentialsError(
                    f"{self.source}: no RAM role attached to this instance "
                    f"(HTTP {status} for {_CREDENTIALS_PATH})",
                    source=self.source,
                    code=f"HTTP{status}",
                    request_id=listing.request_id,
                    transient=hiccup(status, ""),
                )
            role = self.role_name = names[0]
        answer = await self._get(_CREDENTIALS_PATH + quote(role, safe=""), token)
        return parse_credentials_answer(
            answer, source=f"{self.source} role {role}", secrets=(token,)
        )


class URICredentialsProvider(RefreshingProvider):
    """A key served over HTTP(S) by a sidecar or agent: ``GET uri`` answers
    ``{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken",
    "Expiration"}``.  ``uri`` ``None``: ``ALIBABA_CLOUD_CREDENTIALS_URI``."""

    def __init__(
        self,
        uri: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        env = os.environ if env is None else env
        value = uri if uri is not None else env_value(env, "ALIBABA_CLOUD_CREDENTIALS_URI")
        name = "uri" if uri is not None else "ALIBABA_CLOUD_CREDENTIALS_URI"
        if value is None:
            raise CredentialsError(
                "credentials URI: ALIBABA_CLOUD_CREDENTIALS_URI not set; pass uri= or set it",
                source="credentials URI",
            )
        # Plain http too: an agent or sidecar beside the process serves it.
        self.uri = check_url(value, name, allow_http=True)
        # The query (or a password) may carry a secret of the agent's: never shown.
        self.source = f"credentials URI ({redact_url(self.uri)})"
        self._tls = ca_context(env)

    async def _fetch(self) -> Credentials:
        answer = await _http(
            "GET", self.uri, source=self.source, timeout=_STS_TIMEOUT, tls=self._tls
        )
        return parse_credentials_answer(
            answer, source=self.source, secrets=(urlsplit(self.uri).query or None,)
        )
