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

    # The model and the page: HTML tables.
    [model] = _html(_cell(nb, "instance = await client.get_edge_instance"))
    assert "class='aioedge-model'" in model and ">instance_id</th>" in model
    [page] = _html(_cell(nb, "await client.query_edge_instance(page_size=10)"))
    assert "class='aioedge-items'" in page and "page 1: EdgeInstance 1–1 of 1" in page

    # progress_printer() in a notebook: a bar in the cell, updated in place to the end.
    [bar] = _html(_cell(nb, "config_results = await client.batch("))[:1]
    assert "device configs: <progress max='1' value='1'></progress> 1/1 done" in bar

    # The live tree: one display, updated in place, ending on the finished deployment.
    live = _cell(nb, "outcome = await watcher.display(into=events)")
    assert re.match(r"succeeded after \d+ polls, \d+ events", _text(live))
    [tree] = _html(live)
    assert "class='aioedge-deployment'" in tree and "<b>succeeded</b>" in tree
    assert tree.count("<progress") == 1 + 25  # the driver and the 25 device configs
    assert "class='aioedge-events'" in tree  # the latest events under it
    assert "<b>succeeded</b>" in _html(_cell(nb, "watcher.state  # the final tree"))[0]

    # The events table (EventLog): compact and scrollable, the last 100 of them.
    [events] = _html(_cell(nb, "events  # an EventLog"))
    n = int(re.search(r"<caption[^>]*>(\d+) events", events).group(1))  # type: ignore[union-attr]
    assert n > 40 and events.count("<tr") == min(n, 100) + 1
    assert "overflow:auto" in events
    assert "<td>snapshot</td>" in events and "<td>task</td>" in events
    assert len(events) < 250 * min(n, 100) + 2_000  # a few hundred bytes a row at most

    # The failed rollout: the root cause first, its whole message, the fallout "stopped".
    message = "download failed: disk full on /var/lib/edge (needed 182 MB, 12 MB free)"
    failed = _cell(nb, "emu.fail_deployment_at(")
    outcome_line, state_line = _text(failed).splitlines()
    assert outcome_line.startswith("WatchOutcome('failed', reason='snapshot_failed'")
    assert message in outcome_line
    assert state_line.startswith("<DeploymentState ") and len(state_line) < 400
    [failed_view] = _html(failed)
    assert "<b>failed</b>" in failed_view and "dispatching" in failed_view
    assert "class='aioedge-root-cause'" in failed_view and "root cause" in failed_view
    assert message in failed_view
    assert failed_view.count("stopped (its subtask failed)") == 25

    # The monitor: a row per deployment, the failed one with its root cause.
    monitor = _cell(nb, "outcomes = await monitor.display()")
    [table] = _html(monitor)
    assert "class='aioedge-monitor'" in table and table.count("<tr><td>") == 2
    assert message in table
    assert "['failed', 'succeeded']" in "".join(
        o["data"].get("text/plain", "") for o in monitor.outputs if "data" in o
    )
