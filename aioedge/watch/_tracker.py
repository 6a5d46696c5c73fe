"""One deployment's watch, decided without I/O: the part the watcher and the monitor share.

``Tracker`` holds one deployment's bookkeeping (last state, adaptive interval, error count,
what was delivered) and turns each answer or error into events, and checkpoints.
``DeploymentWatcher`` (``_watcher.py``) runs one tracker; ``DeploymentMonitor``
(``_monitor.py``) runs many from one queue.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .._argtypes import check_at_least, check_count, check_positive
from .._errors import (
    ApiError,
    CredentialsError,
    DeploymentError,
    InvalidResponseError,
    NotFoundError,
    TransportError,
    ValidationError,
    error_code,
    is_transient,
    printable,
)
from .._hooks import HookSet, OnPoll, PollInfo, WatchInfo
from .._signing import timestamp_text
from ._events import (
    TRANSITION_KINDS,
    DeploymentEvent,
    Outcome,
    WatchOutcome,
    move_text,
    snapshot_label,
    stage_name,
    status_name,
)
from ._state import DeploymentState, apply, carry_logs, diff, final_event

__all__ = [
    "ACTION",
    "CHECKPOINT_VERSION",
    "Caller",
    "DEPLOYMENT_NOT_FOUND",
    "Ending",
    "INSTANCE_NOT_FOUND",
    "Progress",
    "SERVICE_OUTCOMES",
    "Tracker",
    "WatchOptions",
    "WatchRetry",
    "classify",
    "describe_change",
    "ends_deployment",
    "error_code",
    "error_text",
    "root_cause",
    "tell_poll",
    "tell_watch_ended",
    "tell_watch_started",
    "watch_hooks",
]

CHECKPOINT_VERSION = 1
#: How a watch ends on its own clock (:meth:`Tracker.ending`).
Ending = Literal["timed_out", "stalled"]
ACTION = "GetEdgeInstanceDeployment"
# 2.6 Error codes: the two ids a watch names.
DEPLOYMENT_NOT_FOUND = "iot.edge.deploySheetNotExist"
INSTANCE_NOT_FOUND = "iot.edge.InstanceNotExist"


class Caller(Protocol):
    """What the watcher needs of a client: :meth:`aioedge.EdgeClient.call`."""

    async def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchRetry:
    """How a watcher waits after a transient polling error (on top of the client's own retries).

    The n-th consecutive failure waits ``min(maximum, initial * multiplier ** (n - 1))``;
    after ``max_errors`` consecutive failures (``None``: never) the watch gives up with
    :class:`~aioedge.DeploymentError`.  ``initial`` and ``maximum`` are >= 0,
    ``multiplier`` >= 1 (NaN is none of these) and ``max_errors`` a count (>= 0) or None:
    else a :class:`~aioedge.ValidationError` naming the field.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 30.0
    max_errors: int | None = None

    def __post_init__(self) -> None:
        check_at_least(self.initial, 0.0, param="initial")
        check_at_least(self.maximum, 0.0, param="maximum")
        check_at_least(self.multiplier, 1.0, param="multiplier")
        if self.max_errors is not None:
            check_count(self.max_errors, param="max_errors")

    def delay(self, attempt: int) -> float:
        return float(min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1)))


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchOptions:
    """How one deployment is watched, checked once for the watcher and the monitor: polls
    ``poll_interval`` apart, ``backoff``-fold further apart per quiet poll up to
    ``max_poll_interval``; ``retry`` after a transient error; the watch ends after
    ``timeout`` seconds, or after ``progress_timeout`` seconds without a stage or status
    change (``None``: no limit)."""

    poll_interval: float
    max_poll_interval: float
    backoff: float
    retry: WatchRetry | None
    timeout: float | None = None
    progress_timeout: float | None = None

    def __post_init__(self) -> None:
        check_positive(self.poll_interval, param="poll_interval")
        if not self.max_poll_interval >= self.poll_interval:
            raise ValidationError(
                f"max_poll_interval ({self.max_poll_interval!r}) must be >= poll_interval "
                f"({self.poll_interval!r})",
                param="max_poll_interval",
                rule="range",
            )
        check_at_least(self.backoff, 1.0, param="backoff")
        for name, limit in (("timeout", self.timeout), ("progress_timeout", self.progress_timeout)):
            if limit is not None:
                check_positive(limit, param=name, none=" or None")


