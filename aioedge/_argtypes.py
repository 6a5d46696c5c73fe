"""The argparse ``type``s the command lines share: a bad value is a usage error (exit 2,
a message naming the option), not a traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["count", "positive"]


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse ``type`` that rejects zero and negatives (exit 2, not a traceback)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def count(text: str) -> int:
    """An argparse ``type`` for a count: 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value
