"""Deployments in Jupyter: a watcher or a monitor followed in one output, redrawn in place.

The HTML comes from the pure renderers (``_render``); :class:`aioedge._notebook.LiveOutput`
does the drawing.  Used by ``DeploymentWatcher.display()`` and ``DeploymentMonitor.display()``.
"""

from __future__ import annotations

import html
from collections import deque
from typing import TYPE_CHECKING

from .._notebook import LiveOutput
from ._events import status_name
from ._render import events_html, html_table, render_html, short_id

if TYPE_CHECKING:  # the watcher and the monitor import this module to display themselves
    from ._events import DeploymentEvent, WatchOutcome
    from ._monitor import DeploymentMonitor
    from ._watcher import DeploymentWatcher

__all__ = ["display_monitor", "display_watch", "monitor_html"]


# --------------------------------------------------------------------------- a watcher


def _watch_view(watcher: DeploymentWatcher, recent: deque[DeploymentEvent]) -> tuple[str, str]:
    state = watcher.state
    outcome = watcher.outcome
    if outcome is not None:
        line = str(outcome.final).split(" ", 1)[-1]
        colour = "#2e7d32" if outcome == "succeeded" else "#c62828"
        head = (
            f"<div class='aioedge-outcome' style='color:{colour}'><b>{html.escape(line)}</b></div>"
        )
        text = line
    else:
        dep = watcher.deployment_id or "(starting)"
        line = f"watching deployment {dep}: {watcher.polls} polls"
        head = f"<div class='aioedge-outcome'>{html.escape(line)}</div>"
        text = line
    tree = render_html(state) if state is not None else ""
    events = events_html(list(recent), limit=len(recent) or 1, caption="latest events")
    return head + tree + events, text


async def display_watch(
    watcher: DeploymentWatcher,
    *,
    events: int = 8,
    min_interval: float = 0.25,
    into: list[DeploymentEvent] | None = None,
) -> WatchOutcome | None:
    """Follow ``watcher`` to its end in one output area: the outcome (with the root cause on
    failure), the tree, the latest ``events``; every event is also appended to ``into``.
    Returns ``watcher.outcome``."""
    recent: deque[DeploymentEvent] = deque(maxlen=max(1, events))
    out = LiveOutput(*_watch_view(watcher, recent), min_interval=min_interval)
    async for event in watcher:
        if into is not None:
            into.append(event)
        recent.append(event)
        out.update(*_watch_view(watcher, recent))
    out.update(*_watch_view(watcher, recent), force=True)
    return watcher.outcome


# --------------------------------------------------------------------------- a monitor


def monitor_html(monitor: DeploymentMonitor) -> str:
    """One row per watched deployment: instance, deployment, status, snapshots, root cause."""
    e = html.escape
    outcomes = monitor.outcomes()
    rows = []
    for (instance_id, deployment_id), state in monitor.states().items():
        outcome = outcomes.get((instance_id, deployment_id))
        status, done, total, cause = "waiting", 0, 0, ""
        if state is not None:
            tally = state.tally()
            total, done = tally.total, tally.done
            status = status_name(state.status)
            failure = state.failure
            if failure is not None:
                cause = failure.describe()
        if outcome is not None:
            status = str(outcome)
        final = getattr(outcome, "final", None)
        if not cause and final is not None and final.message:
            cause = final.message
        colour = {"succeeded": "#2e7d32", "failed": "#c62828"}.get(status, "#616161")
        rows.append(
            f"<tr><td><code>{e(instance_id)}</code></td>"
            f"<td><code title='{e(deployment_id)}'>{e(short_id(deployment_id))}</code></td>"
            f"<td style='color:{colour}'>{e(status)}</td>"
            f"<td><progress max='{max(total, 1)}' value='{done}'></progress> {done}/{total}</td>"
            f"<td>{e(cause)}</td></tr>"
        )
    stats = monitor.stats
    caption = (
        f"{stats.watched} deployments: {stats.finished} finished, {stats.active} active "
        f"&middot; {stats.polls} polls, {stats.poll_errors} poll errors"
    )
    columns = ("instance", "deployment", "status", "snapshots", "root cause")
    return html_table("aioedge-monitor", caption, columns, rows)


async def display_monitor(
    monitor: DeploymentMonitor, *, min_interval: float = 0.5
) -> dict[tuple[str, str], str]:
    """Read ``monitor``'s stream to its end in one output area (a row per deployment);
    returns :meth:`~aioedge.watch.DeploymentMonitor.outcomes`."""

    def text() -> str:
        s = monitor.stats
        return f"{s.watched} deployments: {s.finished} finished, {s.active} active"

    out = LiveOutput(monitor_html(monitor), text(), min_interval=min_interval)
    async for _event in monitor:
        out.update(monitor_html(monitor), text())
    out.update(monitor_html(monitor), text(), force=True)
    return monitor.outcomes()
