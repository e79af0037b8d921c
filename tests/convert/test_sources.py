"""Every kind of source converts with its names kept; checks that fail keep no output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from convert.runtime import load_in_runtime
from serving.model import Model
from tests.convert.conftest import Built, save_keras

pytestmark = pytest.mark.needs_tensorflow


def _convert(
    capsys: pytest.CaptureFixture[str], built: Built, out: Path, *extra: str
) -> tuple[int, dict]:
    target, report = out / "m.tflite", out / "m.json"
    args = [built.path, "-o", target, "--report", report, "--eval", built.eval, *extra]
    status = main([str(a) for a in args])
    capsys.readouterr()
    return status, json.loads(report.read_text()) if report.exists() else {}


def _signature(path: Path) -> tuple[list[str], list[str]]:
    with Model.load(path) as model:
        return [s.name for s in model.inputs], [s.name for s in model.outputs]


def test_sequential_h5_converts_to_int8(
    sequential: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report = _convert(
        capsys, sequential, tmp_path, "--calibration", str(sequential.calibration)
    )
    assert status == 0
    assert report["source_kind"] == "keras"
    assert _signature(tmp_path / "m.tflite") == (["features"], ["digit"])
    assert report["outputs"][0]["top1_agreement"] >= 0.95
    assert report["outputs"][0]["accuracy_tflite"] >= 0.85


def test_two_inputs_two_outputs_keep_their_names(
    two_io: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report = _convert(capsys, two_io, tmp_path, "--calibration", str(two_io.calibration))
    assert status == 0
    inputs, outputs = _signature(tmp_path / "m.tflite")
    assert sorted(inputs) == ["extra", "image"]
    assert sorted(outputs) == ["digit", "ink"]
    by_name = {o["name"]: o for o in report["outputs"]}
    assert by_name["digit"]["classifier"] is True
    assert by_name["digit"]["top1_agreement"] >= 0.95
    assert by_name["digit"]["accuracy_original"] is not None  # labels score the classifier
    assert by_name["ink"]["classifier"] is False
    assert by_name["ink"]["top1_agreement"] is None
    assert 0 < by_name["ink"]["normalized_error"] < 0.05
    assert by_name["ink"]["accuracy_original"] is None


@pytest.mark.parametrize(
    ("signature", "output"), [("classify", "probabilities"), ("logits", "logits")]
)
def test_saved_model_with_a_named_signature(
    saved_model: Built,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signature: str,
    output: str,
) -> None:
    status, report = _convert(
        capsys,
        saved_model,
        tmp_path,
        "--signature",
        signature,
        "--calibration",
        str(saved_model.calibration),
    )
    assert status == 0
    assert report["source_kind"] == "saved_model"
    assert report["signature"] == signature
    assert _signature(tmp_path / "m.tflite") == (["features"], [output])
    assert report["outputs"][0]["top1_agreement"] >= 0.97
    assert report["outputs"][0]["accuracy_tflite"] >= 0.9


def test_min_agreement_missed_writes_the_report_but_no_model(
    two_io: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, report = tmp_path / "m.tflite", tmp_path / "m.json"
    args = [two_io.path, "-o", target, "--calibration", two_io.calibration, "--eval", two_io.eval]
    # A regressor's int8 output always has some error, so a bar of 1.0 cannot be met.
    status = main([str(a) for a in [*args, "--report", report, "--min-agreement", "1"]])
    printed = capsys.readouterr()
    assert status == 3
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1
    assert "of output 'ink' is below --min-agreement 1;" in lines[0]
    assert f"{target} not written" in lines[0]
    assert "min agreement 1: MISSED" in printed.out
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    assert json.loads(report.read_text())["passed"] is False


def test_min_agreement_met_writes_the_model(
    two_io: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report = _convert(
        capsys, two_io, tmp_path, "--calibration", str(two_io.calibration), "--min-agreement", "0.9"
    )
    assert status == 0
    assert report["passed"] is True
    assert (tmp_path / "m.tflite").exists()


def _igamma_module():
    """A tf.Module whose only op, Igamma, is not a TFLite builtin."""
    import tensorflow as tf

    class Special(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.math.igamma(x, x)}

    return Special()


def test_op_outside_the_builtins_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tensorflow as tf

    module = _igamma_module()
    source = tmp_path / "special"
    tf.saved_model.save(module, str(source), signatures={"serving_default": module.serve})
    out = tmp_path / "out"
    out.mkdir()
    status = main([str(source), "-o", str(out / "m.tflite"), "--mode", "float32"])
    message = capsys.readouterr().err.strip()
    assert status == 2
    assert message == (
        "convert: error: TensorFlow could not convert to float32: "
        "ops not in the TFLite builtins the serving runtime provides: tf.Igamma"
    )
    assert list(out.iterdir()) == []


def test_runtime_reports_an_op_it_cannot_run(tmp_path: Path) -> None:
    import tensorflow as tf

    module = _igamma_module()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module
    )
    converter.allow_custom_ops = True  # what a .tflite made elsewhere may contain
    path = tmp_path / "custom.tflite"
    path.write_bytes(converter.convert())
    model, check = load_in_runtime(path, num_threads=1)
    assert model is None
    assert check.loads is False
    assert check.reason == "custom_op"
    assert "custom op 'Igamma'" in check.error
    assert str(path) not in check.error  # named as "the converted model", not the temp file


def test_original_predictions_match_keras(functional: Built, tmp_path: Path) -> None:
    """The exported SavedModel the converter reads computes what the Keras model does."""
    import keras

    from convert.sources import load_source

    x = np.load(functional.eval)["pixels"][:32]
    source = load_source(functional.path, None, tmp_path)
    assert [s.name for s in source.inputs] == ["pixels"]
    assert source.inputs[0].shape == (None, 8, 8, 1)
    assert source.outputs == ("digit",)
    ours = source.predict({"pixels": x})["digit"]
    expected = keras.models.load_model(functional.path).predict(x, verbose=0)
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_calibration_from_a_directory_of_images(
    functional: Built, digits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i, pixels in enumerate(digits.x_train[:40]):
        grey = np.round(pixels[..., 0] * 255).astype(np.uint8)
        Image.fromarray(grey).resize((32, 32)).save(images / f"{i:03}.png")  # resized back to 8x8
    status, report = _convert(capsys, functional, tmp_path, "--calibration", str(images))
    assert status == 0
    assert report["calibration"] == "40 samples of images/ (40 images)"
    assert report["outputs"][0]["top1_agreement"] >= 0.9


def test_fixed_batch_size_is_respected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    inputs = keras.Input((3,), batch_size=4, name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))
    source = tmp_path / "fixed.keras"
    save_keras(model, source)
    data = tmp_path / "eval.npz"
    np.savez(data, x=np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32))
    target, report = tmp_path / "m.tflite", tmp_path / "m.json"
    args = [source, "-o", target, "--mode", "float32", "--eval", data, "--report", report]
    assert main([str(a) for a in args]) == 0
    assert "batch of 4" in capsys.readouterr().out
    assert json.loads(report.read_text())["latency"]["batch"] == 4
    assert json.loads(report.read_text())["outputs"][0]["max_abs_error"] < 1e-5

    np.savez(data, x=np.zeros((3, 3), np.float32))
    target.unlink()
    assert main([str(a) for a in args]) == 2
    message = capsys.readouterr().err.strip()
    assert message.endswith(
        "the evaluation data has 3 samples, fewer than the model's fixed batch size 4"
    )
    assert not target.exists()
