"""Fuzzing every typed method and ``client.call`` against the emulator.

Whatever the arguments, a call either raises ``ValidationError`` (naming the parameter)
before any request reaches the emulator, or is sent: then it ends in a result or an
``EdgeError`` from the answer.  Any other exception, or a ``ValidationError`` after a
request went out, is a failure.  The emulator's own request records do the counting.

Hypothesis runs derandomized with a fixed number of examples (``aioedge`` profile in
conftest), so CI sees the same cases every time, in a few seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge import EdgeClient, EdgeError, ValidationError
from aioedge._catalog import OPERATIONS
from aioedge._models import DeviceConfig, DeviceConfigInput, DriverConfig, DriverConfigInput
from aioedge.testing import Emulator

from .test_operations import required_args

OPS = sorted(OPERATIONS.values(), key=lambda op: op.action)


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    emu: Emulator
    client: EdgeClient

    def run(self, make: Callable[[], Awaitable[Any]]) -> None:
        """Run one call; check the rule of this module on the emulator's records."""
        before = len(self.emu.requests)
        try:
            self.loop.run_until_complete(make())
        except ValidationError as err:
            assert len(self.emu.requests) == before, f"ValidationError after I/O: {err}"
            assert isinstance(err.param, str) and err.param, repr(err)
            assert err.param[:20] in str(err), (err.param, str(err))
            assert len(str(err)) < 1_000, str(err)[:300]
        except EdgeError:
            # Not a validation error: only an answer (or a failed exchange) may cause it.
            assert len(self.emu.requests) > before
        else:
            assert len(self.emu.requests) > before


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    emu = loop.run_until_complete(Emulator(quotas=False).start())
    client = EdgeClient(
        credentials=emu.credentials, endpoint=emu.endpoint, rate_limit=False, retry=None
    )
    try:
        yield Rig(loop, emu, client)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(emu.stop())
        loop.close()


# ------------------------------------------------------------------------- strategies

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, -(2**63) - 1, 0, -1, 31]),
    st.builds(pow, st.just(10), st.just(5_000)),  # str() refuses it (over 4,300 digits)
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", " ", "a" * 5000, "\udcff", "1" * 40, "true", "{}", "[]", "k:v", "-5"]),
    st.binary(max_size=8),
    st.datetimes(),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.builds(object),
    st.just(math.inf),
    st.builds(DriverConfigInput, format=st.text(max_size=5), content=st.text(max_size=5)),
    st.builds(DeviceConfigInput, iot_id=st.text(max_size=5), content=st.text(max_size=5)),
    st.builds(DriverConfig, format=st.sampled_from(["KV", "JSON", None]), content=st.none()),
    st.builds(DeviceConfig),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
        st.dictionaries(st.sampled_from(["IotId", "Content", "Format", "Key", "iot_id"]), children),
        st.frozensets(st.integers(), max_size=3),
    )


JUNK = st.recursive(_SCALARS, _containers, max_leaves=8)
DEEP = st.integers(min_value=1, max_value=3_000).map(lambda n: "[" * n + "]" * n)


@st.composite
def typed_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A typed method and keyword arguments: valid ones, some replaced by junk or dropped."""
    op = OPERATIONS[draw(st.sampled_from([op.action for op in OPS]))]
    base = required_args(op)
    names = list(inspect.signature(getattr(EdgeClient, op.method_name)).parameters)[1:]
    kwargs = dict(base)
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        value = draw(st.one_of(JUNK, DEEP))
        if value is None and name in base and name not in kwargs:
            continue
        kwargs[name] = value
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        if name not in base:  # a required keyword cannot be left out of a Python call
            kwargs.pop(name, None)
    return op.method_name, kwargs


_WIRE_NAMES = sorted({name for op in OPS for name in op.param_names})


@st.composite
def raw_calls(draw: st.DrawFn) -> tuple[Any, Any]:
    """``client.call(action, params)`` with anything for either."""
    action = draw(st.one_of(st.sampled_from([op.action for op in OPS]), JUNK))
    keys = st.one_of(
        st.sampled_from(_WIRE_NAMES),
        st.sampled_from(["IotIds.1", "IotIds.0", "DeviceConfigs.1.IotId", "RegionId"]),
        st.text(max_size=12),
        st.integers(),
    )
    params = draw(
        st.one_of(
            st.dictionaries(keys, st.one_of(JUNK, DEEP), max_size=4),
            JUNK,
        )
    )
    return action, params


# ------------------------------------------------------------------------- properties


@settings(max_examples=400)
@given(case=typed_calls())
def test_every_typed_method_validates_before_io(rig: Rig, case: tuple[str, Any]) -> None:
    name, kwargs = case
    method = getattr(rig.client, name)
    rig.run(lambda: method(**kwargs))


@settings(max_examples=300)
@given(case=raw_calls())
def test_client_call_validates_before_io(rig: Rig, case: tuple[Any, Any]) -> None:
    action, params = case
    rig.run(lambda: rig.client.call(action, params))


def test_the_fuzzing_reaches_the_wire(rig: Rig) -> None:
    """The properties above are not vacuous: valid calls do reach the emulator."""
    before = len(rig.emu.requests)
    for op in OPS:
        rig.run(lambda op=op: getattr(rig.client, op.method_name)(**required_args(op)))
    assert len(rig.emu.requests) - before == len(OPS)


@pytest.mark.parametrize(
    ("when", "value"),
    [("naive", datetime(2024, 1, 1)), ("aware", datetime(2024, 1, 1, tzinfo=timezone.utc))],
)
def test_time_arguments(rig: Rig, when: str, value: datetime) -> None:
    rig.run(
        lambda: rig.client.query_edge_instance_historic_deployment(
            instance_id="i", start_time=value, end_time=value
        )
    )
