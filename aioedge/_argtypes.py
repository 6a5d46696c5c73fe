"""The one check of each kind of argument that is not a service parameter: a number > 0
(``check_positive``), a bound that may be reached (``check_at_least``), a count
(``check_count``) and a share (``parse_share``), each a ValidationError naming the argument,
for the client, the limiters, the watch and the emulator alike; their argparse ``type``s for
the command lines (a bad value is a usage error, exit 2, naming the option); and the options
that time a watch, declared once for ``watch``, ``deploy`` and ``rollout``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from ._errors import ValidationError

__all__ = [
    "WATCH_TIMING",
    "add_watch_timing",
    "check_at_least",
    "check_count",
    "check_positive",
    "count",
    "parse_share",
    "positive",
    "share",
    "watch_timing",
]

_N = TypeVar("_N", int, float)

#: The options that time a watch (watch, deploy, rollout), each named as the keyword
#: argument the watcher takes.
WATCH_TIMING = ("poll_interval", "max_poll_interval", "timeout", "progress_timeout")


def add_watch_timing(
    parser: argparse.ArgumentParser,
    *,
    poll_interval: float,
    max_poll_interval: float,
    timeout_help: str,
    progress_timeout_help: str,
) -> None:
    """The options of ``WATCH_TIMING``, each a number of seconds > 0 (``positive``: 0, a
    negative number or NaN is a usage error naming the option, whichever command takes it);
    the poll intervals' defaults are the command's own."""
    seconds = positive(float)
    parser.add_argument(
        "--timeout", type=seconds, default=None, metavar="SECONDS", help=timeout_help
    )
    parser.add_argument(
        "--progress-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=progress_timeout_help,
    )
    parser.add_argument(
        "--poll-interval",
        type=seconds,
        default=poll_interval,
        metavar="SECONDS",
        help=f"shortest gap between polls (default {poll_interval:g})",
    )
    parser.add_argument(
        "--max-poll-interval",
        type=seconds,
        default=max_poll_interval,
        metavar="SECONDS",
        help=f"longest gap between polls, while nothing changes (default {max_poll_interval:g})",
    )


def watch_timing(args: argparse.Namespace) -> dict[str, Any]:
    """The watcher's timing keyword arguments, from the options of the same names."""
    return {name: getattr(args, name) for name in WATCH_TIMING}


def check_positive(value: _N, *, param: str, none: str = "") -> _N:
    """``value`` if it is > 0; else a ValidationError naming ``param`` (``none``: what the
    message adds, such as ``" or None"``).  NaN is refused too: every comparison with it is
    false.  The one "> 0" rule of the command lines (``positive``), the watch options and
    the emulator's options."""
    if not value > 0:
        raise ValidationError(
            f"{param} must be > 0{none}, got {value!r}", param=param, rule="range"
        )
    return value


def check_at_least(value: _N, minimum: _N, *, param: str) -> _N:
    """``value`` if it is >= ``minimum``; else a ValidationError naming ``param``.  NaN is
    refused, as by :func:`check_positive`: a bound that may be reached (a delay of 0, a
    growth factor of 1), for a watch's ``backoff`` and its ``WatchRetry``."""
    if not value >= minimum:
        raise ValidationError(
            f"{param} must be >= {minimum:g}, got {value!r}", param=param, rule="range"
        )
    return value


def _read_share(text: object) -> tuple[float, str, str]:
    """``(value, rule, problem)`` of a share's text; ``problem`` is empty when it is one."""
    if isinstance(text, bool):
        return 0.0, "type", f"must be a share, got {text!r}"
    raw = text.strip() if isinstance(text, str) else text
    percent = isinstance(raw, str) and raw.endswith("%")
    try:
        value = float(raw[:-1]) / 100 if percent else float(raw)  # type: ignore[index,arg-type]
    except (TypeError, ValueError):
        return 0.0, "format", f"must be a share such as 0.2 or 20%, got {text!r}"
    if not 0.0 <= value <= 1.0:  # NaN too
        return 0.0, "range", f"must be within 0..1 (0%..100%), got {text!r}"
    return value, "", ""


def parse_share(text: str | float, *, param: str) -> float:
    """``0.2``, ``"0.2"`` or ``"20%"`` → 0.2; ValidationError naming ``param`` otherwise.
    The one reading of a share: a rollout's ``max_failures`` and waves, and (``share``)
    the emulator's ``--fail-rate``."""
    value, rule, problem = _read_share(text)
    if problem:
        raise ValidationError(f"{param} {problem}", param=param, rule=rule)
    return value


def share(text: str) -> float:
    """An argparse ``type`` for a share, read as ``parse_share`` reads it."""
    value, _rule, problem = _read_share(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def check_count(value: int, *, param: str, minimum: int = 0) -> int:
    """``value`` if it is a whole number >= ``minimum``; else a ValidationError naming
    ``param``.  A bool, a float (2.5 calls, or NaN of them, which compares false with
    everything) and a negative number are refused alike: the one rule of a count, for the
    command lines (``count``), a rollout's ``min_finished`` and a batch's bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(
            f"{param} must be an integer >= {minimum}, got {value!r}", param=param, rule="range"
        )
    return value


def _usage_type(
    convert: Callable[[str], _N], check: Callable[..., _N], what: str, must: str, name: str
) -> Callable[[str], _N]:
    """An argparse ``type``: ``convert`` the text, then ``check`` the value; either failing
    is a usage error (exit 2) that says ``not {what}`` or ``must be {must}``."""

    def parse(text: str) -> _N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        try:
            return check(value, param=text)
        except ValidationError:
            raise argparse.ArgumentTypeError(f"must be {must}, got {text}") from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse ``type`` that rejects zero, negatives and NaN (``check_positive``)."""
    return _usage_type(kind, check_positive, "a number", "> 0", kind.__name__)


#: An argparse ``type`` for a count: 0 or more (``check_count``).
count: Callable[[str], int] = _usage_type(int, check_count, "a whole number", ">= 0", "count")
