"""TensorFlow Serving's own REST tests, adapted, on its half_plus_two / half_plus_three models.

The cases come from TF Serving's sources: ``tensorflow_model_server_test.py``
(``test*REST``), ``http_rest_api_handler_test.cc`` and the REST guide ``g3doc/api_rest.md``,
with the models of ``servables/tensorflow/testdata`` rebuilt as TFLite in
``tests/model_factory.py``: ``half_plus_two`` (``x`` [-1, 1] -> ``y = 0.5 x + 2``) served
as ``default`` version 123, ``half_plus_three`` (``x`` [-1] -> ``0.5 x + 3``) as
``saved_model_half_plus_three``. Answers are compared as JSON, exactly.

Where this server differs, the test says so: TF Serving's regress and classify signatures
parse tf.Example strings (TFLite has no such op), so here they take ``x`` directly; an
unknown path is 404 here (TF Serving: 400 "Malformed request"); version labels
(``/labels/{label}``) name a model repository's versions (test_repository_routes.py).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_or_skip

TWO = {"MODEL_NAME": "default", "MODEL_VERSION": "123"}
THREE = {"MODEL_NAME": "saved_model_half_plus_three", "MODEL_VERSION": "123"}


@pytest.fixture
def two(client_for, models):
    load_or_skip(models / "half_plus_two.tflite")  # skipped, saying why, on a too-old runtime
    return client_for(models / "half_plus_two.tflite", **TWO)


@pytest.fixture
def three(client_for, models):
    load_or_skip(models / "half_plus_three.tflite")
    return client_for(models / "half_plus_three.tflite", **THREE)


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.data)


# tensorflow_model_server_test.py


def test_predict_rest(two):
    body = {"instances": [2.0, 3.0, 4.0]}
    assert _ok(two.post("/v1/models/default:predict", json=body)) == {
        "predictions": [3.0, 3.5, 4.0]
    }


def test_predict_columnar_rest(two):
    body = {"inputs": [2.0, 3.0, 4.0]}
    assert _ok(two.post("/v1/models/default:predict", json=body)) == {"outputs": [3.0, 3.5, 4.0]}


def test_classify_rest(two):
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert _ok(two.post("/v1/models/default:classify", json=body)) == {"results": [[["", 3.0]]]}


def test_regress_rest(two):
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert _ok(two.post("/v1/models/default:regress", json=body)) == {"results": [3.0]}


def test_get_status_rest(two):
    assert _ok(two.get("/v1/models/default")) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_get_model_metadata_rest(two):
    """As ``half_plus_two_model_metadata.json``: its signatures have the same keys, dtypes,
    shapes and ``defaults``; names are the TFLite signature's (``x``, not ``x:0``)."""
    answer = _ok(two.get("/v1/models/default/metadata"))
    assert answer["model_spec"] == {"name": "default", "signature_name": "", "version": "123"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {
        "serving_default",
        "regress_x_to_y",
        "regress_x_to_y2",
        "classify_x_to_y",
    }
    column = {
        "dtype": "DT_FLOAT",
        "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}],
            "unknown_rank": False,
        },
    }
    assert signatures["serving_default"] == {
        "inputs": {"x": {**column, "name": "x"}},
        "outputs": {"y": {**column, "name": "y"}},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    assert all(s["defaults"] == {} for s in signatures.values())


# http_rest_api_handler_test.cc (its model takes any shape: "the graph decides")


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            "/v1/models/default:predict",
            {"instances": [[1.0, 2.0], [3.0, 4.0]]},
            {"predictions": [[2.5, 3.0], [3.5, 4.0]]},
        ),
        (
            "/v1/models/default/versions/123:predict",
            {"instances": [1.0, 2.0]},
            {"predictions": [2.5, 3.0]},
        ),
        (
            "/v1/models/default/versions/123:predict",
            {"signature_name": "serving_default", "instances": [3.0, 4.0]},
            {"predictions": [3.5, 4.0]},
        ),
        (
            "/v1/models/default/versions/123:predict",
            {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
            {"outputs": [3.5, 4.0]},
        ),
        # the declared shape itself, and a trailing unit dimension dropped, come back as sent
        (
            "/v1/models/default:predict",
            {"instances": [[1.0], [2.0]]},
            {"predictions": [[2.5], [3.0]]},
        ),
        (
            "/v1/models/default:regress",
            {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]},
            {"results": [42.0]},
        ),
        (
            "/v1/models/default/versions/123:regress",
            {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]},
            {"results": [42.0]},
        ),
        (
            "/v1/models/default:regress",
            {"signature_name": "regress_x_to_y2", "examples": [{"x": 80.0}, {"x": 4.0}]},
            {"results": [43.0, 5.0]},
        ),
        (
            "/v1/models/default:classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]},
            {"results": [[["", 12.0]]]},
        ),
        (
            "/v1/models/default/versions/123:classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 10.0}]},
            {"results": [[["", 7.0]]]},
        ),
    ],
)
def test_handler_predict_regress_classify(two, path, body, expected):
    assert _ok(two.post(path, json=body)) == expected


