"""The ``aioedge`` console script (also ``python -m aioedge``).

Subcommands: demo, emulator, ops, call, watch, deploy, rollout.  ``--endpoint`` (or
``$ALIBABA_CLOUD_IOT_ENDPOINT``), ``--region`` and ``--profile`` go before or after the
subcommand; credentials come from the library's chain.  Exit codes (like ``kubectl rollout
status``): 0 success; 1 the deployment failed or timed out, or the service said no; 2 usage
or credential errors, including keys the service rejects.  Errors print as one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._argtypes import add_watch_timing, watch_timing
from ._argtypes import count as _count
from ._argtypes import positive as _positive
from ._catalog import OPERATIONS, Operation, get_operation
from ._credentials import Credentials
from ._display import can_draw, can_redraw, say, to_ascii, use_colour
from ._errors import (
    ApiError,
    AuthError,
    CredentialsError,
    EdgeError,
    TransportError,
    ValidationError,
    may_have_run,
)
from ._retry import DeadlineExceededError, RetryPolicy
from ._settings import (
    DEFAULT_REGION,
    IOT_ENDPOINT_ENV,
    REGION_ENV,
    check_endpoint,
    env_value,
    iot_endpoint,
)

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: The CLI's own fallback for ``--endpoint`` (the library's EdgeClient does not read it).
ENDPOINT_ENV = IOT_ENDPOINT_ENV

#: Service error codes that mean the credentials themselves are wrong: like missing
#: credentials, a configuration error (exit 2), not a refusal of this one call.
_CREDENTIAL_CODES = ("InvalidAccessKeyId.", "InvalidSecurityToken.", "SignatureDoesNotMatch")


class _UsageError(Exception):
    pass


class _Unreachable(EdgeError):
    """The endpoint could not be reached before it ever answered (a typo, not an outage)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors: keep that
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# --------------------------------------------------------------------------- arguments


_COMMON = ("endpoint", "region", "profile")


def _add_common(p: argparse.ArgumentParser, *, hidden: bool = False) -> None:
    # SUPPRESS: absent options leave no attribute, so a subcommand's own default cannot
    # overwrite the same option given before the subcommand (main() fills in None).
    # hidden: accepted (every command takes them) but left out of the help of a command
    # that serves its own emulator, where they change nothing.
    def text(help_text: str) -> str:
        return argparse.SUPPRESS if hidden else help_text

    g = p.add_argument_group("connection (before or after the command)")
    g.add_argument(
        "--endpoint",
        default=argparse.SUPPRESS,
        help=text(
            f"full URL of the API (default ${ENDPOINT_ENV}, else {iot_endpoint('{region}')})"
        ),
    )
    g.add_argument(
        "--region",
        default=argparse.SUPPRESS,
        help=text(f"region id (default ${REGION_ENV} or {DEFAULT_REGION})"),
    )
    g.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        help=text("credentials profile (aliyun CLI config or credentials.ini)"),
    )


_EVENTS_HELP = (
    "text (a live tree on a terminal, plain lines when piped) or json (one event per line)"
)


def _add_output(p: argparse.ArgumentParser, text: str = _EVENTS_HELP) -> None:
    p.add_argument("--output", "-o", choices=("text", "json"), default="text", help=text)


def _ops_epilog() -> str:
    lines = ["operations (QPS per account):"]
    for op in OPERATIONS.values():
        lines.append(f"  {op.action:<42} {op.qps:>3}  {op.summary}")
    return "\n".join(lines)


