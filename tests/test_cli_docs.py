"""docs/cli.md shows what the command really prints and takes.

The samples of output in the page are compared with the output of the command run in a
subprocess (``aioedge ops ACTION``, the emulator's banner, the last line of ``aioedge demo``),
and the options of each synopsis with those of the command's parser, so that a change to one
without the other fails here.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from pathlib import Path

import pytest

from aioedge._cli import build_parser

from .test_cli import TIMEOUT, aioedge, base_env, start_emulator_command

CLI_MD = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
DOC_ENDPOINT = "http://127.0.0.1:8123"


def code_blocks() -> list[list[str]]:
    """The lines of every fenced code block of docs/cli.md."""
    text = CLI_MD.read_text(encoding="utf-8")
    return [
        m.group(1).splitlines() for m in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    ]


def section(title: str) -> str:
    text = CLI_MD.read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


async def test_ops_samples_are_the_real_output(tmp_path: Path) -> None:
    samples = [b for b in code_blocks() if b and b[0].startswith("$ aioedge ops ")]
    assert samples, "docs/cli.md no longer shows an `aioedge ops ACTION` sample"
    for block in samples:
        argv = block[0].removeprefix("$ aioedge ").split()
        result = await aioedge(*argv, env=base_env(tmp_path))
        assert result.code == 0, result.err
        assert block[1:] == result.out.splitlines(), f"docs/cli.md: {block[0]}"


async def test_the_emulator_banner_is_the_real_one(tmp_path: Path) -> None:
    (block,) = [b for b in code_blocks() if b and b[0].startswith("aioedge emulator listening")]
    proc = await start_emulator_command(tmp_path)
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "press Ctrl-C to stop":
            raw = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            assert raw, "the emulator exited early"
            lines.append(raw.decode().rstrip("\n"))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), TIMEOUT)
    endpoint = lines[0].rsplit(" ", 1)[-1]
    assert [line.replace(endpoint, DOC_ENDPOINT) for line in lines] == block


@pytest.mark.slow
async def test_the_demo_sample_line_is_close_to_a_real_run(tmp_path: Path) -> None:
    (documented,) = [
        line for b in code_blocks() for line in b if line.startswith("rollout succeeded: ")
    ]
    pattern = r"rollout succeeded: (\d+) API calls, 0 throttled, ([\d.]+) s"
    doc = re.fullmatch(pattern, documented)
    assert doc, documented
    result = await aioedge("demo", env=base_env(tmp_path), timeout=90)  # the default speed
    assert result.code == 0, result.err
    real = re.fullmatch(pattern, result.out.splitlines()[-1])
    assert real, result.out.splitlines()[-1]
    # The count depends on how many polls the rollout took: close, not equal.
    calls, documented_calls = int(real.group(1)), int(doc.group(1))
    assert abs(calls - documented_calls) <= max(3, calls // 10), (calls, documented_calls)
    seconds, documented_seconds = float(real.group(2)), float(doc.group(2))
    assert abs(seconds - documented_seconds) <= 0.25 * seconds + 1, (seconds, documented_seconds)


def synopses() -> dict[str, set[str]]:
    """The long options each command's synopsis in docs/cli.md shows."""
    found: dict[str, set[str]] = {}
    for command in ("demo", "emulator", "ops", "call", "watch", "deploy", "rollout"):
        title = "aioedge watch and aioedge deploy" if command in ("watch", "deploy") else command
        title = title if title.startswith("aioedge") else f"aioedge {title}"
        block = re.search(r"^```\n(.*?)^```", section(title), re.M | re.S)
        assert block, title
        current = None
        for line in block.group(1).splitlines():
            if line.startswith("aioedge "):
                current = line.split()[1]
            if current == command:
                found.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", line))
    return found


def test_each_synopsis_shows_the_options_of_its_command() -> None:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands: dict[str, argparse.ArgumentParser] = subparsers.choices
    shown = synopses()
    connection = {"--endpoint", "--region", "--profile"}  # described once, for every command
    for name, command_parser in commands.items():
        actions = [
            set(a.option_strings) - connection
            for a in command_parser._actions
            if a.option_strings and "-h" not in a.option_strings and a.dest != "call_help"
        ]
        actions = [a for a in actions if a]
        documented = shown[name] - {"--help"}
        for options in actions:
            assert options & documented, f"docs/cli.md: `aioedge {name}` lacks {options}"
        taken = set().union(*actions)
        assert documented <= taken, f"docs/cli.md: `aioedge {name}` shows {documented - taken}"


def test_the_final_record_table_names_every_outcome_and_reason() -> None:
    """The table of the JSON ``final`` record names each outcome and reason a watch can end
    with (``watch._events.OUTCOMES``, ``REASONS``): the ones the watcher, the monitor, the
    rollout and the CLI use, no other (it used to leave ``stalled`` out)."""
    from aioedge.watch._events import OUTCOMES, REASONS

    text = CLI_MD.read_text(encoding="utf-8")
    table = text.split("| `outcome` | `reason` | when |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    outcomes = {o for cell, _ in rows for o in re.findall(r"`(\w+)`", cell)}
    reasons = {r for _, cell in rows for r in re.findall(r"`(\w+)`", cell)}
    assert outcomes == set(OUTCOMES)
    assert reasons == set(REASONS)
