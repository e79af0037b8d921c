"""Several signatures in one model, served by name in both protocols (in-process app).

two_signatures.tflite (tests/model_factory.py): ``serving_default`` (``x`` -> ``plus_one``,
x + 1) and ``scale`` (``a`` -> ``scaled`` 3a and ``total`` row sums). The converter puts
``scale`` on the main subgraph, so the default signature runs through a signature runner.
"""

from __future__ import annotations

import numpy as np
import pytest

X = [[1.0, 2.0, 3.0]]
A = [[1.0, 2.0], [3.0, 4.0]]


@pytest.fixture
def client(models, client_for):
    return client_for(models / "two_signatures.tflite")


def test_tf_serving_picks_the_signature_by_name(client):
    default = client.post("/v1/models/model:predict", json={"instances": X})
    assert default.status_code == 200, default.json
    assert default.json == {"predictions": [[2.0, 3.0, 4.0]]}
    named = client.post(
        "/v1/models/model:predict", json={"signature_name": "scale", "inputs": {"a": A}}
    )
    assert named.status_code == 200, named.json
    assert named.json == {"outputs": {"scaled": [[3.0, 6.0], [9.0, 12.0]], "total": [[3.0], [7.0]]}}
    explicit = {"signature_name": "serving_default", "instances": X}
    assert client.post("/v1/models/model:predict", json=explicit).json == default.json


def test_v2_serves_the_default_and_a_named_signature(client):
    x = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": X[0]}
    default = client.post("/v2/models/model/infer", json={"inputs": [x]})
    assert default.status_code == 200, default.json
    assert default.json["outputs"][0]["data"] == [2.0, 3.0, 4.0]
    a = {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}
    named = client.post(
        "/v2/models/model/infer",
        json={
            "inputs": [a],
            "parameters": {"signature_name": "scale"},
            "outputs": [{"name": "total"}],
        },
    )
    assert named.status_code == 200, named.json
    (total,) = named.json["outputs"]
    assert (total["name"], total["shape"], total["data"]) == ("total", [2, 1], [3.0, 7.0])


def test_signatures_alternate_on_the_same_interpreters(client):
    """Runner and main-subgraph calls interleaved on one pooled interpreter stay correct."""
    for _ in range(3):
        main = client.post(
            "/v1/models/model:predict", json={"signature_name": "scale", "inputs": {"a": A}}
        )
        assert main.status_code == 200, main.json
        other = client.post("/v1/models/model:predict", json={"instances": X})
        assert other.json == {"predictions": [[2.0, 3.0, 4.0]]}


def test_metadata_lists_every_signature(client):
    defs = client.get("/v1/models/model/metadata").json["metadata"]["signature_def"]
    assert set(defs["signature_def"]) == {"serving_default", "scale"}
    scale = defs["signature_def"]["scale"]
    assert set(scale["inputs"]) == {"a"}
    assert set(scale["outputs"]) == {"scaled", "total"}
    v2 = client.get("/v2/models/model").json
    assert [t["name"] for t in v2["inputs"]] == ["x"]  # the default signature
    assert set(v2["parameters"]["signatures"]) == {"serving_default", "scale"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/models/model:predict", {"signature_name": "nope", "instances": X}),
        (
            "/v2/models/model/infer",
            {
                "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": X[0]}],
                "parameters": {"signature_name": "nope"},
            },
        ),
    ],
)
def test_an_unknown_signature_is_400_naming_the_known_ones(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert response.json == {
        "error": "unknown signature 'nope'; the model's signatures are: 'serving_default', 'scale'"
    }


def test_inputs_of_another_signature_are_named_in_the_error(client):
    response = client.post("/v1/models/model:predict", json={"inputs": {"a": A}})
    assert response.status_code == 400
    assert response.json == {"error": "unknown input 'a'; the model's inputs are: x"}


def test_python_api_runs_each_signature(models):
    from serving import Model

    with Model.load(models / "two_signatures.tflite") as model:
        assert [s.key for s in model.signatures] == ["serving_default", "scale"]
        out = model.predict({"a": np.asarray(A, np.float32)}, "scale")
        np.testing.assert_array_equal(out["total"], [[3.0], [7.0]])
        np.testing.assert_array_equal(
            model.predict({"x": np.asarray(X, np.float32)})["plus_one"], [[2.0, 3.0, 4.0]]
        )
