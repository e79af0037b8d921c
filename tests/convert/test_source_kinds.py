"""Every source kind converts through the CLI, and every signature answers as the source does.

The ``.tflite`` is run with the LiteRT interpreter's signature runners directly (not the
converter's own runtime code); the reference answers come from the source model itself,
loaded the way its users load it (Keras, or ``tf.saved_model.load``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from serving import select_backend
from tests.convert.conftest import Built

pytestmark = [pytest.mark.needs_tensorflow, pytest.mark.slow]


def _convert(
    capsys: pytest.CaptureFixture[str], built: Built, out: Path, *extra: str
) -> tuple[int, dict, Path]:
    target, report = out / "m.tflite", out / "m.json"
    args = [built.path, "-o", target, "--report", report, "--eval", built.eval, *extra]
    args += ["--calibration", built.calibration, "--calibration-samples", "100"]
    status = main([str(a) for a in args])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    return status, json.loads(report.read_text()), target


def run_signatures(path: Path, feeds: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """{key: {output: real-valued answer}} from the interpreter's signature runners."""
    interpreter = select_backend().make_interpreter(str(path))
    answers = {}
    for key, feed in feeds.items():
        runner = interpreter.get_signature_runner(key)
        args = {}
        for name, detail in runner.get_input_details().items():
            scale, zero = detail["quantization"]
            x = feed[name]
            if scale:
                x = np.clip(np.round(x / scale) + zero, -128, 127)
            args[name] = x.astype(detail["dtype"])
        result = runner(**args)
        outs = runner.get_output_details()
        answers[key] = {}
        for name, value in result.items():
            scale, zero = outs[name]["quantization"]
            answers[key][name] = (value.astype(np.float32) - zero) * scale if scale else value
    return answers


def _tf_signature(path: Path, key: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    function = tf.saved_model.load(str(path)).signatures[key]
    return {
        k: v.numpy() for k, v in function(**{n: tf.constant(a) for n, a in feed.items()}).items()
    }


def _keras(path: Path, x: np.ndarray, output: str) -> dict[str, np.ndarray]:
    import keras

    return {output: keras.models.load_model(path).predict(x, verbose=0)}


def _hub(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {"output_0": tf.saved_model.load(str(path))(tf.constant(x)).numpy()}


# kind: (fixture, conversion path expected, signature key, input name, reference answers)
KINDS = {
    "keras": ("functional", "saved_model", "pixels", lambda p, x: _keras(p, x, "digit")),
    "h5": ("sequential", "saved_model", "features", lambda p, x: _keras(p, x, "digit")),
    "tf_saved_model_save_keras": (
        "keras_tf_saved",
        "concrete_functions",
        "inputs",
        lambda p, x: _tf_signature(p, "serving_default", {"inputs": x}),
    ),
    "model_export": (
        "keras_export",
        "saved_model",
        "pixels",
        lambda p, x: _tf_signature(p, "serving_default", {"pixels": x}),
    ),
    "module_without_signatures": ("module_without_signatures", "call", "features", _hub),
    "tf1": (
        "tf1_saved_model",
        "saved_model",
        "features",
        lambda p, x: _tf_signature(p, "serving_default", {"features": x}),
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_source_kind_converts_and_agrees(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture, path, input_name, reference = KINDS[kind]
    built: Built = request.getfixturevalue(fixture)
    _, report, target = _convert(capsys, built, tmp_path)
    assert report["conversion_path"] == path
    assert report["signatures"] == ["serving_default"]
    x = np.load(built.eval)[input_name][:64]
    expected = reference(built.path, x)
    got = run_signatures(target, {"serving_default": {input_name: x}})["serving_default"]
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        assert got[name].shape == want.shape
        assert np.abs(got[name] - want).max() < 0.1  # a few int8 steps of a probability
        assert np.mean(got[name].argmax(axis=1) == want.argmax(axis=1)) >= 0.95
    if kind == "module_without_signatures":
        assert any("no signatures: converted the traced __call__" in n for n in report["notes"])
    if kind == "model_export":
        assert any("alias of 'serving_default'" in n for n in report["notes"])


def test_keras_tf_saved_model_falls_back_from_the_importer(keras_tf_saved: Built, tmp_path: Path):
    """TensorFlow's SavedModel importer leaves this model's variables unread: the
    converter abandons that path (naming why) and freezes them from the loaded object."""
    from convert.calibration import Dataset
    from convert.quantize import convert_source
    from convert.sources import load_source
    from convert.tflite_file import op_names, read

    source = load_source(keras_tf_saved.path, None, tmp_path)
    source.paths = ("saved_model", "concrete_functions")  # force the importer first
    content, path, notes = convert_source(source, "float32", None)
    assert path == "concrete_functions"
    assert len(notes) == 1
    assert notes[0].startswith("path saved_model abandoned: the model reads uninitialised")
    assert "READ_VARIABLE" in notes[0]
    assert not op_names(read(content)) & {"READ_VARIABLE", "VAR_HANDLE"}
    # int8: the importer's model fails in calibration on the same ops; same fallback.
    x = np.load(keras_tf_saved.calibration)["inputs"][:20]
    calibration = {"serving_default": Dataset({"inputs": x}, None, "test")}
    _, path, notes = convert_source(source, "int8", calibration)
    assert path == "concrete_functions"
    assert "abandoned" in notes[0]


def test_two_signatures_in_one_file(
    saved_model: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report, target = _convert(capsys, saved_model, tmp_path)
    assert report["signatures"] == ["classify", "logits"]
    by_signature = {o["signature"]: o for o in report["outputs"]}
    assert set(by_signature) == {"classify", "logits"}
    assert by_signature["classify"]["name"] == "probabilities"
    assert by_signature["logits"]["name"] == "logits"
    assert all(o["top1_agreement"] >= 0.95 for o in report["outputs"])
    x = np.load(saved_model.eval)["features"][:64]
    interpreter = select_backend().make_interpreter(str(target))
    assert interpreter.get_signature_list() == {
        "classify": {"inputs": ["features"], "outputs": ["probabilities"]},
        "logits": {"inputs": ["features"], "outputs": ["logits"]},
    }
    got = run_signatures(target, {"classify": {"features": x}, "logits": {"features": x}})
    for key in ("classify", "logits"):
        ((name, want),) = _tf_signature(saved_model.path, key, {"features": x}).items()
        assert np.mean(got[key][name].argmax(axis=1) == want.argmax(axis=1)) >= 0.95
        spread = want.max() - want.min()
        assert np.abs(got[key][name] - want).mean() < 0.02 * spread


def test_signature_option_restricts(
    saved_model: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report, target = _convert(capsys, saved_model, tmp_path, "--signature", "logits")
    assert report["signatures"] == ["logits"]
    interpreter = select_backend().make_interpreter(str(target))
    assert list(interpreter.get_signature_list()) == ["logits"]
