"""Fleet rollouts, the I/O shell: start deployments wave by wave, watch them, keep a record.

Three tasks share one rollout: a *driver* starts the deployments of a wave (one at a time,
through the client's quota for CreateEdgeInstanceDeployment) and waits until the wave's
outcomes are in; a *forwarder* passes the events of the one :class:`DeploymentMonitor` that
watches every deployment (so the GetEdgeInstanceDeployment budget is shared round robin);
and the reader's own ``__anext__``, the only place an outcome is recorded: it writes the
outcome to the store, decides on abort (``_rollout.RolloutBook``), then hands the event out.

Resuming (``store=``): before CreateEdgeInstanceDeployment is sent, the store records the
intent and the newest deployment the instance had (``before``); after it, the deployment id.
A restarted rollout re-watches every recorded deployment that has no outcome, and for an
intent without an id asks QueryEdgeInstanceHistoricDeployment: a deployment newer than
``before`` is the one the lost call created (watched, not created again); none means the
call never ran, and the instance starts in its wave as usual.  An outcome is written before
its event is handed out, so after a crash it is neither reported again nor lost, except in
the instant between the write and the reader's use of the event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import EdgeError, TransportError, ValidationError, may_have_run
from ._log import get_logger
from ._redis import _load_redis
from ._rollout import (
    RolloutBook,
    RolloutEvent,
    RolloutPlan,
    RolloutResult,
    WaveSpec,
    check_min_finished,
    parse_share,
    parse_waves,
)
from ._settings import is_redis_url
from ._wire import is_final
from .watch import DeploymentEvent, DeploymentMonitor
from .watch._deploy import check_type, history_pages, start_deployment
from .watch._tracker import Caller, classify

__all__ = [
    "FileRolloutStore",
    "RedisRolloutStore",
    "Rollout",
    "RolloutStore",
    "newest_deployment",
    "open_store",
    "read_record",
    "record_text",
]

# --------------------------------------------------------------------------- stores


@runtime_checkable
class RolloutStore(Protocol):
    """Where a rollout keeps its record (a JSON-serialisable dict) between runs."""

    async def load(self) -> dict[str, Any] | None: ...

    async def save(self, record: Mapping[str, Any]) -> None: ...


def record_text(record: Mapping[str, Any]) -> str:
    """The stored text of a rollout record, the same for every store."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def read_record(text: str | bytes, *, where: str) -> dict[str, Any]:
    """The record a store holds (``where`` names it), read by one rule for every store:
    text that is not JSON, or JSON that is not an object, is a ValidationError naming
    ``store`` (never a new record written over it).  Whose record it is, and its version,
    ``RolloutBook.restore`` checks."""
    try:
        data = json.loads(text)
    except ValueError as exc:  # a UnicodeDecodeError of bytes too
        raise ValidationError(
            f"rollout store {where} is not JSON: {exc}", param="store", rule="format"
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(
            f"rollout store {where} holds no rollout record", param="store", rule="format"
        )
    return data


class FileRolloutStore:
    """The record in one JSON file, replaced atomically (write, fsync, rename) on each save."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"FileRolloutStore({str(self.path)!r})"

    async def load(self) -> dict[str, Any] | None:
        return await anyio.to_thread.run_sync(self._load)

    def _load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        return read_record(text, where=str(self.path))

    async def save(self, record: Mapping[str, Any]) -> None:
        await anyio.to_thread.run_sync(self._save, record_text(record))

    def _save(self, text: str) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class RedisRolloutStore:
    """The record as one Redis string (``{prefix}:rollout:{name}``)."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        prefix: str = "aioedge",
        connect_timeout: float = 2.0,
        socket_timeout: float = 2.0,
    ) -> None:
        redis_module, self._errors = _load_redis("a Redis rollout store", url)
        self.url = url
        self.key = f"{prefix}:rollout:{name}"
        self._redis = redis_module.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )

    def __repr__(self) -> str:
        return f"RedisRolloutStore(key={self.key!r})"

    async def load(self) -> dict[str, Any] | None:
        raw = await self._call(self._redis.get(self.key))
        if raw is None:
            return None
        return read_record(raw, where=f"key {self.key}")

    async def save(self, record: Mapping[str, Any]) -> None:
        await self._call(self._redis.set(self.key, record_text(record)))

    async def _call(self, op: Any) -> Any:
        try:
            return await op
        except self._errors as exc:
            raise TransportError(
                f"rollout store: Redis unavailable: {exc}", maybe_executed=False
            ) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_store(store: Any, plan: RolloutPlan, *, type: str) -> RolloutStore | None:
    """``store=`` of :meth:`EdgeClient.rollout` → a store: a path, a Redis URL, or a store."""
    if store is None:
        return None
    if is_redis_url(store):
        # One key per rollout: the same instances and type resume the same record.
        identity = json.dumps([type, list(plan.instance_ids)]).encode()
        digest = hashlib.sha256(identity).hexdigest()[:16]
        return RedisRolloutStore(store, name=digest)
    if isinstance(store, str | os.PathLike):
        folder = Path(store).parent
        if not folder.is_dir():
            raise ValidationError(
                f"store: the folder {str(folder)!r} does not exist", param="store", rule="path"
            )
        return FileRolloutStore(store)
    if isinstance(store, RolloutStore):
        return store
    raise ValidationError(
        f"store must be a file path, a redis:// URL or a store object, got {type_name(store)}",
        param="store",
        rule="type",
    )