def watch_hooks(client: object, on_poll: Callable[[PollInfo], Any] | None) -> HookSet | None:
    """The client's hooks and a watch's own ``on_poll`` (checked), sorted once; None when
    none of them has anything for a watch (``on_poll``, ``on_watch``, ``poll_scope``)."""
    if on_poll is not None and not callable(on_poll):
        raise ValidationError(
            f"on_poll must be callable, got {type(on_poll).__name__}", param="on_poll", rule="type"
        )
    extra = [] if on_poll is None else [OnPoll(on_poll)]
    hooks = HookSet.of([*getattr(client, "hooks", ()), *extra])
    return hooks if hooks is not None and hooks.watches() else None


def describe_change(event: DeploymentEvent) -> str:
    """A short name of the change ``event`` made, named as ``str(event)`` names things:
    ``snapshot S1 cfg (driver_config) stage assembling → packaging``."""
    if event.kind == "deployment":
        what = "deployment"
    elif event.kind == "task":
        what = f"task {printable(event.task_id or '?')}"
    else:
        what = "snapshot " + snapshot_label(
            event.snapshot_id, event.resource_name, event.resource_id, event.resource_type
        )
    moves = []
    if event.stage_changed and event.stage is not None:
        moves.append(f"stage {move_text(event.previous_stage, event.stage, stage_name)}")
    if event.status_changed and event.status is not None:
        moves.append(f"status {move_text(event.previous_status, event.status, status_name)}")
    return f"{what} {', '.join(moves) or 'appeared'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """The last stage or status change a watch saw: what (text), when (monotonic ``at``,
    the event's epoch ``time``, and ``seen``: the local epoch time it was observed, which a
    checkpoint keeps so that a watch resumed elsewhere keeps the same stall clock)."""

    what: str
    at: float
    time: float | None
    seen: float | None = None

    def stalled(self, now: float, progress_timeout: float) -> bool:
        return now - self.at >= progress_timeout

    def left(self, now: float, progress_timeout: float) -> float:
        """Seconds until the watch counts as stalled (<= 0: it does)."""
        return self.at + progress_timeout - now


#: What a watch that has seen no change yet names as its last one.
_NO_CHANGE = "none since the watch started"


def root_cause(exc: BaseException) -> BaseException:
    """The error a :class:`~aioedge.DeploymentError` was raised from, else ``exc`` itself."""
    return exc.__cause__ if isinstance(exc, DeploymentError) and exc.__cause__ else exc


def classify(exc: BaseException) -> tuple[Outcome, str, str]:
    """The ``outcome``, ``reason`` (:data:`~aioedge.watch.REASONS`) and ``error`` code of a
    watch that ended on ``exc``, for a monitor, a rollout and the CLI alike.

    A :class:`~aioedge.DeploymentError` is judged by the error behind it (``__cause__``): a
    :class:`~aioedge.TransportError` (the endpoint could not be reached, or polls kept failing
    on the network until the watch gave up) is ``("error", "unreachable")``, a
    :class:`~aioedge.NotFoundError` ``("not_found", "not_found")``, anything else
    ``("error", "error")``.
    """
    cause = root_cause(exc)
    if isinstance(cause, TransportError):
        return "error", "unreachable", error_code(cause)
    if isinstance(cause, NotFoundError):
        return "not_found", "not_found", error_code(cause)
    return "error", "error", error_code(cause)


def error_text(exc: BaseException) -> str:
    if isinstance(exc, ApiError | TransportError):
        return exc.message
    return str(exc)


#: Outcomes that end the deployment itself (Status 2/3).  Any other ``final`` (the watcher's
#: own ``timed_out``, a monitor's ``error``) only ends one watch: a checkpoint taken after
#: it resumes watching.
SERVICE_OUTCOMES = frozenset({"succeeded", "failed"})


def ends_deployment(event: DeploymentEvent) -> bool:
    return event.kind == "final" and event.outcome in SERVICE_OUTCOMES


@dataclass(slots=True)
class _Batch:
    """The events one poll (or one decision) produced and how many reached the caller."""

    base: DeploymentState | None  # the tree before these events
    events: list[DeploymentEvent]
    ended_before: bool  # the deployment's own final event was delivered before these
    delivered: int = 0
    progress: Progress | None = None  # the last change before these events
    observed: float | None = None  # when (local epoch) the answer behind them came

    @property
    def complete(self) -> bool:
        return self.delivered >= len(self.events)


class Tracker:
    """One deployment's watch bookkeeping; pure (time comes in as arguments)."""

    def __init__(
        self,
        instance_id: str,
        deployment_id: str,
        options: WatchOptions,
        *,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.deployment_id = deployment_id
        self.options = options
        self.interval = options.poll_interval
        self.errors = 0
        self.polls = 0
        self.state: DeploymentState | None = None
        self.final_emitted = False
        self.outcome: WatchOutcome | None = None
        #: The last stage or status change (set by :meth:`begin`, moved by :meth:`moved`).
        self.progress: Progress | None = None
        self._saved_progress: tuple[str, float | None, float | None] | None = None
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
        saved = cp.get("progress")
        if saved is not None:
            if not isinstance(saved, Mapping) or not isinstance(saved.get("what"), str):
                raise ValidationError(
                    "checkpoint progress must be an object with 'what'",
                    param="checkpoint",
                    rule="format",
                )
            self._saved_progress = (
                saved["what"],
                _number(saved.get("time")),
                _number(saved.get("seen")),
            )

    def checkpoint(self) -> dict[str, Any]:
        """JSON-serialisable; a tracker restored from it emits only what was not delivered."""
        # The oldest batch not fully delivered (or the last one, when all of them are).
        batch = next((b for b in self._batches if not b.complete), self._batches[-1])
        delivered = batch.events[: batch.delivered]
        if batch.base is None and not any(e.kind == "deployment" for e in delivered):
            state = None
        else:
            state = apply(batch.base, delivered)
        ended = batch.ended_before or any(ends_deployment(e) for e in delivered)
        out: dict[str, Any] = {
            "version": CHECKPOINT_VERSION,
            "instance_id": self.instance_id,
            "deployment_id": self.deployment_id,
            "state": None if state is None else state.to_dict(),
            "final_emitted": ended,
        }
        # The last change among the events handed out (or the one before them): a watch
        # resumed from this checkpoint keeps its stall clock.
        moved = [e for e in delivered if e.kind in TRANSITION_KINDS]
        if moved:
            out["progress"] = {
                "what": describe_change(moved[-1]),
                "time": moved[-1].time,
                "seen": batch.observed,
            }
        elif batch.progress is not None:
            last = batch.progress
            out["progress"] = {"what": last.what, "time": last.time, "seen": last.seen}
        return out

    def delivered(self) -> None:
        """The caller has the next event (in the order the batches produced them)."""
        batches = self._batches
        while len(batches) > 1 and batches[0].complete:
            batches.popleft()
        batches[0].delivered += 1

    def start_batch(
        self, events: list[DeploymentEvent], observed_at: float | None = None
    ) -> list[DeploymentEvent]:
        """Record ``events`` (produced from the current ``state``) as the next to deliver."""
        last = self._batches[-1]
        ended = last.ended_before or any(ends_deployment(e) for e in last.events)
        self._batches.append(_Batch(self.state, events, ended, 0, self.progress, observed_at))
        while len(self._batches) > 1 and self._batches[0].complete:
            self._batches.popleft()
        return events

    # -- decisions -------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.final_emitted

    # -- stall detection (progress_timeout) ---------------------------------------------------

    def begin(self, now: float, wall: float, *, since: Progress | None = None) -> Progress:
        """Start the stall clock (once): at the last change a checkpoint recorded, counted
        back from ``wall`` (so a resumed or taken-over watch does not reset it), else at
        ``since`` (the clock of a watch this one replaces), else now."""
        if self.progress is None:
            saved = self._saved_progress
            if saved is not None:
                what, when, seen = saved
                ago = 0.0 if seen is None else min(max(0.0, wall - seen), 10 * 365 * 86400.0)
                self.progress = Progress(what=what, at=now - ago, time=when, seen=seen)
            elif since is not None:
                self.progress = since
            else:
                self.progress = Progress(what=_NO_CHANGE, at=now, time=wall, seen=wall)
            for batch in self._batches:
                if batch.progress is None:
                    batch.progress = self.progress
        return self.progress

    def moved(self, events: list[DeploymentEvent], now: float, wall: float) -> Progress | None:
        """Note the last stage or status change among ``events`` (just produced) as progress."""
        changes = [e for e in events if e.kind in TRANSITION_KINDS]
        if changes:
            last = changes[-1]
            self.progress = Progress(what=describe_change(last), at=now, time=last.time, seen=wall)
        return self.progress

    def stall_left(self, now: float) -> float | None:
        """Seconds until this watch counts as stalled (<= 0: it does; None: no
        ``progress_timeout``): the one rule the watcher and the monitor both follow.  Poll
        once more right at that moment: a change seen then still counts."""
        progress_timeout = self.options.progress_timeout
        if progress_timeout is None:
            return None
        if self.progress is None:
            raise RuntimeError("begin() the stall clock first")
        return self.progress.left(now, progress_timeout)

    def ending(self, now: float, deadline: float | None, *, cut: bool = False) -> Ending | None:
        """Whether this watch ends now on its own clock, the service having given no final
        status: ``"timed_out"`` at or past ``deadline`` (or when the deadline cut the poll
        short), else ``"stalled"`` once ``progress_timeout`` passed without a change; None:
        poll again.  The deadline comes first.  The one rule the watcher and the monitor
        both follow after each poll (:meth:`end` gives the ``final`` event)."""
        if self.final_emitted:
            return None
        if cut or (deadline is not None and now >= deadline):
            return "timed_out"
        left = self.stall_left(now)
        if left is not None and left <= 0:
            return "stalled"
        return None

    def next_wait(self, now: float, wait: float) -> float:
        """``wait``, shortened to the moment the watch would count as stalled."""
        left = self.stall_left(now)
        return wait if left is None else min(wait, left)

    def end(self, ending: Ending, observed_at: float) -> DeploymentEvent:
        """The ``final`` event of :meth:`ending`'s answer."""
        if ending == "stalled":
            return self.stalled(observed_at)
        return self.timed_out(observed_at)

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
            raise InvalidResponseError("InvalidResponse", str(exc), action=ACTION) from exc
        if current.deployment_id != self.deployment_id:
            # Another deployment's tree cannot be diffed against ours: a bad answer.
            raise InvalidResponseError(
                "InvalidResponse",
                f"asked for deployment {self.deployment_id}, "
                f"the answer is about {current.deployment_id}",
                action=ACTION,
            )
        events = diff(self.state, current)
        self.start_batch(events, observed_at)
        if current.is_final:
            if not self.final_emitted and not any(e.kind == "final" for e in events):
                # Resumed from a checkpoint taken between the last transition and "final".
                events.append(final_event(current))
            self.final_emitted = True
            last = next((e for e in reversed(events) if e.kind == "final"), None)
            self.outcome = WatchOutcome(last if last is not None else final_event(current))
        self.state = carry_logs(self.state, current)
        self.errors = 0
        options = self.options
        if any(e.kind in TRANSITION_KINDS or e.kind == "log" for e in events):
            self.interval = options.poll_interval  # things move: look again soon
        else:
            self.interval = min(options.max_poll_interval, self.interval * options.backoff)
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
        retry = self.options.retry
        if not is_transient(exc) or retry is None:
            raise exc
        self.errors += 1
        if retry.max_errors is not None and self.errors > retry.max_errors:
            raise DeploymentError(
                f"gave up watching deployment {self.deployment_id} after {self.errors - 1} "
                f"consecutive failed polls; last: {error_code(exc)}: {error_text(exc)}",
                deployment_id=self.deployment_id,
            ) from exc
        # A key that could not be had: a poll before the provider's backoff is over would
        # fail again without asking, so that wait is the floor.
        hint = exc.retry_after if isinstance(exc, CredentialsError) else None
        delay = max(retry.delay(self.errors), self.options.poll_interval, hint or 0.0)
        event = DeploymentEvent(
            kind="poll_error",
            deployment_id=self.deployment_id,
            instance_id=self.instance_id,
            error=error_code(exc),
            message=error_text(exc),
            attempt=self.errors,
            retry_in=delay,
            time=observed_at,
        )
        self.start_batch([event], observed_at)
        return event, delay

    def timed_out(self, observed_at: float) -> DeploymentEvent:
        timeout = self.options.timeout
        message = f"no final status after {timeout:g}s" if timeout is not None else None
        return self.finish("timed_out", "timeout", observed_at, message=message)

    def stalled(self, observed_at: float) -> DeploymentEvent:
        """The final event of a watch that saw no stage or status change for
        ``progress_timeout`` seconds: its message names the last change and when it happened."""
        last = self.progress
        progress_timeout = self.options.progress_timeout
        if last is None or progress_timeout is None:
            raise RuntimeError("begin() the stall clock of a watch with a progress_timeout first")
        when = timestamp_text(last.time) if last.time is not None else "?"
        ago = max(0.0, observed_at - last.time) if last.time is not None else None
        message = (
            f"no stage or status change for {progress_timeout:g}s; last change: {last.what} "
            f"at {when}" + (f" ({ago:.0f}s ago)" if ago is not None else "")
        )
        return self.finish("stalled", "stalled", observed_at, message=message)

    def finish(
        self,
        outcome: Outcome,
        reason: str,
        observed_at: float,
        *,
        message: str | None = None,
        error: str | None = None,
    ) -> DeploymentEvent:
        """End this watch with a ``final`` event the service did not give (a timeout, a stall,
        a monitor's ``not_found``/``error``): the status stays the last one seen."""
        self.final_emitted = True
        state = self.state
        event = DeploymentEvent(
            kind="final",
            deployment_id=self.deployment_id,
            instance_id=self.instance_id,
            status=None if state is None else state.status,
            previous_status=None if state is None else state.status,
            outcome=outcome,
            reason=reason,
            error=error,
            message=message,
            time=observed_at,
        )
        self.outcome = WatchOutcome(event)
        self.start_batch([event], observed_at)
        return event

    def params(self) -> dict[str, str]:
        return {"InstanceId": self.instance_id, "DeploymentId": self.deployment_id}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


async def tell_poll(
    hooks: HookSet,
    tracker: Tracker,
    *,
    watch_id: int,
    started: float,
    now: float,
    body: Mapping[str, Any] | None,
    error: BaseException | None,
    events: list[DeploymentEvent],
) -> None:
    """Tell the ``on_poll`` hooks of the poll that just gave ``events`` (``started``: when
    the watch of ``tracker`` began, on the clock of ``now``): one spelling for the watcher
    and the monitor."""
    last = tracker.progress
    await hooks.emit(
        "on_poll",
        PollInfo(
            watch_id=watch_id,
            instance_id=tracker.instance_id,
            deployment_id=tracker.deployment_id,
            poll=tracker.polls,
            elapsed=now - started,
            body=body,
            error=error,
            events=tuple(e.kind for e in events),
            changed=any(e.is_transition for e in events),
            since_change=0.0 if last is None else now - last.at,
        ),
    )


async def tell_watch_started(
    hooks: HookSet, tracker: Tracker, *, watch_id: int, started: float
) -> WatchInfo:
    """Tell the ``on_watch`` hooks that the watch of ``tracker`` started at ``started``
    (monotonic); the :class:`WatchInfo` returned is the one each poll's
    ``hooks.poll_scope(watch)`` and :func:`tell_watch_ended` take.  One spelling for the
    watcher and the monitor: each deployment followed is one watch."""
    watch = WatchInfo(
        watch_id=watch_id,
        instance_id=tracker.instance_id,
        deployment_id=tracker.deployment_id,
        started=started,
        elapsed=0.0,
    )
    await hooks.emit("on_watch", watch)
    return watch


def tell_watch_ended(
    hooks: HookSet,
    watch: WatchInfo,
    tracker: Tracker,
    *,
    now: float,
    error: BaseException | None = None,
) -> None:
    """Tell the ``on_watch`` hooks that ``watch`` ended (without awaiting: the task may be
    being cancelled or closed): with the tracker's outcome and its message; ``"error"``
    when ``error`` (an Exception) ended it, ``"cancelled"`` when a cancellation did, or
    when it was stopped before any outcome.  ``polls``: the tracker's count."""
    outcome: str
    message: str | None
    if error is not None:
        outcome = "error" if isinstance(error, Exception) else "cancelled"
        message = f"{type(error).__name__}: {error}"
    elif tracker.outcome is not None:
        outcome, message = str(tracker.outcome), tracker.outcome.message
    else:
        outcome, message = "cancelled", None
    hooks.emit_now(
        "on_watch",
        dataclasses.replace(
            watch,
            elapsed=now - watch.started,
            polls=tracker.polls,
            outcome=outcome,
            message=message,
        ),
    )
