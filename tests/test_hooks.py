"""EdgeClient(hooks=[...]) against the emulator: what each hook is told, and when."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aioedge import Credentials, EdgeClient, NotFoundError, RetryPolicy, ValidationError
from aioedge._hooks import CALL_HOOKS, CALL_OUTCOMES, RETRY_REASONS, CallInfo
from aioedge._retry import set_testing
from aioedge.testing import Emulator

from .test_client_emulator import SteppingClock

ZERO = RetryPolicy(
    max_attempts=8, base_delay=0.0, max_delay=0.0, throttle_base_delay=0.0, throttle_min_delay=0.0
)


class Recorder:
    """Every hook, recording (name, info)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, CallInfo]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in CALL_HOOKS:
            raise AttributeError(name)
        return lambda info: self.seen.append((name, info))

    def names(self, call_id: int | None = None) -> list[str]:
        return [n for n, i in self.seen if call_id is None or i.call_id == call_id]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # One accepted request of an Action per 4 arrivals: throttles without real waiting.
    async with Emulator(quota_scale=0.1, quota_clock=SteppingClock(0.25)) as emu:
        yield emu


def _client(emu: Emulator, hooks: list[Any], **kw: Any) -> EdgeClient:
    kw.setdefault("retry", ZERO)
    kw.setdefault("rate_limit", False)
    return EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint, hooks=hooks, **kw)


async def test_a_call_throttled_then_answered_tells_every_hook_in_order(emu: Emulator) -> None:
    rec = Recorder()
    with set_testing(True):  # the emulator's retry-after hint is not waited for here
        async with _client(emu, [rec]) as client:
            created = await client.call("CreateEdgeInstance", {"Name": "hooked"})
            params = {"InstanceId": created["InstanceId"]}
            await client.call("GetEdgeInstance", params)  # fills the window
            rec.seen.clear()
            await client.call("GetEdgeInstance", params)
    gets = [r for r in emu.requests if r.action == "GetEdgeInstance"][1:]
    throttled = sum(r.outcome == "throttled" for r in gets)
    assert throttled >= 1
    names = rec.names()
    per_attempt = ["on_request", "on_response", "on_throttled", "on_retry"]
    assert names == per_attempt * throttled + ["on_request", "on_response"]
    infos = [i for _, i in rec.seen]
    assert {i.call_id for i in infos} == {infos[0].call_id}
    assert {i.action for i in infos} == {"GetEdgeInstance"}
    assert [i.attempt for n, i in rec.seen if n == "on_request"] == list(range(1, throttled + 2))
    last = infos[-1]
    assert last.final and last.outcome == "ok" and last.error is None
    assert last.http_status == 200 and last.request_id == gets[-1].request_id
    assert last.latency is not None and last.latency >= 0 and last.elapsed >= last.latency
    retry = next(i for n, i in rec.seen if n == "on_retry")
    assert retry.reason == "throttled" and retry.delay == 0.0
    assert retry.code in ("Throttling.User", "iot.common.HighFrequentDeny")
    assert retry.retry_after is not None and retry.retry_after > 0  # the emulator's hint
    assert not any(i.final for n, i in rec.seen[:-1])
    assert last.region_id == "cn-shanghai" and last.read_only


async def test_a_failing_call_ends_with_a_final_error_response(emu: Emulator) -> None:
    rec = Recorder()
    async with _client(emu, [rec], quota_scope="x") as client:
        with pytest.raises(NotFoundError) as exc:
            await client.call("GetEdgeInstance", {"InstanceId": "F3APnotThere000000000000"})
    name, info = rec.seen[-1]
    assert name == "on_response" and info.final and info.outcome == "error"
    assert info.error is exc.value and info.code == exc.value.code
    assert info.request_id == exc.value.request_id and info.http_status is not None


async def test_slot_waits_are_told_with_a_limiter() -> None:
    rec = Recorder()
    async with Emulator() as emu, _client(emu, [rec], rate_limit=True, quota_scope="w") as c:
        await c.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
    assert rec.names() == ["on_slot_wait", "on_request", "on_response"]
    wait = rec.seen[0][1].wait
    assert wait is not None and 0 <= wait < 1


class Broken:
    def on_request(self, info: CallInfo) -> None:
        raise RuntimeError("hook bug")


class Slow:
    def __init__(self) -> None:
        self.done: list[str] = []

    async def on_response(self, info: CallInfo) -> None:
        await asyncio.sleep(0)
        self.done.append(info.action)


async def test_a_hook_that_raises_is_logged_and_ignored_and_async_hooks_are_awaited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = Slow()
    async with Emulator() as emu, _client(emu, [Broken(), slow]) as client:
        with caplog.at_level(logging.WARNING):
            body = await client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
    assert body["Success"] is True
    assert slow.done == ["QueryEdgeInstance"]
    assert any(
        "aioedge.hook_failed" in r.getMessage() and "hook bug" in r.getMessage()
        for r in caplog.records
    )


async def test_a_cancelled_call_still_ends_with_a_final_response() -> None:
    rec = Recorder()
    faults = "QueryEdgeInstance:delay:delay=30"
    async with Emulator(faults=faults) as emu, _client(emu, [rec]) as client:
        task = asyncio.create_task(
            client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
        )
        while "on_request" not in rec.names():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    name, info = rec.seen[-1]
    assert name == "on_response" and info.final and info.outcome == "cancelled"


