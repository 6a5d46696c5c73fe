"""validate_params' fast path answers exactly like the full validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge._catalog import OPERATIONS, _free_strings_only, _validate_full, validate_params
from aioedge._errors import ValidationError

_ops = st.sampled_from(sorted(OPERATIONS))
# Lone surrogates: Python strings that UTF-8 (and so the wire) cannot carry.
_unencodable = st.sampled_from(["\udcff", "ab\ud800", "\udfff-x"])
_values = st.one_of(
    st.none(),
    st.text(max_size=6),
    _unencodable,
    st.integers(-2, 40),
    st.sampled_from([2**31, -(2**31) - 1, 2**63]),
    st.booleans(),
    st.lists(st.one_of(st.text(), _unencodable), max_size=2),
)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except ValidationError as err:
        return ("error", err.param, err.rule, str(err))


@settings(max_examples=400, deadline=None)
@given(action=_ops, data=st.data())
def test_fast_path_agrees_with_the_full_validation(action: str, data: st.DataObject) -> None:
    op = OPERATIONS[action]
    names = [p.name for p in op.params] + ["Unknown", "IotIds.1", "InstanceId"]
    params = data.draw(st.dictionaries(st.sampled_from(names), _values, max_size=5))
    fast = _outcome(validate_params, op, params)
    full = _outcome(lambda o, p: _validate_full(o, p, apply_defaults=True), op, params)
    assert fast == full


def test_get_edge_instance_ids_qualify_for_the_fast_path() -> None:
    op = OPERATIONS["GetEdgeInstance"]
    assert op._free_strings >= {"InstanceId", "IotInstanceId"}
    assert validate_params(op, {"InstanceId": "i", "IotInstanceId": None}) == {"InstanceId": "i"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"InstanceId": "i\udcff"}, "InstanceId"),
        ({"InstanceId": "i", "IotInstanceId": "\ud800"}, "IotInstanceId"),
    ],
)
def test_an_unencodable_free_string_is_a_validation_error_on_the_fast_path_too(
    params: dict[str, Any], param: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_params(OPERATIONS["GetEdgeInstance"], params)
    assert (info.value.param, info.value.rule) == (param, "encoding")


def test_text_utf8_encodes_stays_on_the_fast_path() -> None:
    op = OPERATIONS["GetEdgeInstance"]
    assert _free_strings_only(op, {"InstanceId": "naïve 東京"}) == {"InstanceId": "naïve 東京"}
    assert _free_strings_only(op, {"InstanceId": "\udcff"}) is None
