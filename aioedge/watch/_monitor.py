"""Many deployments, one merged event stream, one shared poll budget.

Shape: a scheduler task keeps every watched deployment in a heap ordered by when it is due
for its next poll and hands due ones, earliest first, to a few poller tasks through a
zero-buffer stream; pollers call GetEdgeInstanceDeployment (through the client, so the
client's 5-QPS limiter paces them), diff, send the events into one bounded stream (a slow
reader blocks the pollers: backpressure), and put the deployment back with its next due
time.  When polls are scarcer than deployments, every deployment is overdue and the heap
serves the one that waited longest: round robin, nobody starves.  Finished deployments
leave the heap and cost nothing.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._argtypes import check_count
from .._errors import ApiError
from .._hooks import PollInfo, WatchInfo, next_watch_id
from .._log import get_logger

if TYPE_CHECKING:
    from .._coordinator import RedisCoordinator
from ._events import DeploymentEvent, Outcome, WatchOutcome
from ._state import DeploymentState
from ._tracker import (
    ACTION,
    Caller,
    Tracker,
    WatchOptions,
    WatchRetry,
    classify,
    error_text,
    root_cause,
    tell_poll,
    tell_watch_ended,
    tell_watch_started,
    watch_hooks,
)

__all__ = ["DeploymentMonitor", "MonitorStats"]

_UNSET: Any = object()


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    tracker: Tracker = field(compare=False)
    deadline: float | None = field(compare=False, default=None)
    # For PollInfo: which watch and since when (monotonic).
    watch_id: int = field(compare=False, default_factory=next_watch_id)
    added: float = field(compare=False, default=0.0)
    # What the hooks were told when this deployment's watch started (None: not yet).
    watch: WatchInfo | None = field(compare=False, default=None)


#: What travels through the monitor's stream: the event and the deployment it belongs to.
_Sent = tuple[Tracker, DeploymentEvent]


@dataclass(frozen=True, kw_only=True, slots=True)
class MonitorStats:
    """Counters for dashboards and benchmarks."""

    watched: int
    active: int
    finished: int
    polls: int
    poll_errors: int
    events: int


class DeploymentMonitor:
    """Watch many deployments (across instances) as one stream of :class:`DeploymentEvent`.

    ::

        async with DeploymentMonitor(client, poll_interval=1.0) as monitor:
            for instance_id, deployment_id in pairs:
                monitor.add(instance_id, deployment_id)
            async for event in monitor:
                print(event)

    The stream ends once every added deployment has had its ``final`` event (with
    ``until_idle=False`` it stays open for later :meth:`add` calls until :meth:`close`).
    Unlike a single watcher the monitor never raises for one deployment: a deployment that
    vanishes gets a ``final`` event with ``outcome="not_found"``, one that fails otherwise
    ``outcome="error"`` (``error`` holds the code).  Timeouts count from :meth:`add`.

    ``progress_timeout`` (or per deployment, :meth:`add`'s): a deployment with no stage or
    status change for that long ends with a ``final`` event of ``outcome="stalled"`` whose
    message names the last change and when; the others go on.  Each deployment is judged
    on its own, by the same rule as a single watcher's, and its checkpoint keeps when the
    last change was seen, so a resumed or taken-over watch keeps the same stall clock.
    """

    def __init__(
        self,
        client: Caller,
        *,
        pollers: int = 4,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        backoff: float = 1.5,
        timeout: float | None = None,
        progress_timeout: float | None = None,
        retry: WatchRetry | None = WatchRetry(),  # noqa: B008 - frozen value object
        buffer_size: int = 256,
        until_idle: bool = True,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        wall_clock: Callable[[], float] | None = None,
        coordinator: RedisCoordinator | None = None,
        on_poll: Callable[[PollInfo], Any] | None = None,
    ) -> None:
        # Each deployment's, unless add() gives it its own timeouts.
        self._options = WatchOptions(
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=backoff,
            retry=retry,
            timeout=timeout,
            progress_timeout=progress_timeout,
        )
        # The client's watch hooks and this monitor's own on_poll: told of each deployment's
        # watch (started, ended) and of every poll, each poll in its watch's poll scope.
        hooks = watch_hooks(client, on_poll)
        check_count(pollers, param="pollers", minimum=1)
        check_count(buffer_size, param="buffer_size")  # 0: a reader takes each event in turn
        self._client = client
        self._hooks = hooks
        # The watches the hooks were told started and not yet ended, by watch_id.
        self._watching: dict[int, _Entry] = {}
        self._pollers = pollers
        self._buffer_size = buffer_size
        self._until_idle = until_idle
        self._clock = clock or time.monotonic
        self._sleep = sleep or anyio.sleep
        self._wall = wall_clock or time.time
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._trackers: dict[tuple[str, str], Tracker] = {}
        self._outcomes: dict[tuple[str, str], str] = {}
        self._in_flight = 0
        self._closing = False
        self._ended = False
        self._changed = anyio.Event()
        self._polls = 0
        self._poll_errors = 0
        self._events = 0
        self._tg: TaskGroup | None = None
        # Shared with other processes (docs/fleets.md): a lease per deployment, see _claim.
        self._coordinator = coordinator
        self._given: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._error: BaseException | None = None
        self._scopes: list[anyio.CancelScope] = []
        # Events travel with their tracker: one counts as delivered when the reader takes it.
        self._receive: MemoryObjectReceiveStream[_Sent] | None = None

    # -- adding work -------------------------------------------------------------------------

    def add(
        self,
        instance_id: str,
        deployment_id: str,
        *,
        checkpoint: Mapping[str, Any] | None = None,
        timeout: float | None = _UNSET,
        progress_timeout: float | None = _UNSET,
    ) -> bool:
        """Start watching a deployment (polled first thing); False if it is already watched.

        ``timeout`` and ``progress_timeout`` default to the monitor's (``None``: none)."""
        if self._ended:
            raise RuntimeError("this monitor's stream has ended; start a new monitor")
        if self._closing:
            raise RuntimeError("this monitor is closed to new deployments")
        key = (instance_id, deployment_id)
        if key in self._trackers:
            return False
        if timeout is _UNSET:
            timeout = self._options.timeout
        if progress_timeout is _UNSET:
            progress_timeout = self._options.progress_timeout
        options = dataclasses.replace(
            self._options, timeout=timeout, progress_timeout=progress_timeout
        )
        tracker = Tracker(instance_id, deployment_id, options, checkpoint=checkpoint)
        now = self._clock()
        tracker.begin(now, self._wall())
        self._trackers[key] = tracker
        if checkpoint is not None and self._coordinator is not None:
            self._given[key] = checkpoint
        entry = _Entry(
            due=now,
            seq=next(self._seq),
            tracker=tracker,
            deadline=None if timeout is None else now + timeout,
            added=now,
        )
        heapq.heappush(self._heap, entry)
        self._notify()
        return True

    def close(self) -> None:
        """Accept no more deployments; the stream ends when the watched ones are done."""
        self._closing = True
        self._notify()

    # -- looking at it -----------------------------------------------------------------------

    @property
    def stats(self) -> MonitorStats:
        return MonitorStats(
            watched=len(self._trackers),
            active=len(self._heap) + self._in_flight,
            finished=len(self._outcomes),
            polls=self._polls,
            poll_errors=self._poll_errors,
            events=self._events,
        )

    def states(self) -> dict[tuple[str, str], DeploymentState | None]:
        """The last known tree of each deployment, by ``(instance_id, deployment_id)``."""
        return {key: t.state for key, t in self._trackers.items()}

    def checkpoint(self, instance_id: str, deployment_id: str) -> dict[str, Any]:
        """A JSON-serialisable checkpoint of one deployment, as of the events read so far.

        It covers exactly the events of that deployment this monitor's stream has handed
        out (not those still waiting in the stream's buffer), so ``add(..., checkpoint=)``
        on a new monitor, or ``checkpoint=`` to a watcher, continues with the rest.  A
        deployment whose watch only timed out or failed here resumes watching.
        """
        tracker = self._trackers.get((instance_id, deployment_id))
        if tracker is None:
            raise KeyError(f"deployment {deployment_id} of instance {instance_id} is not watched")
        return tracker.checkpoint()

    def checkpoints(self) -> dict[tuple[str, str], dict[str, Any]]:
        """:meth:`checkpoint` of every deployment, by ``(instance_id, deployment_id)``."""
        return {key: t.checkpoint() for key, t in self._trackers.items()}

    def outcomes(self) -> dict[tuple[str, str], str]:
        """``outcome`` of each finished deployment."""
        return dict(self._outcomes)

    def polls_per_deployment(self) -> dict[tuple[str, str], int]:
        return {key: t.polls for key, t in self._trackers.items()}

    async def display(self, *, min_interval: float = 0.5) -> dict[tuple[str, str], str]:
        """In Jupyter: read the stream to its end showing one table, redrawn in place (a row
        per deployment: status, snapshots done, root cause); returns :meth:`outcomes`.
        Use inside ``async with``, after :meth:`add`."""
        from ._notebook import display_monitor

        return await display_monitor(self, min_interval=min_interval)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> DeploymentMonitor:
        if self._tg is not None:
            raise RuntimeError("a DeploymentMonitor can be entered only once")
        if self._coordinator is not None:
            await self._coordinator.open()  # RedisUnavailableError now, not a hang later
        send, receive = anyio.create_memory_object_stream[_Sent](self._buffer_size)
        work_send, work_receive = anyio.create_memory_object_stream[_Entry](0)
        self._receive = receive
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._spawn(self._schedule, work_send, send.clone())
        for _ in range(self._pollers):
            self._spawn(self._poller, work_receive.clone(), send.clone())
        work_receive.close()
        send.close()
        if self._coordinator is not None:
            self._spawn(self._guard, self._coordinator.keep_leases)
        return self

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start a task in a cancel scope of its own: :meth:`_fail` stops the tasks without
        cancelling the reader (the task that entered the monitor)."""
        assert self._tg is not None
        scope = anyio.CancelScope()
        self._scopes.append(scope)

        async def run() -> None:
            with scope:
                await fn(*args)

        self._tg.start_soon(run, name=getattr(fn, "__qualname__", None))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        self._ended = True
        try:
            if isinstance(exc, Exception):
                # An error of the body (or of the stream, such as a coordinator's Redis
                # failing) surfaces as itself, not wrapped in the task group's ExceptionGroup.
                await self._tg.__aexit__(None, None, None)
                return None
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            if self._receive is not None:
                self._receive.close()
            # Watches still open end here: cut short ("cancelled"), by the monitor's own
            # failure ("error"), or ended with an outcome whose final event was not taken.
            for entry in list(self._watching.values()):
                self._watch_ended(entry, self._error)
            if self._coordinator is not None:
                with anyio.CancelScope(shield=True):
                    await self._coordinator.close()

    def __aiter__(self) -> DeploymentMonitor:
        return self

    async def __anext__(self) -> DeploymentEvent:
        if self._receive is None:
            raise RuntimeError("use 'async with DeploymentMonitor(...) as monitor:' first")
        while True:
            try:
                tracker, event = await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if self._error is not None:
                    raise self._error from None
                raise StopAsyncIteration from None
            if self._coordinator is None:
                tracker.delivered()
            elif not await self._commit(tracker, event):
                continue  # another process holds this deployment now and reports it
            self._events += 1
            return event

    # -- sharing with other processes (a coordinator) ----------------------------------------

    async def _guard(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Run coordinator work; its failure ends the stream with that error, not a hang."""
        try:
            await work()
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        for scope in self._scopes:  # the tasks close their streams: the reader sees the end
            scope.cancel()

    async def _claim(self, entry: _Entry) -> float | bool | None:
        """Before a poll: True to poll; a delay to look again; None when it ended elsewhere."""
        assert self._coordinator is not None
        key = (entry.tracker.instance_id, entry.tracker.deployment_id)
        claim = await self._coordinator.claim(key)
        if claim.state == "busy":
            return claim.retry_in
        if claim.state == "done":
            entry.tracker.final_emitted = True  # reported by the process that polled it
            entry.tracker.outcome = _reported(entry.tracker, claim.outcome)
            return None
        if claim.acquired:
            # Newly ours: continue from the checkpoint of the events handed out so far, by
            # whichever process that was (none yet: the one given to add()).
            checkpoint = claim.checkpoint or self._given.get(key)
            tracker = Tracker(*key, entry.tracker.options, checkpoint=checkpoint)
            # The stall clock goes on from the last change the checkpoint recorded (or from
            # this monitor's add() when there is none yet): a takeover does not reset it.
            tracker.begin(self._clock(), self._wall(), since=entry.tracker.progress)
            self._trackers[key] = entry.tracker = tracker
        return True

    async def _commit(self, tracker: Tracker, event: DeploymentEvent) -> bool:
        """Hand ``event`` out only once the checkpoint that includes it is recorded under
        this process's lease; False (drop it) when the lease was lost: the process that
        holds it now resumes from the last recorded checkpoint and reports it."""
        assert self._coordinator is not None
        key = (tracker.instance_id, tracker.deployment_id)
        if self._trackers.get(key) is not tracker:
            return False  # polled under a lease since lost and taken again: stale
        tracker.delivered()
        return await self._coordinator.commit(
            key, tracker.checkpoint(), final=event.kind == "final", outcome=event.outcome
        )

    # -- the machinery -----------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait(self, delay: float | None) -> None:
        """Until ``delay`` passes or the heap changes, whichever comes first."""
        changed = self._changed
        if delay is None:
            await changed.wait()
            return
        async with anyio.create_task_group() as tg:

            async def alarm() -> None:
                await self._sleep(delay)
                tg.cancel_scope.cancel()

            tg.start_soon(alarm)
            await changed.wait()
            tg.cancel_scope.cancel()

    def _idle(self) -> bool:
        if self._heap or self._in_flight:
            return False
        return self._closing or (self._until_idle and bool(self._trackers))

    async def _schedule(
        self,
        work: MemoryObjectSendStream[_Entry],
        events: MemoryObjectSendStream[_Sent],
    ) -> None:
        # Holding an events clone keeps the stream open until we decide it is over.
        async with work, events:
            while not self._idle():
                if self._heap:
                    delay = self._heap[0].due - self._clock()
                    if delay <= 0:
                        entry = heapq.heappop(self._heap)
                        self._in_flight += 1
                        await work.send(entry)  # waits for a free poller
                        continue
                    await self._wait(delay)
                else:
                    await self._wait(None)
            self._ended = True

    async def _poller(
        self,
        work: MemoryObjectReceiveStream[_Entry],
        events: MemoryObjectSendStream[_Sent],
    ) -> None:
        async with work, events:
            async for entry in work:
                try:
                    wait = await self._poll(entry, events)
                    if wait is not None:
                        entry.due = self._clock() + wait
                        if entry.deadline is not None:
                            entry.due = min(entry.due, entry.deadline)
                        entry.seq = next(self._seq)
                        heapq.heappush(self._heap, entry)
                finally:
                    self._in_flight -= 1
                    self._notify()

    async def _poll(self, entry: _Entry, events: MemoryObjectSendStream[_Sent]) -> float | None:
        """Poll one deployment, send its events; the delay until its next poll, None if done."""
        hooks = self._hooks
        if hooks is not None and entry.watch is None:
            # One watch per deployment, from add() (when its timeouts start) to its end.
            entry.watch = await tell_watch_started(
                hooks, entry.tracker, watch_id=entry.watch_id, started=entry.added
            )
            self._watching[entry.watch_id] = entry
        if self._coordinator is not None:
            try:
                go = await self._claim(entry)
            except Exception as exc:
                self._fail(exc)
                return None
            if go is None:
                key = (entry.tracker.instance_id, entry.tracker.deployment_id)
                self._outcomes[key] = entry.tracker.outcome or "error"
                self._watch_ended(entry)
                return None
            if go is not True:
                return float(go)
        tracker = entry.tracker
        remaining = None if entry.deadline is None else entry.deadline - self._clock()
        batch: list[DeploymentEvent] = []
        wait: float | None = None
        cut = False
        if remaining is None or remaining > 0:
            body: dict[str, Any] | None = None
            try:
                # Like the watcher: a poll the deadline cut short means timed out, even
                # when an injected ``clock`` has not reached the deadline.
                with anyio.move_on_after(remaining) as poll_scope:
                    self._polls += 1
                    tracker.polls += 1
                    if hooks is None or entry.watch is None:
                        body = await self._client.call(ACTION, tracker.params())
                    else:
                        with hooks.poll_scope(entry.watch):
                            body = await self._client.call(ACTION, tracker.params())
                cut = poll_scope.cancelled_caught
                if body is not None:
                    batch = tracker.on_answer(body, self._wall())
                    tracker.moved(batch, self._clock(), self._wall())
                    wait = tracker.interval
                    if hooks is not None:
                        await self._polled(entry, body, None, batch)
            except Exception as exc:
                self._poll_errors += 1
                if hooks is not None:
                    await self._polled(entry, None, exc, [])
                try:
                    event, wait = tracker.on_error(exc, self._wall())
                    batch = [event]
                except Exception as fatal:
                    batch = [self._failed(tracker, fatal)]
        # Timed out or stalled: the watcher's rule, in the watcher's order (Tracker.ending).
        now = self._clock()
        ending = tracker.ending(now, entry.deadline, cut=cut)
        if ending is not None:
            batch.append(tracker.end(ending, self._wall()))
        elif not tracker.done:
            wait = tracker.next_wait(now, wait if wait is not None else tracker.interval)
        for event in batch:
            # Delivered only once the reader takes it (__anext__): an event still in the
            # buffer, or whose send is cancelled, is not in a checkpoint.
            await events.send((tracker, event))
        if tracker.done:
            self._outcomes[(tracker.instance_id, tracker.deployment_id)] = (
                tracker.outcome or "error"
            )
            self._watch_ended(entry)
            return None
        return wait if wait is not None else tracker.interval

    async def _polled(
        self,
        entry: _Entry,
        body: Mapping[str, Any] | None,
        error: BaseException | None,
        batch: list[DeploymentEvent],
    ) -> None:
        assert self._hooks is not None
        await tell_poll(
            self._hooks,
            entry.tracker,
            watch_id=entry.watch_id,
            started=entry.added,
            now=self._clock(),
            body=body,
            error=error,
            events=batch,
        )

    def _watch_ended(self, entry: _Entry, error: BaseException | None = None) -> None:
        """Tell the hooks that this deployment's watch ended (once; only if it started)."""
        watch = entry.watch
        if watch is None or self._watching.pop(entry.watch_id, None) is None:
            return
        assert self._hooks is not None
        tell_watch_ended(self._hooks, watch, entry.tracker, now=self._clock(), error=error)

    def _failed(self, tracker: Tracker, exc: BaseException) -> DeploymentEvent:
        outcome, reason, code = classify(exc)
        get_logger().info(
            "aioedge.monitor_deployment_failed",
            instance_id=tracker.instance_id,
            deployment_id=tracker.deployment_id,
            outcome=outcome,
            reason=reason,
            error=code,
        )
        cause = root_cause(exc)
        message = str(exc) if not isinstance(cause, ApiError) else error_text(cause)
        return tracker.finish(outcome, reason, self._wall(), message=message, error=code)


def _reported(tracker: Tracker, outcome: str | None) -> WatchOutcome | None:
    """The outcome another process reported (only the word travels through the coordinator)."""
    if not outcome:
        return None
    final = DeploymentEvent(
        kind="final",
        deployment_id=tracker.deployment_id,
        instance_id=tracker.instance_id,
        outcome=cast(Outcome, outcome),
    )
    return WatchOutcome(final)
