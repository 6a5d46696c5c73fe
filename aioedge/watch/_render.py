"""Displaying a :class:`DeploymentState`: a terminal tree and an HTML table (notebooks).

Pure string building; the CLI's live display redraws ``render_text`` after each poll.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .._errors import one_line, printable
from .._wire import LAST_STAGE
from ._cause import FailureCause, FailureRole, failure_cause, failure_roles
from ._events import (
    DeploymentEvent,
    cause_text,
    clock_text,
    code_prefix,
    resource_label,
    resource_label_parts,
    stage_name,
    status_name,
)

if TYPE_CHECKING:  # _state imports this module to draw itself: the types only, no loop
    from ._state import DeploymentState, SnapshotState, TaskState

__all__ = ["EventLog", "events_html", "progress_bar", "render_html", "render_text"]

_MARK = {0: "·", 1: "…", 2: "✔", 3: "✘"}
_ASCII_MARK = {0: ".", 1: "~", 2: "+", 3: "x"}
_STOPPED_MARK, _ASCII_STOPPED_MARK = "⊘", "/"

#: The longest a row's label (tree branches and resource name) gets: wider terminals give
#: the room to the note on the right, not to blank padding.
NAME_WIDTH = 40
#: How many characters of an id a terminal row shows (the JSON output has them whole).
SHORT_ID = 8

# ANSI SGR sequences for the roles a cell can have (see :func:`paint`).
_SGR = {
    "ok": "32",
    "fail": "31",
    "cause": "1;31",
    "stopped": "2",
    "run": "36",
    "dim": "2",
    "bold": "1",
    "warn": "33",
}


def paint(text: str, role: str | None, colour: bool) -> str:
    """``text`` in the colour of ``role`` (ANSI), or as it is when ``colour`` is false."""
    if not colour or not role or not text:
        return text
    return f"\x1b[{_SGR[role]}m{text}\x1b[0m"


def short_id(ident: str | None, *, full: bool = False) -> str:
    """An id as a terminal row shows it: its first :data:`SHORT_ID` characters."""
    if ident is None:
        return "?"
    text = printable(ident)
    return text if full or len(text) <= SHORT_ID + 2 else text[:SHORT_ID]


def _status_role(status: int | None) -> str | None:
    return {1: "run", 2: "ok", 3: "fail"}.get(status if status is not None else -1)


def _fraction(stage: int | None) -> float:
    if stage is None or stage <= 0:
        return 0.0
    return min(1.0, stage / LAST_STAGE)


def progress_bar(stage: int | None, width: int = 10, *, ascii: bool = False) -> str:
    """``[█████░░░░░]``: how far through the stages (0..32, ERRATA: Deployments) it got."""
    inner = max(1, width - 2)
    filled = round(_fraction(stage) * inner)
    full, empty = ("#", "-") if ascii else ("█", "░")
    return "[" + full * filled + empty * (inner - filled) + "]"


def _clip(text: str, width: int, *, ascii: bool = False) -> str:
    if width <= 0:
        return ""
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(0, width - 1)] + ("~" if ascii else "…")


def _clip_middle(text: str, width: int, ascii: bool) -> str:
    """``text`` in ``width`` characters, cut in the middle: names that share a long prefix
    (``hall_2_temperature_sensor_01``, ``..._02``) still differ where they end."""
    if len(text) <= width or width < 8:
        return text
    gap = "~" if ascii else "…"
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + gap + text[len(text) - tail :]


def _mark(status: int | None, ascii: bool) -> str:
    table = _ASCII_MARK if ascii else _MARK
    return table.get(status if status is not None else -1, "?")


def _label_parts(snap: SnapshotState) -> tuple[str, str]:
    """A snapshot's name, and what follows it: its type and whether it deletes."""
    name, suffix = resource_label_parts(
        snap.resource_name, snap.resource_id, snap.snapshot_id, snap.resource_type
    )
    if snap.operate_type == 1:  # ERRATA: OperateType 1 deletes the resource
        suffix += " [delete]"
    return name, suffix


def _resource_label(snap: SnapshotState) -> str:
    name, suffix = _label_parts(snap)
    return name + suffix


