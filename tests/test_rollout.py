"""Fleet rollouts: the pure planner, then rollouts against the emulator's fleet."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioedge import EdgeClient, ValidationError
from aioedge._rollout import (
    RolloutBook,
    RolloutPlan,
    minimum_duration,
    parse_share,
    parse_waves,
    plan_waves,
    should_abort,
)
from aioedge._rollout_run import FileRolloutStore, Rollout
from aioedge.testing import Emulator
from aioedge.watch import deploy_and_watch

TIMEOUT = 60  # real seconds: a rollout that never ends fails, not hangs
FAST = {"poll_interval": 0.05, "max_poll_interval": 0.3}

# --------------------------------------------------------------------------- pure


def test_waves_parse_counts_and_percentages() -> None:
    assert parse_waves("1,25%,100%") == (1, 0.25, 1.0)
    assert parse_waves(" 5 , 50% ") == (5, 0.5)
    for bad in ("", "1,,2", "x", "1,0%", "1,150%"):
        with pytest.raises(ValidationError) as info:
            parse_waves(bad)
        assert info.value.param == "waves"


def test_waves_become_cumulative_counts() -> None:
    assert plan_waves(200, (1, 0.1, 1.0)) == (1, 20, 200)
    assert plan_waves(200, (1, 0.25, 1.0)) == (1, 50, 200)
    assert plan_waves(10, (0.5,)) == (5, 10)  # the last wave takes the rest
    assert plan_waves(2, (1, 0.25, 1.0)) == (1, 2)  # collapsed onto one count: one wave
    assert plan_waves(3, (10,)) == (3,)
    assert plan_waves(7, (1, 1.0)) == (1, 7)  # int 1 is one instance, float 1.0 all
    for bad in [(), (0.5, 0.25), (0,), (True,), (1.5,), ("1",)]:
        with pytest.raises(ValidationError) as info:
            plan_waves(10, bad)  # type: ignore[arg-type]
        assert info.value.param == "waves"


def test_the_abort_rule_needs_enough_finished() -> None:
    assert not should_abort(succeeded=0, failed=2, max_failures=0.2, min_finished=3)
    assert should_abort(succeeded=0, failed=3, max_failures=0.2, min_finished=3)
    assert not should_abort(succeeded=4, failed=1, max_failures=0.2, min_finished=3)  # 20%
    assert should_abort(succeeded=3, failed=1, max_failures=0.2, min_finished=3)  # 25%
    assert should_abort(succeeded=0, failed=1, max_failures=0.0, min_finished=1)
    assert not should_abort(succeeded=0, failed=0, max_failures=0.0, min_finished=0)


def test_shares_and_plan_inputs_are_checked() -> None:
    assert parse_share("20%", param="max_failures") == 0.2
    assert parse_share(0.5, param="max_failures") == 0.5
    for bad in ("x", "120%", -0.1, True, None, float("nan")):  # None: not a TypeError
        with pytest.raises(ValidationError) as info:
            parse_share(bad, param="max_failures")  # type: ignore[arg-type]
        assert info.value.param == "max_failures"
    for ids in ([], "abc", ["a", "a"], ["a", ""]):
        with pytest.raises(ValidationError) as info:
            RolloutPlan.build(ids, (1.0,))  # type: ignore[arg-type]
        assert info.value.param == "instance_ids"


def test_minimum_duration_is_the_quota_arithmetic() -> None:
    plan = RolloutPlan.build([f"i{n}" for n in range(200)], (1, 0.1, 1.0))
    assert plan.sizes() == (1, 19, 180)
    # 1 at once; 19 at 5/s: 0..3 s; 180 at 5/s: 0..35 s (5 calls in any 1-s window).
    assert minimum_duration(plan) == pytest.approx(0 + 3 + 35)
    assert minimum_duration(plan, create_qps=10, poll_qps=5) == pytest.approx(38.0)
    assert minimum_duration(plan, create_qps=2, poll_qps=5) == pytest.approx(0 + 9 + 89)
    assert minimum_duration(RolloutPlan.build(["a"] * 1, (1,))) == 0.0


def test_a_record_of_another_rollout_is_refused() -> None:
    book = RolloutBook(RolloutPlan.build(["a", "b"], (1, 1.0)), type="deploy")
    record = book.to_record()
    other = RolloutBook(RolloutPlan.build(["a", "c"], (1, 1.0)), type="deploy")
    with pytest.raises(ValidationError, match="another rollout"):
        other.restore(record)
    reset = RolloutBook(RolloutPlan.build(["a", "b"], (1, 1.0)), type="reset")
    with pytest.raises(ValidationError, match="another rollout"):
        reset.restore(record)
    with pytest.raises(ValidationError, match="version"):
        book.restore({"kind": "aioedge.rollout", "version": 99})


def test_bad_arguments_fail_before_any_io() -> None:
    client: Any = object()  # never called
    with pytest.raises(ValidationError) as info:
        Rollout(client, ["a"], max_failures="lots")
    assert info.value.param == "max_failures"
    with pytest.raises(ValidationError) as info:
        Rollout(client, ["a"], min_finished=0)
    assert info.value.param == "min_finished"
    with pytest.raises(ValidationError) as info:
        Rollout(client, ["a"], type="upgrade")
    assert info.value.param == "type"
    assert Rollout(client, list("abcdefgh"), waves="1,50%,100%").plan.waves == (1, 4, 8)
    with pytest.raises(ValidationError) as info:
        Rollout(client, ["a"], waves="1,half")
    assert info.value.param == "waves"
    with pytest.raises(ValidationError) as info:
        Rollout(client, ["a"], store=42)
    assert info.value.param == "store"
    with pytest.raises(ValidationError, match="does not exist") as info:
        Rollout(client, ["a"], store="/nonexistent/folder/rollout.json")
    assert info.value.param == "store"


# --------------------------------------------------------------------------- emulator


def creates(emu: Emulator) -> list[tuple[str, int]]:
    """(instance, service time ms) of every CreateEdgeInstanceDeployment that ran."""
    return [
        (e.params["InstanceId"], e.time_ms)
        for e in emu.execution_log
        if e.action == "CreateEdgeInstanceDeployment" and e.code.lower() == "success"
    ]


def ended_ms(emu: Emulator, deployment_id: str) -> int:
    """When the deployment reached its final status, by the emulator's own timeline."""
    return max(
        t["timestamp_ms"]
        for t in emu.timeline(deployment_id)
        if t["kind"] == "deployment" and t["status"] in (2, 3)
    )


