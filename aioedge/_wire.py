"""How the service writes texts, numbers, times and deployment statuses in its answers: each
rule once.

Used by the response models (``_models``), the deployment watcher (``watch``) and the
emulator (``testing``).  Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FAILED",
    "FINAL_STATUSES",
    "LAST_STAGE",
    "NOT_STARTED",
    "PROCESSING",
    "SUCCEEDED",
    "int_or_none",
    "is_final",
    "more_pages",
    "ms_to_seconds",
    "stamp",
    "stamp_keys",
    "str_or_none",
    "to_int",
    "to_str",
]

#: The service's integers are 64-bit (Java ``long``): a number beyond that is not one of
#: them, and would overflow the float arithmetic of times and progress bars.
_INT_LIMIT = 2**63


def to_int(value: Any, what: str = "value") -> int:
    """``value`` (a number or a numeric string: ERRATA "Responses" sends both) as a 64-bit int.

    Raises ``TypeError`` for a boolean or a non-number and ``ValueError`` for anything else
    that is not such an integer: text, a fraction, NaN, an infinity (JSON ``1e999``,
    ``Infinity``), a number out of range.  Never ``OverflowError``, so callers catching the
    two see it all.
    """
    number = value
    if type(value) is not int:
        if isinstance(value, bool):
            raise TypeError(f"{what}: boolean where an integer was expected")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{what} {value!r} is not a finite number")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{what} {value!r} is not a whole number")
        try:
            number = int(value)
        except OverflowError:  # an infinite Decimal and the like
            raise ValueError(f"{what} {_brief(value)} is not a finite number") from None
    if not -_INT_LIMIT <= number < _INT_LIMIT:
        raise ValueError(f"{what} {_brief(value)} is out of range")
    return int(number)


def int_or_none(value: Any) -> int | None:
    """:func:`to_int`, leniently: anything that is not such an integer is unknown (None)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return to_int(value)
    except (TypeError, ValueError):
        return None


def to_str(value: Any) -> str:
    """``value`` as the service's text: a string as it is, a number (an id sent as one) as
    its decimal text.  Raises ``TypeError`` for anything else: a boolean, a list, an object.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"not a string: {_brief(value)}")


def str_or_none(value: Any) -> str | None:
    """:func:`to_str`, leniently: anything that is not such a text is unknown (None).

    The one reading of a text field for the response models and the watcher alike, so a
    ``DeploymentId`` of ``true`` or ``[]`` is no id for either.
    """
    if value is None:  # the common case of a missing field: no exception for it
        return None
    try:
        return to_str(value)
    except TypeError:
        return None


def more_pages(page: int, size: int, count: int, total: int | None) -> bool:
    """Whether a paged ``Query*`` may have a page after page ``page`` (1-based) of ``size``,
    which listed ``count`` items; ``total`` is the answer's ``Total`` (``None``: absent or
    unreadable).

    No after an empty page or one shorter than ``size``, nor once ``page * size`` reaches
    ``total``.  Otherwise yes: a full page without a ``Total`` may be followed by more, so
    the next page is asked for (an empty one then ends the walk).
    """
    if count == 0 or count < size:
        return False
    return total is None or page * size < total


def ms_to_seconds(ms: int | None) -> float | None:
    """The service's milliseconds since the epoch as seconds (how events date things);
    ``None`` stays ``None`` (0 is a time: the epoch)."""
    return None if ms is None else ms / 1000.0


def stamp_keys(name: str) -> tuple[str, str]:
    """``GmtCreate`` → its ms-time keys; ERRATA, Wire names: ``GmtCreateTimestamp`` is also
    spelled ``GmtCreateTimeStamp``."""
    return f"{name}Timestamp", f"{name}TimeStamp"


def stamp(raw: Mapping[str, Any], name: str) -> int | None:
    """The ms time ``name`` (``GmtCreate``) of ``raw`` under either spelling, or None."""
    first, second = stamp_keys(name)
    value = raw.get(first)
    return int_or_none(raw.get(second) if value is None else value)


# ERRATA, Deployments: a deployment, a subtask and a resource snapshot share one Status
# (0 not started, 1 processing, 2 succeeded, 3 failed) and one Stage (0 initial, 8
# assembling, 16 packaging, 24 dispatching, 32 complete).
NOT_STARTED, PROCESSING, SUCCEEDED, FAILED = 0, 1, 2, 3
#: The Status values after which nothing changes any more.
FINAL_STATUSES: frozenset[int] = frozenset({SUCCEEDED, FAILED})
#: The last Stage: a success there means the snapshot succeeded.
LAST_STAGE = 32


def is_final(status: int | None) -> bool:
    """Whether a Status says the thing ended: 2 (succeeded) or 3 (failed).

    Anything else is still going on, for every reader alike (the watcher, the history
    lookup, a rollout): 0 and 1, but also a value the documents do not list and a Status
    that is absent or unreadable (``None``).  Nothing says such a deployment ended, so a
    watcher keeps polling it and the history lookup counts it as running.
    """
    return status in FINAL_STATUSES


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}…({len(text)} chars)"
