"""A model repository on the real server (functions-framework on loopback): tritonclient
naming models and versions with binary tensors, TF Serving-style JSON and pictures, paths
that try to leave the repository, and lazy loading seen in the server's own logs.

tritonclient's traffic goes through the proxy that checks each exchange against
/openapi.json (tests/contract.py).
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests import contract
from tests.concurrency import at_once
from tests.conftest import REPO, load_or_skip
from tests.server import Server, running_server
from tests.serving.http.conftest import make_repository

EXAMPLES = REPO / "model" / "examples"
CONFIG = {"models": {"half": {"versions": "all", "labels": {"stable": 1, "canary": 2}}}}


@pytest.fixture(scope="module")
def repository(models: Path, digits_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``half`` 1 (0.5 x + 2) and 2 (0.5 x + 3), labelled; ``digits`` 1; ``broken`` 1."""
    load_or_skip(models / "half_plus_two.tflite")
    root = make_repository(
        tmp_path_factory.mktemp("repository"),
        {
            "half/1": models / "half_plus_two.tflite",
            "half/2": models / "half_plus_three.tflite",
            "digits/1": digits_model,
        },
        CONFIG,
    )
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.tflite").write_bytes(b"not a flatbuffer\n" * 8)
    return root


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[Server]:
    with running_server(MODEL_REPOSITORY=str(repository)) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    with contract.checking_proxy(server.url) as url:
        client = triton.InferenceServerClient(url=url.removeprefix("http://"))
        yield client
        client.close()


def _x(values: list[float]) -> triton.InferInput:
    tensor = triton.InferInput("x", [len(values), 1], "FP32")
    tensor.set_data_from_numpy(np.array(values, np.float32).reshape(-1, 1))  # binary
    return tensor


def _loaded(server: Server) -> list[tuple[str, int]]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    return [
        (line["model_name"], line["model_version"])
        for line in lines
        if line.get("message") == "model version loaded"
    ]


def test_ready_before_anything_loads_then_only_the_version_asked_for(server):
    assert requests.get(server.url + "/v2/health/ready", timeout=10).json() == {"ready": True}
    assert _loaded(server) == []
    answer = requests.post(
        server.url + "/v1/models/half/labels/stable:predict", json={"instances": [2.0]}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [3.0]}
    assert _loaded(server) == [("half", 1)]
    index = requests.post(server.url + "/v2/repository/index", json={"ready": True}, timeout=10)
    assert index.json() == [{"name": "half", "version": "1", "state": "READY", "reason": ""}]


def test_tritonclient_names_the_model_and_the_version(client):
    assert client.is_server_ready()
    assert client.is_model_ready("half", "1")
    assert client.get_model_metadata("half", "1")["versions"] == ["1", "2"]
    first = client.infer("half", [_x([2.0, 4.0])], model_version="1")
    assert first.get_response()["model_version"] == "1"
    np.testing.assert_array_equal(first.as_numpy("y").ravel(), [3.0, 4.0])
    latest = client.infer("half", [_x([2.0])])
    assert (latest.get_response()["model_name"], latest.get_response()["model_version"]) == (
        "half",
        "2",
    )
    np.testing.assert_array_equal(latest.as_numpy("y").ravel(), [4.0])
    index = {(e["name"], e.get("version")): e["state"] for e in client.get_model_repository_index()}
    assert index[("half", "1")] == index[("half", "2")] == "READY"
    assert index[("broken", "1")] == "UNAVAILABLE"
    with pytest.raises(InferenceServerException) as missing:
        client.infer("half", [_x([1.0])], model_version="7")
    assert "model 'half' has no version 7; it serves: 1, 2" in missing.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("nope")
    assert "the repository's models: 'broken', 'digits', 'half'" in unknown.value.message()
    for control in (client.load_model, client.unload_model):  # Triton's words, outside EXPLICIT
        with pytest.raises(InferenceServerException) as refused:
            control("half")
        assert refused.value.message().startswith("explicit model load / unload is not allowed")
    assert client.is_model_ready("half", "1")


def test_a_broken_version_is_503_naming_its_file_and_the_others_serve(client, server):
    with pytest.raises(InferenceServerException) as broken:
        client.infer("broken", [_x([1.0])])
    assert "broken/1/model.tflite" in broken.value.message()
    assert not client.is_model_ready("broken", "1")  # its last load failed
    assert client.is_model_ready("digits")  # never loaded: loads on its first request
    assert client.infer("half", [_x([0.0])], model_version="1").as_numpy("y").ravel() == [2.0]


