"""serving.codec: JSON <-> numpy and (de)quantization, as tables."""

from __future__ import annotations

import numpy as np
import pytest

from serving import codec
from serving.errors import BadRequest


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
    array = codec.to_array(value, what="input 'x'")
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
        codec.to_array(value, what="input 'x'")


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
            codec.coerce(np.asarray(values), np.dtype(dtype), what="input 'x'")
        return
    cast = codec.coerce(np.asarray(values), np.dtype(dtype), what="input 'x'")
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
        codec.coerce(np.asarray(values), np.dtype(dtype), what="input 'x'")


@pytest.mark.parametrize(
    ("real", "scale", "zero_point", "dtype", "expected"),
    [
        ([0.0, 1.0], 1 / 255, -128, np.int8, [-128, 127]),
        ([0.25, 0.75], 0.5, 0, np.int8, [0, 2]),  # ties to even, like rint
        ([-0.5, -1.5], 1.0, 0, np.int8, [0, -2]),
        ([0.26], 0.5, 0, np.int8, [1]),
        ([2.0], 1 / 255, -128, np.int8, [127]),  # saturates
        ([-5.0], 0.1, 0, np.int8, [-50]),
        ([0.0, 1.0], 1 / 255, 0, np.uint8, [0, 255]),
        ([-1.0], 1 / 255, 0, np.uint8, [0]),  # saturates at 0
    ],
)
def test_quantize(real, scale, zero_point, dtype, expected):
    quantized = codec.quantize(np.asarray(real), scale, zero_point, np.dtype(dtype), what="x")
    assert quantized.dtype == np.dtype(dtype)
    assert quantized.tolist() == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_quantize_refuses_non_finite_values(bad):
    with pytest.raises(BadRequest, match="input 'x': NaN or infinite values cannot be quantized"):
        codec.quantize(np.asarray([0.0, bad]), 0.1, 0, np.dtype(np.int8), what="input 'x'")


@pytest.mark.parametrize(
    ("quantized", "scale", "zero_point", "expected"),
    [
        ([-128, 127], 1 / 256, -128, [0.0, 255 / 256]),
        ([0], 0.5, 10, [-5.0]),
        ([255], 0.1, 0, [25.5]),
    ],
)
def test_dequantize(quantized, scale, zero_point, expected):
    real = codec.dequantize(np.asarray(quantized), scale, zero_point)
    assert real.dtype == np.float32
    np.testing.assert_allclose(real, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantize_dequantize_round_trip_is_within_half_a_step(dtype):
    scale, zero_point = 0.02, -3 if dtype == np.int8 else 100
    info = np.iinfo(dtype)
    low, high = (info.min - zero_point) * scale, (info.max - zero_point) * scale
    real = np.linspace(low, high, 1001, dtype=np.float32)
    back = codec.dequantize(
        codec.quantize(real, scale, zero_point, np.dtype(dtype), what="x"), scale, zero_point
    )
    assert np.max(np.abs(back - real)) <= scale / 2 + 1e-6


@pytest.mark.parametrize(
    ("dtype", "v2", "tf"),
    [
        (np.float32, "FP32", "DT_FLOAT"),
        (np.float16, "FP16", "DT_HALF"),
        (np.int8, "INT8", "DT_INT8"),
        (np.uint8, "UINT8", "DT_UINT8"),
        (np.int64, "INT64", "DT_INT64"),
        (np.bool_, "BOOL", "DT_BOOL"),
        (np.str_, "BYTES", "DT_STRING"),
    ],
)
def test_datatype_names(dtype, v2, tf):
    assert codec.v2_datatype(np.dtype(dtype)) == v2
    assert codec.tf_datatype(np.dtype(dtype)) == tf


def test_to_json_and_shape_text():
    assert codec.to_json(np.arange(4, dtype=np.int8).reshape(2, 2)) == [[0, 1], [2, 3]]
    assert codec.to_json(np.float32(0.5)) == 0.5
    assert codec.shape_text((-1, 8, 8, 1)) == "[-1, 8, 8, 1]"
