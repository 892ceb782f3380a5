"""The fast canonical-JSON path is byte-identical to the RFC 8785 reference implementation."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.canonical import _safe, dumps

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(documents)
def test_identical_to_the_reference(doc: Any) -> None:
    try:
        expected = bytes(rfc8785.dumps(doc))
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            dumps(doc)
        return
    assert dumps(doc) == expected


@pytest.mark.parametrize(
    "doc",
    [
        {"b": 1, "a": [1.5, -0.25, 3.0, 1e-7, 1e21, 123456789.125, -0.0, 0.1 + 0.2]},
        {"\U0001f600": 1, "\ue000": 2, "a": 3},  # astral vs BMP key order differs
        {"ctl": '\x00\x1f\x7f\u2028"\\/', "é": "ü"},
        [2**53 - 1, -(2**53) + 1, 5e-324, 1.7976931348623157e308],
        {"nested": {"z": None, "y": True, "x": [False, {"w": "v"}]}},
    ],
)
def test_edge_cases(doc: Any) -> None:
    assert dumps(doc) == bytes(rfc8785.dumps(doc))


def test_fast_path_is_taken_for_decisions() -> None:
    decision = {"outcome": "deny", "results": [{"rule": "a.b", "values": [1, 2.5, "x"]}]}
    assert _safe(decision)
    assert dumps(decision) == json.dumps(decision, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("bad", [2**53, float("nan"), float("inf"), "\ud800", {"k": {1, 2}}])
def test_what_jcs_cannot_represent_is_refused(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        dumps(bad)
