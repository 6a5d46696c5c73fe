"""Shared fixtures (the helpers live in tests/support.py)."""

from __future__ import annotations

from .support import script_server

__all__ = ["script_server"]
