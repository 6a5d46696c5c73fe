"""The batch engine behind ``client.batch(...)`` and ``client.batch_iter(...)``.

Many ``(action, params)`` calls, run concurrently through the client's ``call`` (which waits
for the quota limiter), with these promises:

* **Every call gets a result, in its place.**  A failure is a ``BatchResult`` whose ``.error``
  is the ``EdgeError``; it cancels nothing.  Any other exception is a bug and propagates (after
  the calls still running have been cancelled and awaited).
* **Lists over an operation's per-call limit are split** (ERRATA "Lists": IotIds and
  DeviceConfigs ≤ 20, DriverIds ≤ 30 or 20), every chunk validated before the first one is
  sent, and merged back into one result in input order.  If only some chunks fail, the result
  is a ``PartialBatchError`` saying which items were applied, which were not and which may
  have been: nothing the caller sent is lost silently.
* **Bounded memory:** the input is pulled lazily, at most ``lookahead`` calls (or chunks)
  ahead of those running; at most ``concurrency`` calls run (by default, Q per Action and
  never more than ``default_concurrency`` in all: the client's connection pool) and at most
  ``lookahead`` results wait to be handed out.  A generator of a million calls is fine.
* **Every quota kept busy:** at most Q calls of an Action run at once (they could only wait
  for one of its Q slots otherwise), and the next call to start is the earliest one, in input
  order, whose Action is under that cap; so a backlog of a slow Action never starves a fast
  one in a mixed batch.
* **Nothing leaks:** cancelling the batch (or leaving ``async for`` early) cancels every call
  it started and waits for them before returning.

Why not an anyio task group: ``iter_batch`` is an async generator, and a task group must not
stay open across a ``yield`` (the consumer's own code would run inside its cancel scope, and an
abandoned generator would exit the scope from another task).  So the generator owns an
explicit set of tasks and tears it down in ``finally`` inside a shielded anyio cancel scope;
``run_batch`` is ``iter_batch`` drained under ``aclosing``.
"""

from __future__ import annotations

import asyncio
import html
import math
import re
import sys
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Sized,
)
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import anyio

from ._argtypes import check_count
from ._catalog import Operation, gather_lists, get_operation, validate_params
from ._display import can_redraw, progress_text
from ._errors import EdgeError, ValidationError, may_have_run, one_line
from ._protocol import request_id_of

__all__ = [
    "BatchResult",
    "BatchResults",
    "CallFn",
    "ChunkOutcome",
    "PartialBatchError",
    "PerAction",
    "ProgressFn",
    "iter_batch",
    "progress_printer",
    "quota_cap",
    "run_batch",
]

CallFn = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]
#: The client's send of wire parameters the batch validated already (not validated again).
SendFn = Callable[[Operation, dict[str, str]], Awaitable[dict[str, Any]]]
ProgressFn = Callable[[int, "int | None", "BatchResult"], object]

DEFAULT_CONCURRENCY = 16
# The default bound on calls in flight when per-Action caps apply: EdgeClient's default
# connection pool (``max_connections``); the client passes its own.
DEFAULT_POOL = 64


# --------------------------------------------------------------------------- results


