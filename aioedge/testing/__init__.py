"""aioedge.testing: a faithful local emulator of the Link IoT Edge API, for tests.

``Emulator`` serves the 34 Actions on 127.0.0.1 with the service's checks (signature v1,
nonces, timestamps, quotas), stateful resources, a simulated deployment rollout, seeded
fault injection and inspection of everything it saw.  It shares the client's catalog and
signing code.  See docs/testing.md.

``set_testing(True)`` turns every retry backoff to zero (also a context manager).
"""

from __future__ import annotations

from .._retry import set_testing
from ._backend import Limits
from ._clock import FakeClock
from ._emulator import Emulator, EmulatorThread
from ._faults import FAULT_KINDS, FaultRecord, FaultSpec, parse_faults
from ._service import (
    DEFAULT_CREDENTIALS,
    EmulatorOptions,
    Execution,
    ExecutionRecord,
    RequestRecord,
)

__all__ = [
    "DEFAULT_CREDENTIALS",
    "FAULT_KINDS",
    "Emulator",
    "EmulatorOptions",
    "EmulatorThread",
    "Execution",
    "ExecutionRecord",
    "FakeClock",
    "FaultRecord",
    "FaultSpec",
    "Limits",
    "RequestRecord",
    "parse_faults",
    "set_testing",
]
