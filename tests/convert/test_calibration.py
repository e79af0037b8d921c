"""Calibration and eval data: formats, preprocessing, and mismatches named precisely.

No TensorFlow here: inputs are described by :class:`InputSpec` directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert.calibration import Preprocessing, load_dataset, split
from convert.errors import ConvertError
from convert.specs import InputSpec

PIXELS = InputSpec("pixels", (None, 8, 8, 1), np.dtype("float32"))
IMAGE = InputSpec("image", (None, 8, 8, 1), np.dtype("float32"))
EXTRA = InputSpec("extra", (None, 3), np.dtype("float32"))
RGB = InputSpec("rgb", (None, 6, 5, 3), np.dtype("float32"))
TOKENS = InputSpec("tokens", (None, 4), np.dtype("int32"))
PLAIN = Preprocessing()


def _load(path: Path, *inputs: InputSpec, pre: Preprocessing = PLAIN):
    return load_dataset(path, inputs, pre, "--calibration")


def _error(path: Path, *inputs: InputSpec, pre: Preprocessing = PLAIN) -> str:
    with pytest.raises(ConvertError) as caught:
        _load(path, *inputs, pre=pre)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_npy_feeds_a_single_input_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.full((5, 8, 8, 1), 0.5, np.float64))
    data = _load(path, PIXELS)
    assert len(data) == 5
    assert data.arrays["pixels"].dtype == np.float32
    assert data.labels is None
    assert data.origin == "x.npy (5 samples)"


def test_npz_keys_name_the_inputs_and_labels_are_optional(tmp_path: Path) -> None:
    path = tmp_path / "two.npz"
    image, extra = np.zeros((4, 8, 8, 1), np.float32), np.ones((4, 3), np.float32)
    np.savez(path, image=image, extra=extra, labels=np.arange(4))
    data = _load(path, IMAGE, EXTRA)
    assert set(data.arrays) == {"image", "extra"}
    np.testing.assert_array_equal(data.arrays["extra"], extra)
    np.testing.assert_array_equal(data.labels, np.arange(4))


def test_npz_with_one_array_fits_a_single_input_whatever_its_key(tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    np.savez(path, np.zeros((3, 8, 8, 1), np.float32))  # key arr_0
    assert _load(path, PIXELS).arrays["pixels"].shape == (3, 8, 8, 1)


def test_npz_missing_an_input_names_it_and_the_keys_found(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, image=np.zeros((2, 8, 8, 1), np.float32), other=np.zeros((2, 3)))
    message = _error(path, IMAGE, EXTRA)
    assert "no array for input 'extra'" in message
    assert "image, other" in message


def test_npy_cannot_feed_a_two_input_model(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 8, 8, 1), np.float32))
    assert "2 inputs (image, extra)" in _error(path, IMAGE, EXTRA)


def test_wrong_shape_names_the_input_and_both_shapes(tmp_path: Path) -> None:
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((5, 8, 8), np.float32))
    message = _error(path, PIXELS)
    assert "input 'pixels'" in message
    assert "(None, 8, 8, 1)" in message
    assert "(5, 8, 8)" in message


def test_wrong_size_of_a_fixed_dimension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, image=np.zeros((2, 8, 8, 1), np.float32), extra=np.zeros((2, 4), np.float32))
    message = _error(path, IMAGE, EXTRA)
    assert "input 'extra'" in message
    assert "(None, 3)" in message
    assert "(2, 4)" in message


def test_integer_data_for_a_float_input_needs_an_explicit_scale(tmp_path: Path) -> None:
    path = tmp_path / "raw.npy"
    np.save(path, np.full((2, 8, 8, 1), 255, np.uint8))
    message = _error(path, PIXELS)
    assert "input 'pixels' expects float32 but the data is uint8" in message
    assert "--scale" in message
    scaled = _load(path, PIXELS, pre=Preprocessing(scale=1 / 255))
    np.testing.assert_allclose(scaled.arrays["pixels"], 1.0)


@pytest.mark.parametrize(
    "values", [np.array([["a"] * 3] * 2), np.ones((2, 3), bool), np.ones((2, 3), np.complex64)]
)
def test_non_numeric_data_is_refused_with_its_dtype(tmp_path: Path, values: np.ndarray) -> None:
    path = tmp_path / "odd.npy"
    np.save(path, values)
    assert f"expects float32 but the data is {values.dtype}" in _error(path, EXTRA)


def test_integer_inputs_take_integers_and_refuse_floats(tmp_path: Path) -> None:
    ints, floats = tmp_path / "ids.npy", tmp_path / "f.npy"
    np.save(ints, np.arange(8, dtype=np.int64).reshape(2, 4))
    np.save(floats, np.zeros((2, 4), np.float32))
    assert _load(ints, TOKENS).arrays["tokens"].dtype == np.int32
    assert "expects int32 but the data is float32" in _error(floats, TOKENS)


def test_mean_and_std_apply_per_channel_after_scale(tmp_path: Path) -> None:
    path = tmp_path / "rgb.npy"
    np.save(path, np.full((1, 6, 5, 3), 2.0, np.float32))
    pre = Preprocessing(scale=0.5, mean=(0.0, 1.0, 2.0), std=(1.0, 2.0, 4.0))
    pixel = _load(path, RGB, pre=pre).arrays["rgb"][0, 0, 0]
    np.testing.assert_allclose(pixel, [1.0, 0.0, -0.25])


def test_image_directory_is_resized_greyed_and_scaled(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (32, 20), (255, 255, 255)).save(folder / "white.png")
    Image.new("L", (8, 8), 0).save(folder / "sub" / "black.jpg")
    (folder / "notes.txt").write_text("not an image, skipped")
    data = _load(folder, PIXELS)
    assert data.arrays["pixels"].shape == (2, 8, 8, 1)
    assert data.arrays["pixels"].dtype == np.float32
    # sorted by path: images/sub/black.jpg before images/white.png
    np.testing.assert_allclose(data.arrays["pixels"][0], 0.0)
    np.testing.assert_allclose(data.arrays["pixels"][1], 1.0)
    assert data.origin == "images/ (2 images)"


def test_image_directory_fills_rgb_inputs(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (10, 12), (255, 0, 0)).save(tmp_path / "red.png")
    data = _load(tmp_path, RGB, pre=Preprocessing(scale=1.0))
    assert data.arrays["rgb"].shape == (1, 6, 5, 3)
    np.testing.assert_allclose(data.arrays["rgb"][0, 0, 0], [255.0, 0.0, 0.0])


def test_image_directory_errors(tmp_path: Path) -> None:
    assert "no images" in _error(tmp_path, PIXELS)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert _error(tmp_path, PIXELS) == (
        f"--calibration {broken}: not a readable image (no image format recognises its content)"
    )
    assert "is not an image input" in _error(tmp_path, EXTRA)
    assert "fits one image input" in _error(tmp_path, IMAGE, EXTRA)


def test_labels_must_be_one_integer_per_sample(tmp_path: Path) -> None:
    path = tmp_path / "bad_labels.npz"
    np.savez(path, pixels=np.zeros((3, 8, 8, 1), np.float32), labels=np.arange(2))
    assert "'labels' must hold one class index per sample (3)" in _error(path, PIXELS)


def test_unreadable_or_unknown_files(tmp_path: Path) -> None:
    for suffix, saver in ((".npz", "numpy.savez"), (".npy", "numpy.save")):
        garbage = tmp_path / f"garbage{suffix}"
        garbage.write_bytes(b"\x00" * 10)
        # Not numpy's "contains pickled (object) data ... allow_pickle=": it is no pickle.
        assert _error(garbage, PIXELS) == (
            f"--calibration {garbage}: not a NumPy {suffix} file (its first bytes are not a "
            f"{suffix} header); write it with {saver}"
        )
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(b"PK\x03\x04" + b"\x00" * 10)
    assert "not a readable NumPy .npz file" in _error(truncated, PIXELS)
    csv = tmp_path / "data.csv"
    csv.write_text("1,2,3\n")
    assert "expected a .npy file, a .npz file or a directory of images" in _error(csv, PIXELS)
    assert "no such file or directory" in _error(tmp_path / "missing.npy", PIXELS)


def test_split_holds_out_unseen_samples_unless_eval_is_given(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    values = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1) * np.ones((1, 8, 8, 1))
    np.savez(path, pixels=values.astype(np.float32), labels=np.arange(100))
    data = _load(path, PIXELS)
    calibration, held_out = split(data, samples=50, eval_given=False)
    assert len(calibration) == 50
    assert held_out is not None
    assert len(held_out) == 20
    assert not set(calibration.labels) & set(held_out.labels)
    assert "held out from calibration" in held_out.origin
    everything, none = split(data, samples=500, eval_given=True)
    assert len(everything) == 100
    assert none is None