def _error_text(error: BaseException) -> str:
    return one_line(f"{type(error).__name__}: {error}", 160)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """The outcome of one call of a batch: ``.value`` (the body) or ``.error``."""

    index: int
    action: str
    params: Mapping[str, Any] = field(repr=False)
    value: dict[str, Any] | None = field(default=None, repr=False)
    error: EdgeError | None = None
    chunks: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def request_id(self) -> str | None:
        if self.value is not None:
            return request_id_of(self.value)
        rid = getattr(self.error, "request_id", None)
        return rid if isinstance(rid, str) else None

    def unwrap(self) -> dict[str, Any]:
        """The body, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value

    def _detail(self) -> str:
        if self.error is not None:
            return _error_text(self.error)
        parts = []
        if self.chunks > 1:
            parts.append(f"{self.chunks} chunks")
        if self.request_id:
            parts.append(f"RequestId {self.request_id}")
        return ", ".join(parts)

    def __str__(self) -> str:
        status = "ok" if self.ok else "failed"
        detail = self._detail()
        return f"[{self.index}] {self.action}: {status}" + (f" ({detail})" if detail else "")

    def _html_row(self) -> str:
        colour = "#2e7d32" if self.ok else "#c62828"
        return (
            f"<tr><td>{self.index}</td><td><code>{html.escape(self.action)}</code></td>"
            f'<td style="color:{colour}">{"ok" if self.ok else "failed"}</td>'
            f"<td>{html.escape(self._detail())}</td></tr>"
        )

    def _repr_html_(self) -> str:
        return _html_table([self])


def _html_table(rows: Sequence[BatchResult], *, caption: str = "", limit: int = 50) -> str:
    head = "<tr><th>#</th><th>action</th><th>status</th><th>detail</th></tr>"
    body = "".join(r._html_row() for r in rows[:limit])
    if len(rows) > limit:
        body += f'<tr><td colspan="4">… {len(rows) - limit} more</td></tr>'
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}{head}{body}</table>"


class BatchResults(list[BatchResult]):
    """The results of ``client.batch``, in input order, with summaries."""

    @property
    def ok(self) -> list[BatchResult]:
        return [r for r in self if r.ok]

    @property
    def failed(self) -> list[BatchResult]:
        return [r for r in self if not r.ok]

    @property
    def all_ok(self) -> bool:
        return all(r.ok for r in self)

    @property
    def errors(self) -> list[EdgeError]:
        return [r.error for r in self if r.error is not None]

    def raise_first(self) -> None:
        """Raise the first failure's error, if any (for scripts that want all-or-nothing)."""
        for r in self:
            if r.error is not None:
                raise r.error

    def summary(self) -> str:
        failed = len(self.failed)
        return f"{len(self)} calls: {len(self) - failed} ok, {failed} failed"

    def _repr_html_(self) -> str:
        # Failures first: they are what a notebook user looks for.
        rows = sorted(self, key=lambda r: (r.ok, r.index))
        return _html_table(rows, caption=self.summary())


# --------------------------------------------------------------------------- chunks