async def test_infos_carry_no_secret_signature_or_query() -> None:
    rec = Recorder()
    secret = "hooks-secret-value-0000"
    async with Emulator(access_keys={"LTAIhooks": secret}) as emu:
        client = EdgeClient(
            credentials=Credentials("LTAIhooks", secret),
            endpoint=emu.endpoint,
            hooks=[rec],
            rate_limit=False,
            retry=None,
        )
        async with client:
            await client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
            with pytest.raises(NotFoundError):
                await client.call("GetEdgeInstance", {"InstanceId": "F3APnope"})
    assert rec.seen
    for _, info in rec.seen:
        text = repr(info) + repr(dataclasses.asdict(info))
        assert secret not in text
        assert "Signature" not in text and "SignatureNonce" not in text
        assert "AccessKeyId=" not in text and "?" not in text.replace("?)", "")


def test_hooks_must_be_a_list_and_no_hook_method_means_no_hooks() -> None:
    with pytest.raises(ValidationError) as exc:
        EdgeClient(credentials=Emulator().credentials, hooks=Recorder())  # type: ignore[arg-type]
    assert exc.value.param == "hooks"
    client = EdgeClient(credentials=Emulator().credentials, hooks=[object()])
    assert client._hooks is None  # nothing to tell: the hot path stays as without hooks
    assert client.hooks == ()
    hooked = EdgeClient(credentials=Emulator().credentials, hooks=[Slow()])
    assert len(hooked.hooks) == 1


async def test_infos_are_complete_frozen_dataclasses() -> None:
    rec = Recorder()
    async with Emulator() as emu, _client(emu, [rec]) as client:
        await client.call("QueryEdgeInstance", {"CurrentPage": 1, "PageSize": 10})
    for _, info in rec.seen:
        # Built through its __dict__ (the fast path): the same as the constructor would build.
        rebuilt = CallInfo(**{f.name: getattr(info, f.name) for f in dataclasses.fields(info)})
        assert rebuilt == info and dataclasses.replace(info) == info
        assert set(dataclasses.asdict(info)) == {f.name for f in dataclasses.fields(CallInfo)}
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.attempt = 9  # type: ignore[misc]
    assert rec.seen[-1][1].outcome == "ok" and rec.seen[0][1].outcome is None


def test_the_retry_reasons_and_outcomes_are_the_ones_documented() -> None:
    """One vocabulary: what ``CallInfo.reason`` and ``outcome`` can be is what the
    observability page and the Prometheus module say, no more, no less."""
    prometheus = pytest.importorskip("aioedge.prometheus")
    page = (Path(__file__).resolve().parents[1] / "docs/concepts/observability.md").read_text()
    table = page.split("| `reason` | the attempt failed with |", 1)[1].split("\n\n", 1)[0]
    assert tuple(re.findall(r"^\| `([a-z_]+)` \|", table, re.M)) == RETRY_REASONS
    doc = " ".join((prometheus.__doc__ or "").split())
    listed = doc.split("``reason`` (", 1)[1].split(")", 1)[0]
    assert tuple(listed.split(", ")) == RETRY_REASONS
    assert "``outcome`` (" + "/".join(CALL_OUTCOMES) + ")" in doc
    assert "`outcome` (" + ", ".join(f"`{o}`" for o in CALL_OUTCOMES) + ")" in page


class Stuck:
    """An async hook that never returns from ``name``: the call is cancelled while in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entered = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        if name != self.name:
            raise AttributeError(name)

        async def stuck(info: CallInfo) -> None:
            self.entered.set()
            await asyncio.Event().wait()

        return stuck


async def _cancel_inside(stuck: Stuck, client: EdgeClient, action: str, params: Any) -> None:
    task = asyncio.create_task(client.call(action, params))
    await asyncio.wait_for(stuck.entered.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _finals(rec: Recorder) -> list[str | None]:
    return [i.outcome for n, i in rec.seen if n == "on_response" and i.final]


async def test_a_call_cancelled_in_an_async_retry_hook_ends_once_for_the_hooks() -> None:
    # A 503, then cancelled while the on_retry hook is awaited: before, the cancellation
    # left the handler of the failed attempt and passed the one that ends the call.
    rec, stuck = Recorder(), Stuck("on_retry")
    faults = "QueryEdgeInstance:unavailable:times=1"
    async with Emulator(faults=faults) as emu, _client(emu, [rec, stuck]) as client:
        await _cancel_inside(stuck, client, "QueryEdgeInstance", {"PageSize": 10})
    assert rec.names()[-2:] == ["on_retry", "on_response"]
    assert _finals(rec) == ["cancelled"]


async def test_a_call_cancelled_in_an_async_hook_after_clock_skew_ends_once() -> None:
    rec, stuck = Recorder(), Stuck("on_retry")
    async with Emulator() as emu:
        client = _client(emu, [rec, stuck], clock=lambda: 1_000_000_000.0)  # far behind
        async with client:
            await _cancel_inside(stuck, client, "QueryEdgeInstance", {"PageSize": 10})
    retry = next(i for n, i in rec.seen if n == "on_retry")
    assert retry.reason == "clock_skew"
    assert _finals(rec) == ["cancelled"]


@pytest.mark.parametrize(
    ("instance_id", "told"),
    [(None, "ok"), ("F3APnotThere000000000000", "error")],
    ids=["answered", "refused"],
)
async def test_a_call_cancelled_in_its_final_async_hook_is_not_ended_twice(
    instance_id: str | None, told: str
) -> None:
    # The final on_response went to every hook before the async one was awaited: a cancel
    # there must not tell a second final ("cancelled") of the same call.
    rec, stuck = Recorder(), Stuck("on_response")
    async with Emulator() as emu:
        if instance_id is None:
            async with _client(emu, []) as plain:
                created = await plain.call("CreateEdgeInstance", {"Name": "x"})
            instance_id = created["InstanceId"]
        async with _client(emu, [rec, stuck]) as client:
            await _cancel_inside(stuck, client, "GetEdgeInstance", {"InstanceId": instance_id})
    assert _finals(rec) == [told]
