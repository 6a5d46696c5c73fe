"""The ``aioedge`` command as a user runs it: ``python -m aioedge ...`` in a subprocess.

The emulator serves from the test's event loop while the command runs; credentials reach the
command through the chain (environment variables, or a profile file under a temporary HOME).
Checked: output formats (JSON, NDJSON parsed line by line), exit codes (0 success, 1 failed
or timed out or refused by the service, 2 usage and credential errors, including keys the
service rejects, 130 interrupted), every error as one line with its code and RequestId and
never a traceback, the connection options before and after the subcommand, per-operation help,
the ``emulator`` subcommand and its banner, a watch of an unreachable endpoint, and the live
tree under a pseudo-terminal (see also test_cli_live.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import os
import pty
import re
import shlex
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aioedge import Credentials, EdgeClient
from aioedge._argtypes import WATCH_TIMING, watch_timing
from aioedge._catalog import OPERATIONS
from aioedge._cli import (
    _exit_code_for,
    _FailFast,
    _print_error,
    _Unreachable,
    build_parser,
    main,
)
from aioedge._errors import ApiError, TransportError, error_class_for
from aioedge._retry import DeadlineExceededError
from aioedge.testing import Emulator
from aioedge.watch import DeploymentMonitor, DeploymentWatcher

TIMEOUT = 60.0
LOCAL = "http://127.0.0.1"
NOT_KV = "parameter 'InstanceId' is not KEY=VALUE"
BAD_URL = "is not a valid URL"
RID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one line an error prints; no traceback, nothing else on stderr."""
        assert "Traceback" not in self.err + self.out, self.err
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        return lines[0]


