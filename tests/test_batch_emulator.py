"""Batches through the real client against the emulator, at the real quotas.

Two promises of the quota machinery, checked on the emulator's own records: the client's
limiter keeps every Action under its quota (0 throttled, ≤ Q arrivals in any second), and with
faults injected no mutating call runs twice while every read is answered.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from typing import Any

import pytest

from aioedge import EdgeClient, EdgeError, InvalidResponseError, TransportError, ValidationError
from aioedge._batch import PartialBatchError
from aioedge._catalog import OPERATIONS
from aioedge._ratelimit import WINDOW, LocalRateLimiter
from aioedge._retry import DeadlineExceededError, RetryPolicy, set_testing
from aioedge.testing import Emulator, FaultSpec

from .test_ratelimit import max_in_window


def _client(emu: Emulator, **kw: Any) -> EdgeClient:
    kw.setdefault("rate_limit", LocalRateLimiter())  # a fresh limiter: no state from other tests
    return EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint, **kw)


async def _instance_with_driver(c: EdgeClient) -> tuple[str, str]:
    iid = (await c.create_edge_instance(name="batch_1")).instance_id
    did = (
        await c.create_edge_driver(
            driver_name="BatchDriver", driver_protocol="customize", runtime="python3"
        )
    ).driver_id
    assert iid and did
    upload = await c.create_edge_oss_pre_signed_address(
        type="DRIVER_VERSION_CONTENT", resource_id=did, resource_version="1.0.0", file_name="d.zip"
    )
    await c.create_edge_driver_version(
        driver_id=did,
        driver_version="1.0.0",
        edge_version="2.4.0",
        source_config=json.dumps({"ossAddress": upload.oss_address}),
    )
    await c.bind_driver_to_edge_instance(instance_id=iid, driver_id=did, driver_version="1.0.0")
    return iid, did


async def test_mixed_batch_at_real_quotas_is_never_throttled() -> None:
    async with Emulator() as emu, _client(emu, retry=None) as c:
        iid, did = await _instance_with_driver(c)
        ids = [f"dev{i:03d}batchtest00000" for i in range(45)]
        setup = await c.batch(
            [
                (
                    "BatchBindDeviceToEdgeInstanceWithDriver",
                    {"InstanceId": iid, "DriverId": did, "IotIds": ids},
                ),
            ]
        )
        assert setup[0].ok, setup[0].error
        assert setup[0].chunks == 3 and setup[0].value is not None
        assert len(setup[0].value["RequestIds"]) == 3
        configs = [{"IotId": i, "Content": json.dumps({"n": n})} for n, i in enumerate(ids)]
        calls: list[tuple[str, dict[str, Any]]] = [
            ("BatchSetEdgeInstanceDeviceConfig", {"InstanceId": iid, "DeviceConfigs": configs}),
            *[("GetEdgeInstance", {"InstanceId": iid}) for _ in range(24)],
            *[("QueryEdgeInstance", {"PageSize": 10}) for _ in range(6)],
            ("QueryEdgeInstanceDevice", {"InstanceId": iid, "PageSize": 30}),
        ]
        results = await c.batch(calls, concurrency=64)
        assert results.all_ok, results.summary()  # type: ignore[attr-defined]
        [got] = await c.batch(
            [("BatchGetEdgeInstanceDeviceConfig", {"InstanceId": iid, "IotIds": ids})]
        )
        assert got.value is not None and got.chunks == 3
        merged = got.value["DeviceConfigList"]
        assert [d["IotId"] for d in merged] == ids  # chunks merged back in input order
        assert [json.loads(d["Config"]["Content"])["n"] for d in merged] == list(range(45))

        stats = emu.stats()
        assert sum(s["throttled"] for s in stats.values()) == 0
        by_action: dict[str, list[float]] = {}
        for r in emu.requests:
            if r.quota_accepted:
                by_action.setdefault(r.action, []).append(r.arrival)
        for action, arrivals in by_action.items():
            assert max_in_window(arrivals) <= OPERATIONS[action].qps, action
        assert len(by_action["GetEdgeInstance"]) == 24


async def test_small_batches_at_real_quotas_finish_close_to_optimal() -> None:
    """0 throttled, and each batch runs at the quota: on the emulator's own arrival times, each
    1-second window from an Action's first arrival carries exactly Q of its calls (the rest in
    the last), and the whole span is the quota-optimal (rounds − 1) windows plus at most 0.3 s
    (≈ 0.01 s of latency, 0.04 s on a loaded 2-core machine).  Arrival times, not wall time:
    a slow start or teardown on a busy machine cannot count."""
    limiter = LocalRateLimiter()
    async with Emulator() as emu, _client(emu, retry=None, rate_limit=limiter) as c:
        iid = (await c.create_edge_instance(name="small_batches")).instance_id
        loop = asyncio.get_running_loop()
        for n_get, n_update in ((12, 11), (30, 6)):
            await asyncio.sleep(1.1)  # every hold of the previous batch has ended
            calls: list[tuple[str, dict[str, Any]]] = [
                *[("GetEdgeInstance", {"InstanceId": iid}) for _ in range(n_get)],
                *[
                    ("UpdateEdgeInstance", {"InstanceId": iid, "Name": "b"})
                    for _ in range(n_update)
                ],
            ]
            rounds = max(
                math.ceil(n_get / OPERATIONS["GetEdgeInstance"].qps),
                math.ceil(n_update / OPERATIONS["UpdateEdgeInstance"].qps),
            )
            first = len(emu.requests)
            t0 = loop.time()
            results = await c.batch(calls)
            elapsed = loop.time() - t0
            assert results.all_ok, results.summary()  # type: ignore[attr-defined]
            assert elapsed >= (rounds - 1) * WINDOW  # exact: the quota allows Q per window
            for action, n in (("GetEdgeInstance", n_get), ("UpdateEdgeInstance", n_update)):
                q = OPERATIONS[action].qps
                arrivals = sorted(
                    r.arrival
                    for r in emu.requests[first:]
                    if r.action == action and r.quota_accepted
                )
                assert len(arrivals) == n, action
                a0, k = arrivals[0], math.ceil(n / q)
                per_window = [sum(a0 + i <= a < a0 + i + 1 for a in arrivals) for i in range(k)]
                assert per_window == [min(q, n - i * q) for i in range(k)], (action, per_window)
                span = arrivals[-1] - a0
                assert span <= (k - 1) * limiter.window + 0.3, (action, span)
        assert sum(s["throttled"] for s in emu.stats().values()) == 0


async def test_calls_the_deadline_leaves_waiting_for_a_slot_are_never_sent() -> None:
    """6 × Q UpdateEdgeInstance calls at once with a 4-s deadline: four rounds of Q fit
    (t ≈ 0, 1, 2, 3 s), the rest give up waiting for a slot: nothing of theirs is sent, so
    nothing of theirs ran, no slot is held for a lost answer, and the call ends in time."""
    q = OPERATIONS["UpdateEdgeInstance"].qps
    assert q == 5
    n, deadline = 6 * q, 4.0
    async with Emulator() as emu, _client(emu, retry=None) as setup:
        iid = (await setup.create_edge_instance(name="deadline_1")).instance_id
        limiter = LocalRateLimiter()
        names = [f"n{i:02d}" for i in range(n)]
        loop = asyncio.get_running_loop()
        async with _client(emu, rate_limit=limiter, retry=RetryPolicy(deadline=deadline)) as c:
            t0 = loop.time()
            outcomes = await asyncio.gather(
                *(c.update_edge_instance(instance_id=iid, name=name) for name in names),
                return_exceptions=True,
            )
            elapsed = loop.time() - t0
            failed = {
                name: o for name, o in zip(names, outcomes, strict=True) if isinstance(o, Exception)
            }
            assert all(isinstance(e, DeadlineExceededError) for e in failed.values()), failed
            assert all(getattr(e, "maybe_executed", True) is False for e in failed.values())
            assert all("not sent" in str(e) for e in failed.values())
            assert len(failed) == n - 4 * q  # four rounds fit in the deadline, no more
            assert elapsed <= deadline + 0.5  # the deadline bounds the call, waits included
            # Given back unused: the next Q calls wait only for the last round's holds
            # (≈ 1 s), not for the window + timeout a lost answer would hold a slot.
            t1 = loop.time()
            await asyncio.gather(
                *(c.update_edge_instance(instance_id=iid, name="after") for _ in range(q))
            )
            assert loop.time() - t1 < 1.5
        assert limiter.in_flight(c.quota_scope, "UpdateEdgeInstance") == 0
        executed = Counter(
            e.params["Name"] for e in emu.executions if e.action == "UpdateEdgeInstance"
        )
        assert max(executed.values()) == q  # "after"; every other name ran at most once
        assert all(executed[name] == 1 for name in names if name not in failed)
        assert not any(executed[name] for name in failed)  # never sent, never executed
        sent = [r for r in emu.requests if r.action == "UpdateEdgeInstance"]
        assert len(sent) == n - len(failed) + q  # the emulator saw exactly the calls sent
        assert sum(s["throttled"] for s in emu.stats().values()) == 0


async def test_faults_never_run_a_mutating_call_twice() -> None:
    faults = [
        FaultSpec(kind="lost", action="CreateEdgeInstance", rate=0.25),
        FaultSpec(kind="malformed", rate=0.1),
        FaultSpec(kind="unavailable", rate=0.15),
        FaultSpec(kind="reset", rate=0.1),
    ]
    async with Emulator(seed=7) as emu:
        async with _client(emu, retry=None) as setup:
            iid = (await setup.create_edge_instance(name="reads_here")).instance_id
        emu.set_faults(faults)
        names = [f"inst_{i:02d}" for i in range(16)]
        calls: list[tuple[str, dict[str, Any]]] = [
            *[("CreateEdgeInstance", {"Name": n}) for n in names],
            *[("GetEdgeInstance", {"InstanceId": iid}) for _ in range(16)],
        ]
        with set_testing(True):  # zero backoff; the limiter still paces every retry
            async with _client(emu, retry=RetryPolicy(max_attempts=12)) as c:
                results = await c.batch(calls, concurrency=32)

        executed = Counter(
            e.params["Name"] for e in emu.executions if e.action == "CreateEdgeInstance"
        )
        assert executed and max(executed.values()) == 1  # nothing ran twice
        for r in results[:16]:
            name = names[r.index]
            if r.ok:
                assert executed[name] == 1
            else:
                # Only an answer that may have followed execution is left unretried.
                assert isinstance(r.error, (TransportError, InvalidResponseError)), r.error
                if isinstance(r.error, TransportError):
                    assert r.error.maybe_executed
        # Reads are retried through every fault (≈ 1/3 of attempts fail: 12 in a row ≈ 2e-6).
        assert all(r.ok for r in results[16:]), [str(r) for r in results[16:] if not r.ok]
        assert all(isinstance(r.error, EdgeError) for r in results if not r.ok)
        fault_kinds = {f.kind for f in emu.fault_log}
        assert {"lost", "unavailable"} <= fault_kinds  # the faults really struck
        assert sum(s["throttled"] for s in emu.stats().values()) == 0


async def test_a_failing_chunk_reports_its_items() -> None:
    async with Emulator(strict_devices=True) as emu, _client(emu, retry=None) as c:
        iid, did = await _instance_with_driver(c)
        known = [emu.add_device("a1pk", f"sub{i:02d}")["IotId"] for i in range(40)]
        ids = [*known[:20], "unknown-device-0000000", *known[20:39]]
        [r] = await c.batch(
            [
                (
                    "BatchBindDeviceToEdgeInstanceWithDriver",
                    {"InstanceId": iid, "DriverId": did, "IotIds": ids},
                )
            ]
        )
        err = r.error
        assert isinstance(err, PartialBatchError)
        assert err.succeeded == ids[:20]
        assert err.failed == ids[20:40]
        bound = {
            d["IotId"] async for d in c.paginate("QueryEdgeInstanceDevice", {"InstanceId": iid})
        }
        assert bound == set(err.succeeded)  # exactly what the error says was applied


async def test_an_uncapped_action_is_bounded_by_the_connection_pool() -> None:
    """A limiter override of math.inf leaves an Action without a per-Action cap; the batch's
    default bound is then the client's connection pool, counted on the server side. Before,
    the whole input started at once and the calls queued for a socket with their timeouts
    running (here: most of them would time out)."""
    limiter = LocalRateLimiter(overrides={"GetEdgeInstance": math.inf})
    async with Emulator(quotas=False) as emu:
        async with _client(emu, retry=None) as setup:
            iid = (await setup.create_edge_instance(name="pool_1")).instance_id
        emu.set_faults([FaultSpec(kind="delay", action="GetEdgeInstance", delay=0.25)])
        before = emu.peak_in_flight
        async with _client(
            emu, rate_limit=limiter, retry=None, max_connections=8, timeout=2.0
        ) as c:
            results = await c.batch([("GetEdgeInstance", {"InstanceId": iid})] * 80)
        assert results.all_ok, results.summary()  # type: ignore[attr-defined]
        assert emu.stats()["GetEdgeInstance"]["executed"] == 80
        assert 2 <= emu.peak_in_flight <= 8, (before, emu.peak_in_flight)


async def test_the_default_bound_without_a_pool_limit_is_finite() -> None:
    """A caller's session without a connection limit: the default bound is DEFAULT_POOL."""
    import aiohttp

    from aioedge._batch import DEFAULT_POOL

    limiter = LocalRateLimiter(overrides={"GetEdgeInstance": math.inf})
    async with Emulator(quotas=False) as emu:
        async with _client(emu, retry=None) as setup:
            iid = (await setup.create_edge_instance(name="pool_2")).instance_id
        emu.set_faults([FaultSpec(kind="delay", action="GetEdgeInstance", delay=0.5)])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            c = _client(emu, rate_limit=limiter, retry=None, session=session, timeout=5.0)
            results = await c.batch([("GetEdgeInstance", {"InstanceId": iid})] * 100)
        assert results.all_ok, results.summary()  # type: ignore[attr-defined]
        assert DEFAULT_POOL // 2 <= emu.peak_in_flight <= DEFAULT_POOL


