"""NVIDIA's tritonclient, the reference Open Inference Protocol client, on the real server.

tritonclient sends inputs and asks for outputs as binary tensor data by default, and can
compress requests; every combination must return the interpreter's own outputs. Its traffic
goes through a proxy that checks each exchange against /openapi.json (tests/contract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests import contract
from tests.reference import reference_predict
from tests.server import Server, running_server

RNG = np.random.default_rng(23)


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[Server]:
    with running_server(models / "int8.tflite", INTERPRETER_POOL_SIZE="2") as running:
        yield running


@pytest.fixture(scope="module")
def checked_url(server: Server) -> Iterator[str]:
    with contract.checking_proxy(server.url) as url:
        yield url


@pytest.fixture
def client(checked_url: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=checked_url.removeprefix("http://"))
    yield client
    client.close()


def pixels(x: np.ndarray, datatype: str = "FP32", *, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("pixels", list(x.shape), datatype)
    tensor.set_data_from_numpy(x, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_each_combination_of_binary_and_json(models, client, binary_in, binary_out):
    x = RNG.random((2, 8, 8, 1), dtype=np.float32)
    result = client.infer(
        "model",
        [pixels(x, binary=binary_in)],
        outputs=[triton.InferRequestedOutput("output_0", binary_data=binary_out)],
        request_id="combo",
    )
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(result.as_numpy("output_0"), expected, atol=1e-6)
    response = result.get_response()
    assert response["id"] == "combo"
    (output,) = response["outputs"]
    assert ("parameters" in output) == binary_out  # binary_data_size only on binary outputs


def test_defaults_with_no_outputs_named(models, client):
    """No outputs named: tritonclient asks for binary_data_output, and gets every output."""
    x = RNG.random((1, 8, 8, 1), dtype=np.float32)
    result = client.infer("model", [pixels(x)])
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(result.as_numpy("output_0"), expected, atol=1e-6)
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 40


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(models, client, algorithm):
    x = RNG.random((3, 8, 8, 1), dtype=np.float32)
    result = client.infer(
        "model", [pixels(x)], request_compression_algorithm=algorithm, model_version="1"
    )
    expected = reference_predict(models / "int8.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(result.as_numpy("output_0"), expected, atol=1e-6)


def test_raw_int8_codes(models, client):
    meta = client.get_model_metadata("model")["inputs"][0]["parameters"]
    codes = RNG.integers(-128, 128, size=(2, 8, 8, 1), dtype=np.int8)
    result = client.infer("model", [pixels(codes, "INT8")])
    real = (codes.astype(np.float64) - meta["zero_point"]) * meta["scale"]
    expected = reference_predict(models / "int8.tflite", {"pixels": real})["output_0"]
    np.testing.assert_allclose(result.as_numpy("output_0"), expected, atol=1e-6)


def test_fp16_input(models, client):
    x = RNG.random((1, 8, 8, 1)).astype(np.float16)
    result = client.infer("model", [pixels(x, "FP16")])
    expected = reference_predict(models / "int8.tflite", {"pixels": x.astype(np.float32)})
    np.testing.assert_allclose(result.as_numpy("output_0"), expected["output_0"], atol=1e-6)


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("model")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("model")
    # BYTES: the input is shaped like pictures, so it also takes encoded pictures.
    assert meta["inputs"][0]["parameters"]["accepted_datatypes"] == [
        "FP32",
        "FP16",
        "INT8",
        "BYTES",
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda x: pixels(x.astype(np.float64), "FP64"),
            "input 'pixels': datatype FP64 is not accepted; "
            "expected FP32 or FP16 (real values) or INT8 (quantized codes)",
        ),
        (
            lambda x: pixels(x[:, :4]),
            "input 'pixels': expected shape [-1, 8, 8, 1], received [1, 4, 8, 1]",
        ),
    ],
)
def test_errors_reach_the_client_with_their_message(client, make, message):
    x = RNG.random((1, 8, 8, 1), dtype=np.float32)
    with pytest.raises(InferenceServerException) as raised:
        client.infer("model", [make(x)])
    assert message in str(raised.value)
    assert raised.value.status() == "400"
    assert client.infer("model", [pixels(x)]).as_numpy("output_0").shape == (1, 10)


def test_bytes_pictures_and_classification_on_the_digits_model(digits_model: Path):
    """An encoded digit as BYTES (binary), answered as the classification extension's top 3."""
    from tests.serving.protocol.test_classify import digit_png

    with running_server(digits_model) as digits, contract.checking_proxy(digits.url) as url:
        client = triton.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            assert "classification" in client.get_server_metadata()["extensions"]
            pictures = [digit_png(index) for index in (0, 7)]
            tensor = triton.InferInput("pixels", [2], "BYTES")
            tensor.set_data_from_numpy(np.array([png for png, _ in pictures], dtype=object))
            wanted = triton.InferRequestedOutput("probabilities", class_count=3)
            result = client.infer("model", [tensor], outputs=[wanted])
            top = result.as_numpy("probabilities")
            assert top.shape == (2, 3)
            for row, (_, digit) in zip(top, pictures, strict=True):
                score, index, label = row[0].decode().split(":")
                assert (index, label) == (str(digit), str(digit))
                assert float(score) > 0.5
        finally:
            client.close()
