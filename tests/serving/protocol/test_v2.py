"""Open Inference Protocol (KServe V2) JSON through functions-framework's app (in-process)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference import reference_predict

RNG = np.random.default_rng(11)


def tensor(name, array, datatype="FP32", flat=True):
    data = array.reshape(-1).tolist() if flat else array.tolist()
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


@pytest.mark.parametrize("flat", [True, False])
def test_infer_flat_or_nested_data_echoes_the_id(models, client_for, flat):
    x = RNG.random((2, 8, 8, 1), dtype=np.float32)
    client = client_for(models / "int8.tflite")
    body = {"id": "req-1", "inputs": [tensor("pixels", x, flat=flat)]}
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 200, response.json
    out = response.json
    assert (out["model_name"], out["model_version"], out["id"]) == ("model", "1", "req-1")
    (output,) = out["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output_0", "FP32", [2, 10])
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(np.reshape(output["data"], (2, 10)), expected, atol=1e-6)


def test_infer_two_inputs_and_requested_outputs(models, client_for):
    a, b = RNG.random((3, 4), dtype=np.float32), RNG.random((3, 3), dtype=np.float32)
    expected = reference_predict(models / "multi.tflite", {"a": a, "b": b})
    client = client_for(models / "multi.tflite")
    body = {"inputs": [tensor("a", a), tensor("b", b)]}
    response = client.post("/v2/models/model/versions/1/infer", json=body)
    assert response.status_code == 200, response.json
    assert "id" not in response.json
    assert {o["name"] for o in response.json["outputs"]} == {"sum", "scores"}

    body["outputs"] = [{"name": "sum"}]
    (only,) = client.post("/v2/models/model/infer", json=body).json["outputs"]
    assert only["name"] == "sum"
    assert only["shape"] == [3, 2]
    np.testing.assert_allclose(np.reshape(only["data"], (3, 2)), expected["sum"], rtol=1e-5)


def test_health_and_metadata(models, client_for):
    client = client_for(models / "int8.tflite", MODEL_NAME="digits")
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert client.get("/v2/models/digits/ready").json == {"name": "digits", "ready": True}
    assert client.get("/v2").json["extensions"] == [
        "binary_tensor_data",
        "classification",
        "model_repository",  # the index answers for the one model too
    ]
    meta = client.get("/v2/models/digits").json
    assert meta["name"] == "digits"
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "tensorflow_lite"
    (pixels,) = meta["inputs"]
    assert (pixels["name"], pixels["datatype"], pixels["shape"]) == (
        "pixels",
        "FP32",
        [-1, 8, 8, 1],
    )
    assert pixels["parameters"]["quantized_datatype"] == "INT8"
    assert pixels["parameters"]["accepted_datatypes"] == [
        "FP32",
        "FP16",
        "INT8",
        "BYTES",
    ]  # BYTES: pictures
    assert list(meta["parameters"]["signatures"]) == ["serving_default"]
    assert meta["outputs"][0]["shape"] == [-1, 10]
    assert meta["parameters"]["backend"] in ("litert", "tflite_runtime", "tensorflow")


def test_live_does_not_load_but_ready_does(tmp_path, models, client_for):
    path = tmp_path / "m.tflite"
    client = client_for(path)
    assert client.get("/v2/health/live").status_code == 200
    response = client.get("/v2/health/ready")
    assert response.status_code == 503
    assert response.json == {"error": f"model file not found: {path}"}
    path.write_bytes((models / "int8.tflite").read_bytes())
    response = client.get("/v2/health/ready")
    assert response.status_code == 200
    assert "load;dur=" in response.headers["Server-Timing"]


PIXELS = {"name": "pixels", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [0.0] * 64}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"inputs": []}, 400, "'inputs' must be a non-empty list of tensors"),
        ({"input": [PIXELS]}, 400, "'inputs' must be a non-empty list"),
        ({"inputs": [{"shape": [1]}]}, 400, "inputs[0] must be an object with a string 'name'"),
        (
            {"inputs": [{**PIXELS, "datatype": "BYTES"}]},
            400,
            # A picture input takes BYTES (encoded pictures), as strings.
            "input 'pixels': BYTES data must be strings",
        ),
        (
            {"inputs": [{**PIXELS, "datatype": "FP64"}]},
            400,
            "input 'pixels': datatype FP64 is not accepted; "
            "expected FP32 or FP16 (real values) or INT8 (quantized codes)",
        ),
        (
            {"inputs": [{**PIXELS, "datatype": "fp32"}]},
            400,
            "input 'pixels': datatype 'fp32' is not one of BOOL, UINT8,",
        ),
        (
            {"inputs": [{k: v for k, v in PIXELS.items() if k != "shape"}]},
            400,
            "input 'pixels': missing 'shape'",
        ),
        (
            {"inputs": [{**PIXELS, "shape": [1, 8, 8, 2]}]},
            400,
            "input 'pixels': 'data' has 64 values, shape [1, 8, 8, 2] needs 128",
        ),
        (
            {"inputs": [{**PIXELS, "shape": [8, 8, 1]}]},
            400,
            "input 'pixels': expected shape [-1, 8, 8, 1], received [8, 8, 1]",
        ),
        (
            {"inputs": [{**PIXELS, "shape": [1, -8, 8, 1]}]},
            400,
            "input 'pixels': 'shape' [1, -8, 8, 1] has a dimension outside [0, 2147483647]",
        ),
        (
            {"inputs": [{**PIXELS, "datatype": "INT8", "data": [0.5] * 64}]},
            400,
            "input 'pixels': expected whole numbers for int8",
        ),
        (
            {"inputs": [{**PIXELS, "datatype": "INT8", "data": [300] * 64}]},
            400,
            "input 'pixels': values out of range for int8",
        ),
        ({"inputs": [{**PIXELS, "data": ["a"] * 64}]}, 400, "expected numbers, received strings"),
        ({"inputs": [PIXELS, PIXELS]}, 400, "input 'pixels' is given twice"),
        ({"inputs": [{**PIXELS, "name": "x"}]}, 400, "unknown input 'x'"),
        (
            {"inputs": [PIXELS], "outputs": [{"name": "probs"}]},
            400,
            "unknown output 'probs'; the model's outputs are: output_0",
        ),
    ],
)
def test_infer_errors(models, client_for, body, status, message):
    client = client_for(models / "int8.tflite")
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == status
    assert set(response.json) == {"error"}
    assert message in response.json["error"]
    assert client.post("/v2/models/model/infer", json={"inputs": [PIXELS]}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/models/other", 404),
        ("GET", "/v2/models/model/versions/9/ready", 404),
        ("POST", "/v2/health/live", 405),
        ("GET", "/v2/models/model/infer", 405),
        ("HEAD", "/v2/health/live", 200),
        ("GET", "/v2/health/live/", 200),
    ],
)
def test_routes(models, client_for, method, path, status):
    response = client_for(models / "int8.tflite").open(path, method=method)
    assert response.status_code == status
    if status == 405:
        assert response.headers["Allow"]


@pytest.mark.parametrize(
    "tensor",
    [
        {**PIXELS, "name": "image", "data": [0.5] * 10},  # and a wrong size
        {**PIXELS, "name": "image", "shape": [8, 8]},  # and a wrong shape
        {**PIXELS, "name": "image", "datatype": "FP64"},  # and a wrong datatype
        {"name": "image", "shape": [1], "datatype": "BYTES", "data": ["aGVsbG8="]},
        {"name": "image", "shape": [1], "datatype": "FP32"},  # and no data
    ],
)
def test_a_wrong_name_is_reported_before_anything_else_wrong(models, client_for, tensor):
    """The name is the first thing to fix: a size checked against an input the model does
    not have would send the client after the wrong mistake."""
    response = client_for(models / "int8.tflite").post(
        "/v2/models/model/infer", json={"inputs": [tensor]}
    )
    assert response.status_code == 400
    assert response.json == {"error": "unknown input 'image'; the model's inputs are: pixels"}


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            {**PIXELS, "shape": {"rows": True}},
            "input 'pixels': 'shape' must be a list of integers, received {\"rows\":true}",
        ),
        (
            {**PIXELS, "shape": [1, 8.5, None]},
            "input 'pixels': 'shape' must be a list of integers, received [1,8.5,null]",
        ),
        (
            {**PIXELS, "datatype": None},
            "input 'pixels': datatype null is not one of BOOL, UINT8, UINT16, UINT32, UINT64, "
            "INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES",
        ),
    ],
)
def test_values_in_messages_are_json_not_python(models, client_for, tensor, message):
    response = client_for(models / "int8.tflite").post(
        "/v2/models/model/infer", json={"inputs": [tensor]}
    )
    assert response.status_code == 400
    assert response.json == {"error": message}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{oops", "unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (b'{"inputs": "\xff"}', "not valid UTF-8 at byte 12 (0xff)"),
    ],
)
def test_malformed_json_is_named_once(models, client_for, body, reason):
    response = client_for(models / "int8.tflite").post(
        "/v2/models/model/infer", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json == {"error": f"malformed JSON in inference request: {reason}"}


def test_booleans_among_numbers_are_400(models, client_for):
    client = client_for(models / "int8.tflite")
    data = [0.5] * 63 + [True]
    body = {"inputs": [{**PIXELS, "data": data}], "parameters": {"binary_data_output": False}}
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 400
    assert response.json == {
        "error": "input 'pixels': expected numbers, received booleans mixed among numbers"
    }