def test_handler_get_status_by_version(two):
    status = _ok(two.get("/v1/models/default/versions/123"))
    assert status["model_version_status"][0]["version"] == "123"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        # PredictModelNameVersionErrors
        ("POST", "/v1/models/foo:predict", {"instances": [1]}, 404, "model 'foo' not found"),
        ("POST", "/v1/models/foo/versions/50:predict", {"instances": [1]}, 404, "not found"),
        (
            "POST",
            "/v1/models/default99:predict",
            {"instances": [1]},
            404,
            "model 'default99' not found",
        ),
        ("POST", "/v1/models/default/versions/50:predict", {"instances": [1]}, 404, "version '50'"),
        # PredictRequestErrors
        ("POST", "/v1/models/default:predict", b"", 400, "request body is empty"),
        ("POST", "/v1/models/default:predict", b"instances = [1, 2]", 400, "malformed JSON"),
        ("POST", "/v1/models/default:predict", {"instances": ["x", "y"]}, 400, "expected numbers"),
        (
            "POST",
            "/v1/models/default:predict",
            {"signature_name": 100},
            400,
            "'signature_name' must be a string",
        ),
        # UnsupportedApiCalls: TF Serving says 400 "Malformed request"; no such route is a 404 here
        ("GET", "/v1/foo", None, 404, "no route"),
        ("POST", "/v1/foo", b"", 404, "no route"),
        ("GET", "/v1/models", None, 404, "no route"),
        ("GET", "/v1/models/default:predict", None, 405, "GET is not allowed"),
        ("POST", "/v1/models/default/metadata", b"", 405, "POST is not allowed"),
        ("POST", "/v1/models/default/version/50:regress", b"", 404, "no route"),
        # a regress or classify call the signature cannot answer
        (
            "POST",
            "/v1/models/default:regress",
            {"examples": [{"y": 1.0}]},
            400,
            "unknown input 'y'",
        ),
        ("POST", "/v1/models/default:regress", {"instances": [1.0]}, 400, "'examples'"),
        ("POST", "/v1/models/default:multi_inference", {"examples": []}, 404, "':regress'"),
    ],
)
def test_error_statuses(two, method, path, body, status, message):
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    response = two.open(path, method=method, **(kwargs if body is not None else {}))
    assert response.status_code == status, response.text
    error = json.loads(response.data)["error"]
    assert message in error, error
    assert _ok(two.post("/v1/models/default:predict", json={"instances": [2.0]})) == {
        "predictions": [3.0]
    }


def test_regress_needs_one_float_per_example(client_for, models):
    client = client_for(models / "float32.tflite")  # [batch, 10] probabilities
    response = client.post(
        "/v1/models/model:regress", json={"examples": [{"pixels": [[[0.0]] * 8] * 8}]}
    )
    assert response.status_code == 400
    assert (
        "regress needs a signature with one float output shaped [batch] or [batch, 1]"
        in (json.loads(response.data)["error"])
    )


# g3doc/api_rest.md (the half_plus_three example)


def test_rest_guide_example(three):
    name = "saved_model_half_plus_three"
    assert _ok(three.get(f"/v1/models/{name}"))["model_version_status"][0]["state"] == "AVAILABLE"
    assert _ok(three.post(f"/v1/models/{name}:predict", json={"instances": [1.0, 2.0, 5.0]})) == {
        "predictions": [3.5, 4.0, 5.5]
    }
    regress = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    assert _ok(three.post(f"/v1/models/{name}:regress", json=regress)) == {"results": [3.5, 4.0]}
    missing = three.post("/v1/models/half:predict", json={"instances": [1.0, 5.0]})
    assert missing.status_code == 404
    assert json.loads(missing.data)["error"].startswith("model 'half' not found")


def test_a_model_declared_one_dimensional_takes_rows(three):
    """``[[1.0, 2.0], [3.0, 4.0]]`` to a model declared [-1]: four values, answered in rows."""
    body = {"instances": [[1.0, 2.0], [3.0, 4.0]]}
    assert _ok(three.post("/v1/models/saved_model_half_plus_three:predict", json=body)) == {
        "predictions": [[3.5, 4.0], [4.5, 5.0]]
    }
