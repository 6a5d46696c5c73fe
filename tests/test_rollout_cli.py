"""``aioedge rollout`` as a user runs it, including a SIGKILL in the middle and a resume."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from aioedge.testing import Emulator

from .test_cli import aioedge, base_env

TIMEOUT = 60.0


async def test_dry_run_prints_the_plan_and_the_quota_minimum(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# the fleet\n" + "\n".join(f"inst{n:03d}" for n in range(200)) + "\n\n")
    r = await aioedge(
        "rollout", "--from-file", str(ids), "--waves", "1,10%,100%", "--dry-run",
        env=base_env(tmp_path),
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "200 instances in 3 waves" in r.out
    assert "wave 1:     1 new" in r.out and "wave 3:   180 new" in r.out
    assert "quota-implied minimum: 38.0 s" in r.out


@pytest.mark.parametrize(
    "args",
    [
        ["rollout", "--dry-run"],
        ["rollout", "a", "--waves", "1,abc", "--dry-run"],
        ["rollout", "a", "--max-failures", "150%", "--dry-run"],
        ["rollout", "a", "a", "--dry-run"],
        ["rollout", "a", "--from-file", "/nonexistent/ids", "--dry-run"],
    ],
)
async def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    r = await aioedge(*args, env=base_env(tmp_path))
    assert r.code == 2
    assert r.error_line().startswith("error:")


async def test_exit_codes_follow_the_outcome(tmp_path: Path) -> None:
    async with Emulator(fleet=4, speed=50) as emu:
        env = base_env(tmp_path, emu.credentials)
        common = ["--endpoint", emu.endpoint, "--poll-interval", "0.05"]
        r = await aioedge("rollout", *emu.fleet[:2], "--waves", "1,100%", *common, env=env)
        assert r.code == 0, r.err
        assert r.out.count("ok ") == 2 and "done: 2 succeeded, 0 failed, 0 skipped" in r.out
        emu.fail_instances([emu.fleet[2]])
        r = await aioedge(
            "rollout", *emu.fleet[2:], "--max-failures", "0", "--min-finished", "1",
            "--waves", "1,100%", *common, env=env,
        )  # fmt: skip
        assert r.code == 1, r.err
        assert "aborted:" in r.out and "1 skipped (aborted)" in r.out


async def _store_started(path: Path, count: int) -> None:
    while True:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = {}
        started = [i for i in record.get("instances", {}).values() if i.get("deployment_id")]
        if len(started) >= count:
            return
        await asyncio.sleep(0.02)


async def test_a_rollout_killed_with_sigkill_resumes_without_repeating(tmp_path: Path) -> None:
    store = tmp_path / "rollout.json"
    async with Emulator(fleet=12, speed=10) as emu:
        env = base_env(tmp_path, emu.credentials)
        args = [
            sys.executable, "-m", "aioedge", "rollout", *emu.fleet, "--endpoint", emu.endpoint,
            "--waves", "2,50%,100%", "--store", str(store), "--output", "json",
            "--poll-interval", "0.05", "--max-poll-interval", "0.3",
        ]  # fmt: skip
        first = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        # Killed in the middle of the second wave: some outcomes out, some deployments running.
        await asyncio.wait_for(_store_started(store, 4), TIMEOUT)
        first.send_signal(signal.SIGKILL)
        out1, _ = await first.communicate()
        assert first.returncode == -signal.SIGKILL
        second = await aioedge(*args[3:], env=env)
        assert second.code == 0, second.err
        lines = [json.loads(line) for line in (out1.decode() + second.out).splitlines() if line]
        finals = [
            e["instance_id"]
            for e in lines
            if e["kind"] == "deployment" and e["event"]["kind"] == "final"
        ]
        assert Counter(finals) == Counter(emu.fleet)  # every outcome reported, once
        before_kill = [
            e
            for e in map(json.loads, out1.decode().splitlines())
            if e["kind"] == "deployment" and e["event"]["kind"] == "final"
        ]
        assert 2 <= len(before_kill) < 12  # the first wave's outcomes, then the kill
        deployed = Counter(
            e.params["InstanceId"]
            for e in emu.execution_log
            if e.action == "CreateEdgeInstanceDeployment"
        )
        assert deployed == Counter(emu.fleet)  # no instance deployed twice
        final = json.loads(second.out.splitlines()[-1])
        assert final["kind"] == "final" and len(final["result"]["succeeded"]) == 12


async def test_progress_timeout_counts_a_stalled_deployment_as_failed(tmp_path: Path) -> None:
    async with Emulator(fleet=2, speed=20) as emu:  # a stage every 0.1 s
        env = base_env(tmp_path, emu.credentials)
        emu.fail_instances([emu.fleet[0]], stage=8, stall=True)
        r = await aioedge(
            "rollout", *emu.fleet, "--waves", "100%", "--max-failures", "100%",
            "--progress-timeout", "1", "--endpoint", emu.endpoint, "--poll-interval", "0.05",
            "--max-poll-interval", "0.2", env=env,
        )  # fmt: skip
        assert r.code == 1, r.err
        stalled = [line for line in r.out.splitlines() if line.startswith("FAILED")]
        assert len(stalled) == 1 and emu.fleet[0] in stalled[0] and " stalled (" in stalled[0]
        assert "last change:" in stalled[0]
        assert "done: 1 succeeded, 1 failed, 0 skipped" in r.out


async def test_min_finished_is_refused_as_the_api_refuses_it(tmp_path: Path) -> None:
    r = await aioedge("rollout", "a", "--min-finished", "0", "--dry-run", env=base_env(tmp_path))
    assert r.code == 2
    assert "--min-finished must be an integer >= 1, got 0" in r.error_line()


async def test_a_resumed_rollouts_status_line_counts_as_its_summary(tmp_path: Path) -> None:
    """On a terminal the status line reads the rollout's own record, as the summary line and
    the exit code do: after a resume it counts the outcomes of the run before and shows the
    stored waves (the status line used to count only this run's outcomes, out of the waves
    of this run's --waves, while the rollout kept the stored ones)."""
    from aioedge import EdgeClient

    from .test_cli import in_terminal

    store = tmp_path / "rollout.json"
    async with (
        Emulator(fleet=4, speed=50) as emu,
        EdgeClient(credentials=emu.credentials, endpoint=emu.endpoint) as client,
    ):
        first = client.rollout(emu.fleet, waves="1,50%,100%", store=store, poll_interval=0.05)
        async with first:
            async for event in first:
                if event.outcome is not None:
                    break  # the first wave's one outcome is on record, then a stop
        assert len(first.result.succeeded) == 1
        code, screen = await in_terminal(
            "rollout", *emu.fleet, "--waves", "100%", "--store", str(store),
            "--endpoint", emu.endpoint, "--poll-interval", "0.05",
            env=base_env(tmp_path, emu.credentials), columns=200,
        )  # fmt: skip
    assert code == 0, screen
    assert "done: 4 succeeded, 0 failed, 0 skipped" in screen
    shown = re.findall(r"wave \d+/\d+ · \d+/\d+ done · \d+ ok · \d+ failed", screen)
    assert shown and shown[-1] == "wave 3/3 · 4/4 done · 4 ok · 0 failed", shown
