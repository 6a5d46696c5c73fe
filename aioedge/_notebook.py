"""Live views in Jupyter: one output area redrawn in place (IPython's ``display_id``).

A notebook ``progress_printer()`` and the watch package's displays
(``watch/_notebook.py``: ``DeploymentWatcher.display()``, ``DeploymentMonitor.display()``)
draw through :class:`LiveOutput`.  IPython is imported only when a view is shown: the
package does not depend on it, and outside a notebook nothing here runs.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._display import count_text, progress_text

if TYPE_CHECKING:
    from ._batch import BatchResult, ProgressFn

__all__ = ["LiveOutput", "in_notebook", "notebook_progress"]


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (where HTML outputs show)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    # A kernel's shell has one (terminal IPython has none): outputs go to a frontend.
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Rich:
    """An object a notebook shows as ``html``, and a plain frontend as ``text``."""

    def __init__(self, html_text: str, text: str) -> None:
        self._html = html_text
        self._text = text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text


class LiveOutput:
    """One output area of the current cell, updated in place at most every ``min_interval``
    seconds (a forced update always goes out: the last one must)."""

    def __init__(
        self,
        html_text: str,
        text: str = "",
        *,
        min_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            from IPython.display import display
        except ImportError:  # pragma: no cover - the error says what to install
            raise RuntimeError(
                "a live display needs IPython (run it in Jupyter: pip install ipykernel)"
            ) from None
        self._clock = clock
        self._min_interval = min_interval
        self._last = clock()
        self._handle = display(_Rich(html_text, text), display_id=True)  # type: ignore[no-untyped-call]

    def update(self, html_text: str, text: str = "", *, force: bool = False) -> bool:
        """Redraw; False when skipped (too soon after the last redraw)."""
        now = self._clock()
        if not force and now - self._last < self._min_interval:
            return False
        self._last = now
        if self._handle is not None:
            self._handle.update(_Rich(html_text, text))
        return True


# --------------------------------------------------------------------------- a batch


def _progress_html(label: str, done: int, total: int | None, failed: int) -> str:
    e = html.escape
    bar = (
        f"<progress max='{total}' value='{done}'></progress>" if total else "<progress></progress>"
    )
    fail = f", <span style='color:#c62828'>{failed} failed</span>" if failed else ""
    return f"<div class='aioedge-progress'>{e(label)}: {bar} {count_text(done, total)}{fail}</div>"


def notebook_progress(label: str = "batch", *, min_interval: float = 0.1) -> ProgressFn:
    """An ``on_progress`` hook that draws a progress bar in the notebook cell, in place."""
    counts = {"failed": 0}
    out: list[LiveOutput] = []

    def hook(done: int, total: int | None, result: BatchResult) -> None:
        if not result.ok:
            counts["failed"] += 1
        final = total is not None and done >= total
        page = _progress_html(label, done, total, counts["failed"])
        text = progress_text(label, done, total, counts["failed"])
        if not out:
            out.append(LiveOutput(page, text, min_interval=min_interval))
            return
        out[0].update(page, text, force=final)

    return hook
