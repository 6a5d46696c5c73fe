"""How text is shown: one rule each, asked by the command line, the live view, the rollout
status line and the batch progress line (terminal and notebook).

* :func:`can_redraw`: whether a stream takes cursor control (``\\r``, clear a line, move
  up): a terminal (``isatty``) whose ``TERM`` is not ``dumb``.  Everything that redraws in
  place asks it; anything else gets plain lines, or nothing for a status line.
* :func:`use_colour`: ANSI colour on such a terminal, never with ``NO_COLOR`` set
  (no-color.org).
* :func:`can_draw` / :func:`to_ascii`: whether a stream can encode the glyphs this package
  draws, and their ASCII spelling when it cannot (``PYTHONIOENCODING=ascii``, Latin-1).
* :func:`count_text` / :func:`progress_text`: how far a batch or a rollout is,
  ``12/40 done`` and ``label: 12/40 done, 2 failed``.

Nothing here imports the rest of the package: every display module may ask it.
"""

from __future__ import annotations

import os
from typing import TextIO

__all__ = [
    "can_draw",
    "can_redraw",
    "count_text",
    "progress_text",
    "say",
    "to_ascii",
    "use_colour",
]

#: What an ASCII-only terminal gets instead of the glyphs the tree and the events use.
_ASCII = str.maketrans(
    {
        "→": "->",
        "…": "...",
        "—": "-",
        "–": "-",
        "·": "-",
        "✔": "+",
        "✘": "x",
        "⊘": "/",
        "↳": "->",
        "◀": "<",
        "█": "#",
        "░": "-",
        "├": "|",
        "└": "`",
        "│": "|",
        "─": "-",
        "≤": "<=",
    }
)


#: The glyphs the live tree and the event lines draw; a stream that cannot encode them all
#: gets the ASCII drawing (``PYTHONIOENCODING=ascii``, a Latin-1 terminal).
_GLYPHS = "✔✘…█░├─└│⊘↳→—·◀"


def can_draw(stream: TextIO) -> bool:
    """Whether ``stream`` can encode the glyphs of the tree (else: draw in ASCII)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        _GLYPHS.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def to_ascii(text: str) -> str:
    """``text`` with the glyphs this package draws spelled in ASCII; anything else that is
    not ASCII becomes ``?`` (a name from the service, on a terminal that cannot show it)."""
    return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def say(stream: TextIO, text: str) -> None:
    """Print ``text`` on ``stream`` as it can show it (:func:`to_ascii` where it cannot
    :func:`can_draw`), flushed: a line before or after the events."""
    print(text if can_draw(stream) else to_ascii(text), file=stream, flush=True)


def can_redraw(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that takes cursor control (a status line redrawn
    with ``\\r``, a tree redrawn in place): ``isatty``, and ``TERM`` is not ``dumb``."""
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal that :func:`can_redraw`, never with ``NO_COLOR`` set
    (no-color.org)."""
    return not os.environ.get("NO_COLOR") and can_redraw(stream)


def progress_text(label: str, done: int, total: int | None, failed: int) -> str:
    """A batch's progress as one line: ``label: 12/40 done, 2 failed`` (no total when it is
    not known, no failures when there are none)."""
    return f"{label}: {count_text(done, total)}" + (f", {failed} failed" if failed else "")


def count_text(done: int, total: int | None) -> str:
    """``12/40 done``, or ``12 done`` when the total is not known."""
    return f"{done}/{total} done" if total is not None else f"{done} done"