async def test_each_chunk_is_validated_once_and_sent_as_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aioedge._batch
    import aioedge._client

    seen: list[tuple[str, int]] = []
    real = aioedge._client.validate_params

    def counting(op: Any, params: Any) -> dict[str, str]:
        wire = real(op, params)
        seen.append((op.action, sum(k.startswith("IotIds.") for k in wire)))
        return wire

    monkeypatch.setattr(aioedge._client, "validate_params", counting)
    monkeypatch.setattr(aioedge._batch, "validate_params", counting)
    async with Emulator() as emu, _client(emu, retry=None) as c:
        iid, did = await _instance_with_driver(c)
        action = "BatchBindDeviceToEdgeInstanceWithDriver"
        param = OPERATIONS[action].param("IotIds")
        size = None if param is None else param.max_items
        assert size is not None
        ids = [emu.add_device("a1pk", f"sub{i:03d}")["IotId"] for i in range(2 * size + 5)]
        seen.clear()
        [r] = await c.batch([(action, {"InstanceId": iid, "DriverId": did, "IotIds": ids})])
        r.unwrap()
        # Three chunks, each validated once, before anything is sent.
        assert seen == [(action, n) for n in (size, size, 5)]
        bound = {
            d["IotId"] async for d in c.paginate("QueryEdgeInstanceDevice", {"InstanceId": iid})
        }
        assert bound == set(ids)  # and the validated chunks are what the service got