@pytest.mark.parametrize("digit", ["0", "3", "7"])
def test_pictures_and_tf_serving_json_reach_the_version_named(server, digit):
    png = (EXAMPLES / f"{digit}.png").read_bytes()
    classified = requests.post(
        server.url + "/v1/models/digits/versions/1:classify",
        data=png,
        headers={"Content-Type": "image/png"},
        timeout=30,
    )
    assert classified.status_code == 200, classified.text
    assert classified.json()["results"][0][0][0] == digit
    body = {"instances": [{"b64": base64.b64encode(png).decode()}]}
    predicted = requests.post(server.url + "/v1/models/digits:predict", json=body, timeout=30)
    assert predicted.status_code == 200, predicted.text
    assert int(np.argmax(predicted.json()["predictions"][0])) == int(digit)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/..:predict",
        "/v1/models/../half:predict",
        "/v1/models/half/versions/..:predict",
        "/v1/models/half%2F..%2F..%2Fetc:predict",
        "/v1/models/%2Fetc%2Fpasswd/metadata",
        "/v2/models/%2E%2E/infer",
        "/v2/models//infer",
        "/v2/models/half/versions//infer",
        "/v2/models/half/versions/1%2F..%2F2/infer",
        "/v1/models/half/labels/..%5C..:predict",
        "/v1/models/C:%5Cwindows:predict",
    ],
)
def test_a_path_never_leaves_the_repository(server, path):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "POST", path, b'{"instances": [1.0]}', {"Content-Type": "application/json"}
        )
        answer = connection.getresponse()
        status, data = answer.status, answer.read()
    finally:
        connection.close()
    # The route's name rule (serving.settings.NAME_PATTERN) matches no such segment: the
    # path is refused before any name reaches the repository.
    assert status == 404, (status, data)
    assert json.loads(data)["error"].startswith("no route for /v")
    good = requests.post(
        server.url + "/v1/models/half:predict", json={"instances": [2.0]}, timeout=10
    )
    assert good.json() == {"predictions": [4.0]}


def test_a_name_that_looks_like_a_path_is_only_a_name(server):
    answer = requests.get(server.url + "/v1/models/half..x", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"].startswith("model 'half..x' not found; the repository's models:")
    long = requests.get(server.url + "/v2/models/" + "a" * 129, timeout=10)
    assert long.status_code == 400
    assert "is not one URL path segment: it must be 1-128 letters" in long.json()["error"]


def test_a_gs_repository_downloads_a_version_once_for_concurrent_first_requests(
    models, storage_emulator, tmp_path
):
    load_or_skip(models / "half_plus_two.tflite")
    files = {
        "half/1/model.tflite": (models / "half_plus_two.tflite").read_bytes(),
        "half/2/model.tflite": (models / "half_plus_three.tflite").read_bytes(),
        "models.json": json.dumps(CONFIG).encode(),
    }
    for name, data in files.items():
        storage_emulator.upload("bucket", f"repo/{name}", data)
    env = {"MODEL_CACHE_DIR": str(tmp_path / "cache"), "GCS_TIMEOUT_SECONDS": "10"}
    with running_server(MODEL_REPOSITORY="gs://bucket/repo", **env) as server:
        assert requests.get(server.url + "/v2/health/ready", timeout=30).json() == {"ready": True}
        url = server.url + "/v1/models/half/labels/stable:predict"

        def predict() -> object:
            return requests.post(url, json={"instances": [2.0]}, timeout=60)

        answers = at_once(8, predict)
        assert [a.status_code for a in answers] == [200] * 8, answers
        assert all(a.json() == {"predictions": [3.0]} for a in answers)
        assert _loaded(server) == [("half", 1)]  # one load, shared by the eight
        downloads = [
            line for line in storage_emulator.logs().splitlines() if "GET /download/" in line
        ]
        assert sum("half%2F1%2Fmodel.tflite" in line for line in downloads) == 1, downloads
        assert not any("half%2F2" in line for line in downloads)  # not asked for: not fetched
        body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]}
        latest = requests.post(server.url + "/v2/models/half/infer", json=body, timeout=30)
        assert latest.json()["model_version"] == "2"
        assert latest.json()["outputs"][0]["data"] == [4.0]
