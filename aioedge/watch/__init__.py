"""Follow Link IoT Edge deployments: events, state trees, watchers and a monitor.

Pure core: :mod:`._events` (event values), :mod:`._state` (the tree, ``diff``, ``apply``),
:mod:`._render` (text and HTML), :mod:`._cause` (a failure's root cause).  I/O shell:
:mod:`._watcher` (one deployment), :mod:`._monitor` (many), :mod:`._deploy` (create, then
watch).

``__all__`` holds what users need; the building blocks behind it (``parse_log``,
``implied_state``, ``SnapshotState``, ``STATUS_NAMES``, ``progress_bar``, ...) stay importable
from their private modules for tools that build on them.
"""

from __future__ import annotations

from .._models import LogEntry
from ._cause import FailureCause
from ._deploy import deploy_and_watch
from ._events import DeploymentEvent, WatchOutcome, status_name
from ._monitor import DeploymentMonitor
from ._render import EventLog, events_html, render_text
from ._state import DeploymentState, apply, carry_logs, diff
from ._tracker import WatchRetry
from ._watcher import DeploymentWatcher, watch_deployment

__all__ = [
    "DeploymentEvent",
    "DeploymentMonitor",
    "DeploymentState",
    "DeploymentWatcher",
    "EventLog",
    "FailureCause",
    "LogEntry",
    "WatchOutcome",
    "WatchRetry",
    "apply",
    "carry_logs",
    "deploy_and_watch",
    "diff",
    "events_html",
    "render_text",
    "status_name",
    "watch_deployment",
]