def _fitted_label(snap: SnapshotState, width: int, ascii: bool) -> str:
    """The label in ``width``: the name cut in its middle before its type goes."""
    name, suffix = _label_parts(snap)
    if len(name) + len(suffix) <= width:
        return name + suffix
    if width - len(suffix) >= 12:
        return _clip_middle(name, width - len(suffix), ascii) + suffix
    return _clip_middle(name + suffix, width, ascii)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` cut into pieces of at most ``width`` characters, at spaces where it can."""
    width = max(8, width)
    out: list[str] = []
    for piece in textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False):
        out.append(piece)
    return out or [""]


def render_text(
    state: DeploymentState,
    width: int = 80,
    *,
    ascii: bool = False,
    colour: bool = False,
    full_ids: bool = False,
) -> str:
    """A tree of the deployment, its subtasks and snapshots, one line each, ``width`` wide.

    Each snapshot line ends with a stage progress bar, the stage and the status.  On
    failure the root cause (:func:`~aioedge.watch.failure_cause`) is marked and its whole
    message follows on the next lines; snapshots that failed only because their subtask
    did show as *stopped*.  Ids are shortened to :data:`SHORT_ID` characters unless
    ``full_ids``; the label column is at most :data:`NAME_WIDTH` wide.  Control characters
    in ids and names from the service are escaped, so a row stays one line.  ``colour``
    adds ANSI colours (the width counts only visible characters).
    """
    width = max(48, width)
    branch, last, pipe, space = (
        ("|- ", "`- ", "|  ", "   ") if ascii else ("├─ ", "└─ ", "│  ", "   ")
    )
    roles = failure_roles(state)
    cause = failure_cause(state)

    def ident(value: str | None) -> str:
        return short_id(value, full=full_ids)

    lines = []
    # The usual type goes unsaid: a reset (which deletes resources) does not.
    kind = f" ({printable(state.type)})" if state.type and state.type != "deploy" else ""
    head = (
        f"{_mark(state.status, ascii)} deployment {ident(state.deployment_id)}{kind}: "
        f"{status_name(state.status)} ({state.tally(roles)})"
    )
    lines.append(
        paint(_clip(head, width, ascii=ascii).rstrip(), _status_role(state.status), colour)
    )
    # Columns right of the label: bar, stage name, status; narrow terminals lose the bar.
    bar_width = 12 if width >= 72 else 0
    right = (bar_width + 1 if bar_width else 0) + _STAGE_COL + 1 + _STATUS_COL
    label_width = min(NAME_WIDTH, width - right - 1)
    room = width - (label_width + 1 + right)  # what is left for a note on the right
    for ti, task in enumerate(state.tasks):
        t_last = ti == len(state.tasks) - 1
        prefix = last if t_last else branch
        gw = f" gateway {ident(task.gateway_id)}" if task.gateway_id else ""
        label = f"{prefix}task {ident(task.task_id)}{gw}"
        lines.append(
            _row(label, "", bar_width, task.stage, task.status, label_width, ascii, colour)
        )
        child = space if t_last else pipe
        for si, snap in enumerate(task.snapshots):
            s_last = si == len(task.snapshots) - 1
            s_prefix = child + (last if s_last else branch)
            bar = progress_bar(snap.stage, bar_width, ascii=ascii) if bar_width else ""
            label = s_prefix + _fitted_label(snap, label_width - len(s_prefix), ascii)
            role = roles.get((task.task_id, snap.snapshot_id))
            lines.append(
                _row(
                    label,
                    bar,
                    bar_width,
                    snap.stage,
                    snap.status,
                    label_width,
                    ascii,
                    colour,
                    role=role,
                    room=room,
                )
            )
            if role == "cause" and cause is not None and cause.logged:
                # The root cause's whole message, wrapped under its row: never cut.
                indent = child + (space if s_last else pipe) + ("-> " if ascii else "↳ ")
                text = code_prefix(cause.code) + one_line(cause.message)
                more = child + (space if s_last else pipe) + "  "
                for n, piece in enumerate(_wrap(text, width - len(indent))):
                    lines.append((indent if n == 0 else more) + paint(piece, "cause", colour))
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
    colour: bool,
    *,
    role: FailureRole | None = None,
    room: int = 0,
) -> str:
    cells = [_clip(label, label_width, ascii=ascii)]
    if bar_width:
        cells.append(bar.ljust(bar_width))
    cells.append(_clip(stage_name(stage), _STAGE_COL))
    note = ""
    style: str | None
    if role == "stopped":
        mark = _ASCII_STOPPED_MARK if ascii else _STOPPED_MARK
        text, style, note = f"{mark} stopped", "stopped", "(its subtask failed)"
    elif role == "cause":
        text, style = f"{_mark(status, ascii)} root cause", "cause"
    else:
        text, style = f"{_mark(status, ascii)} {status_name(status)}", _status_role(status)
    if note and room >= len(note) + 1:
        cells.append(paint(text.ljust(_STATUS_COL), style, colour))
        cells.append(paint(note, style, colour))
    else:
        cells.append(paint(text, style, colour))
    return " ".join(cells).rstrip()


