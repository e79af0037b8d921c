"""``--input-names`` / ``--output-names``: the served names, whatever the save path gave.

The same Keras model is ``pixels -> digit`` as a ``.keras`` file but ``inputs -> output_0``
through ``tf.saved_model.save``; with the flags both convert to the same client-facing
signature. Real conversions; the answers are compared with the Keras model itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from serving import Model
from tests.convert.conftest import Built, run_cli
from tests.convert.test_cli_errors import _one_line_error

needs_tensorflow = pytest.mark.needs_tensorflow


def _served(path: Path) -> tuple[list[str], list[str]]:
    with Model.load(path) as model:
        return [s.name for s in model.inputs], [s.name for s in model.outputs]


@needs_tensorflow
@pytest.mark.slow
def test_a_tf_saved_model_save_model_is_served_under_the_keras_names(
    keras_tf_saved: Built, functional: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras

    target, report = tmp_path / "m.tflite", tmp_path / "m.json"
    args = [keras_tf_saved.path, "-o", target, "--report", report, "--mode", "int8"]
    args += ["--input-names", "pixels", "--output-names", "output_0=digit"]
    # Data keyed by the served name: the functional model's own files.
    args += ["--calibration", functional.calibration, "--eval", functional.eval]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    assert _served(target) == (["pixels"], ["digit"])
    notes = json.loads(report.read_text())["notes"]
    assert "served tensor names set by the flags: inputs -> pixels, output_0 -> digit" in notes
    assert not any("come from how the model was saved" in note for note in notes)

    x = np.load(functional.eval)["pixels"][:64]
    want = keras.models.load_model(functional.path).predict(x, verbose=0)
    with Model.load(target) as model:
        got = model.predict({"pixels": x})["digit"]
    assert np.abs(got - want).max() < 0.1  # a few int8 steps of a probability
    assert np.mean(got.argmax(axis=1) == want.argmax(axis=1)) >= 0.95


@needs_tensorflow
@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "inputs", "outputs", "how"),
    [
        ("functional", "pixels", "digit", "the Keras model's input and output layer names"),
        ("keras_tf_saved", "inputs", "output_0", "the SavedModel signature's keys"),
    ],
)
def test_without_the_flags_the_report_warns_the_names_are_the_save_path_s(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fixture: str,
    inputs: str,
    outputs: str,
    how: str,
) -> None:
    built: Built = request.getfixturevalue(fixture)
    target = tmp_path / "m.tflite"
    assert main([str(built.path), "-o", str(target), "--mode", "float32"]) == 0
    printed = capsys.readouterr().out
    assert (
        f"warning: the served tensor names (serving_default: {inputs} -> {outputs}) come from "
        f"how the model was saved ({how}): clients send and read them; fix them with "
        "--input-names and --output-names"
    ) in printed.splitlines()
    assert _served(target) == ([inputs], [outputs])


@needs_tensorflow
@pytest.mark.slow
def test_names_in_order_rename_every_tensor(
    two_io: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Model.load(_converted(two_io, tmp_path / "before", capsys)) as model:
        inputs, outputs = [s.name for s in model.inputs], [s.name for s in model.outputs]
    new_inputs = [f"in_{i}" for i in range(len(inputs))]
    new_outputs = [f"out_{i}" for i in range(len(outputs))]
    target = _converted(
        two_io,
        tmp_path / "after",
        capsys,
        "--input-names",
        ",".join(new_inputs),
        "--output-names",
        ",".join(new_outputs),
    )
    assert _served(target) == (new_inputs, new_outputs)


def _converted(built: Built, folder: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> Path:
    folder.mkdir()
    target = folder / "m.tflite"
    status = main([str(built.path), "-o", str(target), "--mode", "float32", *flags])
    assert status == 0, capsys.readouterr().err
    return target


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--input-names",
            "a,b=c",
            "argument --input-names: 'a,b=c' mixes NEW and OLD=NEW items: use one form",
        ),
        (
            "--output-names",
            "_x",
            "argument --output-names: '_x' is not a tensor name (letters, digits, '_', '.', "
            "'-', '/'; not starting with '_', '-' or '/')",
        ),
        ("--input-names", "a=b=c", "argument --input-names: 'a=b=c': one '=' per OLD=NEW pair"),
    ],
)
def test_malformed_names_are_usage_errors(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    result = run_cli(tmp_path / "m.keras", "-o", tmp_path / "m.tflite", flag, value)
    assert result.returncode == 2
    assert _one_line_error(result.stderr) == f"python -m convert: error: {message} (see --help)"


@needs_tensorflow
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--output-names", "output_0=digit"],
            "--output-names: the model has no tensor 'output_0'; its names: digit",
        ),
        (
            ["--input-names", "a,b"],
            "--input-names: 2 names given for 1 tensor (pixels, in this order)",
        ),
        (
            ["--input-names", "pixels=digit", "--output-names", "digit=pixels"],
            None,  # swapping names between inputs and outputs is allowed
        ),
    ],
)
def test_names_that_do_not_fit_the_model_exit_2_and_write_nothing(
    functional: Built,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str | None,
) -> None:
    target = tmp_path / "m.tflite"
    status = main([str(functional.path), "-o", str(target), "--mode", "float32", *flags])
    if message is None:
        assert status == 0
        assert _served(target) == (["digit"], ["pixels"])
        return
    assert status == 2
    assert _one_line_error(capsys.readouterr().err) == f"convert: error: {message}"
    assert list(tmp_path.iterdir()) == []
