"""serving.model.pictures: pixel lookup tables equal normalise-then-quantize, value by value."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.model.metadata import Normalization
from serving.model.pictures import PictureInput
from serving.model.tensors import TensorSpec


def spec(dtype: str, channels: int, scale: float = 0.0, zero_point: int = 0) -> TensorSpec:
    return TensorSpec("image", 0, np.dtype(dtype), (-1, 4, 4, channels), scale, zero_point)


def test_float_table_is_pixel_minus_mean_over_std_per_channel():
    norm = Normalization((10.0, 20.0, 30.0), (2.0, 4.0, 8.0))
    picture = PictureInput("serving_default", spec("float32", 3), norm)
    pixels = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    out = np.empty((4, 4, 3), np.float32)
    picture.fill(out, pixels)
    expected = (pixels.astype(np.float64) - [10.0, 20.0, 30.0]) / [2.0, 4.0, 8.0]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(("dtype", "zero_point"), [("int8", -128), ("uint8", 0)])
def test_quantized_table_holds_the_codes_of_the_normalised_pixels(dtype: str, zero_point: int):
    picture = PictureInput(
        "serving_default", spec(dtype, 1, 1 / 255, zero_point), Normalization((0.0,), (255.0,))
    )
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)[:4, :4]
    out = np.empty((4, 4, 1), np.dtype(dtype))
    picture.fill(out, pixels)
    # (p - 0) / 255 quantized with scale 1/255: the code is the pixel shifted by the zero point.
    np.testing.assert_array_equal(out.astype(int), pixels.astype(int) + zero_point)


def test_an_unquantized_integer_input_takes_the_pixels_themselves():
    picture = PictureInput("serving_default", spec("uint8", 1), None)
    pixels = np.full((4, 4, 1), 200, np.uint8)
    out = np.empty((4, 4, 1), np.uint8)
    picture.fill(out, pixels)
    assert (out == 200).all()


def test_unknown_normalisation_says_how_to_give_it():
    picture = PictureInput("serving_default", spec("float32", 3), None)
    with pytest.raises(BadRequest) as raised:
        picture.table()
    assert raised.value.status_code == 400
    assert "input 'image' takes pictures, but how to normalise its pixels is not known" in str(
        raised.value
    )
    assert "IMAGE_MEAN and IMAGE_STD" in str(raised.value)
