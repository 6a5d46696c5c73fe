"""What a notebook shows, checked without a kernel: models and pages as HTML tables, a
compact events table with pages, a one-line ``repr`` for a state, and no notebook output
outside Jupyter.  (test_notebook.py runs the example notebook in a real kernel.)"""

from __future__ import annotations

import io
import re

from aioedge import progress_printer
from aioedge._models import EdgeInstance, Page, parse_page
from aioedge._notebook import in_notebook
from aioedge.watch import DeploymentEvent, DeploymentState, EventLog, LogEntry, events_html


def instances(n: int, total: int) -> Page[EdgeInstance]:
    body = {
        "RequestId": "R",
        "Success": True,
        "Data": {
            "Total": total,
            "PageSize": n,
            "CurrentPage": 2,
            "InstanceList": [
                {"InstanceId": f"i{k}", "Name": f"line <{k}>", "Spec": 20} for k in range(n)
            ],
        },
    }
    return parse_page(EdgeInstance, "InstanceList", body)


def test_a_model_is_a_table_of_its_set_fields() -> None:
    model = EdgeInstance.from_dict({"InstanceId": "F3AP", "Name": "a<b>&c", "Spec": 20})
    page = model._repr_html_()
    assert "class='aioedge-model'" in page and "<b>EdgeInstance</b>" in page
    assert ">instance_id</th><td>F3AP</td>" in page and "a&lt;b&gt;&amp;c" in page
    assert "role_arn" not in page  # unset fields stay out, as in repr()


def test_a_page_is_a_table_of_its_items_and_says_where_it_is() -> None:
    page = instances(60, total=200)._repr_html_()
    assert "page 2: EdgeInstance 61–120 of 200; client.paginate() reads every page" in page
    assert page.count("<tr>") == 1 + 50 + 1  # header, 50 rows, "… 10 more"
    assert "… 10 more" in page and "line &lt;3&gt;" in page
    assert "<th style='text-align:left'>name</th>" in page


def many_events(n: int) -> list[DeploymentEvent]:
    return [
        DeploymentEvent(
            kind="log",
            deployment_id="d" * 32,
            task_id="t" * 32,
            snapshot_id=f"{k:032x}",
            resource_name=f"sensor_{k:03d}",
            stage=8,
            log=LogEntry(stage=8, level="INFO", message="assembly success", timestamp=k),
            time=k / 1000,
        )
        for k in range(n)
    ]


def test_the_events_table_is_compact_scrollable_and_paged() -> None:
    events = EventLog(many_events(294))
    page = events._repr_html_()
    assert page.count("<tr") == 1 + 100  # the last 100
    assert "294 events (first 194 not shown: EventLog.page(n) shows them)" in page
    assert "overflow:auto" in page and "sensor_293" in page and "sensor_193" not in page
    assert len(page) < 20_000  # was 50 KB for 294 events, every one of them inline
    assert [e.resource_name for e in events.page(0)][:2] == ["sensor_000", "sensor_001"]
    assert len(events.page(2)) == 94 and events.page(-1) == events.page(2)
    first = events.page(0, size=10)._repr_html_()
    assert first.count("<tr") == 11 and "10 events" in first
    failing = DeploymentEvent(
        kind="log",
        deployment_id="d",
        log=LogEntry(stage=16, level="ERROR", code="1", message="disk full"),
    )
    assert "<tr class=f>" in events_html([failing])  # failures stand out


def test_a_state_repr_is_one_short_line() -> None:
    tasks = [
        {
            "TaskId": f"task{t:028d}",
            "Status": 3,
            "ResourceSnapshotList": [
                {
                    "SnapshotId": f"s{t}{k:030d}",
                    "ResourceName": f"sensor_{k}",
                    "Stage": 24,
                    "Status": 3,
                    "Log": '[{"stage": 24, "level": "ERROR", "code": "1", '
                    f'"message": "boom {k}", "timestamp": {1000 + k}}}]',
                }
                for k in range(25)
            ],
        }
        for t in range(2)
    ]
    state = DeploymentState.from_response(
        {"Data": {"DeploymentId": "d" * 32, "Status": 3, "TaskList": tasks}}
    )
    text = repr(state)
    assert len(text) < 300, text
    assert re.fullmatch(
        r"<DeploymentState d{32} failed: 2 tasks, 0/50 snapshots done, 2 failed, 48 stopped; "
        r"root cause sensor_0 at dispatching: code=1: boom 0>",
        text,
    )
    assert len(str(state).splitlines()) > 50  # the tree is str()


def test_outside_a_notebook_the_progress_printer_stays_quiet() -> None:
    assert not in_notebook()
    hook = progress_printer(io.StringIO())  # not a terminal, no notebook: nothing
    assert hook(1, 2, None) is None  # type: ignore[arg-type]
