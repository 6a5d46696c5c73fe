"""The loop that watches one deployment: poll GetEdgeInstanceDeployment, yield the events,
sleep, until the final one.

The decisions (what an answer or an error means, checkpoints) are ``Tracker``'s in
``_tracker.py``; this module calls, sleeps, yields and tells the hooks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import anyio

from .._errors import ValidationError
from .._hooks import PollInfo, WatchInfo, next_watch_id
from .._log import get_logger
from ._events import DeploymentEvent, WatchOutcome
from ._state import DeploymentState
from ._tracker import (
    ACTION,
    CHECKPOINT_VERSION,
    Caller,
    Ending,
    Tracker,
    WatchOptions,
    WatchRetry,
    tell_poll,
    tell_watch_ended,
    tell_watch_started,
    watch_hooks,
)

__all__ = [
    "CHECKPOINT_VERSION",
    "Caller",
    "DeploymentWatcher",
    "WatchRetry",
    "watch_deployment",
]

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
        retry: WatchRetry | None = WatchRetry(),  # noqa: B008 - frozen value object
        resolve: Resolver | None = None,
        progress_timeout: float | None = None,
        on_poll: Callable[[PollInfo], Any] | None = None,
    ) -> None:
        self._options = WatchOptions(
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=backoff,
            retry=retry,
            timeout=timeout,
            progress_timeout=progress_timeout,
        )
        self._hooks = watch_hooks(client, on_poll)
        if deployment_id is None and resolve is None:
            raise ValidationError(
                "deployment_id is required", param="deployment_id", rule="required"
            )
        self._client = client
        self._instance_id = instance_id
        self._deployment_id = deployment_id
        self._checkpoint = checkpoint
        self._clock = clock or time.monotonic
        self._sleep = sleep or anyio.sleep
        self._wall = wall_clock or time.time
        self._resolve = resolve
        self._attached = False
        self._tracker: Tracker | None = None
        if deployment_id is not None:
            self._tracker = Tracker(
                instance_id, deployment_id, self._options, checkpoint=checkpoint
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
            self._tracker = Tracker(
                self._instance_id, self._deployment_id, self._options, checkpoint=self._checkpoint
            )
        tracker = self._tracker
        hooks = self._hooks
        started = self._clock()
        watch: WatchInfo | None = None
        if hooks is not None:
            watch = await tell_watch_started(
                hooks, tracker, watch_id=next_watch_id(), started=started
            )
        try:
            async with contextlib.aclosing(self._loop(tracker, watch, started)) as events:
                async for event in events:
                    yield event
        except BaseException as exc:
            if hooks is not None and watch is not None:
                tell_watch_ended(hooks, watch, tracker, now=self._clock(), error=exc)
            raise
        if hooks is not None and watch is not None:
            tell_watch_ended(hooks, watch, tracker, now=self._clock())

    async def _loop(
        self, tracker: Tracker, watch: WatchInfo | None, started: float
    ) -> AsyncGenerator[DeploymentEvent, None]:
        hooks = self._hooks
        timeout = self._options.timeout
        tracker.begin(started, self._wall())
        ending: Ending = "timed_out"
        deadline = None if timeout is None else started + timeout
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
                    if hooks is None or watch is None:
                        body = await self._client.call(ACTION, tracker.params())
                    else:
                        with hooks.poll_scope(watch):
                            body = await self._client.call(ACTION, tracker.params())
                if body is not None:
                    events = tracker.on_answer(body, self._wall())
            except Exception as exc:  # on_error re-raises what is not transient
                failure = exc
                if watch is not None:
                    await self._polled(watch, tracker, None, exc, [])
                event, wait = tracker.on_error(exc, self._wall())
                log.info(
                    "aioedge.watch_poll_failed",
                    deployment_id=tracker.deployment_id,
                    error=event.error,
                    attempt=event.attempt,
                    retry_in=wait,
                )
                events = [event]
            tracker.moved(events, self._clock(), self._wall())
            if watch is not None and failure is None and body is not None:
                await self._polled(watch, tracker, body, None, events)
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
            # Timed out (the deadline passed, or cut the poll short) or stalled: the one
            # rule, in one order, that a monitor follows too.
            now = self._clock()
            ended = tracker.ending(now, deadline, cut=poll_scope.cancelled_caught)
            if ended is not None:
                ending = ended
                break
            if body is not None:
                wait = tracker.interval
            wait = tracker.next_wait(now, wait)
            if deadline is not None:
                left = deadline - self._clock()
                if wait >= left:
                    # The next poll would come at or after the deadline: wait for it and
                    # stop (not "sleep, then compare clocks", which float rounding of an
                    # injected clock can keep a hair short of the deadline for ever).
                    await self._sleep(max(0.0, left))
                    break
            await self._sleep(wait)
        event = tracker.end(ending, self._wall())
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
        tracker: Tracker,
        body: Mapping[str, Any] | None,
        error: BaseException | None,
        events: list[DeploymentEvent],
    ) -> None:
        assert self._hooks is not None
        await tell_poll(
            self._hooks,
            tracker,
            watch_id=watch.watch_id,
            started=watch.started,
            now=self._clock(),
            body=body,
            error=error,
            events=events,
        )


def watch_deployment(
    client: Caller, instance_id: str, deployment_id: str, **options: Any
) -> DeploymentWatcher:
    """Watch one deployment: an async iterator of events that ends after the final one;
    ``options`` are the keyword arguments of :class:`DeploymentWatcher`.

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
    return DeploymentWatcher(client, instance_id, deployment_id, **options)
