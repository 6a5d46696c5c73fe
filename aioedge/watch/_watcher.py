"""The polling loop around GetEdgeInstanceDeployment and the pure diff.

``_Tracker`` holds one deployment's bookkeeping (last state, adaptive interval, error
count, what was delivered) and decides everything without I/O; ``DeploymentWatcher`` is
the loop that calls, sleeps and yields.  The monitor (``_monitor.py``) reuses ``_Tracker``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from .._errors import (
    ApiError,
    DeploymentError,
    InvalidResponseError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
    ValidationError,
)
from .._hooks import HookSet, PollInfo, WatchInfo, next_watch_id
from .._log import get_logger
from ._events import TRANSITION_KINDS, DeploymentEvent, WatchOutcome
from ._state import DeploymentState, apply, carry_logs, diff, final_event

__all__ = [
    "CHECKPOINT_VERSION",
    "Caller",
    "DeploymentWatcher",
    "WatchRetry",
    "watch_deployment",
]

CHECKPOINT_VERSION = 1
_ACTION = "GetEdgeInstanceDeployment"
# 2.6 Error codes: the two ids a watch names.
DEPLOYMENT_NOT_FOUND = "iot.edge.deploySheetNotExist"
INSTANCE_NOT_FOUND = "iot.edge.InstanceNotExist"
#: Errors after which polling again may well succeed (ERRATA: a throttled call was not run).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ThrottledError,
    ServiceUnavailableError,
    TransportError,
    InvalidResponseError,
)


class Caller(Protocol):
    """What the watcher needs of a client: :meth:`aioedge.EdgeClient.call`."""

    async def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchRetry:
    """How a watcher waits after a transient polling error (on top of the client's own retries).

    The n-th consecutive failure waits ``min(maximum, initial * multiplier ** (n - 1))``;
    after ``max_errors`` consecutive failures (``None``: never) the watch gives up with
    :class:`~aioedge.DeploymentError`.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 30.0
    max_errors: int | None = None

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1:
            raise ValidationError(
                "WatchRetry needs initial >= 0, maximum >= 0 and multiplier >= 1",
                param="retry",
                rule="range",
            )

    def delay(self, attempt: int) -> float:
        return float(min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1)))


def _check_intervals(poll_interval: float, max_poll_interval: float, backoff: float) -> None:
    if not poll_interval > 0:
        raise ValidationError(
            f"poll_interval must be > 0, got {poll_interval!r}", param="poll_interval", rule="range"
        )
    if not max_poll_interval >= poll_interval:
        raise ValidationError(
            f"max_poll_interval ({max_poll_interval!r}) must be >= poll_interval "
            f"({poll_interval!r})",
            param="max_poll_interval",
            rule="range",
        )
    if not backoff >= 1:
        raise ValidationError(
            f"backoff must be >= 1, got {backoff!r}", param="backoff", rule="range"
        )


def _check_timeout(timeout: float | None, name: str = "timeout") -> None:
    if timeout is not None and not timeout > 0:
        raise ValidationError(
            f"{name} must be > 0 or None, got {timeout!r}", param=name, rule="range"
        )


def describe_change(event: DeploymentEvent) -> str:
    """A short name of the change ``event`` made: ``task T1 stage 8 → 16``."""
    if event.kind == "deployment":
        what = "deployment"
    elif event.kind == "task":
        what = f"task {event.task_id}"
    else:
        what = f"snapshot {event.snapshot_id}"
        if event.resource_name or event.resource_id:
            what += f" ({event.resource_name or event.resource_id})"
    moves = []
    if event.stage_changed and event.stage is not None:
        moves.append(f"stage {event.previous_stage} → {event.stage}")
    if event.status_changed and event.status is not None:
        moves.append(f"status {event.previous_status} → {event.status}")
    return f"{what} {', '.join(moves) or 'appeared'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """The last stage or status change a watch saw: what (text), when (monotonic ``at``,
    and the event's epoch ``time``)."""

    what: str
    at: float
    time: float | None

    def stalled(self, now: float, progress_timeout: float) -> bool:
        return now - self.at >= progress_timeout


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.code
    return type(exc).__name__


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ApiError | TransportError):
        return exc.message
    return str(exc)


#: Outcomes that end the deployment itself (Status 2/3).  Any other ``final`` (the watcher's
#: own ``timed_out``, a monitor's ``error``) only ends one watch: a checkpoint taken after
#: it resumes watching.
SERVICE_OUTCOMES = frozenset({"succeeded", "failed"})


