"""Hooks: what a service sees of each call, for traces, metrics and its own bookkeeping.

``EdgeClient(hooks=[...])`` takes objects with any of these optional methods (plain or
``async``; called on the event loop, in the task that makes the call, so they see its
context variables: a trace's current span, for one)::

    on_request(info)     an attempt is about to be sent (its slot granted, signed)
    on_response(info)    an attempt ended: an answer, an error, or no answer at all;
                         ``info.final`` says the call ends with it (no retry follows)
    on_retry(info)       a retry is scheduled after ``info.delay`` seconds (``info.reason``)
    on_throttled(info)   the service throttled the attempt (``info.retry_after``: its hint)
    on_slot_wait(info)   the attempt waited ``info.wait`` seconds for its quota slot
    on_poll(info)        a deployment watch polled (a :class:`PollInfo`: the raw answer)
    on_watch(info)       a deployment watch started, and (``info.outcome`` set) ended

Every call that passed validation ends with exactly one ``on_response`` whose ``final`` is
true (``outcome`` ``"ok"``, ``"error"`` or ``"cancelled"``).  ``info`` is a frozen
:class:`CallInfo`: the Action, the attempt, the ids, the timings and the error (already
masked), never a secret, a signature or the query string.  A hook that raises is logged
(``aioedge.hook_failed``) and ignored.  A client without hooks builds none of this: the
hot path checks one attribute.

A watch's hooks may also have ``poll_scope(info)``: a context manager entered around each
poll's call, so a tracer can make the watch's span the parent of the poll's call span.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from ._errors import (
    ApiError,
    CredentialsError,
    EdgeError,
    InvalidResponseError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
    error_code,
)
from ._log import get_logger
from ._protocol import request_id_of

__all__ = [
    "CALL_HOOKS",
    "CALL_OUTCOMES",
    "RETRY_REASONS",
    "CallInfo",
    "CallObserver",
    "HookSet",
    "CallOutcome",
    "PollInfo",
    "RetryReason",
    "WatchInfo",
    "next_watch_id",
    "retry_reason",
]

#: The per-call hook methods, in the order of a call's life.
CALL_HOOKS = ("on_slot_wait", "on_request", "on_response", "on_throttled", "on_retry")
_ALL_HOOKS = (*CALL_HOOKS, "on_poll", "on_watch")
#: How a call ended (a final ``on_response``'s ``outcome``; Prometheus's ``outcome`` label):
#: anything but ``ok`` is a failed call (an OpenTelemetry span with status ERROR).
CallOutcome = Literal["ok", "error", "cancelled"]
CALL_OUTCOMES: tuple[CallOutcome, ...] = get_args(CallOutcome)
#: Why a retry is scheduled (``on_retry``'s ``reason``; the ``reason`` of both exporters'
#: retry counters): a transient error (:func:`retry_reason`), or one of the client's own
#: resends, each once per call: ``expired_token`` (``InvalidSecurityToken.Expired``, with a
#: renewed key) and ``clock_skew`` (``InvalidTimeStamp.Expired``, with the service's clock);
#: ``credentials`` when the key could not be had because the identity service hiccupped (a
#: ``transient`` CredentialsError); ``error`` for any other error a retry policy of the
#: user's own retries.
RetryReason = Literal[
    "throttled",
    "unavailable",
    "invalid_response",
    "transport",
    "credentials",
    "expired_token",
    "clock_skew",
    "error",
]
RETRY_REASONS: tuple[RetryReason, ...] = get_args(RetryReason)
_call_ids = itertools.count(1)
_watch_ids = itertools.count(1)


def next_watch_id() -> int:
    return next(_watch_ids)


# Not slotted: the observer builds infos through their __dict__ (see _new_info), five times
# faster than the frozen __init__, and unset fields read the class defaults.
@dataclass(frozen=True, kw_only=True)
class CallInfo:
    """One moment of one logical call (all its attempts share ``call_id``).

    ``started`` is the ``time.monotonic()`` of the call's start and ``elapsed`` the seconds
    since; ``latency`` is this attempt's time from sending to its answer (None: nothing was
    sent or no answer came); ``wait`` the seconds waited for the quota slot
    (``on_slot_wait``); ``delay`` the backoff before the next attempt (``on_retry``);
    ``retry_after`` the service's ``x-acs-retry-after`` hint in seconds.  ``error`` is the
    attempt's error with secrets masked; ``code`` its service code (or the error's class).
    """

    action: str
    call_id: int
    attempt: int
    region_id: str
    read_only: bool
    started: float
    elapsed: float
    request_id: str | None = None
    http_status: int | None = None
    latency: float | None = None
    wait: float | None = None
    delay: float | None = None
    retry_after: float | None = None
    reason: RetryReason | None = None
    error: EdgeError | None = None
    final: bool = False
    outcome: CallOutcome | None = None

    @property
    def code(self) -> str | None:
        """The service's error code, the error's class name for other errors, else None."""
        return None if self.error is None else error_code(self.error)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchInfo:
    """A deployment watch: started (``outcome`` None) or ended (its final outcome)."""

    watch_id: int
    instance_id: str
    deployment_id: str
    started: float
    elapsed: float
    polls: int = 0
    outcome: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PollInfo:
    """One poll of a deployment watch.

    ``body`` is the service's raw answer (the parsed JSON) or None when the poll failed with
    ``error``; ``events`` the events it produced (``kind`` values, in order); ``changed``
    whether a stage or status moved.  ``since_change``: seconds since the last change.
    """

    watch_id: int
    instance_id: str
    deployment_id: str
    poll: int
    elapsed: float
    body: Mapping[str, Any] | None
    error: BaseException | None
    events: tuple[str, ...]
    changed: bool
    since_change: float


class OnPoll:
    """A watch's or monitor's own ``on_poll=`` callback, as a hook object."""

    __slots__ = ("on_poll",)

    def __init__(self, on_poll: Callable[[PollInfo], Any]) -> None:
        self.on_poll = on_poll


def retry_reason(error: EdgeError) -> RetryReason:
    """Why ``error`` is retried, one of :data:`RETRY_REASONS` (a metric label: few values)."""
    if isinstance(error, ThrottledError):
        return "throttled"
    if isinstance(error, ServiceUnavailableError):
        return "unavailable"
    if isinstance(error, InvalidResponseError):
        return "invalid_response"
    if isinstance(error, TransportError):
        return "transport"
    if isinstance(error, CredentialsError) and error.transient:
        return "credentials"
    return "error"


class _PollScope(Protocol):
    def __call__(self, info: WatchInfo) -> contextlib.AbstractContextManager[Any]: ...


class HookSet:
    """The hooks of one client, sorted by method once; ``of()`` is None without any."""

    __slots__ = ("_methods", "_poll_scopes", "hooks")

    def __init__(self, hooks: Iterable[object]) -> None:
        self.hooks = tuple(hooks)
        self._methods: dict[str, tuple[Any, ...]] = {
            name: tuple(getattr(h, name) for h in self.hooks if callable(getattr(h, name, None)))
            for name in _ALL_HOOKS
        }
        self._poll_scopes: tuple[_PollScope, ...] = tuple(
            h.poll_scope  # type: ignore[attr-defined]
            for h in self.hooks
            if callable(getattr(h, "poll_scope", None))
        )

    @classmethod
    def of(cls, hooks: Iterable[object] | None) -> HookSet | None:
        if hooks is None:
            return None
        if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable):
            from ._errors import ValidationError

            raise ValidationError(
                f"hooks must be a list of hook objects, got {type(hooks).__name__}",
                param="hooks",
                rule="type",
            )
        found = cls(hooks)
        if not any(found._methods.values()) and not found._poll_scopes:
            return None
        return found

    def wants(self, name: str) -> bool:
        return bool(self._methods[name])

    def watches(self) -> bool:
        """Whether a deployment watch has anything to tell these hooks (``on_poll``,
        ``on_watch``, ``poll_scope``): the watcher's and the monitor's one test."""
        return self.wants("on_poll") or self.wants("on_watch") or bool(self._poll_scopes)

    def dispatch(self, name: str, info: object) -> list[tuple[Any, Any]] | None:
        """Call every ``name`` hook with ``info``; return what async ones left to await
        (None, the common case: plain hooks cost no coroutine at all)."""
        pending: list[tuple[Any, Any]] | None = None
        for method in self._methods[name]:
            try:
                result = method(info)
            except Exception as exc:  # a broken hook must not break the call
                _hook_failed(method, name, exc)
                continue
            if result is not None and inspect.isawaitable(result):
                if pending is None:
                    pending = []
                pending.append((method, result))
        return pending

    async def emit(self, name: str, info: object) -> None:
        pending = self.dispatch(name, info)
        if pending is not None:
            await _drain(name, pending)

    def emit_now(self, name: str, info: object) -> None:
        """Like :meth:`emit` without awaiting (for a task that is being cancelled or closed):
        a coroutine a hook returns is closed, not run."""
        for method in self._methods[name]:
            try:
                result = method(info)
                if inspect.iscoroutine(result):
                    result.close()
            except Exception as exc:
                _hook_failed(method, name, exc)

    def call(self, *, action: str, region_id: str, read_only: bool, started: float) -> CallObserver:
        return CallObserver(self, action, region_id, read_only, started)

    @contextlib.contextmanager
    def poll_scope(self, info: WatchInfo) -> Iterator[None]:
        """Every hook's ``poll_scope(info)`` entered around one poll (a failing one skipped)."""
        with contextlib.ExitStack() as stack:
            for scope in self._poll_scopes:
                try:
                    stack.enter_context(scope(info))
                except Exception as exc:
                    get_logger().warning(
                        "aioedge.hook_failed",
                        hook="poll_scope",
                        error=f"{type(exc).__name__}: {exc}",
                    )
            yield


