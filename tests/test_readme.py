"""The README's promise: two commands, and the first one works on a fresh clone.

``make demo`` is run for real, in a ``git clone`` of this repository's HEAD, where it creates
its own virtual environment and installs the package into it before running the demo: what a
newcomer does first.  Running ``make test`` the same way would run this very test again, so
for the second command the test checks that CI runs exactly it (``.ci/run``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def first_code_block(markdown: str) -> list[str]:
    """The lines of the first fenced code block."""
    match = re.search(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    assert match, "the README has no code block"
    return match.group(1).splitlines()


def test_readme_starts_with_exactly_two_commands() -> None:
    lines = first_code_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [line.strip() for line in lines if line.strip()] == ["make demo", "make test"]


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
