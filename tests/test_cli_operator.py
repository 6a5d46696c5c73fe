"""The operator's view: why a rollout failed, at a glance, in a terminal and in JSON.

``aioedge`` runs in a subprocess, under a pseudo-terminal of 80 and 160 columns for the
live view, against the emulator serving from the test's event loop.  Checked: the terminal's
last line names the failing resource and its whole message; the tree marks the root cause
and the snapshots that only stopped with their subtask; short ids, a capped name column,
colour unless ``NO_COLOR``; ``--output json`` ends with a ``final`` record on success,
failure, timeout, a lost endpoint and errors; ``aioedge watch INSTANCE`` without a
deployment id; the re-attach hint; an ASCII terminal; ``aioedge`` alone prints its help.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aioedge import EdgeClient
from aioedge._cli import main
from aioedge.testing import Emulator

from .test_cli import TIMEOUT, aioedge, base_env, gateway, in_terminal, sigint_as_at_a_terminal

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MESSAGE = (
    "download failed: disk full on /var/lib/edge while unpacking the driver "
    "(needed 182 MB, 12 MB free); free some space and deploy again"
)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(speed=50) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[EdgeClient]:
    async with EdgeClient(
        credentials=emu.credentials, endpoint=emu.endpoint, quota_scope=emu.endpoint
    ) as c:
        yield c


async def fleet(
    emu: Emulator, client: EdgeClient, name: str, devices: int = 6
) -> tuple[str, list[str]]:
    """An instance with a gateway, a driver and ``devices`` device configs; the devices'
    names are long (the tree's name column must stop them).  Returns the device IotIds."""
    inst = (await client.create_edge_instance(name=name, spec=20)).instance_id
    await client.bind_gateway_to_edge_instance(instance_id=inst, iot_id=gateway(name))
    drv = await client.create_edge_driver(
        driver_name=f"{name[:12]}_drv", driver_protocol="modbus", runtime="python3"
    )
    await client.create_edge_driver_version(
        driver_id=drv.driver_id, driver_version="1.0", edge_version="2.4.0"
    )
    await client.bind_driver_to_edge_instance(instance_id=inst, driver_id=drv.driver_id)
    ids = [
        emu.add_device("pk", f"{name}_temperature_sensor_in_hall_{n:02d}", node_type="sub")["IotId"]
        for n in range(devices)
    ]
    results = await client.batch(
        [
            (
                "BatchBindDeviceToEdgeInstanceWithDriver",
                {"InstanceId": inst, "DriverId": drv.driver_id, "IotIds": ids},
            ),
            (
                "BatchSetEdgeInstanceDeviceConfig",
                {
                    "InstanceId": inst,
                    "DeviceConfigs": [{"IotId": i, "Content": "{}"} for i in ids],
                },
            ),
        ]
    )
    for result in results:
        result.unwrap()
    return inst, ids


def last_drawing(text: str) -> list[str]:
    """The lines of the final redraw and what was printed after it, without ANSI codes."""
    redraws = list(re.finditer(r"\x1b\[\d+F", text))
    tail = text[redraws[-1].end() :] if redraws else text
    return [ANSI.sub("", line).rstrip("\r") for line in tail.split("\n")]


@pytest.mark.parametrize("columns", [80, 160])
async def test_a_failed_rollout_ends_on_its_root_cause_in_a_terminal(
    emu: Emulator, client: EdgeClient, tmp_path: Path, columns: int
) -> None:
    name = f"tty{columns}"
    inst, devices = await fleet(emu, client, name)
    emu.fail_deployment_at(devices[3], stage=24, message=MESSAGE)
    env = base_env(tmp_path, emu.credentials)
    code, text = await in_terminal(
        "deploy",
        inst,
        "--endpoint",
        emu.endpoint,
        "--poll-interval",
        "0.05",
        env=env,
        columns=columns,
    )
    assert code == 1, text
    assert "Traceback" not in text
    drawing = [line for line in last_drawing(text) if line.strip()]
    final = drawing[-1]
    # The last line: the deployment failed, because of this resource, with this message.
    assert re.search(r"deployment [0-9a-f]{32} failed: ", final), final
    assert f"{name}_temperature_sensor_in_hall_03 (device_config) at dispatching" in final
    assert final.endswith("dispatch failed: " + MESSAGE)
    # The tree: the culprit marked, its message whole, the rest "stopped"; short ids.
    tree = "\n".join(drawing[:-1])
    assert "✘ root cause" in tree and "⊘ stopped" in tree
    assert re.search(
        r"✘ deployment [0-9a-f]{8}: failed \(1 task, 0/7 snapshots done, 1 failed, 6 stopped\)",
        tree,
    ), tree
    assert not re.search(r"[0-9a-f]{32}", tree)
    assert MESSAGE.split()[-1] in tree and "↳" in tree
    rows = [r for r in drawing[:-1] if "[" in r and "]" in r]
    assert rows and all(len(r) <= columns - 1 for r in drawing[:-1])
    # The label column stops at 40 characters however wide the terminal.
    for row in rows:
        assert row.index("[") <= 41, row
    if columns == 160:
        assert "(its subtask failed)" in tree
    assert re.search(r"elapsed \d+s · last poll \d+\.\ds ago · \d+ polls", tree)
    # Colour on a terminal: the root cause in bold red.
    assert "\x1b[1;31m" in text


async def test_no_color_and_a_pipe_have_no_colour(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    inst, devices = await fleet(emu, client, "nocolour", devices=2)
    emu.fail_deployment_at(devices[0], stage=16, message=MESSAGE)
    env = {**base_env(tmp_path, emu.credentials), "NO_COLOR": "1"}
    code, text = await in_terminal(
        "deploy", inst, "--endpoint", emu.endpoint, "--poll-interval", "0.05", env=env, columns=100
    )
    assert code == 1
    assert not re.search(r"\x1b\[[0-9;]*m", text)  # cursor moves, but no colour
    assert "\x1b[2K" in text
    final = [line for line in last_drawing(text) if line.strip()][-1]
    assert final.endswith("package failed: " + MESSAGE)


# --------------------------------------------------------------------------- JSON


def records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


async def test_json_always_ends_with_a_final_record(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    env = base_env(tmp_path, emu.credentials)
    ep = emu.endpoint
    ok, _ = await fleet(emu, client, "json_ok", devices=1)
    bad, devices = await fleet(emu, client, "json_bad", devices=3)
    emu.fail_deployment_at(devices[1], stage=8, message=MESSAGE)
    bare = (await client.create_edge_instance(name="json_bare")).instance_id
    succeeded, failed, missing, no_deployment = await asyncio.gather(
        aioedge("deploy", ok, "--endpoint", ep, "-o", "json", env=env),
        aioedge("deploy", bad, "--endpoint", ep, "-o", "json", env=env),
        aioedge("watch", ok, "0" * 32, "--endpoint", ep, "-o", "json", env=env),
        aioedge("watch", bare, "--endpoint", ep, "-o", "json", env=env),
    )
    final = records(succeeded.out)[-1]
    assert succeeded.code == 0
    assert (final["kind"], final["outcome"], final["reason"]) == ("final", "succeeded", "completed")

    events = records(failed.out)
    final = events[-1]
    assert failed.code == 1
    assert (final["kind"], final["outcome"], final["reason"]) == (
        "final",
        "failed",
        "snapshot_failed",
    )
    assert final["message"] == "assembly failed: " + MESSAGE
    assert final["resource_id"] == devices[1] and final["stage"] == 8
    assert final["resource_name"] == "json_bad_temperature_sensor_in_hall_01"
    # The full id of the snapshot, as the events call it.
    culprit = [e for e in events if e["kind"] == "snapshot" and e["resource_id"] == devices[1]]
    assert culprit and final["failed_snapshot"] == culprit[0]["snapshot_id"]
    assert len(final["failed_snapshot"]) == 32

    assert missing.code == 1 and "deploySheetNotExist" in missing.err
    final = records(missing.out)[-1]
    assert (final["kind"], final["outcome"], final["reason"]) == ("final", "not_found", "not_found")
    assert final["error"] == "iot.edge.deploySheetNotExist" and "does not exist" in final["message"]

    assert no_deployment.code == 1
    final = records(no_deployment.out)[-1]
    assert (final["outcome"], final["reason"]) == ("not_found", "not_found")
    assert f"aioedge deploy {bare}" in final["message"]


async def test_json_final_on_timeout_and_on_a_lost_endpoint(
    client: EdgeClient, tmp_path: Path
) -> None:
    slow = Emulator(speed=0.2)
    await slow.start()
    try:
        async with EdgeClient(
            credentials=slow.credentials, endpoint=slow.endpoint, quota_scope=slow.endpoint
        ) as c:
            inst, _ = await fleet(slow, c, "json_slow", devices=1)
            dep = (
                await c.create_edge_instance_deployment(instance_id=inst, type="deploy")
            ).deployment_id
        env = base_env(tmp_path, slow.credentials)
        timed_out = await aioedge(
            "watch", inst, "--endpoint", slow.endpoint, "--timeout", "0.5", "-o", "json", env=env
        )
        assert timed_out.code == 1, timed_out.err
        final = records(timed_out.out)[-1]
        assert (final["kind"], final["outcome"], final["reason"]) == (
            "final",
            "timed_out",
            "timeout",
        )
        assert final["deployment_id"] == dep
        # The hint goes to stderr: stdout stays JSON.
        assert (
            f"follow it again with: aioedge watch {inst} --endpoint {slow.endpoint}"
            in timed_out.err
        )

        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioedge",
            "watch",
            inst,
            dep,
            "--endpoint",
            slow.endpoint,
            "-o",
            "json",
            "--max-poll-errors",
            "1",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert json.loads(first)["kind"] == "deployment"
    finally:
        await slow.stop()  # the endpoint goes away in the middle of the watch
    rest, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 1, err
    lines = records(rest.decode())
    final = lines[-1]
    assert (final["kind"], final["outcome"], final["reason"]) == ("final", "error", "unreachable")
    assert final["deployment_id"] == dep and "gave up watching" in final["message"]
    assert final["error"] == "TransportError"
    assert any(e["kind"] == "poll_error" for e in lines)


async def test_watch_without_a_deployment_follows_the_running_one_else_the_latest(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    env = base_env(tmp_path, emu.credentials)
    inst, devices = await fleet(emu, client, "follow", devices=2)
    emu.fail_deployment_at(devices[0], stage=16, message=MESSAGE)
    first = await aioedge("deploy", inst, "--endpoint", emu.endpoint, "-o", "json", env=env)
    dep = records(first.out)[-1]["deployment_id"]
    # Nothing runs now: the latest deployment's outcome, root cause and all.
    latest = await aioedge("watch", inst, "--endpoint", emu.endpoint, env=env)
    assert latest.code == 1
    lines = latest.out.splitlines()
    assert lines[0] == f"no deployment is running; the latest one is {dep}:"
    assert lines[-1].endswith(
        "follow_temperature_sensor_in_hall_00 (device_config) at packaging on gateway "
        f"{gateway('follow')}: package failed: {MESSAGE}"
    )
    # A running one is followed to its end.
    running = (
        await client.create_edge_instance_deployment(instance_id=inst, type="deploy")
    ).deployment_id
    followed = await aioedge("watch", inst, "--endpoint", emu.endpoint, "-o", "json", env=env)
    assert followed.code == 0, followed.err
    final = records(followed.out)[-1]
    assert final["deployment_id"] == running and final["outcome"] == "succeeded"


# --------------------------------------------------------------------------- the rest


async def test_ctrl_c_says_how_to_follow_again(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    slow = Emulator(speed=0.2)
    async with slow:
        async with EdgeClient(
            credentials=slow.credentials, endpoint=slow.endpoint, quota_scope=slow.endpoint
        ) as c:
            inst, _ = await fleet(slow, c, "ctrl_c", devices=1)
        env = base_env(tmp_path, slow.credentials)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aioedge",
            "deploy",
            inst,
            "--endpoint",
            slow.endpoint,
            "-o",
            "json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=sigint_as_at_a_terminal,
        )
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)  # it is watching
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 130
    final = json.loads(out.decode().splitlines()[-1])
    assert (final["kind"], final["outcome"], final["reason"]) == (
        "final",
        "interrupted",
        "interrupted",
    )
    # Which deployment, of which instance, at what status: as every final record says.
    assert final["instance_id"] == inst and final["deployment_id"] and final["status"] in (0, 1)
    assert err.decode().startswith("interrupted; the deployment goes on in the service")
    assert f"aioedge watch {inst} --endpoint {slow.endpoint}" in err.decode()


async def test_an_ascii_terminal_gets_an_ascii_drawing(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "PYTHONIOENCODING": "ascii"}
    code, text = await in_terminal("demo", "--speed", "50", "--devices", "3", env=env, columns=100)
    assert code == 0, text
    assert "Traceback" not in text and text.isascii()
    assert "+ deployment" in text and "[####" in text
    piped = await aioedge("demo", "--speed", "50", "--devices", "2", env=env)
    assert piped.code == 0 and "Traceback" not in piped.err
    assert piped.out.isascii() and "->" in piped.out


async def test_aioedge_alone_prints_its_help(tmp_path: Path) -> None:
    result = await aioedge(env=base_env(tmp_path))
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("usage: aioedge") and "deploy" in result.out


@pytest.mark.parametrize(
    ("argv", "says", "not_says"),
    [
        (
            ["call", "GetEdgeInstance", "InstanceId=x", "--endpoint", "http://example.com"],
            "endpoint 'http://example.com' uses plain http to a non-local host; "
            "use https (plain http only to a loopback host, such as the emulator)",
            "allow_http",
        ),
        (
            [
                "call",
                "BatchBindDeviceToEdgeInstanceWithDriver",
                "InstanceId=i",
                "DriverId=d",
                "IotIds=" + ",".join(f"dev{n}" for n in range(21)),
            ],
            "BatchBindDeviceToEdgeInstanceWithDriver: IotIds has 21 items; "
            "at most 20 per call (split the list over several calls)",
            "client.batch",
        ),
        (
            [
                "call",
                "BatchSetEdgeInstanceDeviceConfig",
                "InstanceId=i",
                'DeviceConfigs=[{"IotId": "d1", "Content": x}]',
            ],
            "DeviceConfigs takes a JSON list of objects: Expecting value at column 29 (char 28), "
            "near '… \"Content\": x}]'",
            "Traceback",
        ),
    ],
)
def test_messages_point_at_what_the_command_can_do(
    argv: list[str],
    says: str,
    not_says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIfake")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "fake-secret")
    assert main(argv) == 2  # refused before anything is sent
    err = capsys.readouterr().err
    assert err == f"error: {says}\n"
    assert not_says not in err


async def test_json_final_when_the_endpoint_is_wrong_or_the_service_refuses(
    emu: Emulator, client: EdgeClient, tmp_path: Path
) -> None:
    env = base_env(tmp_path, emu.credentials)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bare = (await client.create_edge_instance(name="json_refused")).instance_id
    unreachable, refused = await asyncio.gather(
        aioedge("watch", "I", "D", "--endpoint", f"http://127.0.0.1:{port}", "-o", "json", env=env),
        aioedge("deploy", bare, "--endpoint", emu.endpoint, "-o", "json", env=env),
    )
    assert unreachable.code == 1 and "is the endpoint right?" in unreachable.err
    [final] = records(unreachable.out)  # nothing else happened, and it says so
    assert (final["kind"], final["outcome"], final["reason"]) == ("final", "error", "unreachable")
    assert final["error"] == "TransportError"  # the code a monitor gives it, not a private name
    assert final["deployment_id"] == "D" and f"127.0.0.1:{port}" in final["message"]
    assert refused.code == 1
    [final] = records(refused.out)
    assert (final["outcome"], final["reason"]) == ("error", "error")
    assert final["error"] == "iot.edge.InstanceHasNoGateway" and "RequestId" in final["message"]
