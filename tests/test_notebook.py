"""examples/notebook.ipynb runs top to bottom in a real kernel (nbclient) and displays its
batch results as a table, the deployment as a tree and the events as a table.

The committed notebook carries no outputs: they would go stale, and they are what this test
produces.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"


def read_notebook() -> Any:
    read: Any = nbformat.read  # untyped
    return read(NOTEBOOK, as_version=4)


def test_committed_notebook_is_valid_and_has_no_outputs() -> None:
    nb = read_notebook()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def _cell(nb: Any, marker: str) -> Any:
    [cell] = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    return cell


def _html(cell: Any) -> list[str]:
    return [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]


def _text(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")


def test_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    nb = read_notebook()
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails

    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o["output_type"] == "error"]

    # The batch: an HTML table, failures first, with the summary as its caption.
    [table] = _html(_cell(nb, "sensors = ["))
    assert "<caption>3 calls: 2 ok, 1 failed</caption>" in table
    rows = re.findall(r"<tr><td>(\d+)</td>", table)
    assert rows == ["2", "0", "1"]
    assert "InstanceNotExist" in table
    assert "2 chunks" in _text(_cell(nb, "print(results.summary())"))

    # The live tree: one display, updated in place, ending on the finished deployment.
    live = _cell(nb, "tree.update(watcher.state)")
    assert re.match(r"succeeded after \d+ polls, \d+ events", _text(live))
    [tree] = _html(live)
    assert "class='aioedge-deployment'" in tree and "<b>succeeded</b>" in tree
    assert tree.count("<progress") == 1 + 25  # the driver and the 25 device configs
    assert "<b>succeeded</b>" in _html(_cell(nb, "watcher.state  # the final tree"))[0]

    # The events table (EventLog): a header, then a row per event.
    [events] = _html(_cell(nb, "EventLog(events)"))
    assert "<th style='text-align:left'>kind</th>" in events
    n = int(re.search(r"<caption[^>]*>(\d+) events", events).group(1))  # type: ignore[union-attr]
    assert n > 40 and events.count("<tr>") == n + 1
    assert "<td>snapshot</td>" in events and "<td>task</td>" in events

    # The failed rollout: its error log, and a tree that stops at dispatching.
    failed = _cell(nb, "emu.fail_deployment_at(")
    assert _text(failed).startswith("failed - ") and "disk full" in _text(failed)
    [failed_tree] = _html(failed)
    assert "<b>failed</b>" in failed_tree and "dispatching" in failed_tree
