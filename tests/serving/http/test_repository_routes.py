"""A model repository over both protocols' routes, in-process (every exchange checked
against /openapi.json): status and readiness without loading, the version or label a path
names answering, the repository index, and each wrong name's 4xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_or_skip
from tests.serving.http.conftest import make_repository

PIXELS = [[[[0.5]] * 8] * 8]
HALF = {"models": {"half": {"versions": "all", "labels": {"stable": 1, "canary": 2}}}}


@pytest.fixture
def half(models: Path, digits_model: Path, tmp_path: Path) -> Path:
    """``half`` 1 = half_plus_two (0.5 x + 2), 2 = half_plus_three (0.5 x + 3), labelled;
    ``digits`` 1 (the bundled model, latest only)."""
    load_or_skip(models / "half_plus_two.tflite")
    return make_repository(
        tmp_path / "repository",
        {
            "half/1": models / "half_plus_two.tflite",
            "half/2": models / "half_plus_three.tflite",
            "digits/1": digits_model,
        },
        HALF,
    )


def _ok(response) -> dict | list:
    assert response.status_code == 200, response.text
    return json.loads(response.data)


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return json.loads(response.data)["error"]


def _states(client, path: str) -> dict[str, str]:
    answer = _ok(client.get(path))
    return {s["version"]: s["state"] for s in answer["model_version_status"]}


def test_each_version_and_label_answers_for_itself(repository_client_for, half):
    client = repository_client_for(half)
    x = {"instances": [2.0, 4.0]}
    assert _ok(client.post("/v1/models/half:predict", json=x)) == {"predictions": [4.0, 5.0]}
    assert _ok(client.post("/v1/models/half/versions/1:predict", json=x)) == {
        "predictions": [3.0, 4.0]
    }
    assert _ok(client.post("/v1/models/half/labels/stable:predict", json=x)) == {
        "predictions": [3.0, 4.0]
    }
    assert _ok(client.post("/v1/models/half/labels/canary:predict", json=x)) == {
        "predictions": [4.0, 5.0]
    }
    regress = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert _ok(client.post("/v1/models/half/versions/1:regress", json=regress)) == {
        "results": [3.0]
    }
    classify = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert _ok(client.post("/v1/models/half/labels/stable:classify", json=classify)) == {
        "results": [[["", 3.0]]]
    }
    meta = _ok(client.get("/v1/models/half/labels/stable/metadata"))
    assert meta["model_spec"] == {"name": "half", "signature_name": "", "version": "1"}


def test_v2_answers_name_the_version_that_answered(repository_client_for, half):
    client = repository_client_for(half)
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [2.0]}]}
    latest = _ok(client.post("/v2/models/half/infer", json=body))
    assert (latest["model_name"], latest["model_version"]) == ("half", "2")
    assert latest["outputs"][0]["data"] == [4.0]
    first = _ok(client.post("/v2/models/half/versions/1/infer", json=body))
    assert (first["model_name"], first["model_version"]) == ("half", "1")
    assert first["outputs"][0]["data"] == [3.0]
    meta = _ok(client.get("/v2/models/half/versions/1"))
    assert (meta["name"], meta["versions"]) == ("half", ["1", "2"])
    assert _ok(client.get("/v2/models/digits"))["versions"] == ["1"]


def test_status_lists_every_version_of_the_policy_and_loads_nothing(repository_client_for, half):
    client = repository_client_for(half)
    assert _states(client, "/v1/models/half") == {"1": "START", "2": "START"}
    assert _ok(client.get("/v2/health/ready")) == {"ready": True}  # listed: nothing loads
    assert _ok(client.get("/v2/models/half/versions/1/ready")) == {"name": "half", "ready": True}
    assert _states(client, "/v1/models/half") == {"1": "START", "2": "START"}
    _ok(client.post("/v1/models/half/labels/stable:predict", json={"instances": [1.0]}))
    assert _states(client, "/v1/models/half") == {"1": "AVAILABLE", "2": "START"}
    assert _states(client, "/v1/models/half/versions/2") == {"2": "START"}
    assert _states(client, "/v1/models/half/labels/stable") == {"1": "AVAILABLE"}
    assert _states(client, "/v1/models/digits") == {"1": "START"}  # the other model too


def test_the_repository_index_in_triton_states(repository_client_for, half):
    client = repository_client_for(half)
    not_loaded = "not loaded yet: the first request for it loads it"
    everything = [
        {"name": "digits", "version": "1", "state": "UNAVAILABLE", "reason": not_loaded},
        {"name": "half", "version": "1", "state": "UNAVAILABLE", "reason": not_loaded},
        {"name": "half", "version": "2", "state": "UNAVAILABLE", "reason": not_loaded},
    ]
    assert _ok(client.post("/v2/repository/index", json={})) == everything
    assert _ok(client.post("/v2/repository/index", data=b"")) == everything  # tritonclient's
    assert _ok(client.post("/v2/repository/index", json={"ready": True})) == []
    _ok(client.post("/v1/models/half/versions/2:predict", json={"instances": [1.0]}))
    assert _ok(client.post("/v2/repository/index", json={"ready": True})) == [
        {"name": "half", "version": "2", "state": "READY", "reason": ""}
    ]
    assert _ok(client.post("/v2/repository/index", json={"ready": False})) == [
        everything[0],
        everything[1],
        {"name": "half", "version": "2", "state": "READY", "reason": ""},
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "repository index request is not JSON"),
        (b"[]", 'must be a JSON object such as {"ready": true}, received list'),
        (b'{"ready": true, "all": 1}', "unknown key 'all'; the only key is 'ready'"),
        (b'{"ready": "yes"}', "'ready' must be true or false, received 'yes'"),
    ],
)
def test_a_bad_index_request_is_400(repository_client_for, digits_repository, body, message):
    client = repository_client_for(digits_repository)
    assert message in _error(client.post("/v2/repository/index", data=body), 400)
    assert len(_ok(client.post("/v2/repository/index", json={}))) == 2


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v1/models/nope", 404, "model 'nope' not found; the repository's models: "),
        ("POST", "/v2/models/nope/infer", 404, "the repository's models: 'digits', 'half'"),
        (
            "GET",
            "/v1/models/half/versions/3",
            404,
            "model 'half' has no version 3; it serves: 1, 2",
        ),
        ("GET", "/v2/models/half/versions/9/ready", 404, "it serves: 1, 2"),
        (
            "GET",
            "/v1/models/digits/labels/stable",
            404,
            "model 'digits' has no label 'stable'; its labels: none",
        ),
        ("POST", "/v1/models/half/labels/beta:predict", 404, "its labels: 'stable', 'canary'"),
        ("GET", "/v1/models/half/versions/01", 400, "version '01' is not a positive integer"),
        ("GET", "/v2/models/half/versions/two", 400, "version 'two' is not a positive integer"),
        ("POST", "/", 404, "name the model in the path"),
        ("POST", "/v1/models/half:explain", 404, "':explain' is not supported"),
        ("GET", "/v1/models/half/labels", 404, "no route"),
    ],
)
def test_wrong_names_are_4xx_naming_what_exists(
    repository_client_for, half, method, path, status, message
):
    client = repository_client_for(half)
    kwargs = {"json": {"instances": [1.0]}} if method == "POST" else {}
    assert message in _error(client.open(path, method=method, **kwargs), status)
    _ok(client.post("/v1/models/half:predict", json={"instances": [1.0]}))  # still serving


def test_a_broken_version_is_not_ready_and_the_others_serve(repository_client_for, half):
    (half / "half" / "3").mkdir()
    (half / "half" / "3" / "model.tflite").write_bytes(b"not a flatbuffer\n" * 8)
    client = repository_client_for(half)
    assert _ok(client.get("/v2/models/half/ready")) == {"name": "half", "ready": True}  # START
    error = _error(client.post("/v1/models/half:predict", json={"instances": [1.0]}), 503)
    assert "half/3/model.tflite" in error
    ready = _error(client.get("/v2/models/half/versions/3/ready"), 503)
    assert ready.startswith("model 'half' version 3 is not ready: its last load failed: ")
    assert ready.endswith("; the next inference request loads it again")
    assert _error(client.get("/v2/models/half/ready"), 503) == ready  # 3 is the highest
    assert _states(client, "/v1/models/half/versions/3") == {"3": "END"}
    (index,) = [e for e in _ok(client.post("/v2/repository/index")) if e.get("version") == "3"]
    assert index["state"] == "UNAVAILABLE"
    assert "half/3/model.tflite" in index["reason"]
    assert _ok(client.post("/v1/models/half/versions/1:predict", json={"instances": [2.0]})) == {
        "predictions": [3.0]
    }
    assert _ok(client.get("/v2/models/half/versions/1/ready"))["ready"] is True


def test_an_unusable_models_json_is_503_naming_the_file_and_nothing_is_ready(
    repository_client_for, tmp_path, digits_model
):
    root = make_repository(
        tmp_path / "repository",
        {"digits/1": digits_model},
        {"models": {"digits": {"labels": {"stable": 4}}}},
    )
    client = repository_client_for(root)
    expected = (
        "models.json: models.digits.labels.stable: expected one of the versions its policy "
        "serves (1), received 4"
    )
    error = _error(client.post("/v1/models/digits:predict", json={"instances": PIXELS}), 503)
    assert error.endswith(expected)
    assert _error(client.get("/v1/models/digits"), 503).endswith(expected)
    (index,) = _ok(client.post("/v2/repository/index"))
    assert index["name"] == "digits"
    assert "version" not in index
    assert index["reason"].endswith(expected)
    (root / "models.json").write_text("{")
    broken = repository_client_for(root)
    assert "models.json" in _error(broken.get("/v2/health/ready"), 503)


def test_a_label_in_single_model_mode_is_404_saying_what_labels_need(client_for, digits_model):
    client = client_for(digits_model)
    message = _error(client.get("/v1/models/model/labels/stable"), 404)
    assert message == (
        "version label 'stable' not found; labels name versions of a model repository "
        "(MODEL_REPOSITORY, docs/repository.md), and this server serves one model, 'model' "
        "version '1'"
    )
    (index,) = _ok(client.post("/v2/repository/index", json={}))
    assert (index["name"], index["version"]) == ("model", "1")
    _ok(client.post("/v1/models/model:predict", json={"instances": PIXELS}))
    assert _ok(client.post("/v2/repository/index", json={"ready": True})) == [
        {"name": "model", "version": "1", "state": "READY", "reason": ""}
    ]


def test_requests_are_admitted_within_the_repositorys_request_budget(
    repository_client_for, digits_repository
):
    """Two workers split one JSON request at the body limit: a body over half of it would
    need more than this worker's budget, and is refused before it is decoded."""
    client = repository_client_for(
        digits_repository, WORKERS="2", MAX_REQUEST_BYTES="400000", MEMORY_LIMIT_BYTES=str(2**30)
    )
    budget = 20 * 400000 // 2
    padded = json.dumps({"instances": PIXELS}).ljust(300000).encode()  # costs 20 x 300000
    error = _error(
        client.post(
            "/v1/models/digits:predict", data=padded, headers={"Content-Type": "application/json"}
        ),
        413,
    )
    assert f"more than this process's request budget of {budget} bytes" in error
    small = json.dumps({"instances": PIXELS}).ljust(150000).encode()
    _ok(
        client.post(
            "/v1/models/digits:predict", data=small, headers={"Content-Type": "application/json"}
        )
    )


@pytest.mark.parametrize("action", ["load", "unload"])
def test_tritons_explicit_load_and_unload_are_refused_in_its_words_and_change_nothing(
    repository_client_for, half, action
):
    client = repository_client_for(half)
    assert _ok(client.post("/v1/models/half:predict", json={"instances": [1.0]}))
    before = _ok(client.post("/v2/repository/index", json={}))
    assert _error(client.post(f"/v2/repository/models/half/{action}", data=b""), 400) == (
        "explicit model load / unload is not allowed: this server loads a version on its "
        "first request and unloads idle versions when memory runs short (docs/repository.md); "
        "to load 'half', send it a request"
    )
    assert _ok(client.post("/v2/repository/index", json={})) == before
