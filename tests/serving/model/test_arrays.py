"""serving.model.arrays: JSON values -> checked numpy arrays, as tables."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.model import arrays


@pytest.mark.parametrize(
    ("value", "shape", "kind"),
    [
        (1.5, (), "f"),
        ([1, 2, 3], (3,), "i"),
        ([[0.5, 1], [2, 3]], (2, 2), "f"),
        ([[[True]], [[False]]], (2, 1, 1), "b"),
        ([], (0,), "f"),
    ],
)
def test_to_array_accepts_numbers(value, shape, kind):
    array = arrays.to_array(value, what="input 'x'")
    assert array.shape == shape
    assert array.dtype.kind == kind


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[1, 2], [3]], "input 'x': ragged nested lists"),
        ([[1, 2], 3], "input 'x': ragged nested lists"),
        (["a", "b"], "input 'x': expected numbers, received strings"),
        ([1, "2"], "input 'x': expected numbers, received strings"),
        ([None, 1], "input 'x': expected numbers, received non-numeric values (int, null)"),
        ([{"a": 1}], "input 'x': expected numbers, received non-numeric values (dict)"),
        ("12", "input 'x': expected numbers, received strings"),
    ],
)
def test_to_array_rejects_with_a_message_naming_the_input(value, message):
    with pytest.raises(BadRequest, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        arrays.to_array(value, what="input 'x'")


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([1.0, 2.0], np.int8, [1, 2]),
        ([-128, 127], np.int8, [-128, 127]),
        ([0, 255], np.uint8, [0, 255]),
        ([1, 2], np.float32, [1.0, 2.0]),
        ([1e30], np.float32, [1e30]),
        ([True, False], np.bool_, [True, False]),
        ([70000.0], np.float16, None),
    ],
)
def test_coerce_casts_values_the_type_holds(values, dtype, expected):
    if expected is None:
        with pytest.raises(BadRequest, match="out of range for float16"):
            arrays.coerce(np.asarray(values), np.dtype(dtype), what="input 'x'")
        return
    cast = arrays.coerce(np.asarray(values), np.dtype(dtype), what="input 'x'")
    assert cast.dtype == np.dtype(dtype)
    np.testing.assert_allclose(cast.astype(np.float64), np.asarray(expected, np.float64))


@pytest.mark.parametrize(
    ("values", "dtype", "message"),
    [
        ([128], np.int8, r"input 'x': values out of range for int8 \(\[-128, 127\]\); received"),
        ([-1], np.uint8, r"values out of range for uint8"),
        ([1.5], np.int32, r"input 'x': expected whole numbers for int32"),
        ([1e40], np.float32, r"input 'x': values out of range for float32"),
        ([1, 0], np.bool_, r"input 'x': expected booleans, received numbers"),
        ([True], np.float32, r"input 'x': expected numbers, received booleans"),
    ],
)
def test_coerce_refuses_values_the_type_cannot_hold(values, dtype, message):
    with pytest.raises(BadRequest, match=message):
        arrays.coerce(np.asarray(values), np.dtype(dtype), what="input 'x'")


@pytest.mark.parametrize(
    "value",
    [[1.5, True], [[0.0, 1.0], [False, 2.0]], [[[1], [2]], [[3], [True]]], [0, False]],
)
def test_booleans_mixed_among_numbers_are_refused(value):
    with pytest.raises(BadRequest, match="input 'x': expected numbers, received booleans mixed"):
        arrays.to_array(value, what="input 'x'")


def test_all_booleans_stay_booleans_and_the_scan_can_be_skipped():
    assert arrays.to_array([True, False], what="x").dtype == np.bool_
    # A caller whose JSON text has no true/false literal skips the scan.
    assert arrays.to_array([1.5, 2.0], what="x", booleans_possible=False).tolist() == [1.5, 2.0]
