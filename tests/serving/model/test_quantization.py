"""serving.model.quantization: real values <-> int8/uint8 codes, as tables."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.model import quantization


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
    quantized = quantization.quantize(
        np.asarray(real), scale, zero_point, np.dtype(dtype), what="x"
    )
    assert quantized.dtype == np.dtype(dtype)
    assert quantized.tolist() == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_quantize_refuses_non_finite_values(bad):
    with pytest.raises(BadRequest, match="input 'x': NaN or infinite values cannot be quantized"):
        quantization.quantize(np.asarray([0.0, bad]), 0.1, 0, np.dtype(np.int8), what="input 'x'")


@pytest.mark.parametrize(
    ("quantized", "scale", "zero_point", "expected"),
    [
        ([-128, 127], 1 / 256, -128, [0.0, 255 / 256]),
        ([0], 0.5, 10, [-5.0]),
        ([255], 0.1, 0, [25.5]),
    ],
)
def test_dequantize(quantized, scale, zero_point, expected):
    real = quantization.dequantize(np.asarray(quantized), scale, zero_point)
    assert real.dtype == np.float32
    np.testing.assert_allclose(real, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantize_dequantize_round_trip_is_within_half_a_step(dtype):
    scale, zero_point = 0.02, -3 if dtype == np.int8 else 100
    info = np.iinfo(dtype)
    low, high = (info.min - zero_point) * scale, (info.max - zero_point) * scale
    real = np.linspace(low, high, 1001, dtype=np.float32)
    back = quantization.dequantize(
        quantization.quantize(real, scale, zero_point, np.dtype(dtype), what="x"), scale, zero_point
    )
    assert np.max(np.abs(back - real)) <= scale / 2 + 1e-6


def test_quantize_into_writes_the_destination_buffer_like_quantize():
    real = np.random.default_rng(0).uniform(-3, 3, size=(2, 5, 5, 3)).astype(np.float32)
    out = np.empty(real.shape, np.int8)
    scratch = np.empty(real.shape, np.float32)
    quantization.quantize_into(out, real, 0.02, -3, scratch=scratch)
    expected = np.clip(np.rint(real / np.float32(0.02)) - 3, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(out, expected)


def test_check_finite_tells_huge_finite_values_from_infinity():
    huge = np.full(1000, 3e38, np.float32)  # the float32 sum overflows; no value is infinite
    quantization.check_finite(huge, what="input 'x'")
    with pytest.raises(BadRequest, match="input 'x': NaN or infinite"):
        quantization.check_finite(np.append(huge, np.inf).astype(np.float32), what="input 'x'")
