"""``python -m aioedge.testing --port N [--speed X] [--faults SPEC] [--no-quota]``."""

from __future__ import annotations

import sys

from ._command import main

if __name__ == "__main__":
    sys.exit(main())