def _hook_failed(method: Any, name: str, exc: BaseException) -> None:
    get_logger().warning(
        "aioedge.hook_failed",
        hook=f"{type(getattr(method, '__self__', method)).__name__}.{name}",
        error=f"{type(exc).__name__}: {exc}",
    )


async def _drain(name: str, pending: list[tuple[Any, Any]]) -> None:
    for method, awaitable in pending:
        try:
            await awaitable
        except Exception as exc:
            _hook_failed(method, name, exc)


@dataclass(slots=True, eq=False)
class CallObserver:
    """One logical call's view for the hooks: what the client tells it, turned into infos."""

    hooks: HookSet
    action: str
    region_id: str
    read_only: bool
    started: float
    call_id: int = field(init=False, default_factory=_call_ids.__next__)
    # The current attempt's answer: its HTTP status and latency (None: none, or not yet).
    _status: int | None = field(init=False, default=None)
    _latency: float | None = field(init=False, default=None)
    # The final on_response was told: the call has ended for the hooks, once.
    _ended: bool = field(init=False, default=False)

    def _info(self, attempt: int, **fields: Any) -> CallInfo:
        info: CallInfo = object.__new__(CallInfo)
        values = info.__dict__
        values["action"] = self.action
        values["call_id"] = self.call_id
        values["attempt"] = attempt
        values["region_id"] = self.region_id
        values["read_only"] = self.read_only
        values["started"] = self.started
        values["elapsed"] = time.monotonic() - self.started
        if fields:
            values.update(fields)
        return info

    # -- what the client tells it
    def slot(
        self, slot: contextlib.AbstractAsyncContextManager[None], attempt: int
    ) -> contextlib.AbstractAsyncContextManager[None]:
        if not self.hooks.wants("on_slot_wait"):
            return slot
        return _TimedSlot(slot, self, attempt)

    async def request(self, attempt: int) -> None:
        self._status = self._latency = None
        hooks = self.hooks
        if hooks.wants("on_request"):
            pending = hooks.dispatch("on_request", self._info(attempt))
            if pending is not None:
                await _drain("on_request", pending)

    def answered(self, status: int, latency: float) -> None:
        self._status, self._latency = status, latency

    def lost(self, latency: float | None) -> None:
        self._status, self._latency = None, latency

    async def succeeded(self, attempt: int, body: Mapping[str, Any]) -> None:
        self._ended = True
        hooks = self.hooks
        if not hooks.wants("on_response"):
            return
        pending = hooks.dispatch(
            "on_response",
            self._info(
                attempt,
                request_id=request_id_of(body),
                http_status=self._status,
                latency=self._latency,
                final=True,
                outcome="ok",
            ),
        )
        if pending is not None:
            await _drain("on_response", pending)

    async def failed(
        self,
        attempt: int,
        error: EdgeError,
        delay: float | None,
        reason: RetryReason | None = None,
    ) -> None:
        """The attempt failed with ``error``; ``delay`` None: the call gives up with it."""
        if delay is None:
            self._ended = True
        api = error if isinstance(error, ApiError) else None
        hint = api.retry_after if api is not None else None
        common: dict[str, Any] = {
            "request_id": api.request_id if api is not None else None,
            "http_status": api.http_status if api is not None else self._status,
            "latency": self._latency,
            "retry_after": hint,
            "error": error,
        }
        hooks = self.hooks
        await hooks.emit(
            "on_response",
            self._info(
                attempt, final=delay is None, outcome="error" if delay is None else None, **common
            ),
        )
        if isinstance(error, ThrottledError) and hooks.wants("on_throttled"):
            await hooks.emit("on_throttled", self._info(attempt, **common))
        if delay is not None and hooks.wants("on_retry"):
            await hooks.emit(
                "on_retry",
                self._info(attempt, delay=delay, reason=reason or retry_reason(error), **common),
            )

    def ended(self, attempt: int, exc: BaseException) -> None:
        """The call was cancelled (or failed with an error not of this library): end it
        without awaiting anything (a cancelled task may not).  Nothing when the call has
        already ended for the hooks: a cancel in an async hook of the final response."""
        if self._ended:
            return
        self._ended = True
        cancelled = not isinstance(exc, Exception)
        info = self._info(
            attempt,
            latency=self._latency,
            final=True,
            outcome="cancelled" if cancelled else "error",
        )
        self.hooks.emit_now("on_response", info)


@dataclass(slots=True)
class _TimedSlot:
    """A slot whose wait is measured and told to ``on_slot_wait``."""

    slot: contextlib.AbstractAsyncContextManager[None]
    observer: CallObserver
    attempt: int

    async def __aenter__(self) -> None:
        t0 = time.monotonic()
        await self.slot.__aenter__()
        obs = self.observer
        try:
            await obs.hooks.emit(
                "on_slot_wait", obs._info(self.attempt, wait=time.monotonic() - t0)
            )
        except BaseException as exc:  # cancelled in an async hook: give the slot back
            await self.slot.__aexit__(type(exc), exc, exc.__traceback__)
            raise

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self.slot.__aexit__(*exc_info)