_CALL_DESCRIPTION = textwrap.fill(
    "Call ACTION with wire-named parameters: key=value pairs; lists as repeated keys "
    "(IotIds=a IotIds=b) or comma lists (IotIds=a,b); lists of structures as JSON "
    '(DeviceConfigs=\'[{"IotId":"d1","Content":"x"}]\') or flattened keys '
    "(DeviceConfigs.1.IotId=d1).",
    79,
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .watch._deploy import DEPLOYMENT_TYPES

    parser = _Parser(
        prog="aioedge",
        description="Client, emulator and deployment watcher for the "
        "Alibaba Cloud Link IoT Edge API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aioedge {__version__}")
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "demo", help="run a full rollout against the embedded emulator (no account needed)"
    )
    _add_common(p, hidden=True)
    _add_output(p)
    p.add_argument(
        "--speed", type=_positive(float), default=1.0, help="simulation speed factor (default 1.0)"
    )
    p.add_argument(
        "--devices", type=_positive(int), default=6, help="sub-devices to bind (default 6)"
    )
    p.add_argument(
        "--gateways", type=_positive(int), default=2, help="gateways to bind (default 2)"
    )

    p = sub.add_parser("emulator", help="serve the emulated API and print endpoint and credentials")
    _add_common(p, hidden=True)
    from .testing._command import add_arguments as add_emulator_arguments

    add_emulator_arguments(p)

    p = sub.add_parser(
        "ops",
        help="list operations with their QPS, or show one operation's parameters",
        epilog=_ops_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", help="an Action to describe")
    _add_common(p)
    _add_output(p, "text (a table) or json (one operation per line)")

    p = sub.add_parser(
        "call",
        help="call one Action and print its JSON answer",
        description=_CALL_DESCRIPTION,
        epilog="`aioedge call ACTION --help` (or `aioedge ops ACTION`) shows the parameters "
        "of one operation.\n\n" + _ops_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,  # main() answers --help: with an ACTION, that operation's parameters
    )
    p.add_argument(
        "-h",
        "--help",
        dest="call_help",
        action="store_true",
        help="show this help message (with ACTION: that operation's parameters) and exit",
    )
    p.set_defaults(call_parser=p)
    _add_common(p)
    p.add_argument("action", nargs="?", metavar="ACTION", help="the Action, e.g. GetEdgeInstance")
    p.add_argument("params", nargs="*", metavar="KEY=VALUE")
    p.add_argument(
        "--all-pages", action="store_true", help="for paged Query* operations: every item"
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=10.0,
        metavar="SECONDS",
        help="how long each attempt waits for the answer (default 10)",
    )
    p.add_argument(
        "--retries",
        type=_count,
        default=4,
        metavar="N",
        help="at most N more attempts, made only when that is safe (default 4; 0: none)",
    )

    for name, text in (
        ("watch", "watch a deployment until it ends"),
        ("deploy", "start a deployment (deploy or reset) and watch it"),
    ):
        p = sub.add_parser(name, help=text)
        _add_common(p)
        _add_output(p)
        p.add_argument("instance", metavar="INSTANCE")
        if name == "watch":
            p.add_argument(
                "deployment",
                metavar="DEPLOYMENT",
                nargs="?",
                help="the deployment id (default: the instance's running deployment, "
                "else its latest one, whose outcome is reported)",
            )
        else:
            p.add_argument(
                "--type",
                choices=DEPLOYMENT_TYPES,
                default="deploy",
                help="deploy (default) or reset (resets the edge instance)",
            )
            p.add_argument(
                "--attach",
                action="store_true",
                help="if a deployment is already running, watch it instead of failing",
            )
        add_watch_timing(
            p,
            poll_interval=0.5,
            max_poll_interval=5.0,
            timeout_help="stop watching after this many seconds (the deployment goes on)",
            progress_timeout_help="end as stalled (exit 1) when no stage or status changed "
            "for this long",
        )
        p.add_argument(
            "--max-poll-errors",
            type=_count,
            default=None,
            metavar="N",
            help="give up after N consecutive failed polls (default: keep retrying)",
        )
    from ._rollout_cli import add_parser as add_rollout_parser

    add_rollout_parser(sub, _add_common, _add_output)
    for command_parser in sub.choices.values():  # main() reports errors with its usage
        command_parser.set_defaults(command_parser=command_parser)
    return parser


# --------------------------------------------------------------------------- helpers


def _endpoint(args: argparse.Namespace) -> str | None:
    """``--endpoint``, else ``$ALIBABA_CLOUD_IOT_ENDPOINT``; checked before the credentials
    are looked up, so that a typo in it is the error reported."""
    if args.endpoint is not None:
        return check_endpoint(args.endpoint)
    value = env_value(os.environ, ENDPOINT_ENV)
    if not value:
        return None
    try:
        return check_endpoint(value)
    except ValidationError as err:
        raise _UsageError(f"${ENDPOINT_ENV}: {err}") from None


def _client(args: argparse.Namespace, credentials: Credentials | None = None, **kw: Any) -> Any:
    from ._client import EdgeClient

    return EdgeClient(
        credentials=credentials,
        region_id=args.region,
        endpoint=_endpoint(args),
        profile=args.profile,
        **kw,
    )


class _FailFast:
    """A client for a watch whose first poll must reach the service.

    A watch retries failed polls for ever (a rollout outlives network blips), so a mistyped
    ``--endpoint`` would wait for ever too.  Until the service has answered once, a
    connection that could not be opened at all (refused, unknown host, connect timeout)
    ends the watch with one line; after that, the watcher's retries apply as usual.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._answered = False

    async def call(self, action: str, params: Any) -> dict[str, Any]:
        try:
            body: dict[str, Any] = await self._client.call(action, params)
        except TransportError as err:
            # A call given up while it waited for its quota never tried to connect.
            if (
                not self._answered
                and not err.maybe_executed
                and not isinstance(err, DeadlineExceededError)
            ):
                raise _Unreachable(err.message) from err
            raise
        except ApiError:
            self._answered = True
            raise
        self._answered = True
        return body


def parse_call_params(op: Operation, pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words → a params dict for ``client.call`` (wire names).

    A list parameter given again adds to its list, whichever form the words take: items
    (``IotIds=a IotIds=b,c``) or JSON lists of structures (``DeviceConfigs='[...]'``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _UsageError(f"parameter {pair!r} is not KEY=VALUE")
        param = op.param(key)
        if param is not None and param.is_struct_list:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise _UsageError(
                    f"{key} takes a JSON list of objects: {_json_problem(exc)}"
                ) from None
            if isinstance(parsed, list) and isinstance(out.get(key, []), list):
                out.setdefault(key, []).extend(parsed)  # a repeated key adds to the list
            elif key in out:
                raise _UsageError(f"{key} given twice")
            else:
                out[key] = parsed  # not a list: validation names the parameter
        elif param is not None and param.repeated:
            out.setdefault(key, []).extend(v for v in value.split(",") if v)
        elif key in out:
            raise _UsageError(f"{key} given twice")
        else:
            out[key] = value
    return out


def _json_problem(exc: json.JSONDecodeError) -> str:
    """Where JSON went wrong: the parser's words, line and column, and the text around it."""
    where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
    text = exc.doc
    start, end = max(0, exc.pos - 12), min(len(text), exc.pos + 12)
    near = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    return f"{exc.msg} at {where} (char {exc.pos}), near {near!r}"


#: The library's hints that name what only Python code has, and what the command says instead.
_LIBRARY_HINTS = (
    ("(or pass allow_http=True)", "(plain http only to a loopback host, such as the emulator)"),
    ("(client.batch splits larger lists)", "(split the list over several calls)"),
)


def cli_text(message: str) -> str:
    """``message`` with the library's Python-only hints replaced by what the command can do."""
    for library, command in _LIBRARY_HINTS:
        message = message.replace(library, command)
    return message


#: Where a SignatureDoesNotMatch message starts quoting the service's whole string to sign:
#: hundreds of characters that do not fit the one error line (debug logs keep them).
_STRING_TO_SIGN = "server string to sign is:"


def _may_have_changed(err: BaseException) -> bool:
    """Whether the call that failed with ``err`` may have run (``_errors.may_have_run``: a
    lost or unreadable answer, a 5xx other than a refusal) and changed something: not for a
    read-only Action, which is harmless to have run (and safe to run again)."""
    if not isinstance(err, ApiError | TransportError) or not may_have_run(err):
        return False
    op = OPERATIONS.get(err.action) if err.action else None
    return op is None or not op.read_only


def _print_error(err: BaseException, stream: TextIO | None = None, *, hint: str = "") -> None:
    """The one error line; ``hint`` (such as ``"; re-run with --attach ..."``) ends it."""
    stream = stream or sys.stderr  # looked up now: callers may have redirected it
    cause = err.__cause__
    if not isinstance(err, ApiError) and isinstance(cause, ApiError) and cause.request_id:
        # e.g. DeploymentError from deploySheetNotExist: keep the service's RequestId
        line = f"error: {err} (RequestId {cause.request_id})"
    elif isinstance(err, ApiError):
        rid = f" (RequestId {err.request_id})" if err.request_id else ""
        message = err.message
        cut = message.lower().find(_STRING_TO_SIGN)
        if cut >= 0:
            message = message[:cut].rstrip()
        note = " (the call may have run)" if _may_have_changed(err) else ""
        line = f"error: {err.code}: {message}{rid}{note}"
    elif isinstance(err, DeadlineExceededError):
        line = f"error: quota: {err.message}"  # not sent: nothing to do with the network
    elif isinstance(err, TransportError):
        notes = [f"{err.attempts} attempts"] if err.attempts > 1 else []
        if _may_have_changed(err):
            notes.append("the call may have run")
        note = f" ({'; '.join(notes)})" if notes else ""
        line = f"error: network: {err.message}{note}"
    elif isinstance(err, _Unreachable):
        line = f"error: network: {err} (is the endpoint right?)"
    else:
        line = f"error: {cli_text(str(err))}"
    print(line + hint, file=stream)


def _hint(args: argparse.Namespace, err: BaseException) -> str:
    """What to do next, when the error line alone does not say it."""
    if args.command != "deploy":
        return ""
    if (
        isinstance(err, ApiError | TransportError)
        and err.action == "CreateEdgeInstanceDeployment"
        and may_have_run(err)
    ):
        # The deployment may have been created: --attach follows it if so, else creates one.
        return "; re-run with --attach to follow the deployment if it started"
    from .watch._deploy import already_running

    if already_running(err):  # the code start_deployment(attach=True) joins
        return "; re-run with --attach to follow it"
    return ""


def _exit_code_for(err: BaseException) -> int:
    if isinstance(err, (ValidationError, CredentialsError, _UsageError)):
        return EXIT_USAGE
    if isinstance(err, AuthError) and err.code.startswith(_CREDENTIAL_CODES):
        return EXIT_USAGE  # the key, token or secret is wrong: fix the configuration
    return EXIT_FAILED


# --------------------------------------------------------------------------- commands


def _op_record(op: Operation) -> dict[str, Any]:
    """An operation as ``aioedge ops -o json`` writes it (its parameters with one operation)."""
    return {
        "action": op.action,
        "qps": op.qps,
        "read_only": op.read_only,
        "paged": op.paged,
        "summary": op.summary,
    }


def _cmd_ops(args: argparse.Namespace) -> int:
    if not args.action:
        if args.output == "json":
            for op in OPERATIONS.values():
                print(json.dumps(_op_record(op)))
        else:
            print(_ops_epilog())
        return EXIT_OK
    op = get_operation(args.action)
    if args.output == "json":
        print(
            json.dumps(
                {
                    **_op_record(op),
                    "params": [
                        {
                            "name": p.name,
                            "type": p.type,
                            "required": p.required,
                            "repeated": p.repeated,
                            "max_items": p.max_items,
                            "values": list(p.values) if p.values else None,
                        }
                        for p in op.params
                    ],
                }
            )
        )
        return EXIT_OK
    print("\n".join(_describe(op)))
    return EXIT_OK


def _describe(op: Operation) -> list[str]:
    """One operation from the catalog: quota, kind, typed method, parameters."""
    kind = "read-only" if op.read_only else "mutating"
    lines = [
        f"{op.action} — {op.summary}",
        f"  {op.qps} QPS per account, {kind}{', paged' if op.paged else ''}; "
        f"method client.{op.method_name}(...)",
    ]
    for p in op.params:
        bits = [p.type + ("[]" if p.repeated else ""), "required" if p.required else "optional"]
        if p.max_items:
            bits.append(f"≤{p.max_items} items")
        if p.max_length:
            bits.append(f"≤{p.max_length} chars")
        if p.minimum is not None or p.maximum is not None:
            bits.append(f"range {p.minimum if p.minimum is not None else ''}..{p.maximum or ''}")
        if p.values:
            bits.append("one of " + "|".join(p.values))
        if p.fields:
            bits.append("fields " + ", ".join(f.name for f in p.fields))
        lines.append(f"  {p.name:<18} {'; '.join(bits)}")
        if p.description:
            lines.append(textwrap.indent(textwrap.fill(p.description, 76), " " * 21))
    return lines


def _call_help(parser: argparse.ArgumentParser, action: str) -> str:
    """``aioedge call ACTION --help``: the usage, then ACTION's parameters and an example."""
    op = get_operation(action)
    example = [f"{p.name}=…" for p in op.params if p.required]
    return "\n".join(
        [
            f"usage: {parser.prog} {op.action} [KEY=VALUE ...] [--all-pages] "
            "[--timeout SECONDS] [--retries N] [--endpoint URL] [--region ID] [--profile NAME]",
            "",
            *_describe(op),
            "",
            f"example: aioedge call {' '.join([op.action, *example])}",
            "",
            _CALL_DESCRIPTION,
        ]
    )


async def _cmd_call(args: argparse.Namespace) -> int:
    op = get_operation(args.action)
    params = parse_call_params(op, args.params)
    # No overall deadline: --timeout is each attempt's own, and --retries bounds their number.
    retry = RetryPolicy(max_attempts=args.retries + 1, deadline=None)
    async with _client(args, timeout=args.timeout, retry=retry) as client:
        if args.all_pages:
            items = [item async for item in client.paginate(op.action, params)]
            print(json.dumps(items, indent=2, ensure_ascii=False))
        else:
            body = await client.call(op.action, params)
            print(json.dumps(body, indent=2, ensure_ascii=False))
    return EXIT_OK


def _ascii_safe_streams() -> None:
    """On a stream that cannot encode every character (``PYTHONIOENCODING=ascii``), print
    ``?`` for the odd one left (a name from the service) instead of failing with a traceback.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and not can_draw(stream):
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


def _follow_hint(args: argparse.Namespace, lead: str = "") -> str:
    """How to follow the deployment again: ``aioedge watch INSTANCE`` (with the options
    that reached this service), for after Ctrl-C or ``--timeout``."""
    instance = getattr(args, "instance", None)
    if args.command not in ("watch", "deploy") or not instance:
        return ""
    words = ["aioedge", "watch", instance]
    for option in _COMMON:
        value = getattr(args, option, None)
        if value:
            words += [f"--{option}", value]
    return f"{lead}the deployment goes on in the service; follow it again with: {' '.join(words)}"


def _error_final(args: argparse.Namespace, events: Any, err: BaseException) -> Any:
    """The ``final`` record of a watch that ended on an error: outcome, reason, code, text."""
    from .watch._tracker import classify

    # An endpoint that never answered is judged by the TransportError behind it, as a
    # monitor judges one (reason unreachable, code TransportError); the CLI's own other
    # case is an instance with no deployment.
    behind = err.__cause__ if isinstance(err, _Unreachable) and err.__cause__ else err
    outcome, reason, code = classify(behind)
    if isinstance(err, _NoDeployment):
        outcome, reason = "not_found", "not_found"
    stream = io.StringIO()
    _print_error(err, stream)
    message = stream.getvalue().strip().removeprefix("error: ")
    return _own_final(args, events, outcome=outcome, reason=reason, error=code, message=message)


def _interrupted_final(args: argparse.Namespace, events: Any) -> Any:
    return _own_final(
        args,
        events,
        outcome="interrupted",
        reason="interrupted",
        message=_follow_hint(args) or None,
    )


def _own_final(args: argparse.Namespace, events: Any, **fields: Any) -> Any:
    """A ``final`` record the CLI writes itself (the watch ended on an error, or Ctrl-C):
    the deployment and instance it was about, the last status seen, the time now."""
    from .watch import DeploymentEvent

    state = getattr(events, "state", None)
    return DeploymentEvent(
        kind="final",
        deployment_id=getattr(events, "deployment_id", None) or "",
        instance_id=getattr(args, "instance", None),
        status=None if state is None else state.status,
        time=time.time(),
        **fields,
    )


async def _tick(display: Any) -> None:
    while True:
        await asyncio.sleep(0.5)
        display.tick()


async def stream_events(
    args: argparse.Namespace,
    events: Any,
    out: TextIO | None = None,
    *,
    polls: Callable[[], tuple[int, float | None]] | None = None,
) -> int:
    """Print a watch/deploy stream; return the exit code from the final outcome.

    ``--output json``: one event per line, and always a ``final`` record last: the
    deployment's own, a timeout, or (then re-raised) an error or Ctrl-C.  Text: a live tree
    on a terminal (not ``TERM=dumb``; colour unless ``NO_COLOR``, ASCII when the encoding
    needs it), plain lines when piped; either way the last line is the outcome, and after a
    timeout or a stall a hint says how to follow the deployment again.
    """
    from ._live import LiveDisplay

    out = out or sys.stdout
    as_json = args.output == "json"
    ascii = not can_draw(out)
    colour = use_colour(out)
    live = not as_json and can_redraw(out)
    display = LiveDisplay(out, colour=colour, ascii=ascii, polls=polls) if live else None
    ticker = asyncio.ensure_future(_tick(display)) if display is not None else None

    def emit(text: str) -> None:
        print(to_ascii(text) if ascii else text, file=out, flush=True)

    final: Any = None
    try:
        async for event in events:
            if as_json:
                print(json.dumps(event.to_dict(), ensure_ascii=ascii), file=out, flush=True)
            elif display is not None:
                display.update(event)
            else:
                emit(str(event))
            if event.kind == "final":
                final = event
    except EdgeError as err:
        if as_json:
            record = _error_final(args, events, err).to_dict()
            print(json.dumps(record, ensure_ascii=ascii), file=out, flush=True)
        raise
    except asyncio.CancelledError:  # Ctrl-C: main() says "interrupted" and how to follow
        if as_json:
            record = _interrupted_final(args, events).to_dict()
            print(json.dumps(record, ensure_ascii=ascii), file=out, flush=True)
        raise
    finally:
        if ticker is not None:
            ticker.cancel()
        if display is not None:
            display.close()
    outcome = getattr(final, "outcome", None)
    if final is not None and display is not None:
        # The last line says how it ended and, on failure, which resource and why: whole.
        role = {"succeeded": "ok", "failed": "cause"}.get(outcome or "", "warn")
        from .watch._render import paint

        emit(paint(str(final), role, colour))
    if outcome in ("timed_out", "stalled"):
        hint = _follow_hint(args)
        if hint:
            print(to_ascii(hint) if ascii else hint, file=sys.stderr if as_json else out)
    return EXIT_OK if outcome == "succeeded" else EXIT_FAILED


class _NoDeployment(EdgeError):
    """The instance has no deployment to watch."""


def _say(args: argparse.Namespace, text: str) -> None:
    """A line before the events, in text mode only (JSON output stays events)."""
    if args.output == "text":
        say(sys.stdout, text)


async def _cmd_watch(args: argparse.Namespace) -> int:
    from ._live import Polls
    from .watch import DeploymentWatcher, WatchRetry
    from .watch._deploy import latest_deployment

    retry = WatchRetry(max_errors=args.max_poll_errors)
    async with _client(args) as client:
        polls = Polls(_FailFast(client))

        async def resolve() -> tuple[str, bool]:
            found = await latest_deployment(polls, args.instance)
            if found is None:
                raise _NoDeployment(
                    f"instance {args.instance} has no deployment yet "
                    f"(start one with: aioedge deploy {args.instance})"
                )
            deployment_id, running = found
            if running:
                _say(args, f"following the running deployment {deployment_id}")
            else:
                _say(args, f"no deployment is running; the latest one is {deployment_id}:")
            return deployment_id, running

        events = DeploymentWatcher(
            polls,
            args.instance,
            args.deployment,
            resolve=None if args.deployment else resolve,
            retry=retry,
            **watch_timing(args),
        )
        return await stream_events(args, events, polls=polls.info)


async def _cmd_deploy(args: argparse.Namespace) -> int:
    from ._live import Polls
    from .watch import WatchRetry, deploy_and_watch

    async with _client(args) as client:
        polls = Polls(client)
        events = deploy_and_watch(
            polls,
            args.instance,
            type=args.type,
            attach=args.attach,
            retry=WatchRetry(max_errors=args.max_poll_errors),
            **watch_timing(args),
        )
        return await stream_events(args, events, polls=polls.info)


async def _cmd_rollout(args: argparse.Namespace) -> int:
    from ._rollout_cli import cmd_rollout

    return await cmd_rollout(args, _client)


async def _cmd_emulator(args: argparse.Namespace) -> int:
    from .testing._command import serve

    try:
        return await serve(args)  # until SIGINT/SIGTERM
    except ValueError as err:  # bad --speed/--faults/...: a usage error, not a traceback
        raise _UsageError(str(err)) from None


async def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return int(await run_demo(args, stream_events))


_COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "ops": _cmd_ops,
    "call": _cmd_call,
    "watch": _cmd_watch,
    "deploy": _cmd_deploy,
    "rollout": _cmd_rollout,
    "emulator": _cmd_emulator,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    if not words:  # `aioedge` alone: what it can do, not a usage error
        _ascii_safe_streams()
        parser.print_help()
        return EXIT_OK
    _ascii_safe_streams()
    args, extra = parser.parse_known_args(words)
    for name in _COMMON:  # given neither before nor after the subcommand
        if not hasattr(args, name):
            setattr(args, name, None)
    if args.command == "call":
        call_parser: argparse.ArgumentParser = args.call_parser
        if args.call_help:
            if args.action is None:
                call_parser.print_help()
                return EXIT_OK
            try:
                print(_call_help(call_parser, args.action))
            except ValidationError as err:  # an unknown Action: its "did you mean" line
                _print_error(err)
                return EXIT_USAGE
            return EXIT_OK
        if args.action is None:
            call_parser.error("the following arguments are required: ACTION")
        # argparse stops filling `call`'s KEY=VALUE list at the first option, so
        # `call ACTION --endpoint URL K=V` would leave K=V over: they are still parameters
        # (and a word without "=" gets parse_call_params's KEY=VALUE message).
        words = [w for w in extra if not w.startswith("-")]
        args.params = [*args.params, *words]
        extra = [w for w in extra if w.startswith("-")]
    if extra:  # reported with the command's usage, which lists the options it takes
        command_parser = getattr(args, "command_parser", parser)
        command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = _COMMANDS[args.command]
    try:
        result = handler(args)
        if isinstance(result, int):
            return result
        return int(asyncio.run(result))
    except KeyboardInterrupt:
        print("interrupted" + _follow_hint(args, "; "), file=sys.stderr)
        return 130
    except (EdgeError, _UsageError) as err:
        _print_error(err, hint=_hint(args, err))
        return _exit_code_for(err)
    except BrokenPipeError:
        # `aioedge ... | head`: the reader left; say nothing, and keep the interpreter's
        # final flush from failing on the closed pipe too.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as err:  # e.g. the emulator port is taken
        print(f"error: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
