"""The scripts in examples/, each run as a user would (a subprocess) against an emulator.

The emulator serves from this test's event loop while the script runs; the script gets the
endpoint through ``--endpoint`` and its credentials through the environment variables of
the library's chain.  Each test checks the script's output and exit code, and the
emulator's record of what the script did.

The shared-quota example needs a real Redis: CI exports ``AIOEDGE_TEST_REDIS_URL``; elsewhere
the test tries redis://127.0.0.1:6379/0 and skips, with the reason, when no Redis answers,
and fails instead when ``AIOEDGE_REQUIRE_REDIS=1`` or ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aioedge import EdgeClient
from aioedge.testing import Emulator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 60.0

# The examples' own seeding helpers (examples/_setup.py), to prepare a scenario in-process.
sys.path.insert(0, str(EXAMPLES))
try:
    setup: Any = importlib.import_module("_setup")
finally:
    sys.path.remove(str(EXAMPLES))


@dataclass
class Run:
    code: int
    out: str
    err: str


def example_env(emu: Emulator, home: Path) -> dict[str, str]:
    """The environment a user would have: the emulator's keys in the chain's variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_", "ALIYUN_"))}
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = emu.credentials.access_key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = emu.credentials.access_key_secret
    env["HOME"] = str(home)  # no profile file of the machine's user gets in the way
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def start(script: str, emu: Emulator, home: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        "--endpoint",
        emu.endpoint,
        *args,
        env=example_env(emu, home),
        cwd=str(home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_example(script: str, emu: Emulator, home: Path, *args: str) -> Run:
    proc = await start(script, emu, home, *args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        pytest.fail(f"{script} did not finish in {TIMEOUT} s:\n{out.decode()}\n{err.decode()}")
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def no_traceback(run: Run) -> None:
    assert "Traceback" not in run.out + run.err, run.err


@pytest.fixture
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    options = {"speed": 50, **getattr(request, "param", {})}
    async with Emulator(**options) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[EdgeClient]:
    async with EdgeClient(
        credentials=emu.credentials, endpoint=emu.endpoint, quota_scope=emu.endpoint
    ) as c:
        yield c


# --------------------------------------------------------------------------- inventory


@pytest.mark.parametrize("emu", [{"quota_scale": 10}], indirect=True)
async def test_inventory_table_then_json_over_two_pages(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    run = await run_example("inventory.py", emu, tmp_path, "--seed-demo")
    no_traceback(run)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split()[:3] == ["INSTANCE", "NAME", "SPEC"]
    rows = {line.split()[1]: line for line in lines[1:4]}
    assert set(rows) == {"inventory_1", "inventory_2", "inventory_3"}
    assert "(never deployed)" in rows["inventory_3"]
    for name in ("inventory_1", "inventory_2"):
        assert re.search(r" [0-9a-f]{32} +deploy +(not started|processing|succeeded) ", rows[name])
    assert lines[-1] == "3 instance(s)"

    # 28 more make 31: QueryEdgeInstance pages hold 30, so the listing takes two pages.
    async with EdgeClient(
        credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False
    ) as fast:  # the emulator's quotas are scaled up for this test: seed without waiting
        await fast.batch(("CreateEdgeInstance", {"Name": f"extra_{n:02d}"}) for n in range(28))
    run = await run_example("inventory.py", emu, tmp_path, "--json")
    assert run.code == 0, run.err
    listed = json.loads(run.out)
    assert len(listed) == 31
    # Two listings (1 page, then 2), and seeding looked for each of its 3 instances first.
    assert emu.stats()["QueryEdgeInstance"]["succeeded"] == 3 + 1 + 2
    by_name = {row["name"]: row for row in listed}
    for name in ("inventory_1", "inventory_2"):
        row = by_name[name]
        history = await client.query_edge_instance_historic_deployment(
            instance_id=row["instance_id"], page_size=30
        )
        assert [d.deployment_id for d in history] == [row["deployment_id"]]
        assert row["deployment_type"] == "deploy" and row["error"] is None
    assert by_name["inventory_3"]["deployment_id"] is None
    assert all(by_name[f"extra_{n:02d}"]["deployment_id"] is None for n in range(28))


async def test_seeding_twice_reuses_what_the_first_run_made_and_the_endpoint_comes_from_the_env(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    env = {**example_env(emu, tmp_path), "ALIBABA_CLOUD_IOT_ENDPOINT": emu.endpoint}
    runs = []
    for script in ("inventory.py", "inventory.py", "bulk_bind_devices.py", "bulk_bind_devices.py"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / script),  # no --endpoint: the variable the emulator prints
            "--seed-demo",
            *(["--devices", "3"] if script.startswith("bulk") else []),
            env=env,
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        runs.append(Run(proc.returncode or 0, out.decode(), err.decode()))
    for run in runs:
        no_traceback(run)
        assert run.code == 0, run.err
        assert "InstanceNameExist" not in run.err
    assert runs[0].out.splitlines()[-1] == runs[1].out.splitlines()[-1] == "3 instance(s)"
    names = [i.name for i in await client.query_edge_instance(page_size=30)]
    assert sorted(names) == ["bulk_bind_demo", "inventory_1", "inventory_2", "inventory_3"]
    # The second inventory run did not deploy again: one deployment each.
    for name in ("inventory_1", "inventory_2"):
        [inst] = [i for i in await client.query_edge_instance(name=name)]
        history = await client.query_edge_instance_historic_deployment(
            instance_id=inst.instance_id or "", page_size=30
        )
        assert len(list(history)) == 1


# --------------------------------------------------------------------------- bulk binding


def _bound_ids(emu: Emulator, action: str, key: str) -> list[list[str]]:
    """The list items each executed call carried (IotIds.N or DeviceConfigs.N.IotId)."""
    out = []
    for ex in emu.executions:
        if ex.action == action:
            pat = re.compile(rf"{key}\.(\d+)(\.IotId)?$")
            items = sorted(
                ((int(m.group(1)), v) for k, v in ex.params.items() if (m := pat.match(k))),
            )
            out.append([v for _, v in items])
    return out


async def test_bulk_bind_chunks_groups_and_reports(emu: Emulator, tmp_path: Path) -> None:
    run = await run_example(
        "bulk_bind_devices.py",
        emu,
        tmp_path,
        "--seed-demo",
        "--devices",
        "45",
        "--group-size",
        "30",
    )
    no_traceback(run)
    assert run.code == 0, run.out + run.err
    assert "binding 45 device(s)" in run.out
    assert "bind: 45 ok, 0 failed, 0 unknown" in run.out
    assert "config: 45 ok, 0 failed, 0 unknown" in run.out
    # Progress: one line per group when stderr is not a terminal.
    assert run.err.splitlines() == [
        "bind: 30/45 devices",
        "bind: 45/45 devices",
        "config: 30/45 devices",
        "config: 45/45 devices",
    ]
    # Groups of 30 and 15 went out as API calls of at most 20: 20 + 10 + 15.
    binds = _bound_ids(emu, "BatchBindDeviceToEdgeInstanceWithDriver", "IotIds")
    assert sorted(len(b) for b in binds) == [10, 15, 20]
    configs = _bound_ids(emu, "BatchSetEdgeInstanceDeviceConfig", "DeviceConfigs")
    assert sorted(len(c) for c in configs) == [10, 15, 20]
    bound = [iot_id for b in binds for iot_id in b]
    assert sorted(bound) == sorted(iot_id for c in configs for iot_id in c)
    assert len(set(bound)) == 45


async def test_bulk_bind_reports_failed_chunks_per_device(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    target = await setup.seed_fleet(client, "target")
    other = await setup.seed_fleet(client, "other")
    devices = setup.fake_iot_ids(25)
    # Three of them already belong to another instance: their chunk (1-20) is refused whole.
    await client.batch_bind_device_to_edge_instance_with_driver(
        instance_id=other.instance_id, driver_id=other.driver_id, iot_ids=devices[5:8]
    )
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# devices\n" + "\n".join(devices) + "\n")
    run = await run_example(
        "bulk_bind_devices.py",
        emu,
        tmp_path,
        "--instance",
        target.instance_id,
        "--driver",
        target.driver_id,
        "--iot-ids-file",
        str(ids_file),
    )
    no_traceback(run)
    assert run.code == 1
    assert "bind: 5 ok, 20 failed, 0 unknown" in run.out
    assert re.search(
        r"  20 failed: iot\.device\.DeviceAlreadyBindToOtherInstance \(RequestId [0-9A-F-]{36}\): "
        + re.escape(", ".join(devices[:5]))
        + ", … 15 more",
        run.out,
    ), run.out
    assert "config: 5 ok, 0 failed, 0 unknown" in run.out
    page = await client.query_edge_instance_device(instance_id=target.instance_id, page_size=30)
    assert sorted(str(d.iot_id) for d in page) == sorted(devices[20:])


# --------------------------------------------------------------------------- service


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]  # every line must be JSON


async def test_deploy_service_logs_json_and_finishes_rounds(emu: Emulator, tmp_path: Path) -> None:
    run = await run_example(
        "deploy_service.py", emu, tmp_path, "--seed-demo", "--rounds", "2", "--interval", "0.1"
    )
    no_traceback(run)
    assert run.code == 0, run.err
    logs = json_lines(run.out)
    names = [entry["event"] for entry in logs]
    assert names[0] == "service.started" and names[-1] == "service.stopped"
    assert logs[-1]["exit_code"] == 0
    # Between the rounds it says it waits, and for how long: no silent minute.
    [waiting] = [e for e in logs if e["event"] == "deploy.next_round"]
    assert waiting["next_round"] == 2 and waiting["in_seconds"] == 0.1
    assert all("timestamp" in e and "level" in e for e in logs)
    # aioedge's own events arrive through the application's structlog configuration.
    created = [e for e in logs if e["event"] == "aioedge.deployment_created"]
    assert len(created) == 2 and {e["round"] for e in created} == {1, 2}
    assert names.count("aioedge.watch_finished") == 2
    finished = [e for e in logs if e["event"] == "deploy.finished"]
    assert [e["outcome"] for e in finished] == ["succeeded", "succeeded"]
    kinds = {e.get("deploy_kind") for e in logs if e["event"] == "deploy.event"}
    assert {"deployment", "task", "snapshot", "log"} <= kinds
    for e in created:  # the emulator's ground truth agrees
        assert emu.timeline(e["deployment_id"])[-1]["status"] == 2


async def test_deploy_service_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    async with Emulator(speed=1) as emu:  # a rollout of several seconds: still running
        proc = await start("deploy_service.py", emu, tmp_path, "--seed-demo")
        assert proc.stdout is not None
        seen: list[dict[str, Any]] = []
        try:
            while not any(e["event"] == "deploy.event" for e in seen):
                line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
                assert line, "the service ended before deploying"
                seen.append(json.loads(line))
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        logs = seen + json_lines(out.decode())
        stopping = next(e for e in logs if e["event"] == "service.stopping")
        created = next(e for e in logs if e["event"] == "aioedge.deployment_created")
        assert stopping["signal"] == "SIGTERM"
        assert stopping["in_flight"] == [
            {"instance_id": created["instance_id"], "deployment_id": created["deployment_id"]}
        ]
        assert logs[-1]["event"] == "service.stopped" and logs[-1]["exit_code"] == 0
        assert not any(e["event"] == "deploy.finished" for e in logs)
        # The rollout goes on in the cloud: stopping the watcher did not stop it.
        assert emu.timeline(created["deployment_id"])[-1]["status"] in (0, 1)


async def test_deploy_service_serves_prometheus_metrics(tmp_path: Path) -> None:
    async with Emulator(speed=50) as emu:
        proc = await start("deploy_service.py", emu, tmp_path, "--seed-demo", "--metrics-port", "0")
        assert proc.stdout is not None
        seen: list[dict[str, Any]] = []
        try:
            while not any(e["event"] == "deploy.finished" for e in seen):
                line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
                assert line, "the service ended before a deployment finished"
                seen.append(json.loads(line))
            url = next(e["url"] for e in seen if e["event"] == "service.metrics")
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                assert resp.status == 200
                text = await resp.text()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    ok = 'aioedge_calls_total{action="GetEdgeInstanceDeployment",outcome="ok"}'
    assert samples[ok] >= 2  # the watch polled until the rollout ended
    assert samples['aioedge_calls_total{action="CreateEdgeInstanceDeployment",outcome="ok"}'] == 1
    assert 'aioedge_call_duration_seconds_count{action="GetEdgeInstanceDeployment"}' in samples
    assert 'aioedge_quota_wait_seconds_count{action="GetEdgeInstanceDeployment"}' in samples
    assert 'aioedge_limiter_rate{action="GetEdgeInstanceDeployment"}' in samples
    assert samples["aioedge_limiter_redis_fallback"] == 0
    assert emu.credentials.access_key_secret not in text


# --------------------------------------------------------------------------- shared quota


def _redis_url() -> str:
    import redis

    url = os.environ.get("AIOEDGE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    required = os.environ.get("AIOEDGE_REQUIRE_REDIS") == "1" or bool(os.environ.get("CI"))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        reason = f"no Redis answers at {url} ({type(exc).__name__}); set AIOEDGE_TEST_REDIS_URL"
        if required:
            pytest.fail(f"Redis is required here: {reason}")
        pytest.skip(reason)
    return url


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    import redis

    url = _redis_url()
    prefix = f"aioedge-example-{uuid.uuid4().hex[:10]}"
    yield url, prefix
    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(match=f"{prefix}:*"))
    if keys:
        r.delete(*keys)


@pytest.mark.redis
async def test_shared_quota_two_processes_never_throttled(
    emu: Emulator, tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    url, prefix = redis_prefix
    run = await run_example(
        "shared_quota.py",
        emu,
        tmp_path,
        "--seed-demo",
        "--redis",
        url,
        "--prefix",
        prefix,
        "--workers",
        "2",
        "--calls",
        "8",
    )
    no_traceback(run)
    assert run.code == 0, run.out + run.err
    workers = re.findall(r"^worker (\d) \(pid (\d+)\): (\d+) ok, (\d+) throttled", run.out, re.M)
    assert [(w, ok, t) for w, _, ok, t in workers] == [("1", "8", "0"), ("2", "8", "0")]
    assert len({pid for _, pid, _, _ in workers} | {str(os.getpid())}) == 3
    assert re.search(r"^total: 16 ok, 0 throttled, 0 failed in ", run.out, re.M)
    # 16 calls at 10 QPS from two processes: the emulator enforced the quota and saw no
    # request over it (with retries off, one would have been a failure above anyway).
    stats = emu.stats()["GetEdgeInstance"]
    assert stats["requests"] == 16 and stats["throttled"] == 0


# --------------------------------------------------------------------------- fleet rollout


@pytest.mark.parametrize("emu", [{"fleet": 8, "fail_rate": 0.25, "seed": 2}], indirect=True)
async def test_fleet_rollout_aborts_then_a_resume_changes_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    args = ["--emulator-fleet", "--waves", "1,50%,100%", "--max-failures", "0"]
    args += ["--store", str(tmp_path / "rollout.json")]
    run = await run_example("fleet_rollout.py", emu, tmp_path, *args)
    no_traceback(run)
    assert run.code == 1, run.err  # a failure, then the abort
    assert run.out.splitlines()[0] == "wave 1: 1 instance(s)"
    assert "aborted: " in run.out and run.out.rstrip().endswith("(aborted)")
    created = [e for e in emu.executions if e.action == "CreateEdgeInstanceDeployment"]
    assert created and len({e.params["InstanceId"] for e in created}) == len(created)
    # Run again: the record says it aborted; nothing starts, the result is the same.
    again = await run_example("fleet_rollout.py", emu, tmp_path, *args, "--json")
    assert again.code == 1, again.err
    result = json.loads(again.out)
    assert result["aborted"] and result["failed"]
    assert len(result["succeeded"]) + len(result["failed"]) == len(created)
    assert len([e for e in emu.executions if e.action == "CreateEdgeInstanceDeployment"]) == len(
        created
    )
