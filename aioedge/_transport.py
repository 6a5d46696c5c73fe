"""The aiohttp seam: send a PreparedRequest, return (status, headers, body).

Network errors become TransportError here and nowhere else, unchained (their frames hold
the signed request) with the cause summarised in ``TransportError.cause``.
``maybe_executed`` is False only when the request provably never reached the service
(the connection could not be opened); everything after that is ambiguous. A body cut off
after its status line arrived is an InvalidResponseError carrying the status and what came.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from ._errors import TransportError
from ._protocol import PreparedRequest, incomplete_response
from ._settings import ca_context, check_endpoint, url_host

__all__ = ["Transport", "check_endpoint", "what_failed"]

_QUERY = re.compile(r"\?[^\s'\"]*")


def _safe(exc: BaseException) -> str:
    """An exception's text without query strings (a GET URL carries the Signature)."""
    return _QUERY.sub("?…", str(exc))


class Transport:
    """One aiohttp ClientSession, owned unless the caller passed one in."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        connect_timeout: float | None = 5.0,
        max_connections: int = 64,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._max_connections = max_connections
        # Built once, now: a CA bundle that cannot be loaded is refused when the client is
        # built, not at its first call.  (A caller's session keeps its own TLS settings.)
        self._ssl = ca_context(os.environ) if self._owned else True
        # Proxy keyword arguments per URL (sans query), from the environment once per session.
        self._proxy_kwargs: dict[str, dict[str, Any]] = {}
        # A caller's session keeps its own defaults: our timeouts go with every request.
        self._timeout_kwargs: dict[str, Any] = {} if self._owned else {"timeout": self._timeout}
        self._closed = False

    @property
    def session(self) -> aiohttp.ClientSession | None:
        return self._session

    @property
    def pool_size(self) -> int | None:
        """How many requests can be on the wire at once: the connection pool's limit (a
        caller's session: its connector's), or None when it has none (aiohttp's 0)."""
        limit = self._max_connections
        if not self._owned and self._session is not None:
            connector = self._session.connector
            limit = connector.limit if connector is not None else 0
        return limit if limit > 0 else None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_connections,
            ssl=self._ssl,
            keepalive_timeout=30.0,
        )
        # Proxies (HTTP(S)_PROXY, NO_PROXY) come from the environment, looked up once per
        # URL in _request_kwargs(): aiohttp's trust_env=True re-reads the environment (and
        # ~/.netrc) in worker threads on every request, ~0.4 ms of CPU per call.
        self._proxy_kwargs.clear()
        session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        # aiohttp re-sends a GET once, with the same signature and nonce, when a kept-alive
        # connection fails; the retry policy decides that here, signing afresh. (No public
        # switch exists; POST, the default and the only method for mutating calls, is never
        # re-sent.)
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return self._session

    def _request_kwargs(self, url: str) -> dict[str, Any]:
        if not self._owned:
            # The caller's session applies its own proxy settings, not its timeouts.
            return self._timeout_kwargs
        base = url.partition("?")[0]
        found = self._proxy_kwargs.get(base)
        if found is None:
            try:
                proxy, auth = get_env_proxy_for_url(URL(base))
                found = {"proxy": proxy, "proxy_auth": auth}
            except LookupError:  # no proxy for this scheme, or NO_PROXY covers the host
                found = {}
            if len(self._proxy_kwargs) < 64:
                self._proxy_kwargs[base] = found
        return found

    async def aclose(self) -> None:
        self._closed = True
        if self._owned and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(
        self, request: PreparedRequest, *, timeout: float | None = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        if self._closed:
            raise TransportError(
                "the client is closed", action=request.action, maybe_executed=False
            )
        session = self._session if self._session is not None else self._open()
        if session.closed:
            raise TransportError(
                "the client is closed", action=request.action, maybe_executed=False
            )
        extra = self._request_kwargs(request.url)
        if timeout is not None:  # passing timeout=None to aiohttp would disable the timeout
            extra = {
                **extra,
                "timeout": aiohttp.ClientTimeout(total=timeout, connect=self._timeout.connect),
            }
        # Our error is raised outside the except blocks, with no __cause__ or __context__:
        # aiohttp's frames hold the request (the SecurityToken in a POST body, the Signature
        # in a GET URL) in their locals, which error trackers record. What the cause was is
        # summarised in the message and in ``cause``.
        failure: TransportError
        try:
            status, headers, body, complete, expected = await self._exchange(
                session, request, extra
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            message, maybe_executed = what_failed(exc, request)
            failure = TransportError(
                message,
                action=request.action,
                maybe_executed=maybe_executed,
                cause=_summary(exc),
            )
        else:
            if complete:
                return status, headers, body
            # Cut off on the wire: an unreadable answer, as in _protocol.
            cut = incomplete_response(request.action, status, headers, body, expected)
            body = b""  # what arrived may quote a secret; the error holds a masked snippet
            raise cut
        raise failure

    async def _exchange(
        self, session: aiohttp.ClientSession, request: PreparedRequest, extra: Mapping[str, Any]
    ) -> tuple[int, Mapping[str, str], bytes, bool, int | None]:
        """Send and read the answer: (status, headers, body, whether it is complete, the
        Content-Length).  aiohttp's errors propagate."""
        async with session.request(
            request.method,
            request.url,
            data=request.body or None,
            headers=dict(request.headers),
            **extra,
        ) as resp:
            # Read chunk by chunk (as resp.read() does) so that a body cut off on the wire
            # still leaves its status and the bytes that did arrive for the error.
            content = resp.content
            chunks: list[bytes] = []
            try:
                while chunk := await content.readany():
                    chunks.append(chunk)
            except aiohttp.ClientPayloadError:
                return resp.status, resp.headers, b"".join(chunks), False, resp.content_length
            return resp.status, resp.headers, b"".join(chunks), True, resp.content_length


def what_failed(exc: BaseException, request: PreparedRequest) -> tuple[str, bool]:
    """What an aiohttp failure means to the caller: the message, and whether the service
    may have run the request (``maybe_executed``).  The most specific kind comes first."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Could not connect at all: the service never saw the request.
        return (
            f"cannot connect to {url_host(request.url)}: {_safe(exc.os_error or exc)}",
            False,
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"timed out connecting to {url_host(request.url)}", False
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return f"{request.action} timed out waiting for the answer", True
    # Anything else broke the connection once the request was (perhaps) on its way.
    return (
        f"{request.action}: connection failed after sending ({type(exc).__name__}: {_safe(exc)})",
        True,
    )


def _summary(exc: BaseException) -> str:
    """What an aiohttp error was, without the request it was about."""
    text = _safe(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
