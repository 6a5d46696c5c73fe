"""The service's number and time spellings, read once for models, watcher and emulator."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from aioedge._models import ResourceSnapshot
from aioedge._wire import int_or_none, stamp, to_int
from aioedge.watch import DeploymentState


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7), ("7", 7), (" 7 ", 7), (8.0, 8), (-(2**63), -(2**63))]
)
def test_to_int_reads_numbers_and_numeric_strings(value: Any, expected: int) -> None:
    assert to_int(value) == expected and type(to_int(value)) is int


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        (True, TypeError, "boolean"),
        (None, TypeError, ""),
        ([], TypeError, ""),
        ("x", ValueError, ""),
        (8.5, ValueError, "stage 8.5 is not a whole number"),
        (float("inf"), ValueError, "stage inf is not a finite number"),
        (float("nan"), ValueError, "stage nan is not a finite number"),
        (decimal.Decimal("Infinity"), ValueError, "not a finite number"),
        (2**63, ValueError, "out of range"),
        (1e300, ValueError, "stage 1e+300 is out of range"),
    ],
)
def test_to_int_refuses_what_is_not_a_64_bit_integer(
    value: Any, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text.replace("+", r"\+") or None):
        to_int(value, "stage")
    assert int_or_none(value) is None


def test_both_timestamp_spellings_read_the_same_everywhere() -> None:
    # ERRATA, Wire names: GmtCreateTimestamp is also spelled GmtCreateTimeStamp.
    for key in ("GmtCreateTimestamp", "GmtCreateTimeStamp"):
        raw = {"SnapshotId": "s", key: "1561543949858"}
        assert stamp(raw, "GmtCreate") == 1561543949858
        snap = ResourceSnapshot.from_dict(raw)
        assert snap.gmt_create_timestamp is not None
        assert snap.gmt_create_timestamp.timestamp() == 1561543949.858
        state = DeploymentState.from_response({"Data": {"DeploymentId": "d", key: 5}})
        assert state.created_ms == 5
    assert stamp({}, "GmtCreate") is None


def test_models_and_watcher_agree_on_odd_integers() -> None:
    for odd in ("8.5", 8.5, True, "1e999", 2**64):
        snap = ResourceSnapshot.from_dict({"Stage": odd})
        state = DeploymentState.from_response(
            {"Data": {"DeploymentId": "d", "TaskList": [{"TaskId": "t", "Stage": odd}]}}
        )
        assert snap.stage is None and state.tasks[0].stage is None, odd