def type_name(value: Any) -> str:
    return type(value).__name__


# --------------------------------------------------------------------------- looking up


async def newest_deployment(client: Caller, instance_id: str) -> tuple[str, int | None] | None:
    """``(deployment_id, status)`` of the instance's newest deployment (first page), or None."""
    async for entries in history_pages(client, instance_id, pages=1):
        if entries:
            _key, deployment_id, status = min(entries)
            return deployment_id, status
    return None


# --------------------------------------------------------------------------- the rollout


class Rollout:
    """An async iterator of :class:`RolloutEvent`; ``.result`` once it is over.

    ::

        async with client.rollout(ids, waves=(1, 0.1, 1.0), store="rollout.json") as rollout:
            async for event in rollout:
                ...
        rollout.result.failed

    ``async for`` without ``async with`` works too; leave early only inside ``async with``
    (or ``await rollout.aclose()``), which stops the watching.  Leaving early starts nothing
    more; with a store the next run continues.
    """

    def __init__(
        self,
        client: Caller,
        instance_ids: Sequence[str],
        *,
        waves: Sequence[WaveSpec] | str = (1, 0.25, 1.0),
        max_failures: float | str = 0.2,
        min_finished: int = 3,
        type: str = "deploy",
        store: Any = None,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        timeout: float | None = None,
        progress_timeout: float | None = None,
        pollers: int = 4,
        wall_clock: Any = None,
    ) -> None:
        self.type = check_type(type)
        self.min_finished = check_min_finished(min_finished, param="min_finished")
        self.max_failures = parse_share(max_failures, param="max_failures")
        if isinstance(waves, str):  # "1,25%,100%", as on the command line
            waves = parse_waves(waves)
        plan = RolloutPlan.build(instance_ids, waves)
        self._book = RolloutBook(plan, type=type)
        self._store = open_store(store, plan, type=type)
        self._client = client
        self._monitor = DeploymentMonitor(
            client,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            progress_timeout=progress_timeout,
            pollers=pollers,
            until_idle=False,
        )
        self._wall = wall_clock or time.time
        self._tg: TaskGroup | None = None
        self._receive: MemoryObjectReceiveStream[RolloutEvent] | None = None
        self._pending: deque[RolloutEvent] = deque()
        self._changed = anyio.Event()
        self._save_lock = anyio.Lock()
        self._error: BaseException | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._entered = False
        self._over = False

    # -- looking at it -----------------------------------------------------------------------

    @property
    def plan(self) -> RolloutPlan:
        """The instances in rollout order and the cumulative wave sizes (the stored ones on
        a resume)."""
        return self._book.plan

    @property
    def result(self) -> RolloutResult:
        """Succeeded / failed / skipped so far (final once the ``final`` event is out)."""
        return self._book.result()

    @property
    def monitor(self) -> DeploymentMonitor:
        """The one monitor that watches every deployment (its ``stats`` count the polls)."""
        return self._monitor

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Rollout:
        await self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop: start nothing more, stop watching (the store keeps what is known)."""
        self._over = True
        await self._stop()
        await self._close_store()

    async def _close_store(self) -> None:
        if isinstance(self._store, RedisRolloutStore):
            await self._store.aclose()

    def __aiter__(self) -> Rollout:
        return self

    async def __anext__(self) -> RolloutEvent:
        if self._pending:
            return self._pending.popleft()
        if self._over:
            raise StopAsyncIteration
        if not self._entered:
            await self._start()
            if self._pending:
                return self._pending.popleft()
        assert self._receive is not None
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return await self._finish()
        except BaseException:
            await self._stop()
            raise
        if item.kind == "deployment" and item.outcome is not None and item.instance_id:
            await self._record(item)
        return item

    # -- the reader's side: the one place outcomes are recorded --------------------------------

    async def _record(self, item: RolloutEvent) -> None:
        book = self._book
        assert item.instance_id is not None and item.outcome is not None
        aborts = book.record_outcome(
            item.instance_id,
            item.outcome,
            max_failures=self.max_failures,
            min_finished=self.min_finished,
        )
        if aborts:
            ok, bad = book.counts()
            reason = (
                f"{bad} of {ok + bad} finished deployments failed "
                f"({bad / (ok + bad):.0%} > {self.max_failures:.0%})"
            )
            get_logger().info("aioedge.rollout_aborted", failed=bad, finished=ok + bad)
            book.abort_reported = True
            self._pending.append(RolloutEvent(kind="aborted", time=self._wall(), reason=reason))
        await self._save()
        self._notify()

    async def _finish(self) -> RolloutEvent:
        await self._stop()
        if self._error is not None:
            raise self._error
        self._over = True
        self._book.final_reported = True
        await self._save()
        await self._close_store()
        result = self._book.result()
        get_logger().info(
            "aioedge.rollout_finished",
            succeeded=len(result.succeeded),
            failed=len(result.failed),
            skipped=len(result.skipped),
            aborted=result.aborted,
        )
        return RolloutEvent(kind="final", time=self._wall(), result=result)

    # -- machinery ---------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _save(self) -> None:
        if self._store is None:
            return
        async with self._save_lock:
            await self._store.save(self._book.to_record())

    async def _start(self) -> None:
        if self._entered:
            return
        self._entered = True
        if self._store is not None:
            try:
                record = await self._store.load()
                if record is not None:
                    self._book.restore(record)
            except BaseException:
                self._over = True
                await self._close_store()
                raise
            if record is not None:
                get_logger().info("aioedge.rollout_resumed", store=repr(self._store))
        book = self._book
        if book.aborted and not book.abort_reported:
            book.abort_reported = True
            self._pending.append(
                RolloutEvent(kind="aborted", time=self._wall(), reason="aborted before restart")
            )
        await self._monitor.__aenter__()
        send, receive = anyio.create_memory_object_stream[RolloutEvent](0)
        self._receive = receive
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        for task in (self._drive, self._forward):
            scope = anyio.CancelScope()  # of its own: _fail stops it, not the reader
            self._scopes.append(scope)
            self._tg.start_soon(self._within, scope, task, send.clone())
        send.close()

    @staticmethod
    async def _within(
        scope: anyio.CancelScope,
        task: Callable[[MemoryObjectSendStream[RolloutEvent]], Awaitable[None]],
        send: MemoryObjectSendStream[RolloutEvent],
    ) -> None:
        with scope:
            await task(send)

    async def _stop(self) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            with contextlib.suppress(BaseException):
                await tg.__aexit__(None, None, None)
            await self._monitor.__aexit__(None, None, None)
        if self._receive is not None:
            self._receive.close()

    def _fail(self, exc: Exception) -> None:
        """End the rollout with ``exc`` now (the reader raises it), not when the running
        deployments are done."""
        if self._error is None:
            self._error = exc
        for scope in self._scopes:  # their streams close: the reader sees the end
            scope.cancel()

    async def _forward(self, send: MemoryObjectSendStream[RolloutEvent]) -> None:
        async with send:
            try:
                async for event in self._monitor:
                    await send.send(self._wrap(event))
            except Exception as exc:
                self._fail(exc)

    def _wrap(self, event: DeploymentEvent) -> RolloutEvent:
        iid = event.instance_id
        return RolloutEvent(
            kind="deployment",
            time=event.time if event.time is not None else self._wall(),
            wave=None if iid is None else self._book.plan.wave_of(iid) + 1,
            instance_id=iid,
            deployment_id=event.deployment_id,
            event=event,
        )

    async def _drive(self, send: MemoryObjectSendStream[RolloutEvent]) -> None:
        book = self._book
        async with send:
            try:
                await self._reconcile()
                for wave in range(len(book.plan.waves)):
                    if book.aborted:
                        break
                    members = book.plan.members(wave)
                    if all(book.records[i].finished for i in members):
                        continue  # done before a restart
                    await send.send(
                        RolloutEvent(
                            kind="wave", time=self._wall(), wave=wave + 1, instance_ids=members
                        )
                    )
                    for iid in members:
                        if book.aborted:
                            break
                        if not book.records[iid].intent:
                            await self._start_one(iid, send)
                    while not book.aborted and not book.wave_done(wave):
                        await self._changed.wait()
            except Exception as exc:
                self._fail(exc)
            finally:
                self._monitor.close()

    async def _reconcile(self) -> None:
        """After a restart: watch what was started, find what may have been."""
        for iid, rec in self._book.records.items():
            if rec.finished or not rec.intent:
                continue
            if rec.deployment_id is None:
                found = await self._created_since(iid, rec.before)
                if found is None:
                    rec.intent = False  # the create never ran: start it in its wave
                else:
                    rec.deployment_id = found
                await self._save()
            if rec.deployment_id is not None:
                self._monitor.add(iid, rec.deployment_id)

    async def _created_since(self, instance_id: str, before: str | None) -> str | None:
        newest = await newest_deployment(self._client, instance_id)
        if newest is None or newest[0] == before:
            return None
        return newest[0]

    async def _start_one(self, iid: str, send: MemoryObjectSendStream[RolloutEvent]) -> None:
        rec = self._book.records[iid]
        log = get_logger()
        try:
            newest = await newest_deployment(self._client, iid)
            if newest is not None and not is_final(newest[1]):
                # Already deploying: join it rather than refuse (2.12.1 deploySheetAlreadyExist).
                rec.intent, rec.deployment_id, rec.attached = True, newest[0], True
                await self._save()
                log.info("aioedge.rollout_attached", instance_id=iid, deployment_id=newest[0])
                self._monitor.add(iid, newest[0])
                return
            rec.intent, rec.before = True, None if newest is None else newest[0]
            await self._save()  # the intent is on record before the create is sent
            try:
                dep_id, attached = await start_deployment(
                    self._client, iid, type=self.type, attach=True
                )
            except EdgeError as exc:
                if not may_have_run(exc):
                    raise
                # The create may have run: look, never send it twice.
                found = await self._created_since(iid, rec.before)
                if found is None:
                    raise
                dep_id, attached = found, False
        except EdgeError as exc:
            # Documented (docs/fleets.md): a start that fails ends with outcome "error" even
            # for an instance that does not exist; the reason says why.
            _, reason, code = classify(exc)
            log.info("aioedge.rollout_start_failed", instance_id=iid, reason=reason, error=code)
            rec.intent = True
            await send.send(
                RolloutEvent(
                    kind="deployment",
                    time=self._wall(),
                    wave=self._book.plan.wave_of(iid) + 1,
                    instance_id=iid,
                    event=DeploymentEvent(
                        kind="final",
                        deployment_id="",
                        instance_id=iid,
                        outcome="error",
                        reason=reason,
                        error=code,
                        message=getattr(exc, "message", str(exc)),
                        time=self._wall(),
                    ),
                )
            )
            return
        rec.deployment_id, rec.attached = dep_id, attached
        await self._save()
        log.info("aioedge.rollout_started", instance_id=iid, deployment_id=dep_id)
        self._monitor.add(iid, dep_id)
