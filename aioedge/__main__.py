"""``python -m aioedge`` runs the console script."""

from ._cli import main

raise SystemExit(main())