@pytest.mark.parametrize("size", [1, 25])  # one call, and a list the batch splits
@pytest.mark.parametrize("stray", ["IotIds.abc", "IotIds.1x", "IotIds.1.IotId"])
async def test_a_batch_refuses_what_call_refuses_next_to_the_list_it_splits(
    size: int, stray: str
) -> None:
    """A key that only looks like an item of the list (``IotIds.abc``) is refused by ``call``;
    the batch reads the list the same way, so it is refused there too, before any I/O, and
    not dropped while the list is taken apart into chunks."""
    action = "BatchGetEdgeInstanceDeviceConfig"
    ids = [f"d{i}" for i in range(size)]
    params = {"InstanceId": "i1", "IotIds": ids, stray: "x"}
    limit = OPERATIONS[action].param("IotIds").max_items  # type: ignore[union-attr]
    async with Emulator() as emu, _client(emu, retry=None) as c:
        with pytest.raises(ValidationError) as by_call:  # what call says of the first chunk
            await c.call(action, params | {"IotIds": ids[:limit]})
        [result] = await c.batch([(action, params)])
        assert emu.requests == []
    err = result.error
    assert isinstance(err, ValidationError)
    assert (err.message, err.param, err.rule, err.action) == (
        by_call.value.message,
        by_call.value.param,
        by_call.value.rule,
        by_call.value.action,
    )


@pytest.mark.parametrize("concurrency", [float("nan"), 2.5, True, 0, -1])
async def test_a_batch_bound_that_is_not_a_count_is_refused_before_any_io(
    concurrency: Any,
) -> None:
    """``concurrency`` is a count, checked by the one count rule (``check_count``): a NaN
    used to pass the old '< 1' test and then let no call start, so the batch never ended."""
    async with Emulator() as emu, _client(emu) as c:
        with pytest.raises(ValidationError) as info:
            await asyncio.wait_for(
                c.batch([("GetEdgeInstance", {"InstanceId": "i"})], concurrency=concurrency), 5
            )
        assert emu.requests == []
    assert (info.value.param, info.value.rule) == ("concurrency", "range")
