"""The batch engine with a fake ``call``: order, isolation, chunking, merging, partial failure,
cancellation, bounded memory, progress.  Timing runs on the virtual-time loop (no real sleeps).
"""

from __future__ import annotations

import asyncio
import io
import pickle
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import aclosing
from typing import Any

import pytest

from aioedge._batch import (
    BatchResult,
    BatchResults,
    ChunkOutcome,
    PartialBatchError,
    iter_batch,
    progress_printer,
    quota_cap,
    run_batch,
)
from aioedge._catalog import OPERATIONS
from aioedge._errors import (
    NotFoundError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
    ValidationError,
)
from aioedge._ratelimit import LocalRateLimiter

from .test_ratelimit import VirtualTimeLoop, run_virtual


def iot_id(i: int) -> str:
    return f"dev{i:04d}"


class FakeService:
    """A ``call`` that answers after a seeded virtual latency and records everything."""

    def __init__(self, *, seed: int = 0, latency: float = 0.05) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.running = 0
        self.max_running = 0
        self.cancelled = 0
        self.failures: dict[tuple[str, str], Exception] = {}  # (action, first id) → error
        self.n = 0

    async def __call__(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((action, dict(params)))
        self.n += 1
        rid = f"REQ-{self.n}"
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.rng.uniform(0, self.latency))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        ids = params.get("IotIds") or params.get("DriverIds") or []
        if not ids and "DeviceConfigs" in params:
            ids = [c["IotId"] for c in params["DeviceConfigs"]]
        key = (action, ids[0] if ids else str(params.get("InstanceId")))
        if key in self.failures:
            raise self.failures[key]
        body: dict[str, Any] = {"RequestId": rid, "Success": True, "Code": "Success"}
        if action == "BatchGetEdgeInstanceDeviceConfig":
            body["DeviceConfigList"] = [{"IotId": i, "Config": {"Content": "{}"}} for i in ids]
        elif action == "BatchGetEdgeDriver":
            body["DriverList"] = [{"DriverId": i} for i in ids]
        elif action == "GetEdgeInstance":
            body["Data"] = {"InstanceId": params["InstanceId"]}
        return body


