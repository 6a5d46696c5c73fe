"""EdgeClient: the composition of catalog, limiter, signing, transport and retry.

One call flows one way: validate & flatten (before any I/O) → wait for the Action's
rate-limit slot → sign afresh → send → parse → typed result or typed error → retry
decision.  Everything that decides lives in the pure modules; this file is wiring.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypedDict

import aiohttp
import anyio

from ._argtypes import check_positive
from ._batch import (
    DEFAULT_POOL,
    BatchResult,
    BatchResults,
    PerAction,
    SendFn,
    iter_batch,
    quota_cap,
    run_batch,
)
from ._catalog import Operation, get_operation, validate_params
from ._chain import resolve_credentials
from ._credentials import Credentials, CredentialsProvider, expired, format_expiration
from ._errors import (
    ApiError,
    AuthError,
    CredentialsError,
    EdgeError,
    ThrottledError,
    TransportError,
    ValidationError,
)
from ._hooks import CallObserver, HookSet
from ._log import debug_check, get_logger
from ._operations import OperationsMixin
from ._protocol import (
    PreparedRequest,
    Signer,
    mask_secrets,
    parse_response,
    redact_error,
    request_id_of,
    secret_forms,
)
from ._ratelimit import RateLimiter, as_rate_limiter, default_limiter
from ._retry import DeadlineExceededError, RetryPolicy
from ._settings import check_endpoint, iot_endpoint, pick_region, redact_url
from ._transport import Transport
from ._wire import int_or_none, more_pages

if TYPE_CHECKING:
    from ._rollout_run import Rollout
    from .watch import DeploymentWatcher

__all__ = ["EdgeClient"]

_SKEW_CODES = frozenset({"InvalidTimeStamp.Expired"})
_EXPIRED_TOKEN = "InvalidSecurityToken.Expired"
#: The slot of an attempt without a limiter: none to wait for (one reusable no-op).
_NO_SLOT: AbstractAsyncContextManager[None] = nullcontext()


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Any = _Default()


class _BatchOptions(TypedDict):
    """What a client tells ``run_batch``/``iter_batch`` (see ``EdgeClient._batch_options``)."""

    per_action: PerAction | None
    default_concurrency: int
    send: SendFn


class EdgeClient(OperationsMixin):
    """Asyncio client for the Link IoT Edge API (Version 2018-01-20).

    ``async with EdgeClient(...) as client:`` owns one aiohttp session reused by every
    call.  A client used without ``async with`` opens its session on the first call;
    close it with ``await client.aclose()``.
    """

    def __init__(
        self,
        credentials: Credentials | CredentialsProvider | None = None,
        region_id: str | None = None,
        endpoint: str | None = None,
        rate_limit: bool | RateLimiter = True,
        timeout: float = 10.0,
        retry: RetryPolicy | None = _DEFAULT,
        *,
        iot_instance_id: str | None = None,
        profile: str | None = None,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float | None = 5.0,
        max_connections: int = 64,
        quota_scope: str | None = None,
        allow_http: bool = False,
        method: str = "POST",
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] | None = None,
        hooks: Iterable[object] | None = None,
    ) -> None:
        # The settings first: a bad one is the error reported, before credentials are looked
        # up (which reads files, and may fail for reasons of its own).
        region = pick_region(region_id, os.environ)
        self.region_id = region
        self.endpoint = check_endpoint(
            iot_endpoint(region) if endpoint is None else endpoint, allow_http=allow_http
        )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ValidationError(
                f"timeout must be a positive number of seconds, got {timeout!r}",
                param="timeout",
                rule="type",
            )
        check_positive(timeout, param="timeout")  # NaN too
        if method.upper() not in ("GET", "POST"):
            raise ValidationError(
                f"method must be GET or POST, got {method!r}", param="method", rule="enum"
            )
        self.timeout = float(timeout)
        self.retry: RetryPolicy | None = RetryPolicy() if retry is _DEFAULT else retry
        if iot_instance_id is not None and (
            not isinstance(iot_instance_id, str) or not iot_instance_id.strip()
        ):
            raise ValidationError(
                f"iot_instance_id must be a non-empty string or None, got "
                f"{type(iot_instance_id).__name__} {iot_instance_id!r}",
                param="iot_instance_id",
                rule="type",
            )
        self.iot_instance_id = iot_instance_id
        found = resolve_credentials(credentials, profile=profile)
        # A fixed key is signed with as it is; a provider is asked before every attempt.
        fixed = getattr(found, "credentials", None)  # the chain's StaticCredentialsProvider
        if not isinstance(found, Credentials) and isinstance(fixed, Credentials):
            found = fixed
        self._fixed: Credentials | None = found if isinstance(found, Credentials) else None
        self._provider: CredentialsProvider | None = (
            None if isinstance(found, Credentials) else found
        )
        self.quota_scope = quota_scope or (
            self._fixed.access_key_id
            if self._fixed is not None
            else str(getattr(self._provider, "scope", None) or type(self._provider).__name__)
        )
        self._limiter: RateLimiter | None
        if rate_limit is True:
            self._limiter = default_limiter()
        elif rate_limit is False or rate_limit is None:
            self._limiter = None
        else:
            self._limiter = rate_limit
        if self._limiter is not None:
            # Whichever the limiter, it learns this timeout: a slot whose answer never came is
            # held window + the timeout (the request may still arrive); a lease must outlast it.
            self._limiter = as_rate_limiter(self._limiter)
            try:
                self._limiter.expect_attempt_timeout(self.timeout)
            except ValueError as exc:
                raise ValidationError(
                    f"rate_limit cannot serve timeout={self.timeout:g}: {exc}",
                    param="timeout",
                    rule="range",
                ) from exc
        self._method = method.upper()
        # None without hooks: the hot path then checks this one attribute (see _hooks.py).
        self._hooks = HookSet.of(hooks)
        self._clock = clock
        self._nonce = nonce or _random_nonce
        self._clock_offset = 0.0  # corrected from the service's Date on InvalidTimeStamp
        self._transport = Transport(
            session=session,
            timeout=self.timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )
        self._log = get_logger()
        self._debug = debug_check(self._log)
        self._secret_forms: tuple[str, ...] = ()
        self._secret_bytes: tuple[bytes, ...] = ()
        self._signed_with: Credentials | None = None
        if self._fixed is not None:
            self._use_key(self._fixed)

    def _use_key(self, creds: Credentials) -> None:
        """Build the signers for ``creds``: once for a fixed key, once per refresh for a
        provider's (no await in here, so every attempt sees one consistent key)."""
        previous = self._signed_with
        self._signed_with = creds
        # What an error must never show: the service may quote the token (its string-to-sign).
        # The previous key's too: an attempt signed with it may still be answered.
        self._secret_forms = secret_forms(
            creds.security_token,
            creds.access_key_secret,
            *((previous.security_token, previous.access_key_secret) if previous else ()),
        )
        self._secret_bytes = tuple(form.encode() for form in self._secret_forms)
        # Everything about signing that is fixed for this key, computed once.
        self._signer = Signer(
            endpoint=self.endpoint, credentials=creds, region_id=self.region_id, method=self._method
        )
        # Mutating Actions always go as POST: aiohttp (like most HTTP stacks) may re-send a
        # GET on its own when a kept-alive connection drops, which would repeat the call.
        self._write_signer = (
            self._signer
            if self._method == "POST"
            else Signer(
                endpoint=self.endpoint, credentials=creds, region_id=self.region_id, method="POST"
            )
        )

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        who = (
            f"access_key_id={self._fixed.access_key_id!r}"
            if self._fixed is not None
            else f"credentials={type(self._provider).__name__}"
        )
        endpoint = redact_url(self.endpoint)  # a password in it is never shown
        return f"EdgeClient(endpoint={endpoint!r}, region_id={self.region_id!r}, {who})"

    @property
    def credentials(self) -> Credentials | CredentialsProvider:
        """The fixed key, or the provider asked before every attempt."""
        if self._fixed is not None:
            return self._fixed
        assert self._provider is not None
        return self._provider

    @property
    def limiter(self) -> RateLimiter | None:
        return self._limiter

    @property
    def hooks(self) -> tuple[object, ...]:
        """The hook objects given as ``hooks=`` (see ``aioedge._hooks``)."""
        return () if self._hooks is None else self._hooks.hooks

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session (None until the first call or ``async with``)."""
        return self._transport.session

    async def __aenter__(self) -> EdgeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client owns it."""
        await self._transport.aclose()

    # ------------------------------------------------------------------ calls

    def prepare(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Validate and flatten ``params`` for ``action`` (no I/O): the wire parameters."""
        return self._prepare(get_operation(action), params)

    def _prepare(self, op: Operation, params: Mapping[str, Any] | None) -> dict[str, str]:
        return self._defaults(op, validate_params(op, params))

    def _defaults(self, op: Operation, wire: dict[str, str]) -> dict[str, str]:
        """Validated ``wire`` parameters with the client's defaults (``iot_instance_id``)."""
        if (
            self.iot_instance_id
            and "IotInstanceId" not in wire
            and op.param("IotInstanceId") is not None
        ):
            wire["IotInstanceId"] = self.iot_instance_id
        return wire

    async def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``action`` with wire-named ``params``; return the parsed JSON body.

        Raises ValidationError before any I/O, ApiError (and subclasses) when the service
        says no, TransportError on network failure.
        """
        op = get_operation(action)
        return await self._send(op, self._prepare(op, params))

    async def _send_validated(self, op: Operation, wire: dict[str, str]) -> dict[str, Any]:
        """A batch's call: its parameters were validated when the batch was planned."""
        return await self._send(op, self._defaults(op, wire))

    async def _send(self, op: Operation, wire: Mapping[str, str]) -> dict[str, Any]:
        started = time.monotonic()
        fixed = self._fixed
        if fixed is not None and fixed.expiration is not None:
            self._check_fixed_expiry(op, fixed.expiration)
        attempt = 0
        skew_fixed = False
        renewed = False
        used: list[Credentials] = []  # the key each attempt signed with (a provider's)
        obs = (
            None
            if self._hooks is None
            else self._hooks.call(
                action=op.action, region_id=self.region_id, read_only=op.read_only, started=started
            )
        )
        renew = False  # the key was refused as expired: the next attempt renews it first
        try:
            while True:
                attempt += 1
                try:
                    if renew:  # as when the attempt cannot get its key: its own failure
                        renew = False
                        await self._renew_key(used[-1] if used else None, op.action)
                    data = await self._attempt(op, wire, attempt, started, used, obs)
                except EdgeError as err:
                    failure = err
                else:
                    if obs is not None:
                        await obs.succeeded(attempt, data)
                    return data
                # Handled out of the except clause, so that whatever the handling raises (an
                # async hook cancelled, the backoff cancelled) meets the one handler below
                # that ends the call for the hooks.
                if (
                    isinstance(failure, ApiError)
                    and failure.code == _EXPIRED_TOKEN
                    and self._provider is not None
                    and not renewed
                ):
                    # Refused before execution: refresh the key and send once more, a
                    # mutating Action too (it did not run).
                    renewed = renew = True
                    if obs is not None:
                        await obs.failed(attempt, failure, 0.0, "expired_token")
                    continue
                if (
                    isinstance(failure, ApiError)
                    and failure.code in _SKEW_CODES
                    and failure.server_time is not None
                    and not skew_fixed
                ):
                    # The service rejected our Timestamp: adopt its clock and retry once.
                    skew_fixed = True
                    self._clock_offset = failure.server_time - self._clock()
                    self._log.warning(
                        "aioedge.clock_skew_corrected",
                        action=op.action,
                        offset_s=round(self._clock_offset, 3),
                    )
                    if obs is not None:
                        await obs.failed(attempt, failure, 0.0, "clock_skew")
                    continue
                delay = (
                    self.retry.decide(
                        failure,
                        attempt=attempt,
                        read_only=op.read_only,
                        elapsed=time.monotonic() - started,
                        retry_after=getattr(failure, "retry_after", None),
                    )
                    if self.retry is not None
                    else None
                )
                if obs is not None:
                    await obs.failed(attempt, failure, delay)
                if delay is None:
                    if isinstance(failure, (ApiError, TransportError)):
                        failure.attempts = attempt
                    raise failure
                self._log.info(
                    "aioedge.retry_scheduled",
                    action=op.action,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=type(failure).__name__,
                    code=getattr(failure, "code", None),
                )
                await anyio.sleep(delay)
        except BaseException as exc:
            if obs is not None:
                obs.ended(attempt, exc)  # nothing when the call has ended for them already
            raise

    def _check_fixed_expiry(self, op: Operation, expiration: float) -> None:
        """A fixed key whose token has expired: AuthError at once, nothing sent."""
        if expired(expiration, self._clock() + self._clock_offset):
            raise AuthError(
                _EXPIRED_TOKEN,
                f"the SecurityToken of the fixed credentials expired at "
                f"{format_expiration(expiration)}; pass a provider (e.g. "
                "aioedge.RamRoleArnProvider) to have it refreshed",
                action=op.action,
            )

    async def _renew_key(self, stale: Credentials | None, action: str) -> None:
        """The service said the key is expired: a new one from the provider (one refresh
        for every call that was refused with the same key)."""
        provider = self._provider
        self._log.info(
            "aioedge.credentials_expired",
            action=action,
            access_key_id=stale.access_key_id if stale else None,
        )
        refresh = getattr(provider, "refresh", None)
        if refresh is not None:
            await refresh(stale=stale)

    async def _attempt(
        self,
        op: Operation,
        wire: Mapping[str, str],
        attempt: int,
        started: float,
        used: list[Credentials] | None = None,
        obs: CallObserver | None = None,
    ) -> dict[str, Any]:
        limiter = self._limiter
        provider = self._provider
        sent = 0.0
        try:
            if limiter is None:
                slot: AbstractAsyncContextManager[None] = _NO_SLOT
            else:
                slot = self._slot(limiter, op, started)
                if obs is not None:
                    slot = obs.slot(slot, attempt)
            async with slot:
                # The time left is checked after the wait for a slot (DeadlineExceededError:
                # the slot goes back unused), the provider asked for its key of this moment,
                # and the request signed then: a fresh Timestamp.
                timeout = self._attempt_timeout(op, started)
                if provider is not None:
                    await self._current_key(provider, used)
                request = self._sign(op, wire)
                if obs is not None:
                    await obs.request(attempt)
                sent = time.perf_counter()
                status, headers, body = self._masked(
                    await self._transport.send(request, timeout=timeout)
                )
        except EdgeError as err:
            if obs is not None:
                obs.lost(time.perf_counter() - sent if sent else None)
            redact_error(err, self._secret_forms)
            if sent and self._debug():
                self._log.debug(
                    "aioedge.request_failed",
                    action=op.action,
                    attempt=attempt,
                    error=str(err),
                    latency_ms=round((time.perf_counter() - sent) * 1000, 2),
                )
            raise
        latency = time.perf_counter() - sent
        if obs is not None:
            obs.answered(status, latency)
        try:
            data = parse_response(op, status, headers, body)
        except ApiError as err:
            redact_error(err, self._secret_forms)
            self._log_answer(op, attempt, status, latency, err.request_id, err.code)
            if isinstance(err, ThrottledError) and limiter is not None:
                limiter.report_throttled(self.quota_scope, op.action)
            raise
        self._log_answer(op, attempt, status, latency, request_id_of(data))
        return data

    def _log_answer(
        self,
        op: Operation,
        attempt: int,
        status: int,
        latency: float,
        request_id: str | None,
        code: str | None = None,
    ) -> None:
        """The debug line of an answered attempt (``code``: the service's, on an error)."""
        if not self._debug():
            return
        self._log.debug(
            "aioedge.request_sent",
            action=op.action,
            attempt=attempt,
            http_status=status,
            request_id=request_id,
            **({} if code is None else {"code": code}),
            latency_ms=round(latency * 1000, 2),
        )

    def _masked(
        self, answer: tuple[int, Mapping[str, str], bytes]
    ) -> tuple[int, Mapping[str, str], bytes]:
        """The answer with the client's secrets masked, before any frame keeps it in a local
        (error trackers record frame locals): the service quotes the SecurityToken in the
        string-to-sign of SignatureDoesNotMatch."""
        body = mask_secrets(answer[2], self._secret_bytes)
        return answer if body is answer[2] else (answer[0], answer[1], body)

    async def _current_key(
        self, provider: CredentialsProvider, used: list[Credentials] | None
    ) -> None:
        creds = await provider.get_credentials()
        if creds is not self._signed_with:
            if not isinstance(creds, Credentials):
                raise CredentialsError(
                    f"{type(provider).__name__}.get_credentials() must return "
                    f"aioedge.Credentials, got {type(creds).__name__}"
                )
            self._use_key(creds)
        if used is not None:
            used.append(creds)

    def _slot(
        self, limiter: RateLimiter, op: Operation, started: float
    ) -> AbstractAsyncContextManager[None]:
        """The attempt's slot, told the client's timeout; with a retry deadline, the wait for
        it is bounded by the time left less ``min_attempt_timeout``."""
        retry = self.retry
        wait = None if retry is None else retry.slot_wait(time.monotonic() - started)
        slot = limiter.slot(self.quota_scope, op.action, op.qps, timeout=self.timeout, wait=wait)
        if wait is None or retry is None or retry.deadline is None:
            return slot
        return _DeadlineSlot(slot, op.action, retry.deadline)

    def _attempt_timeout(self, op: Operation, started: float) -> float | None:
        """This attempt's timeout when the retry deadline (which bounds the whole call, waits
        for a slot included) leaves less than the client's ``timeout``; else None.  Raises
        DeadlineExceededError, before anything is signed or sent, when less than the policy's
        ``min_attempt_timeout`` is left: such a request could hardly be answered in time."""
        retry = self.retry
        if retry is None or retry.deadline is None:
            return None
        elapsed = time.monotonic() - started
        if not retry.can_send(elapsed):
            raise DeadlineExceededError(
                f"{op.action} not sent: {max(retry.deadline - elapsed, 0.0):.3f} s left before "
                f"the retry deadline ({retry.deadline:g} s), less than min_attempt_timeout "
                f"({retry.min_attempt_timeout:g} s)",
                action=op.action,
            )
        timeout = retry.attempt_timeout(self.timeout, elapsed)
        return timeout if timeout < self.timeout else None

    def _sign(self, op: Operation, wire: Mapping[str, str]) -> PreparedRequest:
        # A fresh nonce and timestamp for every attempt (2.4): each is signed anew.
        signer = self._signer if op.read_only else self._write_signer
        return signer.build(
            op, wire, timestamp=self._clock() + self._clock_offset, nonce=self._nonce()
        )

    # ------------------------------------------------------------------ helpers

    async def paginate(
        self, action: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the items of every page of a paged ``Query*`` operation.

        Starts at ``CurrentPage`` (default 1) with ``PageSize`` (default 30, the maximum)
        and stops after an empty or short page or the page that reaches ``Total``; a full
        page without a ``Total`` is followed by the next (``_wire.more_pages``, the rule
        ``Page.has_more`` and the deployment history follow too).
        """
        op = get_operation(action)
        if not op.paged or op.items_key is None:
            paged = ", ".join(sorted(o.action for o in _paged_operations()))
            raise ValidationError(
                f"{action} is not a paged operation; paged ones: {paged}",
                param="action",
                rule="paged",
                action=action,
            )
        base = dict(params or {})
        if base.get("PageSize") is None:
            base["PageSize"] = op.max_page_size
        # Validate the caller's CurrentPage and PageSize with everything else (a
        # ValidationError before any I/O), then count pages from the validated value.
        wire = self._prepare(op, base)
        page = int(wire["CurrentPage"])
        base.pop("CurrentPage", None)
        while True:
            body = await self._send(op, wire)
            data = body.get("Data") or {}
            items = data.get(op.items_key) or []
            for item in items:
                yield item
            page_size = int_or_none(data.get("PageSize")) or int(wire["PageSize"])
            if not more_pages(page, page_size, len(items), int_or_none(data.get("Total"))):
                return
            page += 1
            wire = self._prepare(op, {**base, "CurrentPage": page})

    def _per_action(self) -> Callable[[Operation], int | None] | None:
        """At most Q calls of an Action in flight (Q its quota, limiter overrides included;
        an Action overridden to ``math.inf`` is not limited, so it has no cap either)."""
        limiter = self._limiter
        if limiter is None:
            return None  # no client-side limiting: no per-Action cap either
        effective = getattr(limiter, "effective_qps", None)
        if effective is None:
            return quota_cap

        def cap(op: Operation) -> int | None:
            qps = float(effective(op.action, op.qps))
            if math.isinf(qps):
                return None
            return max(1, math.floor(qps))

        return cap

    def _batch_options(self) -> _BatchOptions:
        """How this client's batches run (``aioedge._batch.iter_batch``'s options): each call
        sent with the parameters it was validated to when the batch was planned; at most Q
        calls of an Action in flight; by default as many in flight as the connection pool
        holds (more would only wait for a socket, their timeouts running), or DEFAULT_POOL
        without a limit."""
        return _BatchOptions(
            per_action=self._per_action(),
            default_concurrency=self._transport.pool_size or DEFAULT_POOL,
            send=self._send_validated,
        )

    async def batch(
        self,
        calls: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        concurrency: int | None = None,
        on_progress: Callable[[int, int | None, BatchResult], Any] | None = None,
    ) -> BatchResults:
        """Run many calls concurrently within the quotas; results in input order.

        Each result has ``.ok``, ``.value`` and ``.error``; one failure does not cancel
        the others.  Lists over an operation's per-call limit are split and merged back.
        ``concurrency`` caps calls in flight overall (default: the connection pool's size,
        ``max_connections``; and at most Q calls of an Action at once, its quota, whatever
        ``concurrency``); ``on_progress(done, total, result)`` is called after each call
        (see ``aioedge.progress_printer``).
        """
        return await run_batch(
            self.call,
            calls,
            concurrency=concurrency,
            on_progress=on_progress,
            **self._batch_options(),
        )

    def batch_iter(
        self,
        calls: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        concurrency: int | None = None,
        on_progress: Callable[[int, int | None, BatchResult], Any] | None = None,
    ) -> AsyncIterator[tuple[int, BatchResult]]:
        """Like :meth:`batch`, yielding ``(index, result)`` as calls complete."""
        return iter_batch(
            self.call,
            calls,
            concurrency=concurrency,
            on_progress=on_progress,
            **self._batch_options(),
        )

    def watch_deployment(
        self,
        instance_id: str,
        deployment_id: str,
        *,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        timeout: float | None = None,
        **options: Any,
    ) -> DeploymentWatcher:
        """Stream deployment, subtask, snapshot and log events until the deployment ends.

        Returns a ``DeploymentWatcher``: an async iterator of ``DeploymentEvent`` (the last
        one ``kind="final"`` with ``outcome``) that also exposes ``.state``, ``.outcome``
        and ``.checkpoint()``.  ``options``: see ``aioedge.watch.watch_deployment``.
        """
        from .watch import watch_deployment

        return watch_deployment(
            self,
            instance_id,
            deployment_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            **options,
        )

    def deploy(
        self, instance_id: str, *, type: str = "deploy", attach: bool = False, **options: Any
    ) -> DeploymentWatcher:
        """Create a deployment (``deploy`` or ``reset``) and stream its events.

        With ``attach=True`` an already running deployment (``deploySheetAlreadyExist``)
        is watched instead of failing.  ``.deployment_id`` is known after the first event.
        """
        from .watch import deploy_and_watch

        return deploy_and_watch(self, instance_id, type=type, attach=attach, **options)

    def rollout(
        self,
        instance_ids: Iterable[str],
        *,
        waves: Sequence[int | float] | str = (1, 0.25, 1.0),
        max_failures: float | str = 0.2,
        min_finished: int = 3,
        type: str = "deploy",
        store: Any = None,
        **options: Any,
    ) -> Rollout:
        """Deploy a fleet in waves; an async iterator of ``RolloutEvent`` (docs/fleets.md).

        ``waves`` are cumulative counts (int) or shares of the fleet (float in (0, 1]), or a
        string such as ``"1,25%,100%"``; a wave starts once every deployment of the one
        before has ended.  Once ``min_finished``
        deployments have ended and more than ``max_failures`` of them failed, nothing new
        starts (running ones are watched to their end).  ``store`` (a JSON file path, a
        ``redis://`` URL or a store object) makes the rollout resumable after a crash.
        ``options``: ``poll_interval``, ``max_poll_interval``, ``timeout`` (per deployment),
        ``progress_timeout`` (a deployment with no stage or status change for that long ends
        ``stalled`` and counts as failed), ``pollers``.  ``.result`` lists succeeded, failed
        and skipped instance ids.
        """
        from ._rollout_run import Rollout

        # A lone string is refused by the plan (ValidationError), not split into letters.
        ids = instance_ids if isinstance(instance_ids, str) else list(instance_ids)
        return Rollout(
            self,
            ids,
            waves=waves,
            max_failures=max_failures,
            min_finished=min_finished,
            type=type,
            store=store,
            **options,
        )


# A generator of the library's own: seeding the ``random`` module (tests, simulations) must
# not make two processes send the same nonces. Seeded from os.urandom, reseeded in forked
# children, so no system call per request.
_NONCE_RANDOM = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_NONCE_RANDOM.seed)


class _DeadlineSlot:
    """A limiter's slot entered with a ``wait`` (the retry deadline): its ``TimeoutError``
    becomes ``DeadlineExceededError`` (nothing was sent)."""

    __slots__ = ("_action", "_deadline", "_slot")

    def __init__(
        self, slot: AbstractAsyncContextManager[None], action: str, deadline: float
    ) -> None:
        self._slot = slot
        self._action = action
        self._deadline = deadline

    async def __aenter__(self) -> None:
        try:
            await self._slot.__aenter__()
        except TimeoutError:
            raise DeadlineExceededError(
                f"{self._action} not sent: the retry deadline ({self._deadline:g} s) passed "
                "while it waited for its rate-limit slot (the quota)",
                action=self._action,
            ) from None

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._slot.__aexit__(*exc_info)


def _random_nonce() -> str:
    """2.4 SignatureNonce: a random (version 4) UUID, unique, not secret."""
    bits = _NONCE_RANDOM.getrandbits(128)
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _paged_operations() -> Iterable[Operation]:
    from ._catalog import OPERATIONS

    return (op for op in OPERATIONS.values() if op.paged)
