"""``aioedge emulator --port N`` / ``python -m aioedge.testing --port N`` on a fixed port.

The other command tests pass ``--port 0``, which cannot tell a command that honours
``--port`` from one that always takes a free port.  Here a free port is picked first,
handed to the command, and the command must print and serve exactly that port.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest

from aioedge import Credentials, EdgeClient

TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_", "ALIYUN_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@asynccontextmanager
async def _command(argv: Sequence[str]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None and proc.stderr is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    if not raw:
        err = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
        raise AssertionError(f"the command exited early: {err.decode(errors='replace')}")
    return raw.decode().rstrip("\n")


async def _serves(endpoint: str, credentials: Credentials) -> None:
    """A signed call and the inspection endpoint both answer at ``endpoint``."""
    async with EdgeClient(credentials=credentials, endpoint=endpoint, rate_limit=False) as client:
        created = await client.call("CreateEdgeInstance", {"Name": "fixed_port"})
        got = await client.call("GetEdgeInstance", {"InstanceId": created["InstanceId"]})
        assert got["Data"]["Name"] == "fixed_port"
    async with (
        aiohttp.ClientSession() as session,
        session.get(endpoint + "/_emulator/stats") as resp,
    ):
        stats = await resp.json()
    assert stats["CreateEdgeInstance"]["executed"] == 1


@pytest.mark.parametrize(
    "argv",
    [["-m", "aioedge", "emulator"], ["-m", "aioedge.testing"]],
    ids=["aioedge emulator", "python -m aioedge.testing"],
)
async def test_json_output_reports_and_serves_the_chosen_port(argv: list[str]) -> None:
    port = _free_port()
    async with _command([*argv, "--port", str(port), "--json", "--speed", "50"]) as proc:
        info = json.loads(await _line(proc))
        assert info["endpoint"] == f"http://127.0.0.1:{port}"
        await _serves(
            info["endpoint"], Credentials(info["access_key_id"], info["access_key_secret"])
        )
    assert proc.returncode == 0


async def test_the_banner_shows_the_chosen_port() -> None:
    port = _free_port()
    async with _command(["-m", "aioedge", "emulator", "--port", str(port)]) as proc:
        lines: list[str] = []
        while not any("ALIBABA_CLOUD_ACCESS_KEY_SECRET=" in line for line in lines):
            lines.append(await _line(proc))
        endpoints = [word for line in lines for word in line.split() if "://" in word]
        assert endpoints and endpoints[0] == f"http://127.0.0.1:{port}", lines
        values = {
            k: v
            for line in lines
            for k, _, v in [line.strip().removeprefix("export ").partition("=")]
            if k.startswith("ALIBABA_CLOUD_ACCESS_KEY_")
        }
        credentials = Credentials(
            values["ALIBABA_CLOUD_ACCESS_KEY_ID"], values["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
        )
        await _serves(f"http://127.0.0.1:{port}", credentials)
    assert proc.returncode == 0


async def test_a_taken_port_is_an_error_not_another_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        async with _command(["-m", "aioedge", "emulator", "--port", str(port), "--json"]) as proc:
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode not in (0, None)
    assert out == b""  # no endpoint printed: it did not fall back to a free port
    assert b"error" in err.lower()


@pytest.mark.parametrize(
    ("argv", "faults", "message"),
    [
        (["-m", "aioedge", "emulator"], "NoSuch:lost", "unknown Action 'NoSuch'"),
        (
            ["-m", "aioedge", "emulator"],
            "GetEdgeInstanc:unavailable",
            "unknown Action 'GetEdgeInstanc'; did you mean 'GetEdgeInstance'?",
        ),
        (
            ["-m", "aioedge.testing"],
            "*:503=0.1,QueryEdgeInstanc:lost:times=1",
            "unknown Action 'QueryEdgeInstanc'; did you mean 'QueryEdgeInstance'?",
        ),
    ],
)
async def test_a_fault_for_an_unknown_action_is_a_usage_error(
    argv: list[str], faults: str, message: str
) -> None:
    # A rule that names no Action the emulator serves would never strike: a typo.
    async with _command([*argv, "--port", "0", "--json", "--faults", faults]) as proc:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert out == b""  # it did not start
    assert err.decode().splitlines() == [f"error: --faults: {message}"]


@pytest.mark.parametrize("option", ["token-lifetime", "speed", "quota-scale"])
@pytest.mark.parametrize("value", ["0", "-5", "ten", "nan"])
def test_an_option_that_is_not_a_positive_number_is_a_usage_error(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each is checked by the command lines' one ``positive`` type, at parse time: --speed
    nan and --quota-scale nan used to pass, and the emulator then failed with "cannot
    convert float NaN to integer", naming no option."""
    from aioedge.testing._command import main

    try:
        code = main(["--port", "0", "--json", f"--{option}={value}"])
    except SystemExit as exit_:  # argparse refused it
        code = int(str(exit_.code))
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""  # it did not start
    assert f"argument --{option}: " in err, err


@pytest.mark.parametrize("name", ["speed", "quota_scale", "token_lifetime"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_emulator_options_refuse_what_is_not_a_positive_number(name: str, value: float) -> None:
    from aioedge.testing._service import EmulatorOptions

    with pytest.raises(ValueError, match=f"^{name} must be > 0, got {value!r}$"):
        EmulatorOptions(**{name: value})


def test_the_emulator_defaults_are_written_once() -> None:
    """Emulator(), its options and the command line start from the same values: the
    command's defaults are read from EmulatorOptions, and the constructor's spelled-out
    defaults (kept for type checkers and help()) must agree with it."""
    import dataclasses
    import inspect

    from aioedge.testing import Emulator
    from aioedge.testing._command import build_parser
    from aioedge.testing._service import EmulatorOptions

    defaults = EmulatorOptions()
    # The constructor takes other spellings for these (None, a mapping, a spec string).
    other_forms = {"faults", "limits", "access_keys"}
    compared = 0
    for name, param in inspect.signature(Emulator).parameters.items():
        if name in other_forms:
            continue
        assert param.default == getattr(defaults, name), name
        compared += 1
    assert compared == len(dataclasses.fields(EmulatorOptions)) - len(other_forms)

    args = build_parser().parse_args([])
    shared = ("host", "speed", "quota_scale", "throttle_style", "seed", "fleet")
    for name in (*shared, "fleet_gateways", "fail_rate", "token_lifetime", "strict_devices"):
        assert getattr(args, name) == getattr(defaults, name), name
    assert defaults.quotas and not args.no_quotas
    assert args.port == 8123  # the one deliberate difference: a served emulator's port