def gets(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [("GetEdgeInstance", {"InstanceId": f"inst{i}"}) for i in range(n)]


# --------------------------------------------------------------------------- basics


def test_results_in_input_order_iteration_in_completion_order() -> None:
    service = FakeService(seed=3)

    async def main(loop: VirtualTimeLoop) -> tuple[BatchResults, list[int]]:
        results = await run_batch(service, gets(50), concurrency=8)
        order = [i async for i, _ in iter_batch(FakeService(seed=3), gets(50), concurrency=8)]
        return results, order

    results, order = run_virtual(main)
    assert isinstance(results, list) and isinstance(results, BatchResults)
    assert [r.index for r in results] == list(range(50))
    assert [r.value["Data"]["InstanceId"] for r in results if r.value] == [
        f"inst{i}" for i in range(50)
    ]
    assert all(r.ok and r.error is None for r in results)
    assert sorted(order) == list(range(50))
    assert order != list(range(50))  # random latencies: completion order differs
    assert service.max_running == 8


def test_one_failure_cancels_nothing() -> None:
    service = FakeService()
    service.failures[("GetEdgeInstance", "inst3")] = NotFoundError("iot.edge.InstanceNotExist")
    service.failures[("GetEdgeInstance", "inst7")] = ThrottledError("Throttling.User")

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(service, gets(10), concurrency=4)

    results = run_virtual(main)
    assert [r.ok for r in results] == [i not in (3, 7) for i in range(10)]
    assert isinstance(results[3].error, NotFoundError)
    assert isinstance(results[7].error, ThrottledError)
    assert results[3].value is None
    assert service.cancelled == 0
    assert len(results.ok) == 8 and len(results.failed) == 2 and not results.all_ok
    assert results.errors == [results[3].error, results[7].error]
    assert results.summary() == "10 calls: 8 ok, 2 failed"
    with pytest.raises(NotFoundError):
        results.raise_first()
    with pytest.raises(NotFoundError):
        results[3].unwrap()
    assert results[0].unwrap() is results[0].value


def test_other_exceptions_propagate_and_cancel_the_rest() -> None:
    service = FakeService(latency=1.0)

    async def boom(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if params["InstanceId"] == "inst5":
            await asyncio.sleep(0.001)
            raise KeyError("a bug")
        return await service(action, params)

    async def main(loop: VirtualTimeLoop) -> None:
        with pytest.raises(KeyError):
            await run_batch(boom, gets(20), concurrency=8)
        assert service.running == 0
        assert service.cancelled >= 5
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run_virtual(main)


def test_bad_inputs_become_validation_results_without_io() -> None:
    service = FakeService()
    calls: list[Any] = [
        ("GetEdgeInstance", {"InstanceId": "ok"}),
        ("GetEdgeInstanse", {"InstanceId": "x"}),
        ("GetEdgeInstance", {}),
        ("GetEdgeInstance", {"Instance": "x"}),
        "not a pair",
        ("GetEdgeInstance", None),
    ]

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(service, calls)

    r = run_virtual(main)
    assert r[0].ok
    assert isinstance(r[1].error, ValidationError) and "did you mean" in str(r[1].error)
    assert isinstance(r[2].error, ValidationError) and r[2].error.param == "InstanceId"
    assert isinstance(r[3].error, ValidationError) and r[3].error.rule == "unknown"
    assert isinstance(r[4].error, ValidationError) and r[4].action == "?"
    assert isinstance(r[5].error, ValidationError) and r[5].error.rule == "required"
    assert [a for a, _ in service.calls] == ["GetEdgeInstance"]  # only the valid one was sent


def test_concurrency_must_be_positive() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        with pytest.raises(ValueError):
            await run_batch(FakeService(), gets(1), concurrency=0)

    run_virtual(main)


# --------------------------------------------------------------------------- chunking


def test_200_iot_ids_become_10_calls_merged_in_order() -> None:
    service = FakeService(seed=1)
    ids = [iot_id(i) for i in range(200)]

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(
            service,
            [("BatchGetEdgeInstanceDeviceConfig", {"InstanceId": "i1", "IotIds": ids})],
            concurrency=4,
        )

    (result,) = run_virtual(main)
    assert len(service.calls) == 10
    assert all(len(p["IotIds"]) == 20 and p["InstanceId"] == "i1" for _, p in service.calls)
    assert sorted(x for _, p in service.calls for x in p["IotIds"]) == ids
    assert result.ok and result.chunks == 10
    assert result.value is not None
    assert [c["IotId"] for c in result.value["DeviceConfigList"]] == ids  # input order
    assert len(result.value["RequestIds"]) == 10
    assert result.value["RequestId"] == result.value["RequestIds"][0]
    assert "10 chunks" in str(result)


@pytest.mark.parametrize(
    ("action", "param", "n", "sizes"),
    [
        ("BatchGetEdgeDriver", "DriverIds", 65, [30, 30, 5]),
        ("BatchGetEdgeInstanceDriverConfigs", "DriverIds", 41, [20, 20, 1]),
        ("BatchBindDeviceToEdgeInstanceWithDriver", "IotIds", 45, [20, 20, 5]),
        ("BatchUnbindDeviceFromEdgeInstance", "IotIds", 20, [20]),
    ],
)
def test_chunk_sizes_follow_the_catalog(action: str, param: str, n: int, sizes: list[int]) -> None:
    service = FakeService()
    params: dict[str, Any] = {"InstanceId": "i1", param: [iot_id(i) for i in range(n)]}
    if action == "BatchBindDeviceToEdgeInstanceWithDriver":
        params["DriverId"] = "drv1"
    if action == "BatchGetEdgeDriver":
        del params["InstanceId"]

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(service, [(action, params)])

    (result,) = run_virtual(main)
    assert result.ok, result.error
    assert sorted(len(p[param]) for _, p in service.calls) == sorted(sizes)
    assert result.chunks == len(sizes)
    assert result.value is not None
    if len(sizes) > 1:  # a mutating merge keeps every chunk's RequestId
        assert sorted(result.value["RequestIds"]) == sorted(
            f"REQ-{i}" for i in range(1, len(sizes) + 1)
        )
    else:
        assert "RequestIds" not in result.value


def test_device_configs_and_flattened_keys_are_chunked_too() -> None:
    service = FakeService()
    configs = [{"IotId": iot_id(i), "Content": f'{{"n": {i}}}'} for i in range(41)]
    flat = {f"IotIds.{i + 1}": iot_id(i) for i in range(25)}

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(
            service,
            [
                (
                    "BatchSetEdgeInstanceDeviceConfig",
                    {"InstanceId": "i1", "DeviceConfigs": configs},
                ),
                ("BatchClearEdgeInstanceDeviceConfig", {"InstanceId": "i1", **flat}),
                (
                    "BatchGetEdgeInstanceDeviceConfig",
                    {"InstanceId": "i1", "IotIds": iter(["a", "b"])},
                ),
            ],
        )

    r = run_virtual(main)
    assert all(x.ok for x in r), [str(x) for x in r]
    sent = [p for a, p in service.calls if a == "BatchSetEdgeInstanceDeviceConfig"]
    assert sorted(len(p["DeviceConfigs"]) for p in sent) == [1, 20, 20]
    assert (
        sorted((c for p in sent for c in p["DeviceConfigs"]), key=lambda c: c["IotId"]) == configs
    )
    cleared = [p for a, p in service.calls if a == "BatchClearEdgeInstanceDeviceConfig"]
    assert sorted(len(p["IotIds"]) for p in cleared) == [5, 20]
    assert all(not any(k.startswith("IotIds.") for k in p) for p in cleared)
    assert r[2].chunks == 1 and r[2].value is not None
    assert [c["IotId"] for c in r[2].value["DeviceConfigList"]] == ["a", "b"]  # generator read once


def test_every_chunk_is_validated_before_the_first_is_sent() -> None:
    service = FakeService()
    ids: list[Any] = [iot_id(i) for i in range(45)]
    ids[42] = 12345  # item 43 is not a string

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(
            service,
            [("BatchUnbindDeviceFromEdgeInstance", {"InstanceId": "i1", "IotIds": ids})],
        )

    (result,) = run_virtual(main)
    assert service.calls == []
    assert isinstance(result.error, ValidationError)
    assert result.error.param == "IotIds.43"  # the caller's own position, not the chunk's
    assert "IotIds.43" in str(result.error)


def test_partial_failure_says_which_items_were_applied() -> None:
    service = FakeService()
    ids = [iot_id(i) for i in range(100)]
    service.failures[("BatchBindDeviceToEdgeInstanceWithDriver", iot_id(20))] = NotFoundError(
        "iot.device.NotExistedDevice", request_id="REQ-NF"
    )
    service.failures[("BatchBindDeviceToEdgeInstanceWithDriver", iot_id(60))] = TransportError(
        "connection lost after sending", maybe_executed=True
    )
    service.failures[("BatchBindDeviceToEdgeInstanceWithDriver", iot_id(80))] = (
        ServiceUnavailableError("ServiceUnavailable", http_status=503)
    )

    async def main(loop: VirtualTimeLoop) -> BatchResults:
        return await run_batch(
            service,
            [
                (
                    "BatchBindDeviceToEdgeInstanceWithDriver",
                    {"InstanceId": "i1", "DriverId": "d1", "IotIds": ids},
                )
            ],
        )

    (result,) = run_virtual(main)
    err = result.error
    assert isinstance(err, PartialBatchError)
    assert len(service.calls) == 5  # every chunk was tried
    assert err.succeeded == ids[:20] + ids[40:60]
    assert err.failed == ids[20:40] + ids[80:100]
    assert err.unknown == ids[60:80]
    assert [c.status for c in err.chunks] == ["ok", "failed", "ok", "unknown", "failed"]
    assert sorted(err.succeeded + err.failed + err.unknown) == ids  # nothing lost
    assert len(err.errors) == 3
    text = str(err)
    assert "3 of 5 chunks failed" in text
    assert "IotIds items 1-20, 41-60 applied" in text
    assert "21-40, 81-100 not applied" in text
    assert "61-80 unknown" in text
    assert "NotFoundError" in text
    assert err.value is not None and len(err.value["RequestIds"]) == 2
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == text and again.unknown == err.unknown
    assert not result.ok and result.chunks == 5


def test_read_only_chunks_are_never_unknown() -> None:
    outcome = ChunkOutcome(
        chunk=0, first=1, items=("a",), error=TransportError("lost", maybe_executed=True)
    )
    assert outcome.status == "failed"
    mutating = ChunkOutcome(
        chunk=0,
        first=1,
        items=("a",),
        error=TransportError("lost", maybe_executed=True),
        read_only=False,
    )
    assert mutating.status == "unknown"
    refused = ChunkOutcome(
        chunk=0,
        first=1,
        items=("a",),
        error=TransportError("refused", maybe_executed=False),
        read_only=False,
    )
    assert refused.status == "failed"


# --------------------------------------------------------------------------- cancellation, memory


def test_cancelling_a_batch_cancels_its_calls_and_leaks_nothing() -> None:
    service = FakeService(latency=10.0)

    async def main(loop: VirtualTimeLoop) -> None:
        task = asyncio.create_task(run_batch(service, gets(100), concurrency=10))
        await asyncio.sleep(0.5)
        assert service.running == 10
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert service.running == 0
        assert service.cancelled == 10
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert len(service.calls) < 100  # the rest were never started

    run_virtual(main)


def test_leaving_the_iterator_early_cancels_the_rest() -> None:
    service = FakeService(latency=1.0)

    async def main(loop: VirtualTimeLoop) -> None:
        seen = 0
        async with aclosing(iter_batch(service, gets(1000), concurrency=16)) as results:
            async for _ in results:
                seen += 1
                if seen == 5:
                    break
        assert service.running == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert len(service.calls) < 40

    run_virtual(main)


def test_lazy_input_is_pulled_as_slots_free() -> None:
    service = FakeService(latency=0.01)
    pulled = 0
    most_ahead = 0

    def endless() -> Iterator[tuple[str, dict[str, Any]]]:
        nonlocal pulled, most_ahead
        i = 0
        while True:
            pulled += 1
            most_ahead = max(most_ahead, pulled - completed)
            yield ("GetEdgeInstance", {"InstanceId": f"inst{i}"})
            i += 1

    completed = 0

    def progress(done: int, total: int | None, result: BatchResult) -> None:
        nonlocal completed
        completed = done
        assert total is None

    async def main(loop: VirtualTimeLoop) -> int:
        n = 0
        async with aclosing(
            iter_batch(service, endless(), concurrency=8, lookahead=8, on_progress=progress)
        ) as results:
            async for _ in results:
                n += 1
                if n == 5000:
                    break
        return n

    assert run_virtual(main) == 5000
    # Never more than the calls running plus the lookahead (plus the one being pulled).
    assert most_ahead <= 8 + 8 + 1
    assert service.max_running <= 8


def test_progress_hook_counts_every_result() -> None:
    seen: list[tuple[int, int | None, bool]] = []
    service = FakeService()
    service.failures[("GetEdgeInstance", "inst2")] = NotFoundError("x")

    async def main(loop: VirtualTimeLoop) -> None:
        await run_batch(service, gets(6), on_progress=lambda d, t, r: seen.append((d, t, r.ok)))

    run_virtual(main)
    assert [d for d, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert {t for _, t, _ in seen} == {6}
    assert sum(1 for *_, ok in seen if not ok) == 1


# --------------------------------------------------------------------------- mixed quotas


def _limited(loop: VirtualTimeLoop) -> tuple[Any, list[tuple[str, float]]]:
    """A ``call`` behind a real LocalRateLimiter at the catalog quotas, on virtual time."""
    limiter = LocalRateLimiter(clock=loop.time)
    sent: list[tuple[str, float]] = []

    async def call(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        async with limiter.slot("AK", action, OPERATIONS[action].qps):
            sent.append((action, loop.time()))
            await asyncio.sleep(0.003)
        return {"RequestId": "R"}

    return call, sent


def _mixed() -> list[tuple[str, dict[str, Any]]]:
    # A backlog of 40 calls at 5 QPS (7 s at the quota), then 150 at 50 QPS (3 s).
    slow = ("QueryEdgeDriver", {"Type": 1, "PageSize": 10})
    fast = ("QueryDeviceProvisioning", {"ProductKey": "pk", "DeviceName": "d"})
    return [slow] * 40 + [fast] * 150


async def _run_mixed(loop: VirtualTimeLoop, **options: Any) -> tuple[float, float, float]:
    """(elapsed, first and last start of a fast call), from the batch's start."""
    call, sent = _limited(loop)
    t0 = loop.time()
    results = await run_batch(call, _mixed(), **options)
    assert results.all_ok
    fast = [t - t0 for a, t in sent if a == "QueryDeviceProvisioning"]
    return loop.time() - t0, min(fast), max(fast)


def test_a_slow_backlog_does_not_starve_a_fast_action() -> None:
    elapsed, first_fast, last_fast = run_virtual(_run_mixed)
    assert first_fast < 0.01  # at once, beside the slow backlog
    assert last_fast < 3 * 1.02 + 0.01  # at its own quota
    # Quota-optimal: the last slow call starts at t = 7 s, the fast ones long done by then.
    assert elapsed < 7 * 1.02 + 0.01


def test_without_per_action_caps_the_backlog_would_fill_the_pool() -> None:
    """Why the caps exist: one plain pool of 16 fills with slow calls waiting for slots."""
    _, first_fast, _ = run_virtual(lambda loop: _run_mixed(loop, concurrency=16, per_action=None))
    assert first_fast > 0.9


def test_dispatch_keeps_input_order_within_an_action_and_respects_caps() -> None:
    async def main(loop: VirtualTimeLoop) -> list[str]:
        order: list[str] = []
        running: Counter[str] = Counter()

        async def call(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
            running[action] += 1
            assert running[action] <= OPERATIONS[action].qps
            order.append(params["InstanceId"])
            await asyncio.sleep(0.01)
            running[action] -= 1
            return {}

        await run_batch(call, gets(40))
        return order

    assert run_virtual(main) == [f"inst{i}" for i in range(40)]


def test_option_checks() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        with pytest.raises(ValueError):
            await run_batch(FakeService(), gets(1), lookahead=0)
        assert quota_cap(OPERATIONS["QueryDeviceProvisioning"]) == 50

    run_virtual(main)


# --------------------------------------------------------------------------- display


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_printer_draws_one_line_on_a_tty_only() -> None:
    now = [0.0]
    tty = _Tty()
    hook = progress_printer(tty, label="bind", min_interval=1.0, clock=lambda: now[0])
    ok = BatchResult(index=0, action="X", params={}, value={"RequestId": "R"})
    bad = BatchResult(index=1, action="X", params={}, error=NotFoundError("nope"))
    hook(1, 3, ok)
    hook(2, 3, bad)  # within min_interval: not drawn
    now[0] = 5.0
    hook(3, 3, ok)  # the last one is always drawn, with a newline
    assert tty.getvalue() == "\rbind: 1/3 done\rbind: 3/3 done, 1 failed\n"
    plain = io.StringIO()
    progress_printer(plain)(1, 1, ok)
    assert plain.getvalue() == ""
    forced = io.StringIO()
    progress_printer(forced, force=True)(1, None, ok)
    assert forced.getvalue() == "\rbatch: 1 done"


def test_progress_printer_draws_nothing_on_a_dumb_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one rule of the live view and the rollout status line: a TTY with TERM=dumb takes
    # no redrawn line (force still draws).
    monkeypatch.setenv("TERM", "dumb")
    ok = BatchResult(index=0, action="X", params={}, value={"RequestId": "R"})
    tty = _Tty()
    progress_printer(tty)(1, 1, ok)
    assert tty.getvalue() == ""
    forced = _Tty()
    progress_printer(forced, force=True)(1, 1, ok)
    assert forced.getvalue() == "\rbatch: 1/1 done\n"


def test_notebook_progress_text_counts_failures_as_the_terminal_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A notebook progress bar's plain-text form (what a frontend without HTML shows) is the
    # terminal's line: it said "2/2 done" and left out the failure.
    import IPython.display

    from aioedge._notebook import notebook_progress

    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(obj)

    def display(obj: Any, display_id: bool = False) -> Handle:
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    hook = notebook_progress("bind", min_interval=0.0)
    bad = BatchResult(index=0, action="X", params={}, error=NotFoundError("nope"))
    ok = BatchResult(index=1, action="X", params={}, value={"RequestId": "R"})
    hook(1, 2, bad)
    hook(2, 2, ok)
    assert repr(shown[-1]) == "bind: 2/2 done, 1 failed"
    assert "2/2 done, <span style='color:#c62828'>1 failed</span>" in shown[-1]._repr_html_()


def test_result_text_and_html() -> None:
    ok = BatchResult(index=0, action="GetEdgeInstance", params={}, value={"RequestId": "R-1"})
    bad = BatchResult(
        index=1,
        action="DeleteEdgeInstance",
        params={"InstanceId": "<x>"},
        error=NotFoundError("iot.edge.InstanceNotExist", "no\nsuch <instance>", request_id="R-2"),
    )
    assert str(ok) == "[0] GetEdgeInstance: ok (RequestId R-1)"
    assert str(bad).startswith("[1] DeleteEdgeInstance: failed (NotFoundError: ")
    assert "\n" not in str(bad)
    assert ok.request_id == "R-1" and bad.request_id == "R-2"
    assert "params" not in repr(bad) and "value" not in repr(ok)  # big payloads stay out
    page = BatchResults([ok, bad])._repr_html_()
    assert "<table>" in page and "1 failed" in page
    assert page.index("DeleteEdgeInstance") < page.index("GetEdgeInstance")  # failures first
    assert "&lt;instance&gt;" in page and "<instance>" not in page
    assert "ok" in ok._repr_html_()
    many = BatchResults(
        [BatchResult(index=i, action="X", params={}, value={}) for i in range(60)]
    )._repr_html_()
    assert "10 more" in many


def test_a_batch_result_keeps_a_numeric_request_id_as_text() -> None:
    # A number is still the id to quote to support, as every reader of a body gives it.
    result = BatchResult(index=0, action="GetEdgeInstance", params={}, value={"RequestId": 7})
    assert result.request_id == "7"
