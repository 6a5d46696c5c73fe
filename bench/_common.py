"""Shared plumbing for the benchmarks: child processes, CPU clocks, tables, results.

Every benchmark keeps its traffic on 127.0.0.1 and starts its servers as separate
processes (so their CPU never counts against the client being measured), and stops them
by their own pid when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PYTHON = sys.executable


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident set size, in MiB (from /proc; 0.0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    """What the numbers were measured on (nproc, CPU model, Python, key packages)."""
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    from importlib import metadata

    for name in (
        "aioedge",
        "aiohttp",
        "structlog",
        "anyio",
        "alibabacloud-iot20180120",
        "alibabacloud-tea-openapi",
        "aliyun-python-sdk-core",
        "redis",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
    }


def pin_cpus() -> tuple[int | None, int | None]:
    """(client CPU, server CPU): on a machine with two or more CPUs the measured client and
    the server it talks to run on different ones, so they never take turns on one core
    (which makes CPU-time readings depend on scheduling).  (None, None) elsewhere."""
    if not hasattr(os, "sched_getaffinity") or os.environ.get("AIOEDGE_BENCH_NO_PIN"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[-1]


def _pinned(cpu: int | None) -> Any:
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


class Child:
    """A server or worker process whose first stdout line is a JSON object."""

    def __init__(
        self, argv: Sequence[str], *, timeout: float = 30.0, cpu: int | None = None
    ) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            cwd=REPO,
            preexec_fn=_pinned(cpu),
        )
        self.info = self._first_line(timeout)

    def _first_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=0.1):
                    line = self.proc.stdout.readline()
                    if not line:
                        break
                    line = line.strip()
                    if line.startswith("{"):
                        return dict(json.loads(line))
                if self.proc.poll() is not None:
                    break
        self.stop()
        raise RuntimeError(f"{' '.join(self.argv)} did not report itself in {timeout} s")

    def stop(self) -> None:
        """SIGTERM this child (by its pid), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def instant_server() -> Iterator[str]:
    """The instant-answer server in its own process (on the server CPU); yields its URL."""
    argv = [PYTHON, str(BENCH / "instant_server.py"), "--port", "0"]
    with Child(argv, cpu=pin_cpus()[1]) as child:
        yield str(child.info["endpoint"])


@contextlib.contextmanager
def emulator(*args: str) -> Iterator[dict[str, Any]]:
    """``python -m aioedge.testing --port 0 --json ARGS`` in its own process."""
    argv = [PYTHON, "-m", "aioedge.testing", "--port", "0", "--json", *args]
    with Child(argv) as child:
        yield child.info


def run_worker(
    argv: Sequence[str], *, timeout: float = 300.0, cpu: int | None = None
) -> dict[str, Any]:
    """Run a worker process to completion; its last stdout line is its JSON result."""
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
        preexec_fn=_pinned(cpu),
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"worker {' '.join(argv[1:])} failed ({done.returncode}):\n{done.stderr[-2000:]}"
        )
    return dict(json.loads(lines[-1]))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain Markdown table (also readable in a terminal)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def save(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine) and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **data}
    payload.setdefault("machine", machine())
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def emit(result: dict[str, Any]) -> None:
    """A worker's result: one JSON line on stdout."""
    print(json.dumps(result), flush=True)
