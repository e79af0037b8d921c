"""TensorFlow Serving REST API through functions-framework's app (in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.reference import reference_predict

RNG = np.random.default_rng(7)


def test_row_format_single_output_omits_the_name(models, client_for):
    x = RNG.random((3, 8, 8, 1), dtype=np.float32)
    client = client_for(models / "int8.tflite")
    response = client.post("/v1/models/model:predict", json={"instances": x.tolist()})
    assert response.status_code == 200, response.json
    predictions = np.asarray(response.json["predictions"])
    assert predictions.shape == (3, 10)
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(predictions, expected, atol=1e-6)
    assert response.headers["Content-Type"] == "application/json"
    assert "infer;dur=" in response.headers["Server-Timing"]


def test_columnar_single_input_and_output(models, client_for):
    x = RNG.random((2, 8, 8, 1), dtype=np.float32)
    client = client_for(models / "float32.tflite")
    response = client.post("/v1/models/model/versions/1:predict", json={"inputs": x.tolist()})
    assert response.status_code == 200, response.json
    expected = reference_predict(models / "float32.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(np.asarray(response.json["outputs"]), expected, rtol=1e-5)


def test_multi_output_row_and_columnar_shapes(models, client_for):
    a, b = RNG.random((2, 4), dtype=np.float32), RNG.random((2, 3), dtype=np.float32)
    expected = reference_predict(models / "multi.tflite", {"a": a, "b": b})
    client = client_for(models / "multi.tflite")

    rows = [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(2)]
    response = client.post("/v1/models/model:predict", json={"instances": rows})
    assert response.status_code == 200, response.json
    predictions = response.json["predictions"]
    assert [sorted(p) for p in predictions] == [["scores", "sum"]] * 2
    for i in range(2):
        for name in ("sum", "scores"):
            np.testing.assert_allclose(predictions[i][name], expected[name][i], rtol=1e-5)

    body = {"inputs": {"a": a.tolist(), "b": b.tolist()}, "signature_name": "serving_default"}
    response = client.post("/v1/models/model:predict", json=body)
    assert response.status_code == 200, response.json
    for name in ("sum", "scores"):
        np.testing.assert_allclose(response.json["outputs"][name], expected[name], rtol=1e-5)


def test_post_to_the_bare_url_is_predict(models, client_for):
    client = client_for(models / "int8.tflite")
    response = client.post("/", json={"instances": np.zeros((1, 8, 8, 1)).tolist()})
    assert response.status_code == 200
    assert len(response.json["predictions"]) == 1


def test_status_and_metadata(models, client_for):
    client = client_for(models / "int8.tflite", MODEL_NAME="digits", MODEL_VERSION="3")
    for path in ("/v1/models/digits", "/v1/models/digits/versions/3", "/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json == {
            "model_version_status": [
                {
                    "version": "3",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }
    meta = client.get("/v1/models/digits/metadata").json
    assert meta["model_spec"] == {"name": "digits", "signature_name": "", "version": "3"}
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    pixels = signature["inputs"]["pixels"]
    assert pixels["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in pixels["tensor_shape"]["dim"]] == ["-1", "8", "8", "1"]
    assert pixels["quantization"]["dtype"] == "DT_INT8"
    assert pixels["quantization"]["scale"] > 0
    assert isinstance(pixels["quantization"]["zero_point"], int)
    assert list(signature["outputs"]) == ["output_0"]
    assert meta["metadata"]["backend"]["name"] in ("litert", "tflite_runtime", "tensorflow")


def test_status_reports_a_failed_load_and_recovers(models, client_for, tmp_path):
    path = tmp_path / "model.tflite"
    client = client_for(path)
    status = client.get("/v1/models/model").json["model_version_status"][0]
    assert status["state"] == "FAILED"
    assert status["status"]["error_code"] == "UNAVAILABLE"
    assert f"model file not found: {path}" in status["status"]["error_message"]
    response = client.get("/v1/models/model/metadata")
    assert response.status_code == 503
    assert response.json == {"error": f"model file not found: {path}"}
    path.write_bytes((models / "int8.tflite").read_bytes())
    assert client.get("/v1/models/model").json["model_version_status"][0]["state"] == "AVAILABLE"


GOOD = {"instances": np.zeros((1, 8, 8, 1)).tolist()}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/v1/models/model:predict", b"{not json", 400, "malformed JSON in request body: "),
        ("POST", "/v1/models/model:predict", b"", 400, "request body is empty"),
        ("POST", "/v1/models/model:predict", b"[1, 2]", 400, "request body must be a JSON object"),
        (
            "POST",
            "/v1/models/model:predict",
            {"instance": []},
            400,
            "request must contain exactly one of 'instances' (row format) or 'inputs'",
        ),
        ("POST", "/v1/models/model:predict", {"instances": [], "inputs": []}, 400, ", not both"),
        (
            "POST",
            "/v1/models/model:predict",
            {"instances": []},
            400,
            "'instances' must be a non-empty list",
        ),
        (
            "POST",
            "/v1/models/model:predict",
            {"instances": [[[[1]]]]},
            400,
            "input 'pixels': expected shape [-1, 8, 8, 1], received [1, 1, 1, 1]",
        ),
        (
            "POST",
            "/v1/models/model:predict",
            {"instances": [{"pixel": 1}]},
            400,
            "unknown input 'pixel'; the model's inputs are: pixels",
        ),
        (
            "POST",
            "/v1/models/model:predict",
            {"instances": [[1, 2], [3]]},
            400,
            "input 'pixels': ragged nested lists",
        ),
        (
            "POST",
            "/v1/models/model:predict",
            {"instances": [["a"]]},
            400,
            "input 'pixels': expected numbers, received strings",
        ),
        (
            "POST",
            "/v1/models/model:predict",
            {**GOOD, "signature_name": "other"},
            400,
            "unknown signature 'other'; the model's signatures are: 'serving_default'",
        ),
        ("POST", "/v1/models/other:predict", GOOD, 404, "model 'other' not found"),
        ("POST", "/v1/models/model/versions/2:predict", GOOD, 404, "version '2' of model"),
        ("POST", "/v1/models/model:regress", GOOD, 400, "regress takes a JSON object"),
        ("POST", "/v1/models/model:explain", GOOD, 404, "':explain' is not supported"),
        ("POST", "/v1/models/model:classify", GOOD, 400, "classify takes a JSON object"),
        ("GET", "/v1/models/model:predict", None, 405, "GET is not allowed"),
        ("PUT", "/", GOOD, 405, "PUT is not allowed on /; use GET or POST or HEAD"),
        ("GET", "/v3/anything", None, 404, "no route for /v3/anything"),
    ],
)
def test_errors_are_json_with_the_right_status(
    models, client_for, method, path, body, status, message
):
    client = client_for(models / "int8.tflite")
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json) == {"error"}
    assert message in response.json["error"]
    if status == 405:
        assert "Allow" in response.headers
    # Nothing is poisoned: the next good request succeeds.
    assert client.post("/v1/models/model:predict", json=GOOD).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [{"image": {"b64": "aGVsbG8="}}]},  # a picture for a non-picture input
        {"instances": [{"image": [[1, 2], [3]]}]},  # ragged
        {"inputs": {"image": [[1, 2], [3]]}},
    ],
)
def test_a_wrong_name_is_reported_before_its_values(models, client_for, body):
    response = client_for(models / "int8.tflite").post("/v1/models/model:predict", json=body)
    assert response.status_code == 400
    assert response.json == {"error": "unknown input 'image'; the model's inputs are: pixels"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"signature_name": 7, "instances": [1]},
            "'signature_name' must be a string, received a number",
        ),
        (
            {"signature_name": ["serving_default"], "instances": [1]},
            "'signature_name' must be a string, received a list",
        ),
        (
            {"instances": [{"pixels": 0}, {}]},
            "instance 1 has inputs none, instance 0 has 'pixels': every instance needs the same "
            "inputs",
        ),
    ],
)
def test_messages_name_json_not_python_types(models, client_for, body, message):
    response = client_for(models / "int8.tflite").post("/v1/models/model:predict", json=body)
    assert response.status_code == 400
    assert response.json == {"error": message}


def test_body_over_the_limit_is_413(models, client_for):
    client = client_for(models / "int8.tflite", MAX_REQUEST_BYTES="2000")
    big = {"instances": np.zeros((8, 8, 8, 1)).tolist()}
    response = client.post("/v1/models/model:predict", json=big)
    assert response.status_code == 413
    assert "over the limit of 2000 bytes (MAX_REQUEST_BYTES)" in response.json["error"]
    assert client.post("/v1/models/model:predict", json=GOOD).status_code == 200


def test_unexpected_failure_is_a_500_with_a_request_id(models, client_for, monkeypatch, capsys):
    from serving.model import Model

    client = client_for(models / "int8.tflite")

    def broken(self, inputs, signature=None):
        raise ZeroDivisionError("injected fault")

    monkeypatch.setattr(Model, "run", broken)
    response = client.post("/v1/models/model:predict", json=GOOD, headers={"X-Request-Id": "abc"})
    assert response.status_code == 500
    assert response.json == {"error": "internal error: ZeroDivisionError", "request_id": "abc"}
    logged = capsys.readouterr().out
    assert "Traceback" in logged
    assert "injected fault" in logged
    monkeypatch.undo()


def test_nan_and_infinity_tokens_are_accepted_and_written_for_float_tensors(models, client_for):
    """TF Serving's JSON conformance: NaN/Infinity/-Infinity in requests and answers."""
    client = client_for(models / "float32.tflite")
    row = ", ".join(["0.5"] * 7)
    body = (
        '{"instances": [[' + ", ".join([f"[[NaN], [{row.replace(', ', '], [')}]]"] * 8) + "]]}"
    ).encode()
    response = client.post("/v1/models/model:predict", data=body)
    assert response.status_code == 200, response.data[:300]
    assert b"NaN" in response.data  # a NaN input propagates, written as TF Serving writes it
    decoded = json.loads(response.data)  # Python's json reads the tokens back
    assert np.isnan(np.asarray(decoded["predictions"], dtype=np.float64)).any()
    inf = body.replace(b"NaN", b"-Infinity", 1)
    assert client.post("/v1/models/model:predict", data=inf).status_code == 200


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_a_quantized_input_refuses_non_finite_tokens(models, client_for, token):
    client = client_for(models / "int8.tflite")
    values = ", ".join([f"[{token}]"] + ["[0.5]"] * 7)
    body = ('{"instances": [[' + ", ".join([f"[{values}]"] * 8) + "]]}").encode()
    response = client.post("/v1/models/model:predict", data=body)
    assert response.status_code == 400
    assert response.json == {"error": "input 'pixels': NaN or infinite values cannot be quantized"}


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[[[True]] + [[0.5]] * 7] * 8]},
        {"inputs": {"pixels": [[[[0.5]] * 7 + [[False]]] * 8]}},
    ],
)
def test_booleans_among_numbers_are_400(models, client_for, body):
    client = client_for(models / "int8.tflite")
    response = client.post("/v1/models/model:predict", json=body)
    assert response.status_code == 400
    assert response.json == {
        "error": "input 'pixels': expected numbers, received booleans mixed among numbers"
    }
