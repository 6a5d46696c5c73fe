"""Follow Link IoT Edge deployments: events, state trees, watchers and a monitor.

Pure core: :mod:`._events` (event values), :mod:`._state` (the tree, ``diff``, ``apply``),
:mod:`._render` (text and HTML).  I/O shell: :mod:`._watcher` (one deployment),
:mod:`._monitor` (many), :mod:`._deploy` (create, then watch).
"""

from __future__ import annotations

from ._deploy import deploy_and_watch, find_running_deployment, start_deployment
from ._events import (
    FINAL_STATUSES,
    OUTCOMES,
    STAGE_NAMES,
    STATUS_NAMES,
    DeploymentEvent,
    EventKind,
    LogEntry,
    Outcome,
    stage_name,
    status_name,
)
from ._monitor import DeploymentMonitor, MonitorStats
from ._render import EventLog, events_html, progress_bar, render_html, render_text
from ._state import (
    DeploymentState,
    SnapshotState,
    TaskState,
    apply,
    carry_logs,
    diff,
    final_event,
    implied_state,
    parse_log,
)
from ._watcher import CHECKPOINT_VERSION, DeploymentWatcher, WatchRetry, watch_deployment

__all__ = [
    "CHECKPOINT_VERSION",
    "FINAL_STATUSES",
    "OUTCOMES",
    "STAGE_NAMES",
    "STATUS_NAMES",
    "DeploymentEvent",
    "DeploymentMonitor",
    "DeploymentState",
    "DeploymentWatcher",
    "EventKind",
    "EventLog",
    "LogEntry",
    "MonitorStats",
    "Outcome",
    "SnapshotState",
    "TaskState",
    "WatchRetry",
    "apply",
    "carry_logs",
    "deploy_and_watch",
    "diff",
    "events_html",
    "final_event",
    "find_running_deployment",
    "implied_state",
    "parse_log",
    "progress_bar",
    "render_html",
    "render_text",
    "stage_name",
    "start_deployment",
    "status_name",
    "watch_deployment",
]