Status = Literal["ok", "failed", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkOutcome:
    """One chunk of a split call: the items it carried (1-based ``first``..``last``)."""

    chunk: int
    first: int
    items: tuple[Any, ...] = field(repr=False)
    value: dict[str, Any] | None = field(default=None, repr=False)
    error: EdgeError | None = None
    read_only: bool = True

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1

    @property
    def status(self) -> Status:
        """``unknown``: a mutating chunk whose answer was lost or unreadable (may have run)."""
        if self.error is None:
            return "ok"
        if not self.read_only and may_have_run(self.error):
            return "unknown"
        return "failed"


def _ranges(outcomes: Iterable[ChunkOutcome]) -> str:
    """``1-40, 61-80``: contiguous chunks collapsed."""
    spans: list[list[int]] = []
    for o in outcomes:
        if spans and spans[-1][1] + 1 == o.first:
            spans[-1][1] = o.last
        else:
            spans.append([o.first, o.last])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


class PartialBatchError(EdgeError):
    """Some chunks of a split call failed; ``.chunks`` says what happened to every item.

    ``succeeded`` / ``failed`` / ``unknown`` are the items (IotIds, DriverIds or DeviceConfigs
    entries) in input order; ``unknown`` ones belong to mutating chunks whose answer was lost
    and may have been applied.  ``value`` merges the bodies of the chunks that succeeded.
    """

    def __init__(self, action: str, param: str, chunks: Sequence[ChunkOutcome]) -> None:
        self.action = action
        self.param = param
        self.chunks = tuple(chunks)
        good = [c for c in self.chunks if c.status == "ok"]
        self.value: dict[str, Any] | None = (
            _merge([c.value for c in good if c.value]) if good else None
        )
        super().__init__(self._render())

    def _of(self, status: Status) -> list[Any]:
        return [item for c in self.chunks if c.status == status for item in c.items]

    @property
    def succeeded(self) -> list[Any]:
        return self._of("ok")

    @property
    def failed(self) -> list[Any]:
        return self._of("failed")

    @property
    def unknown(self) -> list[Any]:
        return self._of("unknown")

    @property
    def errors(self) -> list[EdgeError]:
        return [c.error for c in self.chunks if c.error is not None]

    def _render(self) -> str:
        bad = [c for c in self.chunks if c.error is not None]
        n = len(self.chunks)
        parts = [f"{self.action}: {len(bad)} of {n} chunks failed"]
        for status, label in (("ok", "applied"), ("failed", "not applied"), ("unknown", "unknown")):
            group = [c for c in self.chunks if c.status == status]
            if group:
                parts.append(f"{self.param} items {_ranges(group)} {label}")
        shown = "; ".join(
            f"chunk {c.chunk + 1}: {_error_text(c.error)}" for c in bad[:3] if c.error
        )
        more = f"; … {len(bad) - 3} more" if len(bad) > 3 else ""
        return f"{'; '.join(parts)} ({shown}{more})"

    def __reduce__(self) -> Any:  # picklable for multiprocessing users
        return (type(self), (self.action, self.param, self.chunks))


def _merge(bodies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One body from several: lists (top level and under Data) concatenated in chunk order,
    every chunk's RequestId kept in ``RequestIds``."""
    merged = dict(bodies[0])
    for key, value in bodies[0].items():
        if isinstance(value, list):
            merged[key] = [x for b in bodies for x in (b.get(key) or [])]
        elif key == "Data" and isinstance(value, dict):
            data = dict(value)
            for dkey, dvalue in value.items():
                if isinstance(dvalue, list):
                    data[dkey] = [
                        x for b in bodies for x in ((b.get("Data") or {}).get(dkey) or [])
                    ]
            merged[key] = data
    merged["RequestIds"] = [request_id_of(b) for b in bodies]
    return merged


# --------------------------------------------------------------------------- planning


@dataclass(slots=True)
class _Item:
    """One input call on its way through the engine."""

    index: int
    action: str
    params: Mapping[str, Any]
    op: Operation
    calls: list[Mapping[str, Any]]  # what goes to ``call``: one, or one per chunk
    wires: list[dict[str, str]]  # the same, validated: what goes to ``send``
    chunk_param: str | None = None
    chunk_size: int = 0
    items: list[Any] = field(default_factory=list)
    outcomes: list[ChunkOutcome | None] = field(default_factory=list)
    remaining: int = 0


_LABEL = re.compile(r"^([A-Za-z]+)\.(\d+)(.*)$")


def _shift(error: ValidationError, offset: int) -> ValidationError:
    """Renumber ``IotIds.3`` in chunk k to the caller's own position ``IotIds.43``."""
    m = _LABEL.match(error.param or "")
    if m is None or offset == 0:
        return error
    old = error.param or ""
    new = f"{m.group(1)}.{int(m.group(2)) + offset}{m.group(3)}"
    return ValidationError(
        error.message.replace(old, new), param=new, rule=error.rule, action=error.action
    )


def _plan(index: int, action: str, params: Mapping[str, Any]) -> _Item:
    """Look the call up and validate it (every chunk) before any I/O; raises ValidationError.

    The list to split is read as validation reads it (``_catalog.gather_lists``: a list or
    ``IotIds.1``… keys); every other key goes to every chunk as it was given, so a chunk is
    refused for exactly what ``call`` refuses."""
    op = get_operation(action)
    params = params if params is not None else {}
    if not isinstance(params, Mapping):
        validate_params(op, params)  # raises the catalog's own "must be a mapping" error
    name = op.chunk_param
    p = op.param(name) if name else None
    if name is None or p is None or p.max_items is None:
        return _Item(index, action, params, op, [params], [validate_params(op, params)])
    gathered = gather_lists(op, params)
    value = gathered.get(name)
    if value is None or isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        return _Item(index, action, params, op, [params], [validate_params(op, params)])
    items = list(value)  # a generator is read once
    if len(items) <= p.max_items:
        single = gathered | {name: items}
        return _Item(index, action, params, op, [single], [validate_params(op, single)])
    size = p.max_items
    calls: list[Mapping[str, Any]] = []
    wires: list[dict[str, str]] = []
    for start in range(0, len(items), size):
        chunk = gathered | {name: items[start : start + size]}
        try:
            wires.append(validate_params(op, chunk))
        except ValidationError as err:
            raise _shift(err, start) from None
        calls.append(chunk)
    return _Item(
        index,
        action,
        params,
        op,
        calls,
        wires,
        chunk_param=name,
        chunk_size=size,
        items=items,
    )


def _finish(item: _Item) -> BatchResult:
    """Turn an item's chunk outcomes into its one result."""
    outcomes = [o for o in item.outcomes if o is not None]
    n = len(item.calls)
    if n == 1:
        o = outcomes[0]
        return BatchResult(
            index=item.index, action=item.action, params=item.params, value=o.value, error=o.error
        )
    if all(o.error is None for o in outcomes):
        value = _merge([o.value or {} for o in outcomes])
        return BatchResult(
            index=item.index, action=item.action, params=item.params, value=value, chunks=n
        )
    error = PartialBatchError(item.action, item.chunk_param or "", outcomes)
    return BatchResult(
        index=item.index, action=item.action, params=item.params, error=error, chunks=n
    )


# --------------------------------------------------------------------------- the engine

PerAction = Callable[[Operation], "int | None"]
DEFAULT_LOOKAHEAD = 4096


def quota_cap(op: Operation) -> int:
    """At most Q calls of an Action at once: with Q slots, more could only wait for one."""
    return max(1, math.floor(op.qps))


class _Dispatcher:
    """Which pulled unit starts next: the earliest, in input order, whose Action is under its
    cap.  Without per-Action caps, calls of a slow Action (5 QPS) waiting for their slots would
    fill the whole concurrency and starve a fast one (50 QPS) queued behind them.  Pure."""

    __slots__ = ("_caps", "_per_action", "_queues", "_running", "buffered")

    def __init__(self, per_action: PerAction | None) -> None:
        self._per_action = per_action
        self._queues: dict[str, deque[tuple[_Item, int]]] = {}
        self._running: dict[str, int] = {}
        self._caps: dict[str, int | None] = {}
        self.buffered = 0

    def add(self, unit: tuple[_Item, int]) -> None:
        action = unit[0].action
        queue = self._queues.get(action)
        if queue is None:
            queue = self._queues[action] = deque()
            self._running.setdefault(action, 0)
            op = unit[0].op
            cap = self._per_action(op) if self._per_action else None
            self._caps[action] = None if cap is None else max(1, cap)
        queue.append(unit)
        self.buffered += 1

    def next(self) -> tuple[_Item, int] | None:
        best: deque[tuple[_Item, int]] | None = None
        best_key = (0, 0)
        for action, queue in self._queues.items():
            if not queue:
                continue
            cap = self._caps[action]
            if cap is not None and self._running[action] >= cap:
                continue
            item, k = queue[0]
            if best is None or (item.index, k) < best_key:
                best, best_key = queue, (item.index, k)
        if best is None:
            return None
        unit = best.popleft()
        self._running[unit[0].action] += 1
        self.buffered -= 1
        return unit

    def finished(self, action: str) -> None:
        self._running[action] -= 1


async def _run_unit(
    call: CallFn, send: SendFn | None, item: _Item, k: int
) -> tuple[_Item, int, Any, EdgeError | None]:
    try:
        if send is not None:  # validated once, in _plan
            return item, k, await send(item.op, item.wires[k]), None
        return item, k, await call(item.action, item.calls[k]), None
    except EdgeError as err:  # only the library's own errors become results
        return item, k, None, err


def _record(item: _Item, k: int, value: Any, error: EdgeError | None) -> bool:
    """Store chunk k's outcome; True when the item is complete."""
    start = k * item.chunk_size
    chunk_items = tuple(item.items[start : start + item.chunk_size]) if item.chunk_size else ()
    item.outcomes[k] = ChunkOutcome(
        chunk=k,
        first=start + 1,
        items=chunk_items,
        value=value if error is None else None,
        error=error,
        read_only=item.op.read_only,
    )
    item.remaining -= 1
    return item.remaining == 0


async def iter_batch(
    call: CallFn,
    calls: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    concurrency: int | None = None,
    on_progress: ProgressFn | None = None,
    per_action: PerAction | None = quota_cap,
    lookahead: int = DEFAULT_LOOKAHEAD,
    default_concurrency: int = DEFAULT_POOL,
    send: SendFn | None = None,
) -> AsyncGenerator[tuple[int, BatchResult], None]:
    """Yield ``(index, result)`` for every call, as the calls complete.

    ``call(action, params)`` is the client's ``call``; with ``send(op, wire)`` the parameters
    every call was validated to (before any I/O) go there instead, not validated again.
    ``on_progress(done, total, result)``
    runs before each result is yielded (``total`` is None for inputs without ``len``).
    At most ``per_action(op)`` calls of one Action run at once (default: its quota; None: no
    per-Action cap, e.g. without client-side rate limiting) and at most ``concurrency`` in
    all.  A running call may be waiting for its quota slot, so a ``concurrency`` below the sum
    of the quotas of a mixed batch leaves quota unused; the default (None) is
    ``default_concurrency`` (the client passes its connection-pool size: more calls in flight
    would only wait for a socket, their timeouts running), ``DEFAULT_CONCURRENCY`` when there
    are no per-Action caps.  The bound is always finite, so an Action without a cap (a
    limiter override of ``math.inf``) cannot start a whole input at once.
    Up to ``lookahead`` calls (or chunks) are read ahead of those running, so that every
    Action of a mixed input keeps its quota busy.  Leave the loop early with
    ``contextlib.aclosing`` to cancel the rest at once.
    """
    # Counts (ValidationError, a ValueError): a NaN bound used to pass '< 1' and then let
    # no call start, so the batch waited for ever.
    check_count(default_concurrency, param="default_concurrency", minimum=1)
    if concurrency is None:
        concurrency = DEFAULT_CONCURRENCY if per_action is None else default_concurrency
    check_count(concurrency, param="concurrency", minimum=1)
    check_count(lookahead, param="lookahead", minimum=1)
    total = len(calls) if isinstance(calls, Sized) else None
    loop = asyncio.get_running_loop()
    source = _units(calls)
    pending = _Dispatcher(per_action)
    exhausted = False
    running: set[asyncio.Task[tuple[_Item, int, Any, EdgeError | None]]] = set()
    finished: deque[asyncio.Task[tuple[_Item, int, Any, EdgeError | None]]] = deque()
    ready: deque[BatchResult] = deque()
    wakeup: list[asyncio.Future[None]] = []
    done = 0

    def on_done(task: asyncio.Task[tuple[_Item, int, Any, EdgeError | None]]) -> None:
        finished.append(task)
        if wakeup and not wakeup[0].done():
            wakeup[0].set_result(None)

    try:
        while True:
            while not exhausted and pending.buffered < lookahead and len(ready) < lookahead:
                unit = next(source, None)
                if unit is None:
                    exhausted = True
                elif isinstance(unit, BatchResult):
                    ready.append(unit)  # rejected before any I/O
                else:
                    pending.add(unit)
            while len(running) < concurrency:
                start = pending.next()
                if start is None:
                    break
                task = loop.create_task(_run_unit(call, send, *start))
                running.add(task)
                task.add_done_callback(on_done)
            while ready:
                result = ready.popleft()
                done += 1
                if on_progress is not None:
                    on_progress(done, total, result)
                yield result.index, result
            if exhausted and not running and not finished and not pending.buffered:
                return
            if not finished:
                wakeup.append(loop.create_future())
                try:
                    await wakeup[0]
                finally:
                    wakeup.clear()
            while finished:
                task = finished.popleft()
                running.discard(task)
                item, k, value, error = task.result()  # a bug in ``call`` propagates here
                pending.finished(item.action)
                if _record(item, k, value, error):
                    ready.append(_finish(item))
    finally:
        for task in running:
            task.cancel()
        if running:
            # Wait for the cancelled calls even if we are being cancelled ourselves.
            with anyio.CancelScope(shield=True):
                await asyncio.gather(*running, return_exceptions=True)


def _units(
    calls: Iterable[tuple[str, Mapping[str, Any]]],
) -> Iterator[BatchResult | tuple[_Item, int]]:
    """Pull the input lazily: a result for a call rejected up front, else its chunks."""
    for index, pair in enumerate(calls):
        try:
            action, params = pair
        except (TypeError, ValueError):
            err = ValidationError(
                f"batch item {index} must be an (action, params) pair, got {type(pair).__name__}",
                param="calls",
                rule="type",
            )
            yield BatchResult(index=index, action="?", params={}, error=err)
            continue
        try:
            item = _plan(index, action, params)
        except ValidationError as err:
            yield BatchResult(index=index, action=str(action), params=params or {}, error=err)
            continue
        item.outcomes = [None] * len(item.calls)
        item.remaining = len(item.calls)
        for k in range(len(item.calls)):
            yield item, k


async def run_batch(
    call: CallFn, calls: Iterable[tuple[str, Mapping[str, Any]]], **options: Any
) -> BatchResults:
    """Run every call; the results in input order (each ``.ok``, ``.value``, ``.error``).

    Options as for :func:`iter_batch`.
    """
    slots: list[BatchResult | None] = []
    batch = iter_batch(call, calls, **options)
    async with aclosing(batch) as results:
        async for index, result in results:
            if index >= len(slots):
                slots.extend([None] * (index + 1 - len(slots)))
            slots[index] = result
    out = BatchResults()
    for r in slots:
        assert r is not None  # every index is yielded exactly once
        out.append(r)
    return out


# --------------------------------------------------------------------------- progress


def progress_printer(
    stream: TextIO | None = None,
    *,
    label: str = "batch",
    min_interval: float = 0.1,
    force: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> ProgressFn:
    """An ``on_progress`` hook that keeps one status line up to date on a terminal.

    Writes nothing when ``stream`` (default ``sys.stderr``) is not a terminal that can redraw
    a line (a TTY, not ``TERM=dumb``), unless ``force``;
    in a Jupyter notebook (no ``stream`` given) it draws an HTML progress bar in the cell.
    Redraws at most every ``min_interval`` seconds, and always for the last result.
    """
    out = stream if stream is not None else sys.stderr
    if not force and not can_redraw(out):
        if stream is None:
            from ._notebook import in_notebook, notebook_progress

            if in_notebook():  # Jupyter: a progress bar in the cell, not on stderr
                return notebook_progress(label, min_interval=min_interval)
        return lambda done, total, result: None
    state = {"failed": 0, "last": float("-inf")}

    def hook(done: int, total: int | None, result: BatchResult) -> None:
        if not result.ok:
            state["failed"] += 1
        final = total is not None and done >= total
        now = clock()
        if not final and now - state["last"] < min_interval:
            return
        state["last"] = now
        line = "\r" + progress_text(label, done, total, int(state["failed"]))
        out.write(line + ("\n" if final else ""))
        out.flush()

    return hook
