"""Every benchmark script starts and explains itself (no timing here: numbers go to docs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("bench_*.py"))
TOOLS = ["overhead_pieces.py"]  # explains a benchmark; no target of its own


def test_the_five_benchmarks_exist() -> None:
    assert {
        "bench_overhead.py",
        "bench_quota.py",
        "bench_redis.py",
        "bench_watch.py",
        "bench_growth.py",
    } <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS + TOOLS)
def test_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "--quick" in done.stdout