def base_env(home: Path, creds: Credentials | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_", "ALIYUN_"))}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"  # no real metadata service here
    if creds is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = creds.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = creds.access_key_secret
    return env


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` for a CLI a test will Ctrl-C: a shell starts background jobs with SIGINT
    ignored, and a child inherits that (Python then installs no KeyboardInterrupt handler), so
    a suite run in the background would see the CLI shrug the signal off."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def in_terminal(
    *args: str, env: Mapping[str, str], columns: int, lines: int = 60, term: str = "xterm"
) -> tuple[int, str]:
    """Run ``aioedge ARGS`` with a pseudo-terminal of ``columns`` x ``lines`` (of type
    ``term``) as its stdio."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioedge",
        *args,
        env={**env, "COLUMNS": str(columns), "LINES": str(lines), "TERM": term},
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    try:
        await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, read_all), TIMEOUT)
        code = await asyncio.wait_for(proc.wait(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        with contextlib.suppress(OSError):
            os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


async def aioedge(*args: str, env: Mapping[str, str], timeout: float = TIMEOUT) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioedge",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"aioedge {' '.join(args)} did not finish in {timeout} s")
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(speed=50) as emulator:
        yield emulator


@pytest.fixture
def env(emu: Emulator, tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path, emu.credentials)


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[EdgeClient]:
    async with EdgeClient(
        credentials=emu.credentials, endpoint=emu.endpoint, quota_scope=emu.endpoint
    ) as c:
        yield c


async def instance_with_gateway(client: EdgeClient, name: str) -> tuple[str, str]:
    """An instance ready to deploy: a gateway, and a driver (so there are snapshots).
    Returns the instance and driver ids."""
    inst = await client.create_edge_instance(name=name, spec=20)
    await client.bind_gateway_to_edge_instance(instance_id=inst.instance_id, iot_id=gateway(name))
    drv = await client.create_edge_driver(
        driver_name=f"{name}_drv", driver_protocol="modbus", runtime="python3"
    )
    await client.create_edge_driver_version(
        driver_id=drv.driver_id, driver_version="1.0", edge_version="2.4.0"
    )
    await client.bind_driver_to_edge_instance(instance_id=inst.instance_id, driver_id=drv.driver_id)
    return inst.instance_id, drv.driver_id


def gateway(name: str) -> str:
    return f"gw{name}0000000000"[:20]


# --------------------------------------------------------------------------- help and ops


async def test_help_and_ops_come_from_the_catalog(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    help_, ops_json = await asyncio.gather(
        aioedge("--help", env=env), aioedge("ops", "--output", "json", env=env)
    )
    assert help_.code == 0
    for command in ("demo", "emulator", "ops", "call", "watch", "deploy"):
        assert re.search(rf"^    {command} ", help_.out, re.M), command
    assert ops_json.code == 0
    rows = [json.loads(line) for line in ops_json.out.splitlines()]
    assert [(r["action"], r["qps"], r["read_only"]) for r in rows] == [
        (op.action, op.qps, op.read_only) for op in OPERATIONS.values()
    ]


def test_every_deployment_type_option_offers_the_catalogs_types() -> None:
    """CreateEdgeInstanceDeployment's Type values are written once, in the spec: check_type
    (deploy_and_watch, Rollout) and the --type of deploy and rollout read the catalog's
    tuple itself, not copies of it that could drift apart."""
    import argparse

    from aioedge._catalog import get_operation
    from aioedge.watch._deploy import DEPLOYMENT_TYPES, check_type

    param = get_operation("CreateEdgeInstanceDeployment").param("Type")
    assert param is not None and param.values is not None
    assert DEPLOYMENT_TYPES is param.values
    assert [check_type(t) for t in param.values] == list(param.values)
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for command in ("deploy", "rollout"):
        (option,) = [a for a in sub.choices[command]._actions if "--type" in a.option_strings]
        assert option.choices is DEPLOYMENT_TYPES, command


@pytest.mark.parametrize("text", ["x", "150%", "-0.5", "nan", "nan%", "1e400%"])
def test_a_share_is_read_alike_by_the_rollout_and_the_emulator(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-failures (rollout) and --fail-rate (emulator) are shares, read by one rule
    (``_argtypes.parse_share``): the same text is refused with the same words."""
    said = []
    for argv, option in (
        (["rollout", "a", "--dry-run", "--max-failures", text], "--max-failures"),
        (["emulator", "--port", "0", "--fail-rate", text], "--fail-rate"),
    ):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse exits by itself
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err.splitlines()[-1]
        said.append(err.split(f"{option}", 1)[1].lstrip(": "))
    assert said[0] == said[1], said


def test_ops_json_says_one_operation_as_the_list_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--output", "json"]) == 0
    listed = {r["action"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert main(["ops", "QueryEdgeInstance", "--output", "json"]) == 0
    one = json.loads(capsys.readouterr().out)
    params = one.pop("params")
    assert one == listed["QueryEdgeInstance"]  # the same record, then its parameters
    assert {p["name"] for p in params} >= {"PageSize", "CurrentPage"}


def test_ops_table_and_one_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for op in OPERATIONS.values():
        assert re.search(rf"^  {op.action} +{op.qps}  ", out, re.M), op.action

    assert main(["ops", "BatchSetEdgeInstanceDeviceConfig"]) == 0
    out = capsys.readouterr().out
    assert "5 QPS per account, mutating" in out
    assert re.search(r"^  DeviceConfigs +String\[\]; required; ≤20 items; fields ", out, re.M)
    assert re.search(r"^  InstanceId +String; required", out, re.M)

    assert main(["ops", "NoSuchAction"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "NoSuchAction" in captured.err


# --------------------------------------------------------------------------- call


async def test_call_prints_json_and_takes_lists_both_ways(
    emu: Emulator, env: dict[str, str], client: EdgeClient
) -> None:
    ep = emu.endpoint
    created = await aioedge("call", "CreateEdgeInstance", "--endpoint", ep, "Name=cli_1", env=env)
    assert created.code == 0, created.err
    body = json.loads(created.out)
    assert body["Success"] is True and body["RequestId"]
    instance_id = body["InstanceId"]

    drv = await client.create_edge_driver(
        driver_name="cli_drv", driver_protocol="modbus", runtime="python3"
    )
    await client.create_edge_driver_version(
        driver_id=drv.driver_id, driver_version="1.0", edge_version="2.4.0"
    )
    await client.bind_driver_to_edge_instance(instance_id=instance_id, driver_id=drv.driver_id)

    bind, pages, got = await asyncio.gather(
        # Options before, between and after the KEY=VALUE words.
        aioedge(
            "call",
            "--endpoint",
            ep,
            "BatchBindDeviceToEdgeInstanceWithDriver",
            f"InstanceId={instance_id}",
            "--region",
            "cn-beijing",
            f"DriverId={drv.driver_id}",
            "IotIds=d1,d2",
            "IotIds=d3",
            env=env,
        ),
        aioedge("call", "QueryEdgeInstance", "--all-pages", "--endpoint", ep, env=env),
        aioedge("call", "GetEdgeInstance", f"InstanceId={instance_id}", "--endpoint", ep, env=env),
    )
    # A list of structures given twice adds to the list, as IotIds does (not replaced).
    first = json.dumps([{"IotId": "d1", "Content": "{}"}])
    second = json.dumps([{"IotId": "d3", "Content": "x=1"}])
    config = await aioedge(
        "call",
        "BatchSetEdgeInstanceDeviceConfig",
        f"InstanceId={instance_id}",
        f"DeviceConfigs={first}",
        f"DeviceConfigs={second}",
        "--endpoint",
        ep,
        env=env,
    )
    for result in (bind, config, pages, got):
        assert result.code == 0, result.err
    executed = {e.action: e.params for e in emu.executions}
    bind_params = executed["BatchBindDeviceToEdgeInstanceWithDriver"]
    assert {k: v for k, v in bind_params.items() if k.startswith("IotIds.")} == {
        "IotIds.1": "d1",
        "IotIds.2": "d2",
        "IotIds.3": "d3",
    }
    assert json.loads(bind.out)["Success"] is True
    config_params = executed["BatchSetEdgeInstanceDeviceConfig"]
    assert config_params["DeviceConfigs.1.IotId"] == "d1"
    assert config_params["DeviceConfigs.2.IotId"] == "d3"
    assert config_params["DeviceConfigs.2.Content"] == "x=1"
    assert [item["InstanceId"] for item in json.loads(pages.out)] == [instance_id]
    assert json.loads(got.out)["Data"]["Name"] == "cli_1"


async def test_errors_are_one_line_with_code_and_request_id(
    emu: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    ep = emu.endpoint
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    no_creds = base_env(tmp_path / "empty")
    api, missing, creds, network = await asyncio.gather(
        aioedge("call", "GetEdgeInstance", "InstanceId=nope", "--endpoint", ep, env=env),
        aioedge("call", "GetEdgeInstance", "--endpoint", ep, env=env),
        aioedge("call", "GetEdgeInstance", "InstanceId=x", "--endpoint", ep, env=no_creds),
        aioedge("call", "QueryEdgeInstance", "--endpoint", closed, env=env),
    )
    assert api.code == 1 and api.out == ""
    line = api.error_line()
    m = re.fullmatch(rf"error: iot\.edge\.InstanceNotExist: .+ \(RequestId ({RID})\)", line)
    assert m, line
    assert m.group(1) in {r.request_id for r in emu.execution_log}

    assert missing.code == 2 and "InstanceId" in missing.error_line()
    assert creds.code == 2 and creds.error_line().startswith("error: no credentials found")
    assert network.code == 1 and network.error_line().startswith("error: network: ")
    assert emu.stats()["GetEdgeInstance"]["requests"] == 1  # the others never left the machine


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["call", "NoSuchAction"], "NoSuchAction"),
        (["call", "GetEdgeInstance", "oops"], "'oops' is not KEY=VALUE"),
        (["call", "GetEdgeInstance", "InstanceId=a", "InstanceId=b"], "InstanceId given twice"),
        (["call", "BatchSetEdgeInstanceDeviceConfig", "DeviceConfigs=["], "takes a JSON list"),
        (["call", "GetEdgeInstance", "InstanceId=x", "--region", "moon"], "region_id must"),
        (["call", "QueryEdgeInstance", "--bogus"], "unrecognized arguments: --bogus"),
        (["deploy", "X", "--type", "bogus"], "invalid choice: 'bogus'"),
        (["deploy", "X", "--timeout", "-1"], "--timeout: must be > 0"),
        (["call", "GetEdgeInstance", "InstanceId=x", "--timeout", "0"], "--timeout: must be > 0"),
        (["call", "GetEdgeInstance", "InstanceId=x", "--retries", "-1"], "--retries: must be >="),
        (["call", "GetEdgeInstance", "--retries", "two"], "--retries: not a whole number"),
        (["demo", "--speed", "0"], "--speed: must be > 0"),
        # NaN is not > 0 either (a comparison with it is always false).
        (["watch", "X", "--progress-timeout", "nan"], "--progress-timeout: must be > 0"),
        (["call", "GetEdgeInstance", "InstanceId=x", "--timeout", "nan"], "--timeout: must be"),
        # The options that time a watch are declared once, checked alike by every command
        # (a rollout's --dry-run used to take a timeout of 0 or an interval of NaN).
        (["rollout", "X", "--dry-run", "--timeout", "0"], "--timeout: must be > 0"),
        (["rollout", "X", "--dry-run", "--progress-timeout", "-1"], "--progress-timeout: must"),
        (["rollout", "X", "--dry-run", "--poll-interval", "nan"], "--poll-interval: must be > 0"),
        (["rollout", "X", "--max-poll-interval", "0"], "--max-poll-interval: must be > 0"),
        (["watch", "X", "--poll-interval", "0"], "--poll-interval: must be > 0"),
        (["deploy", "X", "--max-poll-interval", "-5"], "--max-poll-interval: must be > 0"),
        (["watch"], "the following arguments are required: INSTANCE"),
        (["deploy", "X"], "no credentials found"),
        (["emulator", "--port", "0", "--faults", "garbage"], "fault 'garbage' must look like"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        # A word without "=" after an option gets the same message as before one.
        (["call", "GetEdgeInstance", "--endpoint", f"{LOCAL}:8123", "InstanceId"], NOT_KV),
        (["call", "GetEdgeInstance", "--region", "cn-beijing", "InstanceId", "X=1"], NOT_KV),
        (["call"], "the following arguments are required: ACTION"),
        (["call", "NoSuchAction", "--help"], "unknown Action 'NoSuchAction'"),
        # Malformed endpoints: a usage error naming the URL, before or after the command.
        (["call", "GetEdgeInstance", "InstanceId=x", "--endpoint", f"{LOCAL}:99999"], BAD_URL),
        (["call", "GetEdgeInstance", "InstanceId=x", "--endpoint", f"{LOCAL}:abc"], BAD_URL),
        (["watch", "I", "D", "--endpoint", "http://[::1"], BAD_URL),
        (["--endpoint", f"{LOCAL}:99999", "deploy", "I"], BAD_URL),
        (["--region", "moon", "call", "GetEdgeInstance", "InstanceId=x"], "region_id must"),
        (["emulator", "--port", "70000"], "argument --port: must be 0..65535, got 70000"),
        (["emulator", "--port", "http"], "argument --port: not a port number: 'http'"),
        # The count type the emulator's options share with the CLI's (--retries).
        (["emulator", "--fleet", "-1"], "argument --fleet: must be >= 0, got -1"),
        (["emulator", "--fleet", "many"], "argument --fleet: not a whole number: 'many'"),
    ],
)
def test_usage_and_credential_errors_exit_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # In-process (these fail before any I/O); the subprocess tests cover the real startup.
    for name in list(os.environ):
        if name.startswith(("ALIBABA_", "ALIYUN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))
    if "credentials" not in message:  # fake keys: each case fails before they are used
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIfake")
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "fake-secret")
    argparse_exit = False
    code: int | str | None
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits by itself, after its usage line
        code, argparse_exit = exc.code, True
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    if argparse_exit:
        assert lines[0].startswith("usage: aioedge") and lines[-1].startswith("aioedge")
    else:
        assert len(lines) == 1


async def test_profile_option_picks_the_credentials_file_section(
    emu: Emulator, tmp_path: Path
) -> None:
    ini = tmp_path / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    creds = emu.credentials
    ini.write_text(
        "[default]\ntype = access_key\naccess_key_id = LTAIwrong\naccess_key_secret = wrong\n\n"
        f"[emu]\ntype = access_key\naccess_key_id = {creds.access_key_id}\n"
        f"access_key_secret = {creds.access_key_secret}\n"
    )
    env = base_env(tmp_path)
    ep = emu.endpoint
    with_profile, without = await asyncio.gather(
        aioedge("call", "QueryEdgeInstance", "--endpoint", ep, "--profile", "emu", env=env),
        aioedge("call", "QueryEdgeInstance", "--endpoint", ep, env=env),
    )
    assert with_profile.code == 0, with_profile.err
    assert json.loads(with_profile.out)["Success"] is True
    assert without.code == 2  # a key the service does not know: fix the configuration
    assert re.fullmatch(
        rf"error: InvalidAccessKeyId\S*: .+ \(RequestId {RID}\)", without.error_line()
    )
    assert "wrong" not in without.err.replace("LTAIwrong", "")  # never the secret


# --------------------------------------------------------------------------- watch / deploy


async def test_deploy_and_watch_json_and_exit_codes(
    emu: Emulator, env: dict[str, str], client: EdgeClient
) -> None:
    ep = emu.endpoint
    ok_id, _ = await instance_with_gateway(client, "cli_ok")
    failing_id, failing_driver = await instance_with_gateway(client, "cli_fail")
    bare = await client.create_edge_instance(name="cli_bare")
    emu.fail_deployment_at(failing_driver, stage=16, message="disk full")

    deployed, failed, refused = await asyncio.gather(
        aioedge("deploy", ok_id, "--endpoint", ep, "--output", "json", env=env),
        aioedge("deploy", failing_id, "--endpoint", ep, "--poll-interval", "0.1", env=env),
        aioedge("deploy", bare.instance_id, "--endpoint", ep, env=env),
    )

    assert deployed.code == 0, deployed.err
    events = [json.loads(line) for line in deployed.out.splitlines()]  # NDJSON, every line
    assert events[-1]["kind"] == "final" and events[-1]["outcome"] == "succeeded"
    assert {"deployment", "task", "snapshot", "log"} <= {e["kind"] for e in events}
    dep_id = events[0]["deployment_id"]
    assert all(e["deployment_id"] == dep_id and "time" in e for e in events)
    assert emu.timeline(dep_id)[-1]["status"] == 2

    # Failed: exit 1, plain lines when piped (no terminal control codes).
    assert failed.code == 1, failed.err
    assert "\x1b[" not in failed.out
    assert re.search(r"deployment [0-9a-f]{32} failed", failed.out.splitlines()[-1])
    assert "disk full" in failed.out

    assert refused.code == 1
    assert re.fullmatch(
        rf"error: iot\.edge\.InstanceHasNoGateway: .+ \(RequestId {RID}\)", refused.error_line()
    )

    watched, gone, latest = await asyncio.gather(
        aioedge("watch", "--endpoint", ep, ok_id, dep_id, "-o", "json", env=env),
        aioedge("watch", ok_id, "0" * 32, "--endpoint", ep, env=env),
        aioedge("watch", ok_id, "--endpoint", ep, env=env),  # no id: the latest one
    )
    assert watched.code == 0, watched.err
    replay = [json.loads(line) for line in watched.out.splitlines()]
    assert replay[-1]["outcome"] == "succeeded"
    assert gone.code == 1
    assert re.fullmatch(
        rf"error: deployment 0{{32}} of instance {ok_id} does not exist \(iot\.edge\."
        rf"deploySheetNotExist\) \(RequestId {RID}\)",
        gone.error_line(),
    )
    assert latest.code == 0, latest.err
    assert latest.out.startswith(f"no deployment is running; the latest one is {dep_id}:")
    assert latest.out.splitlines()[-1].endswith(f"deployment {dep_id} succeeded")


async def test_deploy_times_out_with_exit_1(tmp_path: Path) -> None:
    async with (
        Emulator(speed=0.5) as slow,
        EdgeClient(
            credentials=slow.credentials, endpoint=slow.endpoint, quota_scope=slow.endpoint
        ) as client,
    ):
        instance_id, _ = await instance_with_gateway(client, "cli_slow")
        env = base_env(tmp_path, slow.credentials)
        result = await aioedge(
            "deploy",
            instance_id,
            "--endpoint",
            slow.endpoint,
            "--timeout",
            "0.5",
            "-o",
            "json",
            env=env,
        )
        assert result.code == 1, result.err
        final = json.loads(result.out.splitlines()[-1])
        assert final["kind"] == "final" and final["outcome"] == "timed_out"
        # The rollout itself goes on: only the watch gave up.
        assert slow.timeline(final["deployment_id"])[-1]["status"] in (0, 1)


# --------------------------------------------------------------------------- emulator


async def start_emulator_command(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    """``aioedge emulator --port 0 ARGS`` in a subprocess, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioedge",
        "emulator",
        "--port",
        "0",
        *args,
        env=base_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_emulator_subcommand_serves_and_prints_credentials(tmp_path: Path) -> None:
    proc = await start_emulator_command(tmp_path, "--speed", "5")
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while len(lines) < 5:
            line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            assert line, "the emulator exited early"
            lines.append(line.decode().rstrip())
        m = re.fullmatch(r"aioedge emulator listening on (http://127\.0\.0\.1:\d+)", lines[0])
        assert m, lines
        endpoint = m.group(1)
        key_id = lines[1].split("export ALIBABA_CLOUD_ACCESS_KEY_ID=")[1]
        secret = lines[2].split("export ALIBABA_CLOUD_ACCESS_KEY_SECRET=")[1]
        assert lines[3] == f"  export ALIBABA_CLOUD_IOT_ENDPOINT={endpoint}"
        # The next line is a command to paste once the three exports are done: it works.
        pasted = shlex.split(lines[4])
        assert pasted[:2] == ["aioedge", "call"] and "--endpoint" not in pasted
        exported = {
            **base_env(tmp_path),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
            "ALIBABA_CLOUD_IOT_ENDPOINT": endpoint,
        }
        first = await aioedge(*pasted[1:], env=exported)
        assert first.code == 0, first.err
        assert json.loads(first.out)["Success"] is True
        # What it printed is enough to use it from Python too.
        async with EdgeClient(credentials=Credentials(key_id, secret), endpoint=endpoint) as c:
            created = await c.create_edge_instance(name="from_cli")
            page = await c.query_edge_instance()
            assert json.loads(first.out)["InstanceId"] in [i.instance_id for i in page]
            assert created.instance_id in [i.instance_id for i in page]
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --------------------------------------------------------------------------- live display


async def test_live_tree_under_a_terminal(
    emu: Emulator, env: dict[str, str], client: EdgeClient
) -> None:
    instance_id, _ = await instance_with_gateway(client, "cli_tty")

    code, text = await in_terminal(
        "deploy",
        instance_id,
        "--endpoint",
        emu.endpoint,
        "--poll-interval",
        "0.05",
        env=env,
        columns=120,
        lines=40,
    )
    assert code == 0, text
    assert "Traceback" not in text
    # Drawn in place: lines cleared and the cursor moved back up to redraw the tree.
    assert "\x1b[2K" in text
    redraws = re.findall(r"\x1b\[(\d+)F", text)
    assert len(redraws) >= 2 and int(redraws[-1]) >= 3  # the tree grew as objects appeared
    final = text[text.rindex(f"\x1b[{redraws[-1]}F") :]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", final)  # colour: it is a terminal
    assert re.search(r"deployment [0-9a-f]{8}: succeeded", plain)  # ids short in the tree
    assert "cli_tty_drv (driver)" in plain
    assert re.search(r"deployment [0-9a-f]{32} succeeded\r?$", plain.rstrip())  # whole: last
    assert final.count("succeeded") >= 3  # deployment, its task, the driver snapshot


async def test_demo_piped_into_a_reader_that_leaves_early(tmp_path: Path) -> None:
    # `aioedge demo | head -3`: no "Broken pipe" error, no traceback, just an exit.
    read_end, write_end = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aioedge",
        "demo",
        "--speed",
        "50",
        "--devices",
        "1",
        env=base_env(tmp_path),
        stdout=write_end,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = reader.readline()
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert first.startswith(b"aioedge demo: emulator on http://127.0.0.1:")
    assert proc.returncode == 1
    assert err == b""


# --------------------------------------------------------------------------- per-operation help


def test_call_action_help_describes_that_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "BatchSetEdgeInstanceDeviceConfig"]) == 0
    described = capsys.readouterr().out
    assert main(["call", "BatchSetEdgeInstanceDeviceConfig", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: aioedge call BatchSetEdgeInstanceDeviceConfig [KEY=VALUE ...]")
    assert described in out  # the same parameters, limits and fields as `ops ACTION`
    example = "aioedge call BatchSetEdgeInstanceDeviceConfig DeviceConfigs=… InstanceId=…"
    assert f"example: {example}\n" in out
    assert "QueryEdgeInstance " not in out  # not the list of every operation

    # -h anywhere, among the connection options
    assert main(["call", "-h", "--endpoint", f"{LOCAL}:1", "GetEdgeInstance"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  InstanceId +String; required$", out, re.M)

    # Without an ACTION: the command's help, every operation, and where to look next.
    assert main(["call", "--help"]) == 0
    out = capsys.readouterr().out
    assert "aioedge call ACTION --help" in out
    for op in OPERATIONS.values():
        assert re.search(rf"^  {op.action} +{op.qps}  ", out, re.M), op.action


# --------------------------------------------------------------------------- connection options


async def test_connection_options_before_or_after_the_command(
    emu: Emulator, env: dict[str, str]
) -> None:
    ep = emu.endpoint
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"{LOCAL}:{s.getsockname()[1]}"
    before, after_wins, from_env, flag_wins, bad = await asyncio.gather(
        aioedge("--endpoint", ep, "--region", "cn-beijing", "call", "QueryEdgeInstance", env=env),
        aioedge("--endpoint", closed, "call", "QueryEdgeInstance", "--endpoint", ep, env=env),
        aioedge("call", "QueryEdgeInstance", env={**env, "ALIBABA_CLOUD_IOT_ENDPOINT": ep}),
        aioedge(
            "call",
            "QueryEdgeInstance",
            "--endpoint",
            ep,
            env={**env, "ALIBABA_CLOUD_IOT_ENDPOINT": closed},
        ),
        aioedge("--endpoint", f"{LOCAL}:99999", "watch", "I", "D", env=env),
    )
    for result in (before, after_wins, from_env, flag_wins):
        assert result.code == 0, result.err
        assert json.loads(result.out)["Success"] is True
    assert emu.stats()["QueryEdgeInstance"]["requests"] == 4
    assert bad.code == 2
    assert bad.error_line() == (
        "error: endpoint 'http://127.0.0.1:99999' is not a valid URL: Port out of range 0-65535"
    )

    broken = await aioedge(
        "call", "QueryEdgeInstance", env={**env, "ALIBABA_CLOUD_IOT_ENDPOINT": "iot.example"}
    )
    assert broken.code == 2
    assert broken.error_line().startswith("error: $ALIBABA_CLOUD_IOT_ENDPOINT: endpoint must be")


async def test_profile_option_before_the_command(emu: Emulator, tmp_path: Path) -> None:
    ini = tmp_path / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    creds = emu.credentials
    ini.write_text(
        f"[emu]\ntype = access_key\naccess_key_id = {creds.access_key_id}\n"
        f"access_key_secret = {creds.access_key_secret}\n"
    )
    result = await aioedge(
        "--profile", "emu", "call", "QueryEdgeInstance", "--endpoint", emu.endpoint,
        env=base_env(tmp_path),
    )  # fmt: skip
    assert result.code == 0, result.err


# --------------------------------------------------------------------------- credentials


async def test_credentials_the_service_rejects_exit_2(emu: Emulator, tmp_path: Path) -> None:
    wrong_secret = Credentials(emu.credentials.access_key_id, "not-the-emulator-secret")
    unknown_key = Credentials("LTAInobodyKnowsThisKey", emu.credentials.access_key_secret)
    ep = emu.endpoint
    wrong_env, unknown_env = base_env(tmp_path, wrong_secret), base_env(tmp_path, unknown_key)
    call, watch, unknown = await asyncio.gather(
        aioedge("call", "QueryEdgeInstance", "--endpoint", ep, env=wrong_env),
        aioedge("watch", "I", "D", "--endpoint", ep, env=wrong_env),
        aioedge("call", "QueryEdgeInstance", "--endpoint", ep, env=unknown_env),
    )
    for result in (call, watch):
        assert result.code == 2, result.err
        # The message without the service's string to sign (hundreds of characters).
        assert re.fullmatch(
            r"error: SignatureDoesNotMatch: Specified signature is not matched with our "
            rf"calculation\. \(RequestId {RID}\)",
            result.error_line(),
        )
        assert "not-the-emulator-secret" not in result.err
    assert unknown.code == 2
    assert re.fullmatch(
        rf"error: InvalidAccessKeyId\.NotFound: .+ \(RequestId {RID}\)", unknown.error_line()
    )


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("InvalidAccessKeyId.NotFound", 2),
        ("InvalidAccessKeyId.Inactive", 2),
        ("SignatureDoesNotMatch", 2),
        ("InvalidSecurityToken.Expired", 2),
        ("InvalidSecurityToken.MismatchWithAccessKey", 2),
        ("Forbidden.RAM", 1),  # a valid key without the permission: the call was refused
        ("iot.edge.InstanceNotExist", 1),
    ],
)
def test_exit_code_for_service_errors(code: str, exit_code: int) -> None:
    err = error_class_for(code)(code, "…")
    assert _exit_code_for(err) == exit_code


# --------------------------------------------------------------------------- watch: fail fast


async def test_watch_of_an_unreachable_endpoint_fails_at_once(env: dict[str, str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # No --timeout: before, this retried for ever (the helper fails the test after TIMEOUT).
    result = await aioedge("watch", "I", "D", "--endpoint", f"{LOCAL}:{port}", env=env)
    assert result.code == 1
    line = result.error_line()
    assert line.startswith(f"error: network: cannot connect to 127.0.0.1:{port}: "), line
    assert line.endswith("(is the endpoint right?)")
    assert result.out == ""


class _Scripted:
    """A client whose calls answer or raise from a list."""

    def __init__(self, *outcomes: Exception | dict[str, Any]) -> None:
        self.outcomes = list(outcomes)

    async def call(self, action: str, params: Any) -> dict[str, Any]:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_fail_fast_only_until_the_service_has_answered() -> None:
    refused = TransportError("cannot connect to x", maybe_executed=False)
    ambiguous = TransportError("timed out waiting for the answer", maybe_executed=True)

    with pytest.raises(_Unreachable, match="cannot connect to x"):
        await _FailFast(_Scripted(refused)).call("GetEdgeInstanceDeployment", {})

    # An answer may have been lost, but something is there: retried as before.
    with pytest.raises(TransportError):
        await _FailFast(_Scripted(ambiguous)).call("GetEdgeInstanceDeployment", {})

    # Once the service answered (even with an error), a refused connection is an outage:
    # the watcher's retries apply (TransportError is one of its transient errors).
    for first in ({"Success": True}, error_class_for("Throttling")("Throttling", "slow down")):
        client = _FailFast(_Scripted(first, refused))
        with contextlib.suppress(ApiError):
            await client.call("GetEdgeInstanceDeployment", {})
        with pytest.raises(TransportError) as caught:
            await client.call("GetEdgeInstanceDeployment", {})
        assert not isinstance(caught.value, _Unreachable)

    # A call given up while it waited for its rate-limit slot never tried the endpoint.
    queued = DeadlineExceededError("GetEdgeInstanceDeployment not sent: ...", action="x")
    with pytest.raises(DeadlineExceededError):
        await _FailFast(_Scripted(queued)).call("GetEdgeInstanceDeployment", {})
    err = io.StringIO()
    _print_error(queued, err)
    assert err.getvalue() == "error: quota: GetEdgeInstanceDeployment not sent: ...\n"


# --------------------------------------------------------------------------- Ctrl-C


async def test_ctrl_c_on_a_running_watch_exits_130(tmp_path: Path) -> None:
    async with (
        Emulator(speed=0.02) as slow,  # the rollout takes minutes: the watch is still on
        EdgeClient(
            credentials=slow.credentials, endpoint=slow.endpoint, quota_scope=slow.endpoint
        ) as client,
    ):
        instance_id, _ = await instance_with_gateway(client, "cli_int")
        dep = await client.create_edge_instance_deployment(instance_id=instance_id, type="deploy")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioedge",
            "watch",
            instance_id,
            dep.deployment_id,
            "--endpoint",
            slow.endpoint,
            env=base_env(tmp_path, slow.credentials),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=sigint_as_at_a_terminal,
        )
        assert proc.stdout is not None
        try:
            first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            assert f"deployment {dep.deployment_id}" in first.decode()  # it is watching
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 130
        assert err.decode() == (
            "interrupted; the deployment goes on in the service; follow it again with: "
            f"aioedge watch {instance_id} --endpoint {slow.endpoint}\n"
        )
        assert "Traceback" not in out.decode()
        assert slow.timeline(dep.deployment_id)[-1]["status"] in (0, 1)  # not over yet


# --------------------------------------------------------------------------- call: timeouts


async def test_call_timeout_and_retries_against_a_stalled_service(tmp_path: Path) -> None:
    # Every answer is held back 5 s: each attempt gives up after --timeout instead.
    async with Emulator(faults="*:delay:delay=5") as stalled:
        env = base_env(tmp_path, stalled.credentials)
        ep = stalled.endpoint
        started = time.monotonic()
        read, once, write = await asyncio.gather(
            aioedge(
                "call", "GetEdgeInstance", "InstanceId=x", "--timeout", "0.3", "--retries", "1",
                "--endpoint", ep, env=env,
            ),
            aioedge(
                "call", "GetEdgeInstance", "--timeout", "0.3", "InstanceId=y", "--retries", "0",
                "--endpoint", ep, env=env,
            ),
            aioedge(
                "call", "CreateEdgeInstance", "Name=stalled", "--timeout", "0.3",
                "--endpoint", ep, env=env,
            ),
        )  # fmt: skip
        elapsed = time.monotonic() - started
        stats = stalled.stats()
    assert elapsed < 4.5, elapsed  # not one 5 s wait, let alone 5 attempts of 10 s
    for result in (read, once, write):
        assert result.code == 1 and result.out == "", result.err
    # A read-only Action that may have run changed nothing: no warning about it.
    assert read.error_line() == (
        "error: network: GetEdgeInstance timed out waiting for the answer (2 attempts)"
    )
    assert once.error_line() == "error: network: GetEdgeInstance timed out waiting for the answer"
    # A mutating one is not repeated, and may have been applied.
    assert write.error_line() == (
        "error: network: CreateEdgeInstance timed out waiting for the answer "
        "(the call may have run)"
    )
    assert stats["GetEdgeInstance"]["requests"] == 3
    assert stats["CreateEdgeInstance"]["requests"] == 1


# --------------------------------------------------------------------------- deploy: --attach


async def test_a_lost_or_refused_deploy_points_to_attach(tmp_path: Path) -> None:
    async with (
        Emulator(speed=0.05, faults="CreateEdgeInstanceDeployment:lost:times=1") as slow,
        EdgeClient(
            credentials=slow.credentials, endpoint=slow.endpoint, quota_scope=slow.endpoint
        ) as client,
    ):
        instance_id, _ = await instance_with_gateway(client, "cli_lost")
        env = base_env(tmp_path, slow.credentials)
        ep = slow.endpoint
        lost = await aioedge("deploy", instance_id, "--endpoint", ep, env=env)
        again = await aioedge("deploy", instance_id, "--endpoint", ep, env=env)
        attached = await aioedge(
            "deploy", instance_id, "--attach", "--timeout", "0.5", "-o", "json", "--endpoint", ep,
            env=env,
        )  # fmt: skip
        created = [e.code for e in slow.execution_log if e.action == "CreateEdgeInstanceDeployment"]
    # The answer was lost after the deployment was created.
    assert lost.code == 1 and lost.out == ""
    assert re.fullmatch(
        r"error: network: CreateEdgeInstanceDeployment: .+ \(the call may have run\); "
        r"re-run with --attach to follow the deployment if it started",
        lost.error_line(),
    )
    # Running the same command again is refused: that deployment is still going on.
    assert again.code == 1 and again.out == ""
    assert re.fullmatch(
        rf"error: iot\.edge\.deploySheetAlreadyExist: .+ \(RequestId {RID}\); "
        r"re-run with --attach to follow it",
        again.error_line(),
    )
    # --attach follows it (until --timeout here) rather than starting another one.
    assert attached.code == 1, attached.err
    events = [json.loads(line) for line in attached.out.splitlines()]
    assert events[-1]["outcome"] == "timed_out"
    assert created == ["Success"] + ["iot.edge.deploySheetAlreadyExist"] * 2


async def test_a_deploy_whose_answer_was_unreadable_may_have_run_too(tmp_path: Path) -> None:
    """The client does not repeat a create whose answer came back cut off (it may have run),
    so the line says so and points to --attach, as after a lost answer; a read-only call
    whose answer was unreadable changed nothing and says nothing of the kind."""
    faults = "CreateEdgeInstanceDeployment:malformed:times=1,GetEdgeInstance:malformed"
    async with (
        Emulator(speed=0.05, faults=faults) as emu,
        EdgeClient(
            credentials=emu.credentials, endpoint=emu.endpoint, quota_scope=emu.endpoint
        ) as client,
    ):
        instance_id, _ = await instance_with_gateway(client, "cli_garbled")
        env = base_env(tmp_path, emu.credentials)
        ep = emu.endpoint
        garbled = await aioedge("deploy", instance_id, "--endpoint", ep, env=env)
        read = await aioedge(
            "call", "GetEdgeInstance", f"InstanceId={instance_id}", "--retries", "0",
            "--endpoint", ep, env=env,
        )  # fmt: skip
        created = [e.code for e in emu.execution_log if e.action == "CreateEdgeInstanceDeployment"]
    assert created == ["Success"]
    assert garbled.code == 1 and garbled.out == ""
    assert re.fullmatch(
        r"error: InvalidResponse: unreadable response body .+ \(the call may have run\); "
        r"re-run with --attach to follow the deployment if it started",
        garbled.error_line(),
    ), garbled.err
    assert read.code == 1 and read.out == ""
    assert re.fullmatch(
        r"error: InvalidResponse: unreadable response body .+ \(RequestId [^()]+\)",
        read.error_line(),
    ), read.err


# --------------------------------------------------------------------------- parsers


async def test_usage_errors_and_help_come_from_the_command(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    misplaced, bogus, emulator_help, demo_help, deploy_help = await asyncio.gather(
        aioedge("call", "GetEdgeInstance", "InstanceId=x", "--output", "json", env=env),
        aioedge("watch", "I", "D", "--bogus", env=env),
        aioedge("emulator", "--help", env=env),
        aioedge("demo", "--help", env=env),
        aioedge("deploy", "--help", env=env),
    )
    assert misplaced.code == 2 and misplaced.out == ""
    lines = misplaced.err.splitlines()
    # The usage of `call`, which lists the options it does take, not the top-level one.
    assert lines[0].startswith("usage: aioedge call "), misplaced.err
    assert "--timeout SECONDS" in misplaced.err and "COMMAND" not in misplaced.err
    assert lines[-1] == "aioedge call: error: unrecognized arguments: --output"
    assert bogus.code == 2 and bogus.out == ""
    assert bogus.err.startswith("usage: aioedge watch ")
    assert bogus.err.splitlines()[-1] == "aioedge watch: error: unrecognized arguments: --bogus"

    # The connection options are offered where they do something.
    for result in (emulator_help, demo_help, deploy_help):
        assert result.code == 0, result.err
    for option in ("--endpoint", "--region", "--profile"):
        assert option not in emulator_help.out and option not in demo_help.out
        assert option in deploy_help.out
    assert "--faults" in emulator_help.out and "--devices" in demo_help.out


def test_emulator_and_demo_still_accept_the_connection_options() -> None:
    parser = build_parser()
    for command in ("emulator", "demo"):
        argv = [command, "--endpoint", f"{LOCAL}:1", "--region", "cn-beijing", "--profile", "p"]
        args, extra = parser.parse_known_args(argv)
        assert extra == [] and args.region == "cn-beijing", command


def test_watch_deploy_and_rollout_time_the_watch_with_the_same_four_options() -> None:
    # watch_timing(args) hands them on under their own names: each is a keyword of the
    # watcher (watch, deploy) and of the monitor (rollout), and each command fills all four.
    timing = ["--timeout", "7", "--progress-timeout", "8"]
    timing += ["--poll-interval", "0.25", "--max-poll-interval", "3"]
    parser = build_parser()
    for command in ("watch", "deploy", "rollout"):
        args = parser.parse_args([command, "inst-1", *timing])
        assert watch_timing(args) == {
            "poll_interval": 0.25,
            "max_poll_interval": 3.0,
            "timeout": 7.0,
            "progress_timeout": 8.0,
        }, command
    for takes in (DeploymentWatcher, DeploymentMonitor):
        assert set(WATCH_TIMING) <= set(inspect.signature(takes).parameters), takes
