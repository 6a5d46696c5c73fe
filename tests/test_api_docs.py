"""docs/reference/api.md: the Python API from the docstrings, complete and in Markdown.

Staleness (the page equals what tools/gen_docs.py writes now) is checked with the other
reference pages in test_operations.py; here, that the page covers what users call and that
the docstrings' reST became Markdown.
"""

from __future__ import annotations

import re
from pathlib import Path

import aioedge

from .test_operations import _load_tool

API = Path(__file__).resolve().parents[1] / "docs" / "reference" / "api.md"


def test_the_api_page_covers_the_helpers_users_call() -> None:
    page = API.read_text(encoding="utf-8")
    for heading in (
        "### EdgeClient",
        "#### `EdgeClient.batch`",
        "#### `EdgeClient.paginate`",
        "#### `EdgeClient.deploy`",
        "#### `EdgeClient.watch_deployment`",
        "### BatchResults",
        "### BatchResult",
        "### `progress_printer`",
        "### DeploymentWatcher",
        "#### `DeploymentWatcher.display`",
        "#### `DeploymentWatcher.checkpoint`",
        "### WatchOutcome",
        "## Failure causes",
        "### FailureCause",
        "### DeploymentMonitor",
        "#### `DeploymentMonitor.display`",
        "### DeploymentEvent",
        "### EventLog",
        "#### `EventLog.page`",
        "### DeploymentState",
        "## Errors",
    ):
        assert f"\n{heading}\n" in page, heading
    # Every exception users can import is in the errors table, with its parent.
    for name in aioedge.__all__:
        obj = getattr(aioedge, name)
        if isinstance(obj, type) and issubclass(obj, aioedge.EdgeError):
            assert re.search(rf"^\| `{name}` \| `\w+` \| ", page, re.M), name
    # The docstrings' text, in Markdown: no reST role or double backquote is left.
    assert ":class:`" not in page and ":meth:`" not in page and "``" not in page.replace("```", "")
    assert "at 0x" not in page  # no object address: the page is the same on every run


def test_rest_becomes_markdown() -> None:
    gen = _load_tool("gen_api")
    text = gen.markdown(
        "See :class:`~aioedge.watch.DeploymentWatcher` and ``x = 1``::\n\n    print(x)\n\nDone."
    )
    assert text == ("See `DeploymentWatcher` and `x = 1`:\n\n```python\nprint(x)\n```\n\nDone.")
