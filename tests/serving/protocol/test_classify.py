"""Labels out: TF Serving :classify and the V2 classification extension, end to end in-process."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from serving.errors import BadRequest
from serving.model import TensorSpec
from serving.protocol import classify
from tests.reference import reference_predict

RNG = np.random.default_rng(43)


def digit_png(index: int) -> tuple[bytes, int]:
    """Digit ``index`` of scikit-learn's digits as an 8x8 grey PNG (white ink on black)."""
    digits = load_digits()
    pixels = np.round(digits.images[index] * 255 / 16).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    return buffer.getvalue(), int(digits.target[index])


def test_raw_png_classify_answers_the_digit_label(client_for, digits_model):
    client = client_for(digits_model)
    for index in (0, 1, 7):
        png, digit = digit_png(index)
        response = client.post("/v1/models/model:classify", data=png, content_type="image/png")
        assert response.status_code == 200, response.json
        (result,) = response.json["results"]
        assert len(result) == 5
        assert result[0][0] == str(digit)
        scores = [score for _, score in result]
        assert scores == sorted(scores, reverse=True)


def test_examples_top_k_and_scores_equal_predict(client_for, digits_model):
    client = client_for(digits_model)
    x = RNG.random((3, 8, 8, 1), dtype=np.float32)
    (expected,) = reference_predict(digits_model, {"pixels": x}).values()
    body = {"examples": [{"pixels": row.tolist()} for row in x], "top_k": 3}
    response = client.post("/v1/models/model/versions/1:classify", json=body)
    assert response.status_code == 200, response.json
    for result, scores in zip(response.json["results"], expected, strict=True):
        order = np.argsort(-scores, kind="stable")[:3]
        assert [label for label, _ in result] == [str(i) for i in order]
        np.testing.assert_allclose([s for _, s in result], scores[order], atol=1e-6)
    response = client.post("/v1/models/model:classify?top_k=2", json={"examples": body["examples"]})
    assert [len(r) for r in response.json["results"]] == [2, 2, 2]
    png, _ = digit_png(3)
    response = client.post(
        "/v1/models/model:classify",
        json={"examples": [{"pixels": {"b64": base64.b64encode(png).decode()}}], "top_k": 50},
    )
    assert len(response.json["results"][0]) == 10  # at most every class


def test_without_labels_the_label_is_empty_as_in_tf_serving(client_for, models, tmp_path):
    path = models / "float32.tflite"
    x = RNG.random((1, 8, 8, 1), dtype=np.float32)
    scores = reference_predict(path, {"pixels": x})["output_0"][0]
    body = {"examples": [{"pixels": x[0].tolist()}], "top_k": 1}
    response = client_for(path).post("/v1/models/model:classify", json=body)
    assert response.json["results"] == [[["", pytest.approx(scores.max())]]]
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(10)))
    response = client_for(path, LABELS_PATH=str(labels)).post(
        "/v1/models/model:classify", json=body
    )
    assert response.json["results"][0][0][0] == f"class {int(np.argmax(scores))}"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            ":classify?top_k=0",
            {"examples": [{"pixels": [[[0]] * 8] * 8}]},
            400,
            "query: top_k must",
        ),
        (":classify", {"examples": [], "top_k": 2}, 400, "'examples' must be a non-empty list"),
        (":classify", {"examples": [{}], "top_k": True}, 400, "body: top_k must be a positive"),
        (":classify?top_k=2", {"examples": [{}], "top_k": 3}, 400, "top_k is 3 in the body but 2"),
        (":classify", {"instances": []}, 400, "classify takes a JSON object with 'examples'"),
        (":regress", {"examples": [{}]}, 400, "regress needs a signature with one float output"),
        (":multi_inference", {"examples": []}, 404, "':multi_inference' is not supported"),
    ],
)
def test_classify_errors(client_for, path, body, status, message, digits_model):
    response = client_for(digits_model).post(f"/v1/models/model{path}", json=body)
    assert response.status_code == status
    assert message in response.json["error"]


def test_classify_needs_one_class_output(client_for, models):
    body = {"examples": [{"a": [0.0] * 4, "b": [0.0] * 3}]}
    response = client_for(models / "multi.tflite").post("/v1/models/model:classify", json=body)
    assert response.status_code == 400
    assert "classify needs exactly one output shaped [batch, classes]" in response.json["error"]
    assert "use :predict" in response.json["error"]


def test_v2_classification_extension(client_for, models, digits_model):
    client = client_for(digits_model)
    x = RNG.random((2, 8, 8, 1), dtype=np.float32)
    (expected,) = reference_predict(digits_model, {"pixels": x}).values()
    body = {
        "inputs": [
            {
                "name": "pixels",
                "shape": [2, 8, 8, 1],
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}],
    }
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 200, response.json
    (output,) = response.json["outputs"]
    assert (output["datatype"], output["shape"]) == ("BYTES", [2, 2])
    for r, scores in enumerate(expected):
        order = np.argsort(-scores, kind="stable")[:2]
        want = [f"{scores[i]:f}:{i}:{i}" for i in order]
        assert output["data"][2 * r : 2 * r + 2] == want
    unlabelled = client_for(models / "float32.tflite")
    body["outputs"] = [{"name": "output_0", "parameters": {"classification": 1}}]
    response = unlabelled.post("/v2/models/model/infer", json=body)
    (text,) = response.json["outputs"][0]["data"][:1]
    assert text.count(":") == 1  # "score:index" without labels


@pytest.mark.parametrize(
    ("classification", "message"),
    [
        (0, "output 'output_0': classification must be at least 1, received 0"),
        ("3", "output 'output_0': classification must be an integer, received a string"),
    ],
)
def test_v2_classification_errors(client_for, models, classification, message):
    body = {
        "inputs": [
            {"name": "pixels", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [0.0] * 64}
        ],
        "outputs": [{"name": "output_0", "parameters": {"classification": classification}}],
    }
    response = client_for(models / "float32.tflite").post("/v2/models/model/infer", json=body)
    assert response.status_code == 400
    assert message in response.json["error"]


def test_classification_needs_a_class_output():
    spec = TensorSpec("heatmap", 3, np.dtype(np.float32), (-1, 4, 4))
    with pytest.raises(BadRequest) as raised:
        classify.check_request(spec, 1, what="output 'heatmap'")
    assert str(raised.value) == (
        "output 'heatmap': classification needs an output shaped [batch, classes]; "
        "this output is [-1, 4, 4]"
    )


@pytest.mark.parametrize(
    ("top_k", "shown"), [(True, "true"), (None, "null"), ("three", "'three'"), (2.5, "2.5")]
)
def test_a_top_k_that_is_no_positive_integer_is_shown_as_sent(client_for, models, top_k, shown):
    body = {"examples": [{"pixels": [[[0]] * 8] * 8}], "top_k": top_k}
    response = client_for(models / "int8.tflite").post("/v1/models/model:classify", json=body)
    assert response.status_code == 400
    assert response.json == {"error": f"body: top_k must be a positive integer, received {shown}"}


def test_booleans_among_numbers_in_examples_are_400(client_for, digits_model):
    client = client_for(digits_model)
    body = {"examples": [{"pixels": [[[0.5]] * 7 + [[True]]] * 8}]}
    response = client.post("/v1/models/model:classify", json=body)
    assert response.status_code == 400
    assert response.json == {
        "error": "input 'pixels': expected numbers, received booleans mixed among numbers"
    }
