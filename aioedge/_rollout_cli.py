"""``aioedge rollout``: deploy a fleet in waves from the command line.

Exit codes: 0 every instance succeeded; 1 some failed, or the rollout aborted; 2 usage.
Text output is one line per wave, per finished deployment and for an abort, then a summary;
on a terminal a status line on stderr shows the progress.  ``--output json`` prints every
rollout event as one JSON line.  ``--dry-run`` prints the plan and the minimum duration the
quotas imply, without credentials or any call.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from ._argtypes import add_watch_timing, watch_timing
from ._catalog import get_operation
from ._display import can_draw, can_redraw, count_text, to_ascii
from ._errors import ValidationError, one_line
from ._rollout import (
    RolloutEvent,
    RolloutPlan,
    RolloutResult,
    check_min_finished,
    minimum_duration,
    parse_share,
    parse_waves,
)
from .watch._deploy import DEPLOYMENT_TYPES
from .watch._events import cause_text

__all__ = ["add_parser", "cmd_rollout", "read_instance_ids", "render_plan"]

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(
    sub: Any,
    add_common: Callable[[argparse.ArgumentParser], None],
    add_output: Callable[..., None],
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "rollout",
        help="deploy many instances in waves, aborting when too many fail",
        description="Deploy INSTANCEs in waves: a wave starts when every deployment of the "
        "one before has ended; once --min-finished have ended and more than --max-failures "
        "of them failed, nothing new starts.",
    )
    add_common(p)
    add_output(p, "text (a line per wave and per outcome) or json (one event per line)")
    p.add_argument("instances", nargs="*", metavar="INSTANCE", help="edge instance ids")
    p.add_argument(
        "--from-file",
        metavar="F",
        help="read instance ids from F, one per line ('#' starts a comment; '-': stdin)",
    )
    p.add_argument(
        "--waves",
        default="1,25%,100%",
        help="cumulative wave sizes, counts or percentages (default 1,25%%,100%%)",
    )
    p.add_argument(
        "--max-failures",
        default="20%",
        help="abort when the failed share of finished deployments exceeds this (default 20%%)",
    )
    p.add_argument(
        "--min-finished",
        type=int,
        default=3,
        metavar="N",
        help="judge the failed share only once N deployments have ended (default 3)",
    )
    p.add_argument("--type", choices=DEPLOYMENT_TYPES, default="deploy")
    p.add_argument(
        "--store",
        metavar="FILE",
        help="keep the rollout's record in FILE (or a redis:// URL): run again to resume",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and its minimum duration only"
    )
    add_watch_timing(
        p,
        poll_interval=1.0,
        max_poll_interval=10.0,
        timeout_help="give up on one deployment after SECONDS",
        progress_timeout_help="count a deployment with no stage or status change for SECONDS "
        "as stalled (failed)",
    )
    return p


def read_instance_ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.instances)
    if args.from_file:
        try:
            text = (
                sys.stdin.read()
                if args.from_file == "-"
                else Path(args.from_file).read_text("utf-8")
            )
        except OSError as err:
            raise ValidationError(
                f"--from-file: cannot read {args.from_file}: {err.strerror or err}",
                param="--from-file",
                rule="readable",
            ) from None
        for line in text.splitlines():
            word = line.split("#", 1)[0].strip()
            if word:
                ids.append(word)
    if not ids:
        raise ValidationError(
            "name at least one INSTANCE (or --from-file F)", param="INSTANCE", rule="required"
        )
    return ids


def render_plan(plan: RolloutPlan, *, max_failures: float, min_finished: int, type: str) -> str:
    create = get_operation("CreateEdgeInstanceDeployment").qps
    poll = get_operation("GetEdgeInstanceDeployment").qps
    n = len(plan.instance_ids)
    lines = [
        f"rollout ({type}) of {n} instance{'s' if n != 1 else ''} in {len(plan.waves)} "
        f"wave{'s' if len(plan.waves) != 1 else ''}; abort when more than {max_failures:.0%} "
        f"of the finished fail (judged from {min_finished} finished)",
    ]
    for w, size in enumerate(plan.sizes()):
        members = plan.members(w)
        shown = ", ".join(members[:3]) + (", …" if len(members) > 3 else "")
        lines.append(f"  wave {w + 1}: {size:>5} new, {plan.waves[w]:>5} in all   {shown}")
    seconds = minimum_duration(plan, create_qps=create, poll_qps=poll)
    lines.append(
        f"quota-implied minimum: {seconds:.1f} s (CreateEdgeInstanceDeployment {create}/s, "
        f"GetEdgeInstanceDeployment {poll}/s, one poll per deployment at least), "
        f"plus the slowest deployment of each of the {len(plan.waves)} waves"
    )
    return "\n".join(lines)


class _Tally(Protocol):
    """What the status line reads of a rollout (:class:`~aioedge.Rollout`)."""

    @property
    def plan(self) -> RolloutPlan: ...

    @property
    def result(self) -> RolloutResult: ...


class _Progress:
    """A status line on stderr while a terminal watches (nothing when piped or on a
    ``TERM=dumb`` terminal, which takes no cursor control; ASCII when it cannot encode ``·``).

    Its counts are the rollout's own (``rollout.result``, ``rollout.plan``), read as the
    summary line and the exit code read them: after a resume they include the outcomes of
    the run before, out of the stored waves."""

    def __init__(self, stream: TextIO, rollout: _Tally) -> None:
        self.stream = stream
        self.on = can_redraw(stream)
        self.ascii = not can_draw(stream)
        self.rollout = rollout
        self.wave = 0
        self.result: RolloutResult | None = None

    def note(self, event: RolloutEvent) -> None:
        if event.kind == "wave" and event.wave is not None:
            self.wave = event.wave
        if self.on and (self.result is None or event.outcome is not None):
            self.result = self.rollout.result  # read again only when an outcome came

    def show(self) -> None:
        if self.on and self.result is not None:
            plan, r = self.rollout.plan, self.result
            ok, failed = len(r.succeeded), len(r.failed)
            line = (
                f"\r\x1b[Kwave {self.wave}/{len(plan.waves)} · "
                f"{count_text(ok + failed, len(plan.instance_ids))} · {ok} ok · {failed} failed"
            )
            self.stream.write(to_ascii(line) if self.ascii else line)
            self.stream.flush()

    def clear(self) -> None:
        if self.on:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _line(event: RolloutEvent) -> str | None:
    if event.kind == "wave":
        return f"wave {event.wave}: starting {len(event.instance_ids)} instance(s)"
    if event.kind == "aborted":
        return f"aborted: {event.reason}; nothing new starts, running deployments are watched"
    if event.kind == "deployment" and event.event is not None and event.outcome is not None:
        mark = "ok    " if event.outcome == "succeeded" else "FAILED"
        dep = event.deployment_id or "-"
        final = event.event
        # Root cause first, as `aioedge watch` says it: the failing resource and its message.
        cause = final.culprit()
        detail = f": {cause_text(cause, final.message)}" if cause else ""
        detail += f" ({final.error})" if final.error else ""
        if event.outcome == "stalled" and final.message and not cause:
            detail = f" ({one_line(final.message)})"  # names the last change and when
        return f"{mark} {event.instance_id} deployment {dep} {event.outcome}{detail}"
    if event.kind == "final" and event.result is not None:
        r = event.result
        return (
            f"done: {len(r.succeeded)} succeeded, {len(r.failed)} failed, "
            f"{len(r.skipped)} skipped{' (aborted)' if r.aborted else ''}"
        )
    return None


async def cmd_rollout(args: argparse.Namespace, make_client: Callable[..., Any]) -> int:
    ids = read_instance_ids(args)
    waves = parse_waves(args.waves)
    max_failures = parse_share(args.max_failures, param="--max-failures")
    check_min_finished(args.min_finished, param="--min-finished")
    plan = RolloutPlan.build(ids, waves)
    if args.dry_run:
        print(
            render_plan(
                plan, max_failures=max_failures, min_finished=args.min_finished, type=args.type
            )
        )
        return EXIT_OK
    out = sys.stdout
    async with make_client(args) as client:
        rollout = client.rollout(
            ids,
            waves=waves,
            max_failures=max_failures,
            min_finished=args.min_finished,
            type=args.type,
            store=args.store,
            **watch_timing(args),
        )
        progress = _Progress(sys.stderr, rollout)
        async with rollout:
            async for event in rollout:
                progress.note(event)
                if args.output == "json":
                    text: str | None = json.dumps(event.to_dict(), ensure_ascii=False)
                else:
                    text = _line(event)
                if text is not None:
                    progress.clear()
                    print(text, file=out, flush=True)
                progress.show()
        progress.clear()
        return EXIT_OK if rollout.result.ok else EXIT_FAILED
