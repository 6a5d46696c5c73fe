"""The one place aioedge gets its structlog logger.

aioedge never configures logging.  When the application has configured structlog we log
through it; otherwise events go to the standard library logger ``aioedge`` (silent by
default: no handler, and our events are DEBUG/INFO), so an unconfigured structlog never
prints to stdout on our behalf.  A disabled debug line costs one level check.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from ._protocol import SECRET_PARAMS

__all__ = ["debug_check", "get_logger", "redact_processor"]

# Log field names that say they hold a secret: every name in SECRET_PARAMS, in lower case and
# in snake_case (``SecurityToken``: ``securitytoken``, ``security_token``), and ``secret``.
_SECRET_KEYS = frozenset(
    {"secret"}
    | {name.lower() for name in SECRET_PARAMS}
    | {
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
        for name in SECRET_PARAMS
    }
)


def redact_processor(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """Belt and braces: mask any field whose name says it is a secret."""
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
    return event


def get_logger() -> Any:
    """A bound structlog logger named ``aioedge``."""
    if structlog.is_configured():
        return structlog.get_logger("aioedge").bind()
    # .bind() now: a lazy proxy would build a new bound logger on every method call.
    return structlog.wrap_logger(
        logging.getLogger("aioedge"),
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[
            structlog.stdlib.filter_by_level,
            redact_processor,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
    ).bind()


def _always() -> bool:
    return True


def debug_check(logger: Any) -> Callable[[], bool]:
    """A zero-argument "would ``logger`` keep a debug line now?" for hot paths.

    Call it before building a debug line's fields: a disabled line then costs one level
    check.  It follows level changes made later (stdlib levels, structlog filtering
    loggers); a logger that cannot say is assumed to want everything.
    """
    check = getattr(logger, "is_enabled_for", None)
    if check is None:
        return _always
    return functools.partial(check, logging.DEBUG)
