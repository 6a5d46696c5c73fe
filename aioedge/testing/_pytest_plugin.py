"""pytest fixtures for code that talks to Link IoT Edge (registered as pytest11 ``aioedge``).

* ``edge_emulator`` — a started :class:`~aioedge.testing.Emulator` (async fixture);
* ``edge_client`` — an ``aioedge.EdgeClient`` connected to it;
* ``edge_emulator_thread`` — an emulator served from a background thread, for
  synchronous code and subprocesses (``.endpoint``, ``.credentials``);
* ``edge_emulator_options`` / ``edge_client_options`` — override these fixtures to pass
  options (``{"speed": 100, "quotas": False}``).

The async fixtures need pytest-asyncio; the module imports nothing heavy until a fixture
is used, because pytest loads it in every session of an environment with aioedge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aioedge import EdgeClient

    from ._emulator import Emulator, EmulatorThread

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - async fixtures need pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]


@pytest.fixture
def edge_emulator_options() -> dict[str, Any]:
    """Keyword options for the emulator fixtures; override in a conftest.py."""
    return {}


@pytest.fixture
def edge_client_options() -> dict[str, Any]:
    """Extra keyword options for ``edge_client`` (e.g. ``{"retry": None}``)."""
    return {}


@pytest.fixture
def edge_emulator_thread(edge_emulator_options: dict[str, Any]) -> Iterator[EmulatorThread]:
    """An emulator in a background thread: for sync clients and subprocesses."""
    from ._emulator import EmulatorThread

    with EmulatorThread(**edge_emulator_options) as handle:
        yield handle


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def edge_emulator(edge_emulator_options: dict[str, Any]) -> AsyncIterator[Emulator]:
        """A started emulator on 127.0.0.1 (a free port), stopped after the test."""
        from ._emulator import Emulator

        async with Emulator(**edge_emulator_options) as emulator:
            yield emulator

    @pytest_asyncio.fixture
    async def edge_client(
        edge_emulator: Emulator, edge_client_options: dict[str, Any]
    ) -> AsyncIterator[EdgeClient]:
        """An ``EdgeClient`` pointed at ``edge_emulator``."""
        from aioedge import EdgeClient

        options: dict[str, Any] = {
            "credentials": edge_emulator.credentials,
            "endpoint": edge_emulator.endpoint,
            "quota_scope": edge_emulator.endpoint,  # one limiter bucket per emulator
            **edge_client_options,
        }
        async with EdgeClient(**options) as client:
            yield client
