"""V2 binary tensor data and raw quantized inputs through functions-framework's app (in-process).

Bodies are built by hand here, byte by byte from the extension's spec, so these tests do not
lean on any client library; tests/serving/protocol/test_tritonclient.py adds the real client.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.reference import reference_predict

RNG = np.random.default_rng(5)
URL = "/v2/models/model/infer"


def binary_request(header: dict, *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    """A body of ``header`` as JSON followed by ``blobs``, and the header-length header."""
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def split_response(response) -> tuple[dict, bytes]:
    """The JSON header and binary tail of a binary answer."""
    length = int(response.headers["Inference-Header-Content-Length"])
    return json.loads(response.data[:length]), response.data[length:]


def pixels_input(x: np.ndarray, datatype: str = "FP32") -> dict:
    return {
        "name": "pixels",
        "shape": list(x.shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": x.nbytes},
    }


@pytest.mark.parametrize("binary_output", [True, False])
def test_binary_fp32_input_answers_the_interpreters_outputs(models, client_for, binary_output):
    x = RNG.random((3, 8, 8, 1), dtype=np.float32)
    client = client_for(models / "int8.tflite")
    header = {
        "id": "b1",
        "inputs": [pixels_input(x)],
        "outputs": [{"name": "output_0", "parameters": {"binary_data": binary_output}}],
    }
    body, headers = binary_request(header, x.tobytes())
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    if binary_output:
        assert response.headers["Content-Type"] == "application/octet-stream"
        meta, tail = split_response(response)
        (output,) = meta["outputs"]
        assert output["parameters"] == {"binary_data_size": 3 * 10 * 4}
        assert "data" not in output
        values = np.frombuffer(tail, dtype="<f4").reshape(output["shape"])
    else:
        assert response.headers["Content-Type"] == "application/json"
        assert "Inference-Header-Content-Length" not in response.headers
        (output,) = response.json["outputs"]
        values = np.reshape(output["data"], output["shape"])
    assert (output["name"], output["datatype"], output["shape"]) == ("output_0", "FP32", [3, 10])
    np.testing.assert_allclose(values, expected, atol=1e-6)


def test_binary_data_output_applies_to_outputs_that_do_not_say(models, client_for):
    a, b = RNG.random((2, 4), dtype=np.float32), RNG.random((2, 3), dtype=np.float32)
    client = client_for(models / "multi.tflite")
    header = {
        "inputs": [
            {"name": "a", "shape": [2, 4], "datatype": "FP32", "data": a.reshape(-1).tolist()},
            {
                "name": "b",
                "shape": [2, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 24},
            },
        ],
        "outputs": [{"name": "sum"}, {"name": "scores", "parameters": {"binary_data": False}}],
        "parameters": {"binary_data_output": True},
    }
    body, headers = binary_request(header, b.tobytes())
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    meta, tail = split_response(response)
    expected = reference_predict(models / "multi.tflite", {"a": a, "b": b})
    by_name = {o["name"]: o for o in meta["outputs"]}
    assert list(by_name) == ["sum", "scores"]
    assert by_name["sum"]["parameters"] == {"binary_data_size": 16}
    np.testing.assert_allclose(np.frombuffer(tail, "<f4").reshape(2, 2), expected["sum"], rtol=1e-5)
    np.testing.assert_allclose(
        np.reshape(by_name["scores"]["data"], (2, 5)), expected["scores"], rtol=1e-5
    )


def test_raw_int8_codes_pass_through_unquantized(models, client_for):
    client = client_for(models / "int8.tflite")
    meta = client.get("/v2/models/model").json["inputs"][0]["parameters"]
    scale, zero_point = meta["scale"], meta["zero_point"]
    codes = RNG.integers(-128, 128, size=(2, 8, 8, 1), dtype=np.int8)
    body, headers = binary_request({"inputs": [pixels_input(codes, "INT8")]}, codes.tobytes())
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    # The same codes as real values: the server quantizes them back to exactly these codes.
    real = (codes.astype(np.float64) - zero_point) * scale
    expected = reference_predict(models / "int8.tflite", {"pixels": real})["output_0"]
    np.testing.assert_allclose(
        np.reshape(response.json["outputs"][0]["data"], (2, 10)), expected, atol=1e-6
    )
    as_json = {"inputs": [{**pixels_input(codes, "INT8"), "data": codes.reshape(-1).tolist()}]}
    del as_json["inputs"][0]["parameters"]
    assert client.post(URL, json=as_json).json["outputs"] == response.json["outputs"]


def test_fp16_binary_input_is_real_values(models, client_for):
    x = RNG.random((1, 8, 8, 1)).astype(np.float16)
    client = client_for(models / "int8.tflite")
    body, headers = binary_request({"inputs": [pixels_input(x, "FP16")]}, x.tobytes())
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    expected = reference_predict(models / "int8.tflite", {"pixels": x.astype(np.float32)})
    np.testing.assert_allclose(
        np.reshape(response.json["outputs"][0]["data"], (1, 10)), expected["output_0"], atol=1e-6
    )


X = np.zeros((1, 8, 8, 1), np.float32)


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}, "is 99 but the body has 14"),
        (b"{}", {"Inference-Header-Content-Length": "two"}, "must be a whole number of bytes"),
        (
            *binary_request({"inputs": [pixels_input(X)]}, X.tobytes()[:-4]),
            "input 'pixels': binary_data_size is 256 bytes but only 252 bytes",
        ),
        (
            *binary_request({"inputs": [pixels_input(X)]}, X.tobytes() + b"??"),
            "2 bytes of binary data follow the last binary input",
        ),
        (
            *binary_request({"inputs": [{**pixels_input(X), "data": [0.0] * 64}]}, X.tobytes()),
            "input 'pixels': has both 'data' and binary_data_size; send one",
        ),
        (
            *binary_request(
                {"inputs": [{**pixels_input(X), "parameters": {"binary_data_size": 128}}]},
                X.tobytes()[:128],
            ),
            r"input 'pixels': binary_data_size is 128 bytes, but shape [1, 8, 8, 1] of FP32 "
            "needs 256 bytes",
        ),
        (
            *binary_request(
                {"inputs": [{**pixels_input(X), "parameters": {"binary_data_size": "256"}}]},
                X.tobytes(),
            ),
            "input 'pixels': binary_data_size must be an integer, received a string",
        ),
        (
            *binary_request(
                {"inputs": [{**pixels_input(X), "parameters": {"binary_data_size": -1}}]}
            ),
            "input 'pixels': binary_data_size must not be negative, received -1",
        ),
        (
            *binary_request({"inputs": [pixels_input(X)], "parameters": []}, X.tobytes()),
            "'parameters' must be an object, received a list",
        ),
        (
            *binary_request(
                {"inputs": [pixels_input(X)], "parameters": {"binary_data_output": "yes"}},
                X.tobytes(),
            ),
            "parameters: binary_data_output must be true or false, received a string",
        ),
        (
            *binary_request(
                {"inputs": [pixels_input(X)], "outputs": [{"name": "output_0"}] * 2}, X.tobytes()
            ),
            "output 'output_0' is requested twice",
        ),
        (
            *binary_request({"inputs": [pixels_input(X)], "id": 7}, X.tobytes()),
            "'id' must be a string, received a number",
        ),
        (
            b'\xff\xfe{"inputs"}' + X.tobytes(),
            {"Inference-Header-Content-Length": "11"},
            "malformed JSON in inference request: not valid UTF-8 at byte 0 (0xff)",
        ),
    ],
)
def test_malformed_binary_bodies_are_400_and_the_next_request_works(
    models, client_for, body, headers, message
):
    client = client_for(models / "int8.tflite")
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 400, response.data[:300]
    assert set(response.json) == {"error"}
    assert message in response.json["error"]
    good, good_headers = binary_request({"inputs": [pixels_input(X)]}, X.tobytes())
    assert client.post(URL, data=good, headers=good_headers).status_code == 200


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([0, 2**40], "input 'pixels': 'shape' [0, 1099511627776] has a dimension outside"),
        ([1] * 80, "input 'pixels': 'shape' has 80 dimensions, at most 16"),
        (
            [0, 2**31 - 1, 2**31 - 1, 2**31 - 1],
            "input 'pixels': 'shape' [0, 2147483647, 2147483647, 2147483647] multiplies to "
            "9903520300447984150353281023 elements (zero dimensions aside), at most 2147483647",
        ),
        ([0, 2**16, 2**16], "multiplies to 4294967296 elements (zero dimensions aside)"),
        ([1, 8.0, 8, 1], "input 'pixels': 'shape' must be a list of integers"),
        ([1, True, 8, 1], "input 'pixels': 'shape' must be a list of integers"),
    ],
)
def test_hostile_shapes_are_400(models, client_for, shape, message):
    client = client_for(models / "int8.tflite")
    body = {"inputs": [{"name": "pixels", "shape": shape, "datatype": "FP32", "data": []}]}
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert message in response.json["error"]


def test_zero_size_shape_with_huge_dimensions_is_400_in_binary_too(models, client_for):
    client = client_for(models / "int8.tflite")
    tensor = {"name": "pixels", "shape": [0, 2**31 - 1, 2**31 - 1], "datatype": "FP32"}
    body, headers = binary_request(
        {"inputs": [{**tensor, "parameters": {"binary_data_size": 0}}]}, b""
    )
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 400, response.data[:300]
    assert response.json == {
        "error": "input 'pixels': 'shape' [0, 2147483647, 2147483647] multiplies to "
        "4611686014132420609 elements (zero dimensions aside), at most 2147483647"
    }


def test_datatype_that_is_not_a_string_is_400(models, client_for):
    client = client_for(models / "int8.tflite")
    body = {"inputs": [{"name": "pixels", "shape": [1], "datatype": ["FP32"], "data": [1.0]}]}
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert response.json == {
        "error": "input 'pixels': datatype [\"FP32\"] is not one of BOOL, UINT8, UINT16, UINT32, "
        "UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES"
    }
