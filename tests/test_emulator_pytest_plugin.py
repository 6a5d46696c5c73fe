"""The pytest fixtures as a user project meets them: docs/testing.md's example, run by pytest.

The project's own tests run in pytest-asyncio's auto mode; a user project gets the
default strict mode, where an async test runs only if it is marked.  These tests run the
documented example in a fresh pytest session (``pytester``) in strict mode.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def _fixtures_example() -> str:
    """The Python example of the doc's "pytest fixtures" section."""
    text = _DOC.read_text(encoding="utf-8")
    section = text.split("## pytest fixtures", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    [example] = [b for b in blocks if "edge_emulator_options" in b]
    return example


def _run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_user_project=source)
    # A fresh session in a directory of its own (none of this project's configuration),
    # in strict mode, the mode a project gets unless it configures another.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict")


def test_the_documented_example_passes_in_strict_mode(pytester: pytest.Pytester) -> None:
    example = _fixtures_example()
    assert "@pytest.mark.asyncio" in example
    result = _run(pytester, example)
    result.assert_outcomes(passed=1)


def test_without_the_marker_strict_mode_does_not_run_the_test(pytester: pytest.Pytester) -> None:
    # What the docs warn about: the same test unmarked does not pass in strict mode
    # (pytest fails it; versions before 8.4 skip it with a warning).
    example = _fixtures_example()
    unmarked = re.sub(r"^@pytest\.mark\.asyncio.*\n", "", example, flags=re.MULTILINE)
    assert unmarked != example
    outcomes = _run(pytester, unmarked).parseoutcomes()
    assert outcomes.get("passed", 0) == 0
    assert outcomes.get("failed", 0) + outcomes.get("skipped", 0) == 1
