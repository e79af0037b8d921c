"""Each mode converts the functional CNN, runs in the serving runtime and keeps its answers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from convert.quantize import MODES
from serving.model.backend import select_backend
from tests.convert.conftest import Built

# Least top-1 agreement with the Keras model on held-out digits, by mode.
MIN_AGREEMENT = {
    "float32": 1.0,
    "float16": 0.99,
    "dynamic": 0.97,
    "int8-float-io": 0.95,
    "int8": 0.95,
}

pytestmark = pytest.mark.needs_tensorflow


@pytest.fixture(scope="module")
def converted(
    functional: Built, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, dict, str]]:
    """mode -> (the .tflite, its JSON report, the printed table), all modes converted once."""
    out = tmp_path_factory.mktemp("modes")
    results = {}
    for mode in MODES:
        target, report = out / f"{mode}.tflite", out / f"{mode}.json"
        args = [functional.path, "-o", target, "--mode", mode, "--eval", functional.eval]
        args += ["--calibration", functional.calibration, "--report", report]
        args += ["--calibration-samples", "100"]
        printed = io.StringIO()  # a module-scoped fixture cannot use capsys
        with contextlib.redirect_stdout(printed):
            status = main([str(a) for a in args])
        assert status == 0, printed.getvalue()
        results[mode] = (target, json.loads(report.read_text()), printed.getvalue())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{mode}{suffix}" for mode in MODES for suffix in (".tflite", ".json")
    )  # no temporary files left behind
    return results


def _tensors(path: Path) -> tuple[list[dict], list[dict], set[str]]:
    """(input details, output details, dtypes of every tensor) from the serving backend."""
    interpreter = select_backend().make_interpreter(str(path))
    interpreter.allocate_tensors()
    dtypes = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    return interpreter.get_input_details(), interpreter.get_output_details(), dtypes


@pytest.mark.parametrize("mode", list(MODES))
def test_mode_runs_in_the_serving_runtime_and_agrees(mode: str, converted: dict) -> None:
    path, report, table = converted[mode]
    backend = select_backend()
    assert report["runtime"]["loads"] is True
    assert report["runtime"]["backend"] == backend.name
    assert report["runtime"]["backend_version"] == backend.version
    assert f"loads and runs in {backend.name} {backend.version}" in table
    (digit,) = report["outputs"]
    assert digit["name"] == "digit"
    assert digit["classifier"] is True
    assert digit["top1_agreement"] >= MIN_AGREEMENT[mode]
    assert abs(digit["accuracy_tflite"] - digit["accuracy_original"]) <= 0.03
    assert report["tflite_bytes"] == path.stat().st_size
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open() makes files
    assert report["latency"]["tflite_ms"] > 0
    assert report["latency"]["original_ms"] > 0
    assert report["evaluation"] == "functional-eval.npz (397 samples)"


@pytest.mark.parametrize("mode", list(MODES))
def test_batch_dimension_stays_dynamic(mode: str, converted: dict) -> None:
    inputs, outputs, _ = _tensors(converted[mode][0])
    assert list(inputs[0]["shape_signature"]) == [-1, 8, 8, 1]
    assert list(outputs[0]["shape_signature"]) == [-1, 10]


@pytest.mark.parametrize(
    ("mode", "io_dtype", "inside", "absent"),
    [
        ("int8", "int8", {"int8", "int32"}, {"float16"}),
        ("int8-float-io", "float32", {"int8", "int32"}, {"float16"}),
        ("dynamic", "float32", {"int8"}, {"float16"}),
        ("float16", "float32", {"float16"}, {"int8"}),
        ("float32", "float32", set(), {"int8", "float16"}),
    ],
)
def test_mode_stores_what_it_promises(
    mode: str, io_dtype: str, inside: set[str], absent: set[str], converted: dict
) -> None:
    inputs, outputs, dtypes = _tensors(converted[mode][0])
    assert np.dtype(inputs[0]["dtype"]).name == io_dtype
    assert np.dtype(outputs[0]["dtype"]).name == io_dtype
    assert inside <= dtypes
    assert not absent & dtypes
    if mode == "int8":  # full integer: no float tensor anywhere
        assert "float32" not in dtypes


def test_quantized_modes_are_smaller(converted: dict) -> None:
    size = {mode: converted[mode][1]["tflite_bytes"] for mode in MODES}
    assert size["int8"] < size["float16"] < size["float32"]
    assert size["dynamic"] < size["float16"]
    assert size["int8-float-io"] < size["float16"]


def test_report_table_and_json_agree(converted: dict) -> None:
    _, report, table = converted["int8"]
    assert report["mode"] == "int8"
    assert report["calibration"] == "100 samples of functional-calibration.npz (1400 samples)"
    assert report["size_ratio"] == pytest.approx(report["tflite_bytes"] / report["original_bytes"])
    assert f"ratio {report['size_ratio']:.3f}" in table
    assert "pixels int8 (-1, 8, 8, 1) scale=" in table
    assert "digit int8 (-1, 10) scale=0.00390625 zero_point=-128" in table
    assert f"{100 * report['outputs'][0]['top1_agreement']:.2f}%" in table
    assert "TensorFlow" in table
    assert "faster" in table


def test_float_modes_ignore_calibration_but_evaluate_on_it(
    functional: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, report = tmp_path / "m.tflite", tmp_path / "r.json"
    args = [functional.path, "-o", target, "--mode", "float16", "--report", report]
    status = main([str(a) for a in [*args, "--calibration", functional.calibration]])
    assert status == 0
    data = json.loads(report.read_text())
    assert data["calibration"] is None
    assert data["evaluation"] == (
        "280 samples of functional-calibration.npz (1400 samples) held out from calibration"
    )
    assert "no --eval data: evaluated on 280 samples" in capsys.readouterr().out


def test_without_any_data_agreement_is_measured_on_random_inputs(
    functional: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, report = tmp_path / "m.tflite", tmp_path / "r.json"
    status = main(
        [str(functional.path), "-o", str(target), "--mode", "float32", "--report", str(report)]
    )
    assert status == 0
    data = json.loads(report.read_text())
    assert data["evaluation"] == "64 random samples"
    assert data["outputs"][0]["max_abs_error"] < 1e-5
    assert (
        "note: no evaluation data: agreement measured on 64 random samples"
        in capsys.readouterr().out
    )