def render_html(state: DeploymentState) -> str:
    """An HTML table (one row per snapshot, grouped by subtask) for notebooks.

    On failure the root cause's row is highlighted with its whole message under it, and
    snapshots that failed only because their subtask did say so.
    """
    e = html.escape
    roles = failure_roles(state)
    cause = failure_cause(state)
    rows: list[str] = []
    for task in state.tasks:
        rows.append(_task_row(task))
        rows.extend(_snapshot_rows(task, roles, cause))
    caption = (
        f"deployment <code>{e(state.deployment_id)}</code>"
        f"{' (' + e(state.type) + ')' if state.type else ''}: "
        f"<b>{e(status_name(state.status))}</b> &middot; {e(str(state.tally(roles)))}"
    )
    if cause is not None:
        caption += (
            "<br><span class='aioedge-cause' style='color:#c62828'>root cause: "
            f"{e(cause.describe())}</span>"
        )
    columns = ("subtask / resource", "type", "stage", "progress", "status")
    return html_table("aioedge-deployment", caption, columns, rows)


def html_table(css_class: str, caption: str, columns: Iterable[str], rows: Iterable[str]) -> str:
    """A notebook table of class ``css_class``: ``caption`` (HTML) above left-aligned
    ``columns``, then ``rows`` (each a whole ``<tr>``)."""
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in columns)
    return (
        f"<table class='{css_class}'>"
        f"<caption style='text-align:left'>{caption}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_COLOURS = {2: "#2e7d32", 3: "#c62828", 1: "#1565c0"}


def _status_cell(status: int | None, role: FailureRole | None = None) -> str:
    if role == "stopped":
        return "<td style='color:#9e9e9e'>stopped (its subtask failed)</td>"
    colour = _COLOURS.get(status if status is not None else -1, "#616161")
    text = html.escape(status_name(status))
    if role == "cause":
        text = f"<b>{text} &#9664; root cause</b>"
    return f"<td style='color:{colour}'>{text}</td>"


def _task_row(task: TaskState) -> str:
    e = html.escape
    gw = f" &middot; gateway <code>{e(task.gateway_id)}</code>" if task.gateway_id else ""
    return (
        f"<tr><td colspan='2'><b>task</b> <code>{e(task.task_id)}</code>{gw}</td>"
        f"<td>{e(stage_name(task.stage))}</td><td></td>{_status_cell(task.status)}</tr>"
    )


def _snapshot_rows(
    task: TaskState,
    roles: Mapping[tuple[str, str], FailureRole],
    cause: FailureCause | None,
) -> list[str]:
    e = html.escape
    out = []
    for snap in task.snapshots:
        role = roles.get((task.task_id, snap.snapshot_id))
        value = round(_fraction(snap.stage) * LAST_STAGE)
        style = {
            "cause": " class='aioedge-root-cause' style='background:#ffebee'",
            "stopped": " class='aioedge-stopped' style='color:#9e9e9e'",
        }.get(role or "", "")
        out.append(
            f"<tr{style}>"
            f"<td style='padding-left:2em'>{e(_resource_label(snap))}"
            f"<br><small><code>{e(snap.snapshot_id)}</code></small></td>"
            f"<td>{e(snap.resource_type or '')}</td>"
            f"<td>{e(stage_name(snap.stage))}</td>"
            f"<td><progress max='{LAST_STAGE}' value='{value}'></progress></td>"
            f"{_status_cell(snap.status, role)}</tr>"
        )
        if role == "cause" and cause is not None and cause.snapshot_id == snap.snapshot_id:
            code = e(code_prefix(cause.code))
            out.append(
                "<tr class='aioedge-root-cause' style='background:#ffebee'>"
                "<td colspan='5' style='padding-left:3em;color:#c62828;white-space:pre-wrap'>"
                f"&#8627; {code}{e(cause.message)}</td></tr>"
            )
    return out


def _when(ts: float | None) -> str:
    # As in str(event): a time out of the calendar shows as raw seconds, never raises.
    return "" if ts is None else clock_text(ts)


#: Shared by every events table: one rule instead of a style on every cell.
_EVENTS_STYLE = (
    "<style>.aioedge-events table{border-collapse:collapse;font-size:90%}"
    ".aioedge-events td,.aioedge-events th{padding:1px 6px;text-align:left;"
    "vertical-align:top}.aioedge-events .f{color:#c62828}</style>"
)


def events_html(
    events: Iterable[DeploymentEvent], *, limit: int = 100, caption: str | None = None
) -> str:
    """A compact HTML table of events (time UTC, kind, object, stage, status, detail).

    Shows the last ``limit`` events in a box that scrolls past about 20 rows, and says how
    many were left out (:meth:`EventLog.page` shows any page).  Ids are cut to 8 characters
    (``title`` holds the whole id); failures are red.
    """
    e = html.escape
    items = list(events)
    shown = items[-limit:] if limit > 0 else []
    rows = []
    for ev in shown:
        obj = resource_label(ev.resource_name, ev.resource_id, None, ev.resource_type) or (
            f"gateway {printable(ev.gateway_id)}" if ev.gateway_id else ""
        )
        ident = ev.snapshot_id or ev.task_id or ev.deployment_id
        moves = ev.kind in ("deployment", "task", "snapshot")
        stage = stage_name(ev.stage) if moves and ev.kind != "deployment" else ""
        status = status_name(ev.status) if moves else ""
        if ev.inferred:
            status += " (inferred)"
        detail = (ev.log.message if ev.log else "") or ev.message or ev.outcome or ev.error or ""
        if ev.kind == "final" and ev.reason in ("snapshot_failed", "task_failed"):
            detail = cause_text(ev.culprit(), detail)
        failed = ev.status == 3 or (ev.log is not None and ev.log.failed) or ev.kind == "poll_error"
        rows.append(
            f"<tr{' class=f' if failed else ''}><td>{_when(ev.time)}</td><td>{e(ev.kind)}</td>"
            f"<td>{e(obj)} <code title='{e(ident)}'>{e(short_id(ident))}</code></td>"
            f"<td>{e(stage)}</td><td>{e(status)}</td><td>{e(detail)}</td></tr>"
        )
    more = len(items) - len(shown)
    text = caption or f"{len(items)} events"
    if more:
        text += f" (first {more} not shown: EventLog.page(n) shows them)"
    head = "".join(
        f"<th>{h}</th>" for h in ("time (UTC)", "kind", "object", "stage", "status", "detail")
    )
    return (
        f"<div class='aioedge-events' style='max-height:28em;overflow:auto'>{_EVENTS_STYLE}"
        f"<table><caption style='text-align:left'>{e(text)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


class EventLog(list[DeploymentEvent]):
    """A list of events that shows as a compact table in a notebook (``events_html``): the
    last 100, scrollable; :meth:`page` gives any other page."""

    def _repr_html_(self) -> str:
        return events_html(self)

    def page(self, number: int, size: int = 100) -> EventLog:
        """The ``number``-th ``size`` events, from 0 (negative: from the end)."""
        if size < 1:
            raise ValueError("size must be >= 1")
        pages = max(1, -(-len(self) // size))
        number = number + pages if number < 0 else number
        return EventLog(self[number * size : (number + 1) * size])

    def __str__(self) -> str:
        return "\n".join(str(ev) for ev in self)
