"""Request and model-load log lines land under the request's trace, in Cloud Logging's format."""

from __future__ import annotations

import json

import pytest

from serving.trace import SAMPLED_FIELD, SPAN_FIELD, TRACE_FIELD

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PIXELS = {"instances": [[[[0.5]] * 8] * 8]}


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_cold_request_and_model_load_lines_carry_the_trace(client_for, capsys, digits_model):
    client = client_for(digits_model, GOOGLE_CLOUD_PROJECT="demo-project")
    capsys.readouterr()
    response = client.post(
        "/v1/models/model:predict",
        json=PIXELS,
        headers={"X-Cloud-Trace-Context": f"{TRACE}/123;o=1"},
    )
    assert response.status_code == 200, response.text
    lines = _lines(capsys)
    (load,) = [line for line in lines if line["message"] == "model loaded"]
    (request,) = [line for line in lines if line["message"].startswith("POST ")]
    for line in (load, request):
        assert line[TRACE_FIELD] == f"projects/demo-project/traces/{TRACE}"
        assert line[SPAN_FIELD] == "000000000000007b"
        assert line[SAMPLED_FIELD] is True
    assert "trace_id" not in request  # the old, uncorrelated field is gone


def test_each_request_carries_its_own_trace_and_none_leaks(client_for, capsys, digits_model):
    client = client_for(digits_model, GOOGLE_CLOUD_PROJECT="demo-project")
    other = "0af7651916cd43dd8448eb211c80319c"
    sent = [
        {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
        {},
        {"traceparent": "00-not-a-trace", "X-Cloud-Trace-Context": "nonsense"},
        {"traceparent": f"00-{other}-b7ad6b7169203331-00"},
    ]
    capsys.readouterr()
    for headers in sent:
        response = client.post("/v1/models/model:predict", json=PIXELS, headers=headers)
        assert response.status_code == 200, response.text  # a malformed header is no error
    requests = [line for line in _lines(capsys) if line["message"].startswith("POST ")]
    assert [line.get(TRACE_FIELD) for line in requests] == [
        f"projects/demo-project/traces/{TRACE}",
        None,
        None,
        f"projects/demo-project/traces/{other}",
    ]
    assert [line.get(SPAN_FIELD) for line in requests] == [
        "00f067aa0ba902b7",
        None,
        None,
        "b7ad6b7169203331",
    ]
    assert requests[3][SAMPLED_FIELD] is False


def test_error_lines_carry_the_trace_too(client_for, capsys, digits_model):
    client = client_for(digits_model, GOOGLE_CLOUD_PROJECT="demo-project")
    capsys.readouterr()
    response = client.post(
        "/v1/models/model:predict",
        data=b"{oops",
        headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 400
    (line,) = [line for line in _lines(capsys) if line["message"].startswith("POST ")]
    assert line["severity"] == "WARNING"
    assert line[TRACE_FIELD] == f"projects/demo-project/traces/{TRACE}"


def test_without_a_project_the_fields_are_omitted(client_for, capsys, monkeypatch, digits_model):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    # GCE_METADATA_HOST is a loopback port nothing listens on (tests/conftest.py)
    client = client_for(digits_model)
    capsys.readouterr()
    response = client.post(
        "/v1/models/model:predict", json=PIXELS, headers={"X-Cloud-Trace-Context": f"{TRACE}/1"}
    )
    assert response.status_code == 200
    lines = _lines(capsys)
    assert lines
    assert not [line for line in lines if TRACE_FIELD in line or SPAN_FIELD in line]