async def run(rollout: Rollout) -> list[Any]:
    events = []
    with anyio.fail_after(TIMEOUT):
        async with rollout:
            async for event in rollout:
                events.append(event)
    return events


async def test_waves_start_in_order_each_after_the_last_ended() -> None:
    async with (
        Emulator(fleet=9, speed=50) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        rollout = client.rollout(emu.fleet, waves=(1, 3, 1.0), **FAST)
        events = await run(rollout)
        result = rollout.result
        assert result.ok and set(result.succeeded) == set(emu.fleet)
        assert [e.wave for e in events if e.kind == "wave"] == [1, 2, 3]
        assert events[-1].kind == "final" and events[-1].result == result
        # From the emulator's arrival log: each instance deployed once, wave by wave.
        log = creates(emu)
        assert Counter(i for i, _ in log) == Counter(emu.fleet)
        assert [i for i, _ in log] == list(emu.fleet)
        plan = rollout.plan
        for wave in range(1, len(plan.waves)):
            before = plan.members(wave - 1)
            last_end = max(ended_ms(emu, result.deployments[i]) for i in before)
            first_start = min(t for i, t in log if i in plan.members(wave))
            assert first_start >= last_end, f"wave {wave + 1} started before wave {wave} ended"
        # Exactly one final deployment event per instance, and all through one monitor.
        finals = [e.instance_id for e in events if e.outcome is not None]
        assert Counter(finals) == Counter(emu.fleet)
        assert rollout.monitor.stats.watched == 9


async def test_the_rollout_aborts_after_the_canary_wave_fails() -> None:
    async with (
        Emulator(fleet=10, speed=50) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        canary = emu.fleet[0]
        emu.fail_instances([canary])
        rollout = client.rollout(
            emu.fleet, waves=(1, 0.5, 1.0), max_failures=0.0, min_finished=1, **FAST
        )
        events = await run(rollout)
        kinds = [e.kind for e in events if e.kind != "deployment"]
        assert kinds == ["wave", "aborted", "final"]
        result = rollout.result
        assert result.aborted and not result.ok
        assert result.failed == (canary,) and result.succeeded == ()
        assert result.skipped == emu.fleet[1:]
        assert [i for i, _ in creates(emu)] == [canary]  # nothing else started


async def test_an_abort_watches_the_running_ones_to_their_end() -> None:
    async with (
        Emulator(fleet=8, speed=20) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        emu.fail_instances(emu.fleet[1:3])  # two of the second wave
        rollout = client.rollout(
            emu.fleet, waves=(1, 5, 1.0), max_failures=0.25, min_finished=3, **FAST
        )
        events = await run(rollout)
        result = rollout.result
        assert result.aborted
        started = {i for i, _ in creates(emu)}
        # Every deployment that started has its outcome; none of the last wave started.
        assert set(result.succeeded) | set(result.failed) == started
        assert set(result.skipped) == set(emu.fleet) - started
        assert started.isdisjoint(emu.fleet[5:])
        assert set(emu.fleet[1:3]) <= set(result.failed)
        aborted_at = next(n for n, e in enumerate(events) if e.kind == "aborted")
        assert any(e.outcome for e in events[aborted_at:])  # finals after the abort


async def test_a_running_deployment_is_attached_to() -> None:
    async with (
        Emulator(fleet=3, speed=20) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        mine = await client.call(
            "CreateEdgeInstanceDeployment", {"InstanceId": emu.fleet[0], "Type": "deploy"}
        )
        rollout = client.rollout(emu.fleet, waves=(1, 1.0), **FAST)
        await run(rollout)
        assert rollout.result.ok
        assert rollout.result.deployments[emu.fleet[0]] == mine["DeploymentId"]
        assert Counter(i for i, _ in creates(emu)) == Counter(emu.fleet)  # one each


async def test_an_instance_that_cannot_deploy_counts_as_failed() -> None:
    async with (
        Emulator(fleet=2, speed=50) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        ids = [*emu.fleet, "NoSuchInstance000000"]
        rollout = client.rollout(ids, waves=(1.0,), max_failures=0.5, **FAST)
        events = await run(rollout)
        assert rollout.result.failed == ("NoSuchInstance000000",)
        final = next(e for e in events if e.instance_id == "NoSuchInstance000000")
        assert final.outcome == "error" and final.event is not None
        assert final.event.error == "iot.edge.InstanceNotExist"
        # Outcome "error" (docs/fleets.md), and the reason names why, as a monitor's would.
        assert final.event.reason == "not_found"


async def test_a_stopped_rollout_resumes_from_its_store(tmp_path: Path) -> None:
    store = tmp_path / "rollout.json"
    async with (
        Emulator(fleet=6, speed=20) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        first = client.rollout(emu.fleet, waves=(2, 1.0), store=store, **FAST)
        seen: list[Any] = []
        with anyio.fail_after(TIMEOUT):
            async with first:
                async for event in first:
                    seen.append(event)
                    if event.outcome is not None:
                        break  # stop after the first outcome
        record = json.loads(store.read_text())
        assert record["kind"] == "aioedge.rollout"
        second = client.rollout(emu.fleet, waves=(1, 1.0), store=store, **FAST)
        seen += await run(second)
        result = second.result
        assert result.ok and set(result.succeeded) == set(emu.fleet)
        assert Counter(e.instance_id for e in seen if e.outcome) == Counter(emu.fleet)
        assert Counter(i for i, _ in creates(emu)) == Counter(emu.fleet)
        assert second.plan.waves == (2, 6)  # the stored plan, not the new --waves


async def test_an_intent_without_an_id_is_reconciled_with_the_history(tmp_path: Path) -> None:
    async with (
        Emulator(fleet=3, speed=20) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        a, b, c = emu.fleet
        # A crash right after CreateEdgeInstanceDeployment ran for `a` (its answer lost),
        # and one before it was sent for `b`.
        lost = await client.call(
            "CreateEdgeInstanceDeployment", {"InstanceId": a, "Type": "deploy"}
        )
        book = RolloutBook(RolloutPlan.build(emu.fleet, (1.0,)), type="deploy")
        book.records[a].intent = True
        book.records[b].intent = True
        store = FileRolloutStore(tmp_path / "r.json")
        await store.save(book.to_record())
        rollout = client.rollout(emu.fleet, waves=(1.0,), store=tmp_path / "r.json", **FAST)
        await run(rollout)
        assert rollout.result.ok
        assert rollout.result.deployments[a] == lost["DeploymentId"]
        assert Counter(i for i, _ in creates(emu)) == Counter([a, b, c])


def test_each_instance_belongs_to_one_wave() -> None:
    plan = RolloutPlan.build([f"i{n}" for n in range(10)], (1, 0.5, 1.0))
    assert plan.waves == (1, 5, 10)
    assert [plan.wave_of(f"i{n}") for n in range(10)] == [0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert [len(plan.members(w)) for w in range(3)] == [1, 4, 5]
    with pytest.raises(ValueError, match="not in this rollout"):
        plan.wave_of("other")


async def test_a_plain_async_for_runs_a_reset_rollout_to_its_end() -> None:
    async with (
        Emulator(fleet=3, speed=50) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        rollout = client.rollout(emu.fleet, waves=(1.0,), type="reset", **FAST)
        kinds = []
        with anyio.fail_after(TIMEOUT):
            async for event in rollout:  # no `async with`: it closes itself at the end
                kinds.append(event.kind)
        assert kinds[0] == "wave" and kinds[-1] == "final"
        assert rollout.result.ok
        assert {e.params["Type"] for e in emu.executions if e.action.startswith("Create")} == {
            "reset"
        }
        with pytest.raises(StopAsyncIteration):
            await rollout.__anext__()


def test_the_progress_line_follows_the_terminal_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    # As the live view and the batch line: no status line on TERM=dumb (it wrote "\x1b[K"
    # there), and ASCII where the stream cannot encode "·" (it printed "?").
    import io

    from aioedge._rollout import RolloutEvent, RolloutResult
    from aioedge._rollout_cli import _Progress

    class AsciiTty(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    class Seen:
        plan = RolloutPlan.build(["a", "b"], (1, 1.0))
        result = RolloutResult(succeeded=("a",))

    wave = RolloutEvent(kind="wave", time=0, wave=1, instance_ids=("a",))
    raw = io.BytesIO()
    stream = AsciiTty(raw, encoding="ascii", errors="replace")
    progress = _Progress(stream, Seen())
    progress.note(wave)
    progress.show()
    assert raw.getvalue().decode().endswith("wave 1/2 - 1/2 done - 1 ok - 0 failed")
    monkeypatch.setenv("TERM", "dumb")
    raw = io.BytesIO()
    dumb = _Progress(AsciiTty(raw, encoding="utf-8"), Seen())
    dumb.note(wave)
    dumb.show()
    dumb.clear()
    assert raw.getvalue() == b""


def test_the_progress_line_counts_outcomes_on_a_terminal() -> None:
    import io

    from aioedge._rollout import RolloutEvent, RolloutResult
    from aioedge._rollout_cli import _line, _Progress
    from aioedge.watch import DeploymentEvent

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    class Seen:  # what the status line reads of a rollout: its plan and its result
        plan = RolloutPlan.build(["a", "b", "c"], (1, 1.0))
        result = RolloutResult(failed=("a",))

    stream = Tty()
    progress = _Progress(stream, Seen())
    final = DeploymentEvent(kind="final", deployment_id="d1", outcome="failed", error="x.y")
    events = [
        RolloutEvent(kind="wave", time=0, wave=1, instance_ids=("a",)),
        RolloutEvent(kind="deployment", time=0, instance_id="a", deployment_id="d1", event=final),
    ]
    for event in events:
        progress.note(event)
        progress.show()
    assert stream.getvalue().endswith("wave 1/2 · 1/3 done · 0 ok · 1 failed")
    assert _line(events[1]) == "FAILED a deployment d1 failed (x.y)"
    # A failed resource is named with its whole message, as `aioedge watch` names it.
    caused = DeploymentEvent(
        kind="final",
        deployment_id="d2",
        outcome="failed",
        reason="snapshot_failed",
        resource_name="ModbusDriver",
        resource_type="driver",
        stage=16,
        message="package failed:\n  disk full",
    )
    line = _line(RolloutEvent(kind="deployment", time=0, instance_id="b", event=caused))
    assert line == (
        "FAILED b deployment - failed: ModbusDriver (driver) at packaging: "
        "package failed: disk full"
    )
    done = RolloutEvent(kind="final", time=0, result=RolloutResult(failed=("a",), skipped=("b",)))
    assert _line(done) == "done: 0 succeeded, 1 failed, 1 skipped"
    piped = io.StringIO()
    quiet = _Progress(piped, Seen())
    quiet.note(events[1])
    quiet.show()
    assert piped.getvalue() == ""  # nothing but the lines when piped


class _BrokenStore:
    """A store whose disk fills up after a few writes."""

    def __init__(self, writes: int) -> None:
        self.writes = writes

    async def load(self) -> dict[str, Any] | None:
        return None

    async def save(self, record: Any) -> None:
        self.writes -= 1
        if self.writes < 0:
            raise OSError(28, "No space left on device")


async def test_a_store_that_fails_ends_the_rollout_with_its_error_at_once() -> None:
    async with (
        Emulator(fleet=4, speed=0.1) as emu,  # deployments of ~2 min: still running at the end
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        rollout = client.rollout(emu.fleet, waves=(1.0,), store=_BrokenStore(3), **FAST)
        # At once: not after the running deployments end (generous, on a loaded machine).
        with anyio.fail_after(30), pytest.raises(OSError, match="No space left"):
            async with rollout:
                async for _event in rollout:
                    pass
        # Writes: intent and id of the first, intent of the second, then its id fails: two
        # creates, each after its intent was on record, and nothing after the failure.
        assert len(creates(emu)) == 2


async def test_a_stalled_deployment_counts_as_failed() -> None:
    async with (
        Emulator(fleet=3, speed=20) as emu,  # a stage every 0.1 s
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        hung = emu.fleet[1]
        emu.fail_instances([hung], stage=8, stall=True)
        rollout = client.rollout(
            emu.fleet, waves=(1.0,), max_failures=0.5, progress_timeout=1.0, **FAST
        )
        events = await run(rollout)
        result = rollout.result
        assert result.failed == (hung,) and not result.aborted and not result.ok
        assert set(result.succeeded) == {emu.fleet[0], emu.fleet[2]}
        final = next(e for e in events if e.instance_id == hung and e.outcome is not None)
        assert final.outcome == "stalled" and final.event is not None
        assert final.event.message is not None and "last change" in final.event.message
        # The deployment itself still runs: only the watch gave up on it.
        dep = result.deployments[hung]
        assert [t for t in emu.timeline(dep) if t["kind"] == "deployment"][-1]["status"] == 1


def test_deploy_and_rollout_check_type_and_min_finished_by_one_rule() -> None:
    client: Any = object()  # never called: the checks come before any I/O
    for make in (
        lambda: deploy_and_watch(client, "i", type="upgrade"),
        lambda: Rollout(client, ["a"], type="upgrade"),
    ):
        with pytest.raises(ValidationError) as info:
            make()
        assert (info.value.param, info.value.rule) == ("type", "enum")
        assert str(info.value) == "type must be 'deploy' or 'reset', got 'upgrade'"
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValidationError) as info:
            Rollout(client, ["a"], min_finished=bad)  # type: ignore[arg-type]
        assert (info.value.param, info.value.rule) == ("min_finished", "range")
        assert str(info.value) == f"min_finished must be an integer >= 1, got {bad!r}"


async def test_a_create_whose_answer_could_not_be_read_is_looked_for_not_failed() -> None:
    """CreateEdgeInstanceDeployment ran but its answer came back cut off: the client does
    not repeat it (it may have run), so the rollout looks for the deployment it may have
    made and watches it, as after a lost connection, rather than count the instance failed
    while its deployment runs unwatched."""
    async with (
        Emulator(fleet=2, speed=50, faults="CreateEdgeInstanceDeployment:malformed:times=1") as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        rollout = client.rollout(emu.fleet, waves=(1.0,), **FAST)
        await run(rollout)
        assert [f.kind for f in emu.fault_log] == ["malformed"]
        assert rollout.result.ok and set(rollout.result.succeeded) == set(emu.fleet)
        assert Counter(i for i, _ in creates(emu)) == Counter(emu.fleet)  # one each
