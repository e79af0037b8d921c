"""Trace context from Cloud Run's headers, and the project from the metadata server (loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from serving import trace
from serving.trace import SAMPLED_FIELD, SPAN_FIELD, TRACE_FIELD, TraceContext
from tests.metadata_server import FakeMetadata, fake_metadata

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
            TraceContext(TRACE, "00f067aa0ba902b7", True),
        ),
        (
            {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-00"},
            TraceContext(TRACE, "00f067aa0ba902b7", False),
        ),
        # a later version may append fields
        (
            {"traceparent": f"01-{TRACE}-00f067aa0ba902b7-01-x"},
            TraceContext(TRACE, "00f067aa0ba902b7", True),
        ),
        (
            {"X-Cloud-Trace-Context": f"{TRACE}/123;o=1"},
            TraceContext(TRACE, "000000000000007b", True),
        ),
        (
            {"X-Cloud-Trace-Context": f"{TRACE}/123;o=0"},
            TraceContext(TRACE, "000000000000007b", False),
        ),
        ({"X-Cloud-Trace-Context": f"{TRACE}/123"}, TraceContext(TRACE, "000000000000007b")),
        ({"X-Cloud-Trace-Context": TRACE.upper()}, TraceContext(TRACE)),
        # span 0 and spans past 64 bits are no span; the trace still counts
        ({"X-Cloud-Trace-Context": f"{TRACE}/0;o=1"}, TraceContext(TRACE, None, True)),
        ({"X-Cloud-Trace-Context": f"{TRACE}/{2**64}"}, TraceContext(TRACE)),
        # traceparent wins when both are sent (Cloud Run sends both)
        (
            {
                "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
                "X-Cloud-Trace-Context": "0" * 31 + "1/5;o=0",
            },
            TraceContext(TRACE, "00f067aa0ba902b7", True),
        ),
        # a malformed traceparent falls back to X-Cloud-Trace-Context
        (
            {"traceparent": "garbage", "X-Cloud-Trace-Context": f"{TRACE}/5"},
            TraceContext(TRACE, "0000000000000005"),
        ),
    ],
)
def test_trace_context_from_headers(headers, expected):
    assert trace.from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": ""},
        {"traceparent": f"00-{TRACE}-00f067aa0ba902b7"},  # no flags
        {"traceparent": f"ff-{TRACE}-00f067aa0ba902b7-01"},  # invalid version
        {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01-extra"},  # version 00 has 4 fields
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},  # all-zero trace
        {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},  # all-zero span
        {"traceparent": f"00-{TRACE.upper()}-00f067aa0ba902b7-01"},  # upper case is invalid
        {"X-Cloud-Trace-Context": "abc/1;o=1"},  # short trace id
        {"X-Cloud-Trace-Context": f"{TRACE}/12x"},
        {"X-Cloud-Trace-Context": f"{TRACE}/1;o=2"},
        {"X-Cloud-Trace-Context": "0" * 32},
        {"X-Cloud-Trace-Context": "\x00" * 40},
    ],
)
def test_malformed_headers_are_ignored(headers):
    assert trace.from_headers(headers) is None


def test_fields_name_the_project_and_need_one():
    context = TraceContext(TRACE, "000000000000007b", True)
    assert context.fields("my-project") == {
        TRACE_FIELD: f"projects/my-project/traces/{TRACE}",
        SPAN_FIELD: "000000000000007b",
        SAMPLED_FIELD: True,
    }
    assert TraceContext(TRACE).fields("my-project") == {
        TRACE_FIELD: f"projects/my-project/traces/{TRACE}"
    }
    assert context.fields(None) == {}


@pytest.fixture
def metadata_server() -> Iterator[FakeMetadata]:
    with fake_metadata() as server:
        yield server


def _eventually(get, deadline_s: float = 5.0):
    deadline = time.monotonic() + deadline_s
    while (value := get()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def test_project_configured_needs_no_lookup(metadata_server):
    project = trace.ProjectId()
    assert project.get("configured-project", metadata_server.host) == "configured-project"
    time.sleep(0.05)
    assert metadata_server.seen == []


def test_project_from_the_metadata_server_once_without_waiting(metadata_server):
    host = metadata_server.host
    project = trace.ProjectId()
    assert project.get(None, host) is None  # never waits: the lookup runs in the background
    assert _eventually(lambda: project.get(None, host)) == "demo-project"
    for _ in range(5):
        assert project.get(None, host) == "demo-project"
    assert metadata_server.seen == [("/computeMetadata/v1/project/project-id", "Google")]


@pytest.mark.parametrize("answer", [(404, b"not here"), (200, b"Not A Project!"), (200, b"")])
def test_a_failed_lookup_leaves_the_project_out_and_is_not_retried(metadata_server, answer):
    host = metadata_server.host
    metadata_server.status, metadata_server.body = answer
    project = trace.ProjectId()
    assert project.get(None, host) is None
    deadline = time.monotonic() + 5
    while not metadata_server.seen and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert project.get(None, host) is None
    assert len(metadata_server.seen) == 1


def test_an_unreachable_metadata_server_is_given_up_quickly():
    project = trace.ProjectId(timeout=0.2)
    started = time.monotonic()
    assert project.get(None, "127.0.0.1:1") is None  # nothing listens on loopback port 1
    assert time.monotonic() - started < 0.1
    time.sleep(0.3)
    assert project.get(None, "127.0.0.1:1") is None