def _ends_deployment(event: DeploymentEvent) -> bool:
    return event.kind == "final" and event.outcome in SERVICE_OUTCOMES


@dataclass(slots=True)
class _Batch:
    """The events one poll (or one decision) produced and how many reached the caller."""

    base: DeploymentState | None  # the tree before these events
    events: list[DeploymentEvent]
    ended_before: bool  # the deployment's own final event was delivered before these
    delivered: int = 0

    @property
    def complete(self) -> bool:
        return self.delivered >= len(self.events)


class _Tracker:
    """One deployment's watch bookkeeping; pure (time comes in as arguments)."""

    def __init__(
        self,
        instance_id: str,
        deployment_id: str,
        *,
        poll_interval: float,
        max_poll_interval: float,
        backoff: float,
        retry: WatchRetry | None,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.deployment_id = deployment_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff
        self.retry = retry
        self.interval = poll_interval
        self.errors = 0
        self.polls = 0
        self.state: DeploymentState | None = None
        self.final_emitted = False
        self.outcome: WatchOutcome | None = None
        # What the answers produced, oldest first, and how much of it reached the caller.  A
        # watcher hands out one batch before it polls again; a monitor may poll again while
        # the reader has not yet taken the last batch out of the stream.
        self._batches: deque[_Batch] = deque([_Batch(None, [], False)])
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- checkpoints -----------------------------------------------------------------------

    def _restore(self, cp: Mapping[str, Any]) -> None:
        if cp.get("version") != CHECKPOINT_VERSION:
            raise ValidationError(
                f"unsupported checkpoint version {cp.get('version')!r}",
                param="checkpoint",
                rule="format",
            )
        for key, mine in (("deployment_id", self.deployment_id), ("instance_id", self.instance_id)):
            theirs = cp.get(key)
            if theirs is not None and theirs != mine:
                raise ValidationError(
                    f"checkpoint is for {key} {theirs!r}, not {mine!r}",
                    param="checkpoint",
                    rule="dependency",
                )
        raw = cp.get("state")
        self.state = None if raw is None else DeploymentState.from_dict(raw)
        # Only the deployment's own end is final: a checkpoint written after a timed-out
        # watch (older versions marked that final too) has a running state and resumes.
        ended = bool(cp.get("final_emitted", False)) and bool(self.state and self.state.is_final)
        self.final_emitted = ended
        self.outcome = (
            WatchOutcome(final_event(self.state)) if ended and self.state is not None else None
        )
        self._batches = deque([_Batch(self.state, [], ended)])

    def checkpoint(self) -> dict[str, Any]:
        """JSON-serialisable; a tracker restored from it emits only what was not delivered."""
        # The oldest batch not fully delivered (or the last one, when all of them are).
        batch = next((b for b in self._batches if not b.complete), self._batches[-1])
        delivered = batch.events[: batch.delivered]
        if batch.base is None and not any(e.kind == "deployment" for e in delivered):
            state = None
        else:
            state = apply(batch.base, delivered)
        ended = batch.ended_before or any(_ends_deployment(e) for e in delivered)
        return {
            "version": CHECKPOINT_VERSION,
            "instance_id": self.instance_id,
            "deployment_id": self.deployment_id,
            "state": None if state is None else state.to_dict(),
            "final_emitted": ended,
        }

    def delivered(self) -> None:
        """The caller has the next event (in the order the batches produced them)."""
        batches = self._batches
        while len(batches) > 1 and batches[0].complete:
            batches.popleft()
        batches[0].delivered += 1

    def start_batch(self, events: list[DeploymentEvent]) -> list[DeploymentEvent]:
        """Record ``events`` (produced from the current ``state``) as the next to deliver."""
        last = self._batches[-1]
        ended = last.ended_before or any(_ends_deployment(e) for e in last.events)
        self._batches.append(_Batch(self.state, events, ended))
        while len(self._batches) > 1 and self._batches[0].complete:
            self._batches.popleft()
        return events

    # -- decisions -------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.final_emitted

    def on_answer(self, body: Mapping[str, Any], observed_at: float) -> list[DeploymentEvent]:
        """Events for a successful poll; also updates the interval for the next one."""
        try:
            current = DeploymentState.from_response(
                body,
                instance_id=self.instance_id,
                deployment_id=self.deployment_id,
                observed_at=observed_at,
            )
        except (TypeError, ValueError, OverflowError) as exc:
            # An answer the tree cannot be read from is a bad answer (transient: the next
            # poll may read well), never a crash of the watch.
            raise InvalidResponseError("InvalidResponse", str(exc), action=_ACTION) from exc
        if current.deployment_id != self.deployment_id:
            # Another deployment's tree cannot be diffed against ours: a bad answer.
            raise InvalidResponseError(
                "InvalidResponse",
                f"asked for deployment {self.deployment_id}, "
                f"the answer is about {current.deployment_id}",
                action=_ACTION,
            )
        events = diff(self.state, current)
        self.start_batch(events)
        if current.is_final:
            if not self.final_emitted and not any(e.kind == "final" for e in events):
                # Resumed from a checkpoint taken between the last transition and "final".
                events.append(final_event(current))
            self.final_emitted = True
            last = next((e for e in reversed(events) if e.kind == "final"), None)
            self.outcome = WatchOutcome(last if last is not None else final_event(current))
        self.state = carry_logs(self.state, current)
        self.errors = 0
        if any(e.kind in TRANSITION_KINDS or e.kind == "log" for e in events):
            self.interval = self.poll_interval  # things move: look again soon
        else:
            self.interval = min(self.max_poll_interval, self.interval * self.backoff)
        return events

    def on_error(self, exc: BaseException, observed_at: float) -> tuple[DeploymentEvent, float]:
        """A ``poll_error`` event and how long to wait, or raise (not transient / gave up)."""
        if isinstance(exc, NotFoundError):
            # There is nothing left to watch; say which of the two ids was wrong.
            if exc.code == DEPLOYMENT_NOT_FOUND:
                what = f"deployment {self.deployment_id} of instance {self.instance_id}"
            elif exc.code == INSTANCE_NOT_FOUND:
                what = f"instance {self.instance_id}"
            else:
                raise DeploymentError(
                    f"cannot watch deployment {self.deployment_id} of instance "
                    f"{self.instance_id}: {exc.code}: {exc.message}",
                    deployment_id=self.deployment_id,
                ) from exc
            raise DeploymentError(
                f"{what} does not exist ({exc.code})", deployment_id=self.deployment_id
            ) from exc
        if not isinstance(exc, TRANSIENT_ERRORS) or self.retry is None:
            raise exc
        self.errors += 1
        if self.retry.max_errors is not None and self.errors > self.retry.max_errors:
            raise DeploymentError(
                f"gave up watching deployment {self.deployment_id} after {self.errors - 1} "
                f"consecutive failed polls; last: {_error_code(exc)}: {_error_text(exc)}",
                deployment_id=self.deployment_id,
            ) from exc
        delay = max(self.retry.delay(self.errors), self.poll_interval)
        event = DeploymentEvent(
            kind="poll_error",
            deployment_id=self.deployment_id,
            instance_id=self.instance_id,
            error=_error_code(exc),
            message=_error_text(exc),
            attempt=self.errors,
            retry_in=delay,
            time=observed_at,
        )
        self.start_batch([event])
        return event, delay

    def timed_out(self, timeout: float | None, observed_at: float) -> DeploymentEvent:
        self.final_emitted = True
        state = self.state
        event = DeploymentEvent(
            kind="final",
            deployment_id=self.deployment_id,
            instance_id=self.instance_id,
            status=None if state is None else state.status,
            previous_status=None if state is None else state.status,
            outcome="timed_out",
            reason="timeout",
            message=f"no final status after {timeout:g}s" if timeout is not None else None,
            time=observed_at,
        )
        self.outcome = WatchOutcome(event)
        self.start_batch([event])
        return event

    def stalled(
        self, progress_timeout: float, last: Progress, observed_at: float
    ) -> DeploymentEvent:
        """The final event of a watch that saw no stage or status change for too long."""
        self.final_emitted = True
        state = self.state
        when = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last.time))
            if last.time is not None
            else "?"
        )
        ago = max(0.0, observed_at - last.time) if last.time is not None else None
        message = (
            f"no stage or status change for {progress_timeout:g}s; last change: {last.what} "
            f"at {when}" + (f" ({ago:.0f}s ago)" if ago is not None else "")
        )
        event = DeploymentEvent(
            kind="final",
            deployment_id=self.deployment_id,
            instance_id=self.instance_id,
            status=None if state is None else state.status,
            previous_status=None if state is None else state.status,
            outcome="stalled",
            reason="stalled",
            message=message,
            time=observed_at,
        )
        self.outcome = WatchOutcome(event)
        self.start_batch([event])
        return event

    def params(self) -> dict[str, str]:
        return {"InstanceId": self.instance_id, "DeploymentId": self.deployment_id}


