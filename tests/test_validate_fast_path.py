"""validate_params' fast path answers exactly like the full validation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aioedge._catalog import OPERATIONS, _validate_full, validate_params
from aioedge._errors import ValidationError

_ops = st.sampled_from(sorted(OPERATIONS))
_values = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.integers(-2, 40),
    st.booleans(),
    st.lists(st.text(), max_size=2),
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
