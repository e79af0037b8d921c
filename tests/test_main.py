"""The function end to end: the real functions-framework server as a subprocess on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.conftest import BUNDLED_MODEL, REPO
from tests.metadata_server import fake_metadata
from tests.reference import reference_predict
from tests.server import running_server, zeros_infer_body

RNG = np.random.default_rng(3)


def test_importing_main_loads_nothing_heavy():
    code = (
        "import sys, main\n"
        "heavy = [m for m in ('tensorflow', 'google.cloud.storage', 'ai_edge_litert',"
        " 'tflite_runtime', 'keras', 'PIL', 'ml_dtypes', 'apache_beam', 'batch')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_numeric_request_does_not_import_pillow_nor_the_compiled_engine(digits_model: Path):
    """The digits model (under 1 MiB) is served by interpreters: its cold start pays for
    neither Pillow nor LiteRT's CompiledModel (ml_dtypes, the compiled engine)."""
    code = (
        "import sys, functions_framework\n"
        "app = functions_framework.create_app('predict', 'main.py', 'http').test_client()\n"
        "r = app.post('/v1/models/model:predict', json={'instances': [[[[0.0]] * 8] * 8]})\n"
        "assert r.status_code == 200, r.json\n"
        "print([m for m in ('PIL', 'ai_edge_litert.compiled_model', 'ml_dtypes',"
        " 'serving.model.compiled_engine') if m in sys.modules])\n"
    )
    env = {**os.environ, "MODEL_PATH": str(digits_model)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_readme_first_example_classifies_the_shipped_digits(digits_model: Path):
    """``curl --data-binary @model/examples/<digit>.png -H 'Content-Type: image/png'
    localhost:8080/v1/models/model:classify`` answers the digit's label first, from the
    digits model as ``make model`` builds it (a user may have replaced the bundled file)."""
    examples = sorted((REPO / "model" / "examples").glob("*.png"))
    assert len(examples) >= 2
    with running_server(digits_model) as server:
        for example in examples:
            r = requests.post(
                f"{server.url}/v1/models/model:classify",
                data=example.read_bytes(),
                headers={"Content-Type": "image/png"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            (result,) = r.json()["results"]
            assert result[0][0] == example.stem
            assert result[0][1] > 0.9
    readme = (REPO / "README.md").read_text()
    assert (
        "curl --data-binary @model/examples/7.png -H 'Content-Type: image/png' "
        "localhost:8080/v1/models/model:classify" in readme
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_without_model_path_whatever_model_is_bundled_is_served():
    """No MODEL_PATH: the bundled file, the example or a user's own model in its place, is
    loaded and answers a request of zeros shaped as its own metadata says."""
    with running_server(MODEL_PATH="") as server:
        ready = requests.get(f"{server.url}/v2/health/ready", timeout=60)
        assert ready.status_code == 200, ready.text
        meta = requests.get(f"{server.url}/v2/models/model", timeout=10).json()
        body = zeros_infer_body(server.url)
        if body is None:
            pytest.skip(f"{BUNDLED_MODEL.name} takes BYTES: zeros are no valid request for it")
        r = requests.post(f"{server.url}/v2/models/model/infer", json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert {o["name"] for o in r.json()["outputs"]} == {o["name"] for o in meta["outputs"]}


def test_the_digits_model_cold_then_warm_in_both_dialects(digits_model: Path):
    x = RNG.random((4, 8, 8, 1), dtype=np.float32)
    (expected,) = reference_predict(digits_model, {"pixels": x}).values()
    with running_server(digits_model) as server:
        cold = requests.post(f"{server.url}/", json={"instances": x.tolist()}, timeout=30)
        assert cold.status_code == 200, cold.text
        assert "load;dur=" in cold.headers["Server-Timing"]
        np.testing.assert_allclose(cold.json()["predictions"], expected, atol=1e-6)

        body = {
            "id": "7",
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [4, 8, 8, 1],
                    "datatype": "FP32",
                    "data": x.ravel().tolist(),
                }
            ],
        }
        warm = requests.post(f"{server.url}/v2/models/model/infer", json=body, timeout=30)
        assert warm.status_code == 200, warm.text
        assert "load;dur=" not in warm.headers["Server-Timing"]
        assert "infer;dur=" in warm.headers["Server-Timing"]
        (output,) = warm.json()["outputs"]
        np.testing.assert_allclose(np.reshape(output["data"], (4, 10)), expected, atol=1e-6)
        logs = server.logs()
    lines = json_lines(logs)
    loads = [line for line in lines if line["message"] == "model loaded"]
    assert len(loads) == 1
    assert loads[0]["cold_start"] is True
    assert loads[0]["severity"] == "INFO"
    assert loads[0]["load_ms"] > 0
    predicts = [line for line in lines if line["message"].startswith("POST ")]
    assert [p["cold_start"] for p in predicts] == [True, False]
    assert all(p["batch_size"] == 4 and p["invoke_ms"] > 0 for p in predicts)


def test_log_lines_land_under_the_trace_with_the_project_from_the_metadata_server(
    digits_model: Path,
):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    with fake_metadata(body=b"demo-project") as metadata:
        env = {"GCE_METADATA_HOST": metadata.host, "GOOGLE_CLOUD_PROJECT": ""}
        with running_server(digits_model, **env) as server:
            for _ in range(2):
                r = requests.post(
                    f"{server.url}/v1/models/model:predict",
                    json={"instances": np.zeros((1, 8, 8, 1)).tolist()},
                    headers=header,
                    timeout=30,
                )
                assert r.status_code == 200, r.text
            logs = server.logs()
    assert metadata.seen == [("/computeMetadata/v1/project/project-id", "Google")]  # asked once
    posts = [line for line in json_lines(logs) if line["message"].startswith("POST ")]
    # The lookup runs beside the cold request, never in its way; the warm one has the project.
    assert posts[-1]["logging.googleapis.com/trace"] == f"projects/demo-project/traces/{trace_id}"
    assert posts[-1]["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert posts[-1]["logging.googleapis.com/trace_sampled"] is True


def test_sixteen_concurrent_requests_each_get_their_own_answer(models):
    path = models / "int8.tflite"
    inputs = [RNG.random((1 + i % 3, 8, 8, 1), dtype=np.float32) for i in range(32)]
    expected = [reference_predict(path, {"pixels": x})["output_0"] for x in inputs]
    with running_server(path, INTERPRETER_POOL_SIZE="2") as server:
        barrier = threading.Barrier(16)

        def predict(i: int) -> np.ndarray:
            if i < 16:
                barrier.wait(timeout=30)  # the first 16 start together, on a cold server
            r = requests.post(
                f"{server.url}/v1/models/model:predict",
                json={"instances": inputs[i].tolist()},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            return np.asarray(r.json()["predictions"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(predict, range(len(inputs))))
        loads = [line for line in json_lines(server.logs()) if line["message"] == "model loaded"]
    assert len(loads) == 1  # loaded exactly once although 16 requests arrived cold
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_bad_requests_never_break_the_server(models):
    good = {"instances": np.zeros((1, 8, 8, 1)).tolist()}
    with running_server(models / "int8.tflite", MAX_REQUEST_BYTES="4096") as server:
        url = f"{server.url}/v1/models/model:predict"
        cases = [
            (requests.post(url, data=b"{oops", timeout=10), 400, "malformed JSON"),
            (requests.post(url, json={"instances": [[1, 2], [3]]}, timeout=10), 400, "ragged"),
            (requests.post(url, data=b"x" * 10_000, timeout=10), 413, "over the limit of 4096"),
            (requests.get(f"{server.url}/favicon", timeout=10), 404, "no route for /favicon"),
            # functions-framework answers these two itself; still JSON.
            (requests.get(f"{server.url}/favicon.ico", timeout=10), 404, "Not Found: /favicon.ico"),
            (requests.post(f"{server.url}/robots.txt", timeout=10), 404, "Not Found: /robots.txt"),
            (requests.delete(url, timeout=10), 405, "DELETE is not allowed"),
        ]
        for response, status, message in cases:
            assert response.status_code == status
            assert response.headers["Content-Type"] == "application/json"
            assert message in response.json()["error"]
            assert requests.post(url, json=good, timeout=10).status_code == 200
        assert server.process.poll() is None


def test_load_failure_is_503_and_the_next_request_retries(models, tmp_path):
    path = tmp_path / "arrives-later.tflite"
    with running_server(path) as server:
        url = f"{server.url}/v1/models/model:predict"
        good = {"instances": np.zeros((1, 8, 8, 1)).tolist()}
        first = requests.post(url, json=good, timeout=10)
        assert first.status_code == 503
        assert first.json() == {"error": f"model file not found: {path}"}
        path.write_bytes(b"garbage" * 10)
        second = requests.post(url, json=good, timeout=10)
        assert second.status_code == 503
        assert "is not a TFLite flatbuffer" in second.json()["error"]
        os.remove(path)
        shutil.copy(models / "int8.tflite", path)
        assert requests.post(url, json=good, timeout=10).status_code == 200
        assert server.process.poll() is None


def test_model_from_cloud_storage_with_storage_down_at_first(
    models, tmp_path, stopped_storage_emulator
):
    emulator = stopped_storage_emulator
    env = {"MODEL_CACHE_DIR": str(tmp_path / "cache"), "GCS_TIMEOUT_SECONDS": "3"}
    with running_server("gs://models/digits/int8.tflite", **env) as server:
        ready = requests.get(f"{server.url}/v2/health/ready", timeout=30)
        assert ready.status_code == 503
        assert "gs://models/digits/int8.tflite" in ready.json()["error"]

        emulator.start()
        emulator.upload("models", "digits/int8.tflite", (models / "int8.tflite").read_bytes())
        ready = requests.get(f"{server.url}/v2/health/ready", timeout=30)
        assert ready.status_code == 200, ready.text
        x = RNG.random((2, 8, 8, 1), dtype=np.float32)
        r = requests.post(f"{server.url}/", json={"instances": x.tolist()}, timeout=30)
        expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
        np.testing.assert_allclose(r.json()["predictions"], expected, atol=1e-6)
        assert server.process.poll() is None


def test_a_keras_model_as_model_path_is_answered_with_the_command_that_converts_it(models):
    path = models / "classifier.keras"
    with running_server(path) as server:
        ready = requests.get(f"{server.url}/v2/health/ready", timeout=30)
        assert ready.status_code == 503
        assert ready.json() == {
            "error": f"{path} is a Keras model (.keras archive), not a TFLite model: convert "
            f"it first (python -m convert {path} -o {models / 'classifier.tflite'}) and serve "
            "the .tflite file"
        }
        assert server.process.poll() is None


@pytest.mark.parametrize("backend", ["no-such-backend"])
def test_misconfiguration_is_a_json_error_not_a_crash(backend):
    with running_server(SERVING_BACKEND=backend) as server:
        r = requests.get(f"{server.url}/v2/health/ready", timeout=10)
        assert r.status_code == 500
        assert "SERVING_BACKEND='no-such-backend' is not one of" in r.json()["error"]
        assert requests.get(f"{server.url}/v2/health/live", timeout=10).status_code == 200