#: Finds the deployment to watch: ``(deployment_id, attached)`` (see ``_deploy.py``).
Resolver = Callable[[], Awaitable[tuple[str, bool]]]


class DeploymentWatcher:
    """An async iterator of :class:`DeploymentEvent` for one deployment.

    Ends after the ``final`` event: ``outcome`` ``"succeeded"``/``"failed"`` (Status 2/3)
    or ``"timed_out"`` when ``timeout`` seconds passed first.  Raises
    :class:`~aioedge.DeploymentError` when the deployment does not exist
    (``iot.edge.deploySheetNotExist``) and non-transient errors as they are.  Breaking out
    of ``async for`` or cancelling the task stops it cleanly; ``async with`` closes it.
    """

    def __init__(
        self,
        client: Caller,
        instance_id: str,
        deployment_id: str | None,
        *,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        backoff: float = 1.5,
        timeout: float | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        wall_clock: Callable[[], float] | None = None,
        retry: WatchRetry | None = WatchRetry(),
        resolve: Resolver | None = None,
        progress_timeout: float | None = None,
        on_poll: Callable[[PollInfo], Any] | None = None,
    ) -> None:
        _check_intervals(poll_interval, max_poll_interval, backoff)
        _check_timeout(timeout)
        _check_timeout(progress_timeout, "progress_timeout")
        if on_poll is not None and not callable(on_poll):
            raise ValidationError(
                f"on_poll must be callable, got {type(on_poll).__name__}",
                param="on_poll",
                rule="type",
            )
        if deployment_id is None and resolve is None:
            raise ValidationError(
                "deployment_id is required", param="deployment_id", rule="required"
            )
        self._client = client
        self._instance_id = instance_id
        self._deployment_id = deployment_id
        self._options: dict[str, Any] = {
            "poll_interval": poll_interval,
            "max_poll_interval": max_poll_interval,
            "backoff": backoff,
            "retry": retry,
        }
        self._checkpoint = checkpoint
        self._timeout = timeout
        self._progress_timeout = progress_timeout
        # The client's hooks and this watch's own on_poll, sorted once.
        extra = [] if on_poll is None else [_OnPoll(on_poll)]
        self._hooks = HookSet.of([*getattr(client, "hooks", ()), *extra])
        self._clock = clock or time.monotonic
        self._sleep = sleep or anyio.sleep
        self._wall = wall_clock or time.time
        self._resolve = resolve
        self._attached = False
        self._tracker: _Tracker | None = None
        if deployment_id is not None:
            self._tracker = _Tracker(
                instance_id, deployment_id, checkpoint=checkpoint, **self._options
            )
        self._gen: AsyncGenerator[DeploymentEvent, None] | None = None

    def __repr__(self) -> str:
        return (
            f"<DeploymentWatcher instance={self._instance_id} deployment={self._deployment_id} "
            f"outcome={self.outcome}>"
        )

    # -- what a caller can look at -----------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def deployment_id(self) -> str | None:
        """``None`` until a deploy helper has created (or found) the deployment."""
        return self._deployment_id

    @property
    def attached(self) -> bool:
        """True when a deploy helper joined a deployment that was already running."""
        return self._attached

    @property
    def state(self) -> DeploymentState | None:
        """The tree as of the last successful poll, with every log entry told so far.

        A snapshot's Log only grows: entries an answer no longer lists are kept here.
        """
        return None if self._tracker is None else self._tracker.state

    @property
    def outcome(self) -> WatchOutcome | None:
        """``"succeeded"``, ``"failed"``, ``"timed_out"``, ``"stalled"`` once finished, else
        ``None``.

        A :class:`WatchOutcome`: a string that also carries ``reason``, ``message`` (the
        root cause's full message on failure), ``failed_snapshot`` and the ``final`` event.
        """
        return None if self._tracker is None else self._tracker.outcome

    @property
    def polls(self) -> int:
        return 0 if self._tracker is None else self._tracker.polls

    def checkpoint(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``checkpoint=`` it to a new watcher to resume.

        It covers exactly the events already yielded, so a watcher resumed from it emits
        only the rest (later polls included).  Only the deployment's own end
        (``succeeded``/``failed``) counts as final: the checkpoint of a watch that ended
        with ``timed_out`` resumes watching.
        """
        if self._tracker is None:
            raise RuntimeError("no deployment yet: iterate the watcher first")
        return self._tracker.checkpoint()

    async def display(
        self,
        *,
        events: int = 8,
        min_interval: float = 0.25,
        into: list[DeploymentEvent] | None = None,
    ) -> WatchOutcome | None:
        """In Jupyter: follow the deployment to its end in one output area, redrawn in place
        (the outcome with its root cause, the tree, the latest ``events``); returns
        :attr:`outcome`.  ``await watcher.display()`` replaces the usual update loop;
        ``into`` (a list, such as an :class:`~aioedge.watch.EventLog`) collects the events."""
        from ._notebook import display_watch

        return await display_watch(self, events=events, min_interval=min_interval, into=into)

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> DeploymentWatcher:
        return self

    async def __anext__(self) -> DeploymentEvent:
        if self._gen is None:
            self._gen = self._run()
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()

    async def __aenter__(self) -> DeploymentWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[DeploymentEvent, None]:
        if self._tracker is None:
            assert self._resolve is not None
            self._deployment_id, self._attached = await self._resolve()
            self._tracker = _Tracker(
                self._instance_id, self._deployment_id, checkpoint=self._checkpoint, **self._options
            )
        tracker = self._tracker
        hooks = self._hooks
        started = self._clock()
        watch = WatchInfo(
            watch_id=next_watch_id(),
            instance_id=tracker.instance_id,
            deployment_id=tracker.deployment_id,
            started=started,
            elapsed=0.0,
        )
        if hooks is not None:
            await hooks.emit("on_watch", watch)
        message: str | None = None
        try:
            async with contextlib.aclosing(self._loop(tracker, watch, started)) as events:
                async for event in events:
                    if event.kind == "final":
                        message = event.message
                    yield event
        except BaseException as exc:
            if hooks is not None:
                outcome = "cancelled" if not isinstance(exc, Exception) else "error"
                self._watch_ended(watch, outcome, f"{type(exc).__name__}: {exc}")
            raise
        if hooks is not None:
            self._watch_ended(watch, tracker.outcome or "error", message)

    def _watch_ended(self, watch: WatchInfo, outcome: str, message: str | None) -> None:
        assert self._hooks is not None
        self._hooks.emit_now(
            "on_watch",
            dataclasses.replace(
                watch,
                elapsed=self._clock() - watch.started,
                polls=self.polls,
                outcome=outcome,
                message=message,
            ),
        )

    async def _loop(
        self, tracker: _Tracker, watch: WatchInfo, started: float
    ) -> AsyncGenerator[DeploymentEvent, None]:
        hooks = self._hooks
        progress_timeout = self._progress_timeout
        last = Progress(what="none since the watch started", at=started, time=self._wall())
        stalled = False
        deadline = None if self._timeout is None else started + self._timeout
        log = get_logger()  # looked up per watch: the application may configure it late
        log.debug(
            "aioedge.watch_started",
            instance_id=tracker.instance_id,
            deployment_id=tracker.deployment_id,
            resumed=self._checkpoint is not None,
        )
        while True:
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                break  # timed out
            body: dict[str, Any] | None = None
            events: list[DeploymentEvent] = []
            wait = 0.0
            failure: BaseException | None = None
            try:
                # The deadline also bounds a poll stuck on the rate limiter or the network.
                # This timer runs on the event loop's clock, which need not be ``clock``: so
                # a poll it cut short means "timed out", whatever ``clock`` says.
                with anyio.move_on_after(remaining) as poll_scope:
                    tracker.polls += 1
                    if hooks is None:
                        body = await self._client.call(_ACTION, tracker.params())
                    else:
                        with hooks.poll_scope(watch):
                            body = await self._client.call(_ACTION, tracker.params())
                if body is not None:
                    events = tracker.on_answer(body, self._wall())
            except Exception as exc:  # on_error re-raises what is not transient
                failure = exc
                if hooks is not None:
                    await self._polled(watch, tracker, None, exc, [], last)
                event, wait = tracker.on_error(exc, self._wall())
                log.info(
                    "aioedge.watch_poll_failed",
                    deployment_id=tracker.deployment_id,
                    error=event.error,
                    attempt=event.attempt,
                    retry_in=wait,
                )
                events = [event]
            now = self._clock()
            moved = [e for e in events if e.kind in TRANSITION_KINDS]
            if moved:
                last = Progress(what=describe_change(moved[-1]), at=now, time=moved[-1].time)
            if hooks is not None and failure is None and body is not None:
                await self._polled(watch, tracker, body, None, events, last)
            for event in events:
                tracker.delivered()
                yield event
            if tracker.done:
                log.info(
                    "aioedge.watch_finished",
                    deployment_id=tracker.deployment_id,
                    outcome=tracker.outcome,
                    polls=tracker.polls,
                )
                return
            if poll_scope.cancelled_caught:
                break  # timed out during the poll
            if body is not None:
                wait = tracker.interval
            if progress_timeout is not None:
                now = self._clock()
                if last.stalled(now, progress_timeout):
                    stalled = True
                    break
                # Poll once more right at the stall deadline: a change then still counts.
                wait = min(wait, max(0.0, last.at + progress_timeout - now))
            if deadline is not None:
                left = deadline - self._clock()
                if wait >= left:
                    # The next poll would come at or after the deadline: wait for it and
                    # stop (not "sleep, then compare clocks", which float rounding of an
                    # injected clock can keep a hair short of the deadline for ever).
                    await self._sleep(max(0.0, left))
                    break
            await self._sleep(wait)
        if stalled:
            assert progress_timeout is not None
            event = tracker.stalled(progress_timeout, last, self._wall())
        else:
            event = tracker.timed_out(self._timeout, self._wall())
        tracker.delivered()
        yield event
        log.info(
            "aioedge.watch_finished",
            deployment_id=tracker.deployment_id,
            outcome=tracker.outcome,
            polls=tracker.polls,
        )

    async def _polled(
        self,
        watch: WatchInfo,
        tracker: _Tracker,
        body: Mapping[str, Any] | None,
        error: BaseException | None,
        events: list[DeploymentEvent],
        last: Progress,
    ) -> None:
        assert self._hooks is not None
        now = self._clock()
        await self._hooks.emit(
            "on_poll",
            PollInfo(
                watch_id=watch.watch_id,
                instance_id=tracker.instance_id,
                deployment_id=tracker.deployment_id,
                poll=tracker.polls,
                elapsed=now - watch.started,
                body=body,
                error=error,
                events=tuple(e.kind for e in events),
                changed=any(e.kind in TRANSITION_KINDS for e in events),
                since_change=now - last.at,
            ),
        )


class _OnPoll:
    """A watch's own ``on_poll=`` callback, as a hook object."""

    __slots__ = ("on_poll",)

    def __init__(self, on_poll: Callable[[PollInfo], Any]) -> None:
        self.on_poll = on_poll


def watch_deployment(
    client: Caller,
    instance_id: str,
    deployment_id: str,
    *,
    poll_interval: float = 0.5,
    max_poll_interval: float = 5.0,
    backoff: float = 1.5,
    timeout: float | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    wall_clock: Callable[[], float] | None = None,
    retry: WatchRetry | None = WatchRetry(),
    progress_timeout: float | None = None,
    on_poll: Callable[[PollInfo], Any] | None = None,
) -> DeploymentWatcher:
    """Watch one deployment: an async iterator of events that ends after the final one.

    ``poll_interval`` is the shortest gap between two polls; while nothing changes the gap
    grows ``backoff``-fold per poll up to ``max_poll_interval``.  Every poll is one
    ``client.call("GetEdgeInstanceDeployment", ...)``, so the client's rate limiter (5 QPS,
    shared) applies.  Transient errors become ``poll_error`` events and are retried per
    ``retry`` (``None``: raise them).  ``checkpoint`` is a dict from
    :meth:`DeploymentWatcher.checkpoint`; ``clock`` (monotonic seconds), ``sleep`` and
    ``wall_clock`` (epoch seconds, for event times) can be injected for tests.

    ``progress_timeout``: end with ``outcome="stalled"`` (its message names the last stage or
    status change and when) once no stage or status changed for that many seconds, apart
    from the overall ``timeout``.  ``on_poll(info)`` is called after every poll with a
    :class:`~aioedge._hooks.PollInfo`: the raw answer (``info.body``) or the error.
    """
    return DeploymentWatcher(
        client,
        instance_id,
        deployment_id,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        backoff=backoff,
        timeout=timeout,
        checkpoint=checkpoint,
        clock=clock,
        sleep=sleep,
        wall_clock=wall_clock,
        retry=retry,
        progress_timeout=progress_timeout,
        on_poll=on_poll,
    )
