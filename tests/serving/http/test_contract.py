"""The OpenAPI contract at /openapi.json, and schemathesis fuzzing the live server against it.

The fuzz test runs the schemathesis CLI (requirements-dev.txt, so the dev environment
of ``make pytest``) against the real server on a loopback port: a fixed number of examples
per operation, a fixed seed, a time limit. The 3.12/3.13 and legacy runs install only
``requirements-test.txt``; there the fuzz test is skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

from serving.http import openapi, routes
from serving.http.endpoints import server_version
from tests.server import Server, running_server

MAX_EXAMPLES = 30
SEED = 11
TIME_LIMIT = 150  # seconds for the whole schemathesis run; it takes about 20 on 2 cores
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "unsupported_method",
)
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def _schemathesis() -> Path:
    """The schemathesis CLI beside this interpreter; skip (saying why) where it is absent."""
    pytest.importorskip(
        "schemathesis",
        reason="schemathesis is a dev-only tool (requirements-dev.txt): the fuzz test runs "
        "in .venv (make pytest), not in the 3.12/3.13/legacy runtime environments",
    )
    found = Path(sys.executable).with_name("schemathesis")
    return found if found.exists() else Path(shutil.which("schemathesis") or "schemathesis")


@dataclass(frozen=True)
class Served:
    """A real server, and the model, version and label its paths name."""

    server: Server
    name: str
    version: str
    label: str | None  # None: single-model mode (labels name a repository's versions)

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module", params=["single", "repository"])
def served(
    request: pytest.FixtureRequest, digits_model: Path, digits_repository: Path
) -> Iterator[Served]:
    """The digits model alone (MODEL_PATH), then as a repository's labelled versions."""
    if request.param == "single":
        with running_server(digits_model) as server:
            yield Served(server, "model", "1", None)
    else:
        with running_server(MODEL_REPOSITORY=str(digits_repository)) as server:
            yield Served(server, "digits", "2", "canary")


@pytest.fixture(scope="module")
def server(served: Served) -> Server:
    return served.server


