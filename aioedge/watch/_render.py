"""Displaying a :class:`DeploymentState`: a terminal tree and an HTML table (notebooks).

Pure string building; the CLI's live display redraws ``render_text`` after each poll.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._events import (
    STAGE_NAMES,
    DeploymentEvent,
    clock_text,
    printable,
    stage_name,
    status_name,
)

if TYPE_CHECKING:  # _state imports this module to draw itself: the types only, no loop
    from ._state import DeploymentState, SnapshotState, TaskState

__all__ = ["EventLog", "events_html", "progress_bar", "render_html", "render_text"]

_LAST_STAGE = max(STAGE_NAMES)  # 32: complete
_MARK = {0: "·", 1: "…", 2: "✔", 3: "✘"}
_ASCII_MARK = {0: ".", 1: "~", 2: "+", 3: "x"}


def _fraction(stage: int | None) -> float:
    if stage is None or stage <= 0:
        return 0.0
    return min(1.0, stage / _LAST_STAGE)


def progress_bar(stage: int | None, width: int = 10, *, ascii: bool = False) -> str:
    """``[█████░░░░░]``: how far through the stages (0..32, ERRATA: Deployments) it got."""
    inner = max(1, width - 2)
    filled = round(_fraction(stage) * inner)
    full, empty = ("#", "-") if ascii else ("█", "░")
    return "[" + full * filled + empty * (inner - filled) + "]"


def _clip(text: str, width: int) -> str:
    if width <= 0:
        return ""
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(0, width - 1)] + "…"


def _mark(status: int | None, ascii: bool) -> str:
    table = _ASCII_MARK if ascii else _MARK
    return table.get(status if status is not None else -1, "?")


def _resource_label(snap: SnapshotState) -> str:
    name = snap.resource_name or snap.resource_id or snap.snapshot_id
    if snap.resource_type and snap.resource_type != name:
        name = f"{name} ({snap.resource_type})"
    if snap.operate_type == 1:  # ERRATA: OperateType 1 deletes the resource
        name = f"{name} [delete]"
    return name


def _summary(state: DeploymentState) -> str:
    snaps = [s for _t, s in state.snapshots()]
    done = sum(1 for s in snaps if s.status == 2)
    failed = sum(1 for s in snaps if s.status == 3)
    tasks = len(state.tasks)
    text = f"{tasks} task{'s' if tasks != 1 else ''}, {done}/{len(snaps)} snapshots done"
    return text + (f", {failed} failed" if failed else "")


def render_text(state: DeploymentState, width: int = 80, *, ascii: bool = False) -> str:
    """A tree of the deployment, its subtasks and snapshots, one line each, ``width`` wide.

    Each snapshot line ends with a stage progress bar, the stage and the status.  Control
    characters in ids and names from the service are escaped, so a row stays one line.
    """
    width = max(48, width)
    branch, last, pipe, space = (
        ("|- ", "`- ", "|  ", "   ") if ascii else ("├─ ", "└─ ", "│  ", "   ")
    )
    lines = []
    kind = f" {printable(state.type)}" if state.type else ""
    head = (
        f"{_mark(state.status, ascii)} deployment {printable(state.deployment_id)}{kind}: "
        f"{status_name(state.status)} ({_summary(state)})"
    )
    lines.append(_clip(head, width).rstrip())
    # Columns right of the label: bar, stage name, status; narrow terminals lose the bar.
    bar_width = 12 if width >= 72 else 0
    right = (bar_width + 1 if bar_width else 0) + _STAGE_COL + 1 + _STATUS_COL
    for ti, task in enumerate(state.tasks):
        t_last = ti == len(state.tasks) - 1
        prefix = last if t_last else branch
        gw = f" gateway {printable(task.gateway_id)}" if task.gateway_id else ""
        label = f"{prefix}task {printable(task.task_id)}{gw}"
        lines.append(_row(label, "", bar_width, task.stage, task.status, width - right - 1, ascii))
        child = space if t_last else pipe
        for si, snap in enumerate(task.snapshots):
            s_prefix = child + (last if si == len(task.snapshots) - 1 else branch)
            bar = progress_bar(snap.stage, bar_width, ascii=ascii) if bar_width else ""
            label = s_prefix + printable(_resource_label(snap))
            lines.append(
                _row(label, bar, bar_width, snap.stage, snap.status, width - right - 1, ascii)
            )
    return "\n".join(lines)


_STAGE_COL = 11  # "dispatching"
_STATUS_COL = 13  # mark, space, "not started"


def _row(
    label: str,
    bar: str,
    bar_width: int,
    stage: int | None,
    status: int | None,
    label_width: int,
    ascii: bool,
) -> str:
    cells = [_clip(label, label_width)]
    if bar_width:
        cells.append(bar.ljust(bar_width))
    cells.append(_clip(stage_name(stage), _STAGE_COL))
    cells.append(f"{_mark(status, ascii)} {status_name(status)}")
    return " ".join(cells).rstrip()


def render_html(state: DeploymentState) -> str:
    """An HTML table (one row per snapshot, grouped by subtask) for notebooks."""
    e = html.escape
    rows: list[str] = []
    for task in state.tasks:
        rows.append(_task_row(task))
        rows.extend(_snapshot_rows(task.snapshots))
    caption = (
        f"deployment <code>{e(state.deployment_id)}</code>"
        f"{' (' + e(state.type) + ')' if state.type else ''}: "
        f"<b>{e(status_name(state.status))}</b> &middot; {e(_summary(state))}"
    )
    head = "".join(
        f"<th style='text-align:left'>{h}</th>"
        for h in ("subtask / resource", "type", "stage", "progress", "status")
    )
    return (
        "<table class='aioedge-deployment'>"
        f"<caption style='text-align:left'>{caption}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_COLOURS = {2: "#2e7d32", 3: "#c62828", 1: "#1565c0"}


def _status_cell(status: int | None) -> str:
    colour = _COLOURS.get(status if status is not None else -1, "#616161")
    return f"<td style='color:{colour}'>{html.escape(status_name(status))}</td>"


def _task_row(task: TaskState) -> str:
    e = html.escape
    gw = f" &middot; gateway <code>{e(task.gateway_id)}</code>" if task.gateway_id else ""
    return (
        f"<tr><td colspan='2'><b>task</b> <code>{e(task.task_id)}</code>{gw}</td>"
        f"<td>{e(stage_name(task.stage))}</td><td></td>{_status_cell(task.status)}</tr>"
    )


def _snapshot_rows(snaps: Iterable[SnapshotState]) -> list[str]:
    e = html.escape
    out = []
    for snap in snaps:
        value = round(_fraction(snap.stage) * _LAST_STAGE)
        out.append(
            "<tr>"
            f"<td style='padding-left:2em'>{e(_resource_label(snap))}"
            f"<br><small><code>{e(snap.snapshot_id)}</code></small></td>"
            f"<td>{e(snap.resource_type or '')}</td>"
            f"<td>{e(stage_name(snap.stage))}</td>"
            f"<td><progress max='{_LAST_STAGE}' value='{value}'></progress></td>"
            f"{_status_cell(snap.status)}</tr>"
        )
    return out


def _when(ts: float | None) -> str:
    # As in str(event): a time out of the calendar shows as raw seconds, never raises.
    return "" if ts is None else clock_text(ts)


def events_html(events: Iterable[DeploymentEvent], *, limit: int = 500) -> str:
    """An HTML table of events (time UTC, kind, object, stage, status, detail) for notebooks.

    Shows the last ``limit`` events and says how many were left out.
    """
    e = html.escape
    items = list(events)
    shown = items[-limit:] if limit > 0 else []
    rows = []
    for ev in shown:
        obj = ev.resource_name or (f"gateway {ev.gateway_id}" if ev.gateway_id else "")
        ident = ev.snapshot_id or ev.task_id or ev.deployment_id
        moves = ev.kind in ("deployment", "task", "snapshot")
        stage = stage_name(ev.stage) if moves and ev.kind != "deployment" else ""
        status = status_name(ev.status) if moves else ""
        detail = (ev.log.message if ev.log else "") or ev.message or ev.outcome or ev.error or ""
        rows.append(
            "<tr>"
            f"<td><code>{_when(ev.time)}</code></td>"
            f"<td>{e(ev.kind)}</td>"
            f"<td>{e(obj)} <small><code>{e(ident[:12])}</code></small></td>"
            f"<td>{e(stage)}</td><td>{e(status)}</td>"
            f"<td>{'inferred' if ev.inferred else ''}</td>"
            f"<td>{e(detail)}</td>"
            "</tr>"
        )
    more = len(items) - len(shown)
    caption = f"{len(items)} events" + (f" (first {more} not shown)" if more else "")
    head = "".join(
        f"<th style='text-align:left'>{h}</th>"
        for h in ("time (UTC)", "kind", "object", "stage", "status", "", "detail")
    )
    return (
        "<table class='aioedge-events'>"
        f"<caption style='text-align:left'>{e(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


class EventLog(list[DeploymentEvent]):
    """A list of events that shows as a table in a notebook (``events_html``)."""

    def _repr_html_(self) -> str:
        return events_html(self)

    def __str__(self) -> str:
        return "\n".join(str(ev) for ev in self)
