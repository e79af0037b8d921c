"""Every bad input: exit status 2, one line on stderr naming the problem, no file left.

The fast failures (before TensorFlow is imported) and one slow one run as real
subprocesses; the others run ``convert.cli.main`` in-process to share the loaded
TensorFlow, with the same exit status and message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from tests.convert.conftest import Built, run_cli


def _one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith(("convert: error: ", "python -m convert: error: "))
    return lines[0]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def unread_keras(tmp_path: Path) -> Path:
    """A .keras path for checks that fail before the model is read (so no TensorFlow)."""
    path = tmp_path / "never_loaded.keras"
    path.write_bytes(b"not read: the command fails before loading the model")
    return path


needs_tensorflow = pytest.mark.needs_tensorflow


def _assert_nothing_written(out_dir: Path) -> None:
    assert list(out_dir.iterdir()) == []  # neither the model nor a temporary file


def test_missing_source(out_dir: Path) -> None:
    result = run_cli(out_dir / "nope.keras", "-o", out_dir / "m.tflite", "--mode", "float32")
    assert result.returncode == 2
    assert "nope.keras: no such file or directory" in _one_line_error(result.stderr)
    _assert_nothing_written(out_dir)


def test_file_that_is_not_a_model_by_its_name(tmp_path: Path, out_dir: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    result = run_cli(notes, "-o", out_dir / "m.tflite", "--mode", "float32")
    assert result.returncode == 2
    message = _one_line_error(result.stderr)
    assert "notes.txt: not a model; expected a Keras file (.keras, .h5, .hdf5)" in message
    _assert_nothing_written(out_dir)


def test_directory_that_is_not_a_saved_model(tmp_path: Path, out_dir: Path) -> None:
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    result = run_cli(empty, "-o", out_dir / "m.tflite", "--mode", "float32")
    assert result.returncode == 2
    assert "not a SavedModel (no saved_model.pb in it)" in _one_line_error(result.stderr)
    _assert_nothing_written(out_dir)


def test_int8_without_calibration(unread_keras: Path, out_dir: Path) -> None:
    result = run_cli(unread_keras, "-o", out_dir / "m.tflite")  # int8 is the default mode
    assert result.returncode == 2
    message = _one_line_error(result.stderr)
    assert message.endswith(
        "--mode int8 needs calibration data: pass --calibration PATH "
        "(or choose a mode without it: dynamic, float16, float32)"
    )
    _assert_nothing_written(out_dir)


def test_output_in_a_missing_directory(unread_keras: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "m.tflite"
    result = run_cli(unread_keras, "-o", target, "--mode", "float32")
    assert result.returncode == 2
    assert f"directory {target.parent} does not exist" in _one_line_error(result.stderr)
    assert not (tmp_path / "no").exists()


def test_output_that_is_a_directory(unread_keras: Path, out_dir: Path) -> None:
    result = run_cli(unread_keras, "-o", out_dir, "--mode", "float32")
    assert result.returncode == 2
    assert "is a directory; give a file name" in _one_line_error(result.stderr)
    _assert_nothing_written(out_dir)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mode", "int4"], "argument --mode: invalid choice: 'int4'"),
        (["--calibration-samples", "0"], "must be at least 1, not 0"),
        (["--min-agreement", "1.5"], "must be between 0 and 1, not 1.5"),
        ([], "the following arguments are required: -o/--output"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    if args:
        args = [*args, "-o", str(tmp_path / "m.tflite")]
    result = run_cli(tmp_path / "m.keras", *args)
    assert result.returncode == 2
    assert expected in _one_line_error(result.stderr)


@needs_tensorflow
def test_calibration_of_the_wrong_shape_in_a_subprocess(
    functional: Built, tmp_path: Path, out_dir: Path
) -> None:
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((10, 64), np.float32))
    result = run_cli(functional.path, "-o", out_dir / "m.tflite", "--calibration", flat)
    assert result.returncode == 2
    message = _one_line_error(result.stderr)
    assert "input 'pixels' expects shape (None, 8, 8, 1)" in message
    assert "the data has shape (10, 64)" in message
    _assert_nothing_written(out_dir)


def _run_in_process(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    status = main([str(a) for a in args])
    return status, _one_line_error(capsys.readouterr().err)


@needs_tensorflow
def test_calibration_of_the_wrong_dtype(
    two_io: Built, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "ints.npz"
    np.savez(data, image=np.zeros((4, 8, 8, 1), np.uint8), extra=np.zeros((4, 3), np.float32))
    status, message = _run_in_process(
        capsys, two_io.path, "-o", out_dir / "m.tflite", "--calibration", data
    )
    assert status == 2
    assert "input 'image' expects float32 but the data is uint8" in message
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_eval_data_that_does_not_fit(
    two_io: Built, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "eval.npz"
    np.savez(data, image=np.zeros((4, 8, 8, 1), np.float32), extra=np.zeros((4, 2), np.float32))
    status, message = _run_in_process(
        capsys, two_io.path, "-o", out_dir / "m.tflite", "--mode", "float16", "--eval", data
    )
    assert status == 2
    assert (
        f"--eval {data}: input 'extra' expects shape (None, 3) but the data has shape (4, 2)"
        in message
    )
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_unknown_signature_lists_the_real_ones(
    saved_model: Built, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, message = _run_in_process(
        capsys,
        saved_model.path,
        *("-o", out_dir / "m.tflite", "--mode", "float32"),
        *("--signature", "classify", "--signature", "serving_default"),
    )
    assert status == 2
    assert "no signature 'serving_default'; its signatures: 'classify', 'logits'" in message
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_signature_option_on_a_module_without_signatures(
    module_without_signatures: Built, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, message = _run_in_process(
        capsys,
        module_without_signatures.path,
        *("-o", out_dir / "m.tflite", "--mode", "float32", "--signature", "classify"),
    )
    assert status == 2
    assert "has no signatures (only a traced __call__" in message
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_labels_that_do_not_fit_the_outputs(
    two_io: Built, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(9)))
    status, message = _run_in_process(
        capsys, two_io.path, "-o", out_dir / "m.tflite", "--mode", "float32", "--labels", labels
    )
    assert status == 2
    assert message.endswith(
        f"--labels {labels}: 9 labels but no output has 9 classes on its last axis "
        "(outputs: digit (None, 10), ink (None, 1))"
    )
    _assert_nothing_written(out_dir)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), ("", "holds no labels"), ("cat\n\ndog\n", "line 2 is blank")],
)
def test_unusable_labels_file(
    unread_keras: Path, tmp_path: Path, out_dir: Path, content: str | None, expected: str
) -> None:
    labels = tmp_path / "labels.txt"
    if content is not None:
        labels.write_text(content)
    result = run_cli(
        unread_keras, "-o", out_dir / "m.tflite", "--mode", "float32", "--labels", labels
    )
    assert result.returncode == 2
    assert f"--labels {labels}: {expected}" in _one_line_error(result.stderr)
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_signature_with_a_keras_file(
    functional: Built, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, message = _run_in_process(
        capsys, functional.path, "-o", out_dir / "m.tflite", "--mode", "float32", "--signature", "x"
    )
    assert status == 2
    assert "--signature applies to SavedModel directories" in message
    _assert_nothing_written(out_dir)


@needs_tensorflow
@pytest.mark.parametrize("name", ["broken.keras", "broken.h5"])
def test_keras_file_that_is_not_a_model(
    name: str, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / name
    broken.write_bytes(b"definitely not a zip or HDF5 file")
    status, message = _run_in_process(
        capsys, broken, "-o", out_dir / "m.tflite", "--mode", "float32"
    )
    assert status == 2
    assert f"{name}: not a Keras model that can be loaded" in message
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_saved_model_that_cannot_be_loaded(
    tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake_saved_model"
    fake.mkdir()
    (fake / "saved_model.pb").write_bytes(b"\x08garbage")
    status, message = _run_in_process(capsys, fake, "-o", out_dir / "m.tflite", "--mode", "float32")
    assert status == 2
    assert "fake_saved_model: not a SavedModel that can be loaded" in message
    _assert_nothing_written(out_dir)


@needs_tensorflow
def test_an_existing_output_survives_a_failed_run(
    functional: Built, tmp_path: Path, out_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = out_dir / "m.tflite"
    previous.write_bytes(b"the model deployed yesterday")
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((10, 64), np.float32))
    status, _ = _run_in_process(capsys, functional.path, "-o", previous, "--calibration", flat)
    assert status == 2
    assert previous.read_bytes() == b"the model deployed yesterday"
    assert [p.name for p in out_dir.iterdir()] == ["m.tflite"]