def _operations(document: dict) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_document_is_served_with_the_servers_version(server):
    response = requests.get(server.url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert (
        document["info"]["version"]
        == requests.get(server.url + "/v2", timeout=10).json()["version"]
    )
    assert document["servers"] == [{"url": "."}]


def test_document_names_every_route_and_every_route_in_it_answers(served):
    """Each documented operation reaches its endpoint (no 404/405 for the served model)."""
    document = openapi.document(server_version(), routes.ROUTES)
    operations = _operations(document)
    assert len(operations) == 30
    concrete = {"{name}": served.name, "{version}": served.version, "{label}": served.label}
    for method, template in operations:
        path = template
        for placeholder, value in concrete.items():
            path = path.replace(placeholder, value or "stable")
        endpoint, _ = routes.match(method, path)  # raises NotFound / MethodNotAllowed
        assert endpoint.__name__, (method, template)
        if method == "GET":
            response = requests.get(served.url + path, timeout=30)
            if served.label is None and "{label}" in template:
                assert response.status_code == 404, (path, response.text)
                assert "labels name versions of a model repository" in response.json()["error"]
            elif served.label is None and template == "/":
                assert response.status_code == 200, (path, response.text)
            elif template == "/":  # a repository: the bare URL names no model
                assert response.status_code == 404, (path, response.text)
                assert "its models: 'digits'" in response.json()["error"]
            else:
                assert response.status_code == 200, (path, response.text)
    index = requests.post(served.url + "/v2/repository/index", json={}, timeout=30)
    assert index.status_code == 200, index.text
    assert {item["name"] for item in index.json()} == {served.name}
    # and every route of the router is documented, for each of its methods
    documented = {
        (method, route.pattern.pattern)
        for method, template in operations
        for route in routes.ROUTES
        if route.pattern.fullmatch(
            template.replace("{name}", "m").replace("{version}", "1").replace("{label}", "l")
        )
    }
    routed = {
        (method, route.pattern.pattern) for route in routes.ROUTES for method in route.methods
    }
    assert routed - documented == set()


def test_every_error_status_has_the_error_body():
    document = openapi.document("0", routes.ROUTES)
    responses = document["components"]["responses"]
    for status in ("400", "404", "405", "413", "415", "500", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[1]
        assert "error" in document["components"]["schemas"][name]["required"]
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                statuses = set(item[method]["responses"])
                if "200" not in statuses:  # Triton's load and unload: refused, nothing read
                    assert statuses == {"400", "405"}, (method, path)
                    continue
                assert "500" in statuses, (method, path)
                if method == "post":
                    assert {"400", "413", "415"} <= statuses, path


def _fuzz_setup(served: Served, directory: Path) -> tuple[Path, Path]:
    """The served document with examples for the served model, and a schemathesis config.

    The document describes the protocol, so a body the fuzzer builds from it almost never
    fits the model; the examples (one good body per predict/infer operation, made from
    the live metadata) let the run reach the model. The config names the served model in
    most generated paths, and always in POST paths: only those reach the decoders.
    """
    server = served.server
    meta = requests.get(f"{server.url}/v2/models/{served.name}", timeout=30).json()
    (spec,) = meta["inputs"]  # the digits model: one input
    shape = [1 if d < 0 else d for d in spec["shape"]]
    zeros = np.zeros(shape, dtype=np.float32)
    infer_example = {
        "id": "fuzz",
        "inputs": [
            {
                "name": spec["name"],
                "shape": shape,
                "datatype": "FP32",
                "data": zeros.ravel().tolist(),
            }
        ],
        "outputs": [{"name": t["name"]} for t in meta["outputs"]],
    }
    predict_example = {"instances": zeros.tolist()}
    classify_example = {"examples": [{spec["name"]: zeros[0].tolist()}], "top_k": 3}
    document = requests.get(server.url + "/openapi.json", timeout=10).json()
    for item in document["paths"].values():
        if "post" in item and "requestBody" in item["post"]:
            operation = item["post"]["operationId"]
            example = (
                infer_example
                if "v2_infer" in operation
                else classify_example
                if "classify" in operation
                else {"ready": True}
                if "repository_index" in operation
                else predict_example
            )
            item["post"]["requestBody"]["content"]["application/json"]["example"] = example
    schema = directory / "openapi.json"
    schema.write_text(json.dumps(document))

    def values(items: list) -> str:
        return json.dumps(items)

    dims = sorted({abs(d) for d in spec["shape"]})
    config = directory / "schemathesis.toml"
    config.write_text(
        f"""
[parameters]
"path.name" = {{dictionary = "model", probability = 0.8}}
"path.version" = {{dictionary = "version", probability = 0.8}}
"path.label" = {{dictionary = "label", probability = 0.8}}
"body.inputs[*].name" = {{dictionary = "inputs", probability = 0.8}}
"body.outputs[*].name" = {{dictionary = "outputs", probability = 0.8}}
"body.inputs[*].shape[*]" = {{dictionary = "dims", probability = 0.7}}

[dictionaries.model]
values = {values([meta["name"]])}
[dictionaries.version]
values = {values(meta["versions"])}
[dictionaries.label]
values = {values([served.label or "stable"])}
[dictionaries.inputs]
values = {values([spec["name"]])}
[dictionaries.outputs]
values = {values([t["name"] for t in meta["outputs"]])}
[dictionaries.dims]
values = {values(dims)}

[[operations]]
include-method = "POST"
parameters = {{"path.name" = "{meta["name"]}", "path.version" = "{meta["versions"][0]}", \
"path.label" = "{served.label or "stable"}"}}
"""
    )
    return schema, config


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_every_answer_conforms(served, tmp_path):
    cli = _schemathesis()
    server = served.server
    schema, config = _fuzz_setup(served, tmp_path)
    report = tmp_path / "events.ndjson"
    command = [
        str(cli),
        "--config-file",
        str(config),
        "run",
        str(schema),
        "--url",
        server.url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIME_LIMIT, cwd=tmp_path
    )
    elapsed = time.monotonic() - started
    output = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{output}"
    # The run tested every operation the document has (a document it could not read
    # would test none, and pass).
    document = requests.get(server.url + "/openapi.json", timeout=10).json()
    assert f"Tested: {len(_operations(document))}" in result.stdout, output
    statuses = _statuses(report)
    # Bodies reached the decoders and the model: answers, refusals, and wrong names.
    assert not [status for _, status in statuses if status >= 500], statuses
    # Bodies got past routing and decoding to the model, and were refused for cause.
    assert statuses["POST", 200] > 0, statuses
    assert statuses["POST", 400] > 0, statuses
    assert statuses["GET", 404] > 0, statuses
    assert elapsed < TIME_LIMIT
    # Still serving afterwards: a good predict, on both protocols.
    pixels = [[[[0.5]] * 8] * 8]
    tf = requests.post(
        f"{server.url}/v1/models/{served.name}:predict", json={"instances": pixels}, timeout=10
    )
    assert tf.status_code == 200, tf.text
    assert len(tf.json()["predictions"][0]) == 10
    v2 = requests.post(
        f"{server.url}/v2/models/{served.name}/infer",
        json={
            "inputs": [
                {"name": "pixels", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [0.5] * 64}
            ]
        },
        timeout=10,
    )
    assert v2.status_code == 200, v2.text
    assert server.process.poll() is None


def _statuses(report: Path) -> Counter[tuple[str, int]]:
    """How often each (method, status) was answered, from schemathesis' ndjson events."""
    counts: Counter[tuple[str, int]] = Counter()
    for line in report.read_text().splitlines():
        _walk(json.loads(line), counts)
    return counts


def _walk(value: object, counts: Counter[tuple[str, int]]) -> None:
    if isinstance(value, dict):
        request, response = value.get("request"), value.get("response")
        if isinstance(request, dict) and isinstance(response, dict):
            counts[request["method"], response["status_code"]] += 1
            return
        for item in value.values():
            _walk(item, counts)
    elif isinstance(value, list):
        for item in value:
            _walk(item, counts)
