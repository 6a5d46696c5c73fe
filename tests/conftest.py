"""Shared fixtures (the helpers live in tests/support.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from .support import script_server

__all__ = ["no_metadata_service", "script_server"]

# Property tests run the same examples every time (CI is deterministic); HYPOTHESIS_PROFILE
# picks another profile (e.g. "explore": random, more examples) by hand.
settings.register_profile("aioedge", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None, max_examples=5_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aioedge"))


@pytest.fixture(autouse=True)
def no_metadata_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default chain never reaches for a real ECS metadata service from a test (it
    would wait for 100.100.100.200); tests of that step point it at the emulator."""
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    yield
