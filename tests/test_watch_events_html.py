"""Events as a notebook table."""

from __future__ import annotations

from aioedge.watch import DeploymentEvent, EventLog, events_html


def _events() -> list[DeploymentEvent]:
    return [
        DeploymentEvent(
            kind="deployment", deployment_id="dep1", status=1, previous_status=0, time=1.0
        ),
        DeploymentEvent(
            kind="snapshot",
            deployment_id="dep1",
            task_id="t1",
            snapshot_id="snap<1>",
            resource_name="drv & co",
            stage=16,
            previous_stage=8,
            status=1,
            previous_status=1,
            inferred=True,
            time=2.0,
        ),
    ]


def test_events_html_escapes_and_marks_inferred() -> None:
    html = events_html(_events())
    assert html.count("<tr>") == 3  # header + 2 events
    assert "snap&lt;1&gt;" in html and "drv &amp; co" in html
    assert "inferred" in html and "2 events" in html


def test_events_html_limit_says_what_is_hidden() -> None:
    html = events_html(_events(), limit=1)
    assert html.count("<tr>") == 2 and "first 1 not shown" in html


def test_event_log_shows_as_table_and_text() -> None:
    log = EventLog(_events())
    assert log._repr_html_() == events_html(log)
    assert str(log).splitlines() == [str(e) for e in log]
