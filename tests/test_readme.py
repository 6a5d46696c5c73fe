"""The README's promise: two commands, and the first one works on a fresh clone.

``make demo`` is run for real, in a ``git clone`` of this repository's HEAD, where it creates
its own virtual environment and installs the package into it before running the demo: what a
newcomer does first.  Running ``make test`` the same way would run this very test again, so
for the second command the test checks that CI runs exactly it (``.ci/run``), and what each
target installs is read from ``make -n``.

The README's Python quickstart runs as the README says to run it against the emulator: its
block, with ``region_id="cn-shanghai"`` replaced by ``endpoint="<the emulator's URL>"``, in a
fresh interpreter whose credentials are the two credential variables the emulator prints (its
third ``export`` line, the endpoint, is read by the command line, not by ``EdgeClient``).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aioedge.testing import Emulator

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def first_code_block(markdown: str) -> list[str]:
    """The lines of the first fenced code block."""
    match = re.search(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    assert match, "the README has no code block"
    return match.group(1).splitlines()


def test_readme_starts_with_exactly_two_commands() -> None:
    lines = first_code_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [line.strip() for line in lines if line.strip()] == ["make demo", "make test"]


def python_block(markdown: str) -> str:
    """The first fenced ``python`` code block."""
    match = re.search(r"^```python\n(.*?)^```", markdown, re.M | re.S)
    assert match, "the README has no python code block"
    return match.group(1)


# What the README tells a reader to change to run the quickstart against the emulator.
CLOUD, LOCAL = 'region_id="cn-shanghai"', 'endpoint="http://127.0.0.1:8123"'


async def test_readme_quickstart_runs_against_the_emulator(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    code = python_block(text)
    assert code.count(CLOUD) == 1, "the quickstart no longer says region_id=..."
    prose = re.sub(r"\s+", " ", text[text.index(code) + len(code) :].split("\n## ")[0])
    assert f"replace `{CLOUD}` with `{LOCAL}`" in prose
    assert "aioedge emulator --port 8123" in prose and "`export` lines" in prose

    async with Emulator(speed=20) as emu:
        script = tmp_path / "quickstart.py"
        script.write_text(code.replace(CLOUD, f'endpoint="{emu.endpoint}"'), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_", "ALIYUN_"))}
        env |= {
            "HOME": str(tmp_path),  # no profile files: only what the emulator printed
            "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.credentials.access_key_secret,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        output = out.decode() + err.decode()
        assert proc.returncode == 0, output
        assert err == b"", output
        lines = out.decode().splitlines()
        instance_id, name, spec = lines[0].split()
        assert (name, spec) == ("line_7", "20")
        assert re.fullmatch(r"\S+ deployment [0-9a-f]{32} succeeded", lines[-1]), lines[-1]
        # It did what it says, on the emulator: one instance, a gateway, a finished rollout.
        executed = [e.action for e in emu.executions]
        assert executed[:2] == ["CreateEdgeInstance", "BindGatewayToEdgeInstance"]
        assert "CreateEdgeInstanceDeployment" in executed
        dep_id = re.search(r"deployment ([0-9a-f]{32})", lines[-1])
        assert dep_id and emu.timeline(dep_id.group(1))[-1]["status"] == 2
        assert lines[0].startswith(instance_id)


def make_dry_run(target: str, tmp_path: Path) -> list[str]:
    """The commands ``make TARGET`` would run on a fresh clone (no .venv yet)."""
    make = shutil.which("make")
    assert make, "make is needed to follow the README"
    work = tmp_path / target
    work.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, work / name)
    # Under `make test` the parent make's MAKEFLAGS/MAKELEVEL would make this one print
    # "Entering/Leaving directory" lines: a newcomer's shell has neither.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        [make, "--no-print-directory", "-n", target],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_make_demo_installs_only_the_package_and_make_test_the_dev_tools(
    tmp_path: Path,
) -> None:
    demo, test = make_dry_run("demo", tmp_path), make_dry_run("test", tmp_path)
    installs = [line for line in demo if "pip install" in line and "--upgrade pip" not in line]
    assert [line.split()[-2:] for line in installs] == [["-e", "."]], demo
    assert demo[-1] == ".venv/bin/aioedge demo"
    installs = [line for line in test if "pip install" in line and "--upgrade pip" not in line]
    assert [line.split()[-2:] for line in installs] == [["-e", "'.[dev]'"]], test
    assert test[-1] == ".venv/bin/python -m pytest -q"
    # .ci/run uses the tools after `make test`: they come with the dev extra.
    extras = (ROOT / "pyproject.toml").read_text(encoding="utf-8").split("dev = [")[1]
    extras = extras.split("\n]")[0]
    for tool in ("aioedge[test]", "ruff", "mypy", "mkdocs"):  # pytest comes with [test]
        assert f'"{tool}' in extras, tool


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in script.splitlines()]
    assert commands.count("make test") == 1
    assert "set -euo pipefail" in commands  # so a failing `make test` fails CI


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_make_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    git, make = shutil.which("git"), shutil.which("make")
    assert git and make, "git and make are needed to follow the README"
    clone = tmp_path / "aioedge"
    subprocess.run(
        [git, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        timeout=60,
    )
    assert not (clone / ".venv").exists()
    # The environment of a newcomer's shell: nothing of this test run's virtualenv.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MAKELEVEL")
        and not k.startswith(("PYTEST_", "ALIBABA_", "ALIYUN_"))
    }
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    done = subprocess.run(
        [make, "demo"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"rollout succeeded: \d+ API calls, 0 throttled, [\d.]+ s", last), last

    # It ran from the clone's own new environment, not from ours.
    where = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import aioedge; print(aioedge.__file__)"],
        cwd=tmp_path,  # not a directory with an aioedge/ in it: the import must be the install
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).resolve().is_relative_to(clone.resolve())
