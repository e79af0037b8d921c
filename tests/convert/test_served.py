"""End to end: convert with the CLI, serve the .tflite with the real function, compare.

The function runs under functions-framework on a loopback port (``tests.server``); its
predictions must match the Keras model's within the quantization error the CLI measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.convert.conftest import Built, run_cli
from tests.server import running_server

PREDICT = "/v1/models/model:predict"

pytestmark = [pytest.mark.needs_tensorflow, pytest.mark.slow]


def _convert(built: Built, out: Path, mode: str) -> tuple[Path, dict]:
    target, report = out / f"{mode}.tflite", out / f"{mode}.json"
    args = [built.path, "-o", target, "--mode", mode, "--eval", built.eval, "--report", report]
    if mode.startswith("int8"):
        args += ["--calibration", built.calibration]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return target, json.loads(report.read_text())


def _keras_predict(built: Built, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import keras

    model = keras.models.load_model(built.path)
    ordered = [inputs[tensor.name] for tensor in model.inputs]
    result = model.predict(ordered[0] if len(ordered) == 1 else ordered, verbose=0)
    return result if isinstance(result, list) else [result]


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_served_digits_match_keras(functional: Built, tmp_path: Path, mode: str) -> None:
    model_path, report = _convert(functional, tmp_path, mode)
    pixels = np.load(functional.eval)["pixels"][:32]
    (expected,) = _keras_predict(functional, {"pixels": pixels})
    with running_server(model_path) as server:
        response = requests.post(
            server.url + PREDICT, json={"instances": pixels.tolist()}, timeout=30
        )
    assert response.status_code == 200, response.text
    served = np.asarray(response.json()["predictions"], np.float32)
    assert served.shape == (32, 10)
    # The served answer is as close to Keras as the CLI measured on the same eval set...
    measured = report["outputs"][0]["max_abs_error"]
    assert np.abs(served - expected).max() <= measured + 1e-6
    # ...and that error is what the mode implies: a few int8 steps, or float round-off.
    assert measured <= (0.1 if mode == "int8" else 1e-5)
    assert np.mean(served.argmax(axis=1) == expected.argmax(axis=1)) >= 31 / 32


def test_served_two_inputs_two_outputs_match_keras(two_io: Built, tmp_path: Path) -> None:
    model_path, report = _convert(two_io, tmp_path, "int8")
    data = np.load(two_io.eval)
    image, extra = data["image"][:16], data["extra"][:16]
    digit, ink = _keras_predict(two_io, {"image": image, "extra": extra})
    instances = [
        {"image": i.tolist(), "extra": e.tolist()} for i, e in zip(image, extra, strict=True)
    ]
    with running_server(model_path) as server:
        response = requests.post(server.url + PREDICT, json={"instances": instances}, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 16
    assert set(predictions[0]) == {"digit", "ink"}
    served_digit = np.asarray([p["digit"] for p in predictions], np.float32)
    served_ink = np.asarray([p["ink"] for p in predictions], np.float32)
    errors = {o["name"]: o["max_abs_error"] for o in report["outputs"]}
    assert np.abs(served_digit - digit).max() <= errors["digit"] + 1e-6
    assert np.abs(served_ink - ink).max() <= errors["ink"] + 1e-6
    assert errors["ink"] < 0.1
    assert np.mean(served_digit.argmax(axis=1) == digit.argmax(axis=1)) >= 15 / 16
