"""/openapi.json states what the code does: its facts are the code's, its schemas hold answers.

Every exchange of the in-process tests is checked against the document (tests/contract.py,
wired into ``client_for``); these tests show that checker can fail, and that the facts the
document states are the ones the server acts on.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests

from serving.errors import ServingError
from serving.http import body, openapi, routes
from serving.protocol import images
from serving.protocol.datatypes import Datatype
from serving.repository import VersionState
from serving.runtime import ModelState
from serving.settings import NAME_PATTERN
from tests import contract

DOCUMENT = openapi.document("0", routes.ROUTES)
SCHEMAS = DOCUMENT["components"]["schemas"]
JSON = {"content-type": "application/json"}
needs_validator = pytest.mark.skipif(
    contract.jsonschema_rs is None, reason="jsonschema_rs is a dev-only tool (schemathesis)"
)


def test_every_route_is_documented_and_every_documented_path_is_routed():
    documented = {
        (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
    }
    routed = {
        (method, template)
        for route in routes.ROUTES
        for template in route.templates()
        for method in route.methods
    }
    assert documented == routed


def test_the_facts_stated_are_the_codes():
    assert SCHEMAS["Datatype"]["enum"] == [d.value for d in Datatype]
    status = SCHEMAS["ModelStatus"]["properties"]["model_version_status"]["items"]
    states = status["properties"]["state"]["enum"]
    assert set(states) == {s.value for s in ModelState} | {s.tf_serving for s in VersionState}
    index = SCHEMAS["RepositoryIndex"]["items"]["properties"]["state"]["enum"]
    assert set(index) == {s.triton for s in VersionState} == {"READY", "UNAVAILABLE", "LOADING"}
    predict = DOCUMENT["paths"]["/v1/models/{name}:predict"]["post"]
    (encoding,) = [p for p in predict["parameters"] if p["name"] == "Content-Encoding"]
    for name in encoding["schema"]["enum"]:
        body.encoding_of(name)  # accepted (raises 415 otherwise)
    pictures = [m for m in predict["requestBody"]["content"] if m.startswith("image/")]
    assert all(images.picture_format(m) is not None for m in pictures)
    assert {f.value for f in images.PictureFormat} <= set(pictures)
    name = next(p for p in predict["parameters"] if p["name"] == "name")
    assert name["schema"]["pattern"] == f"^{NAME_PATTERN}$"


def _statuses(cls: type[ServingError]) -> set[int]:
    return {cls.status_code}.union(*(_statuses(sub) for sub in cls.__subclasses__()))


def test_every_status_an_error_carries_is_documented():
    assert _statuses(ServingError) <= {int(s) for s in DOCUMENT["components"]["responses"]}


@needs_validator
@pytest.mark.parametrize(
    ("schema", "value"),
    [
        # TF Serving encodes binary values as {"b64": ...}: pictures are values too
        ("PredictRequest", {"instances": [{"b64": base64.b64encode(b"png").decode()}]}),
        ("PredictRequest", {"instances": [{"image": {"b64": "aGk="}}]}),
        ("PredictRequest", {"inputs": {"image": [{"b64": "aGk="}]}}),
        ("ClassifyRequest", {"examples": [{"image": {"b64": "aGk="}}], "top_k": 2}),
        ("RegressRequest", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}),
        (
            "InferRequest",
            {
                "inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["aGk="]}],
                "outputs": [{"name": "y", "parameters": {"classification": 3}}],
            },
        ),
    ],
)
def test_requests_clients_send_validate(schema, value):
    contract._check(f"#/components/schemas/{schema}", json.dumps(value).encode(), schema)


@needs_validator
@pytest.mark.parametrize(
    ("exchange", "message"),
    [
        (("GET", "/v2/health/live", 200, b'{"live": false}'), "does not validate"),
        (("GET", "/v2/health/live", 418, b'{"error": "x"}'), "status 418 is not documented"),
        (("GET", "/v2/models/m", 404, b'{"oops": 1}'), "does not validate against"),
        (("GET", "/nowhere", 200, b"{}"), "the path is not documented"),
        (("DELETE", "/v2", 200, b"{}"), "the method is not documented"),
        (("POST", "/v1/models/m:predict", 200, b'{"predictions": [1]}'), "the request does not"),
    ],
)
def test_the_checker_fails_an_exchange_the_document_does_not_allow(exchange, message):
    method, path, status, answer = exchange
    request = b'{"instances": [], "inputs": []}'
    with pytest.raises(AssertionError, match=message):
        contract.check(method, path, {}, request, status, JSON, answer)


@needs_validator
def test_the_in_process_client_is_checked(client_for, digits_model):
    client = client_for(digits_model)
    assert client.application.wsgi_app.__name__ == "wrapped"
    assert client.get("/v2/health/live").status_code == 200


def test_the_version_has_one_owner(client_for, digits_model):
    """serving.__version__ is what the server reports; pyproject.toml reads it, states none."""
    import tomllib

    import serving
    from tests.conftest import REPO

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "serving.__version__"}
    answer = client_for(digits_model).get("/v2").json
    assert answer["version"] == serving.__version__
    assert (
        openapi.document(answer["version"], routes.ROUTES)["info"]["version"] == answer["version"]
    )


@needs_validator
def test_the_checking_proxy_fails_its_block_on_an_exchange_the_document_does_not_allow():
    from tests.metadata_server import fake_metadata  # any loopback server will do

    with (
        fake_metadata(body=b'{"live": false}') as upstream,
        pytest.raises(AssertionError, match=r"GET /v2/health/live -> 200: answered ''"),
        contract.checking_proxy(f"http://{upstream.host}") as url,
    ):
        assert requests.get(url + "/v2/health/live", timeout=5).json() == {"live": False}
