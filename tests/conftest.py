"""Shared fixtures (the helpers live in tests/support.py)."""

from __future__ import annotations

import os

from hypothesis import settings

from .support import script_server

__all__ = ["script_server"]

# Property tests run the same examples every time (CI is deterministic); HYPOTHESIS_PROFILE
# picks another profile (e.g. "explore": random, more examples) by hand.
settings.register_profile("aioedge", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None, max_examples=5_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aioedge"))
