"""Cloud Logging trace correlation: the trace and span a request belongs to, as log fields.

Cloud Logging files a log line under a trace only through its special fields
``logging.googleapis.com/trace`` (``projects/PROJECT/traces/TRACE_ID``) and
``logging.googleapis.com/spanId`` (16 hex digits), with ``.../trace_sampled``. Cloud Run
sends the request's trace as W3C ``traceparent`` (``00-TRACE_ID-SPAN_ID-FLAGS``, read
first, as Google's client libraries do) and as ``X-Cloud-Trace-Context``
(``TRACE_ID/SPAN_ID;o=1``, the span in decimal). A malformed header is ignored, never an
error. The project is ``GOOGLE_CLOUD_PROJECT`` when set, else the metadata server's answer,
asked once in the background with a short timeout (off the request's path); until it is
known, or without one, the fields are left out.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"

METADATA_TIMEOUT_SECONDS = 1.0
_PROJECT_PATH = "/computeMetadata/v1/project/project-id"
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")
_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]")


@dataclass(frozen=True)
class TraceContext:
    """A request's trace: 32 hex digits, its span (16 hex digits) if given, sampled flag."""

    trace_id: str
    span_id: str | None = None
    sampled: bool | None = None

    def fields(self, project: str | None) -> dict[str, object]:
        """The Cloud Logging fields for a line of this request; none without a project."""
        if not project:
            return {}
        fields: dict[str, object] = {TRACE_FIELD: f"projects/{project}/traces/{self.trace_id}"}
        if self.span_id is not None:
            fields[SPAN_FIELD] = self.span_id
        if self.sampled is not None:
            fields[SAMPLED_FIELD] = self.sampled
        return fields


def from_headers(headers: Mapping[str, str]) -> TraceContext | None:
    """The request's trace from ``traceparent``, else ``X-Cloud-Trace-Context``; None if
    neither is present and well formed."""
    return _traceparent(headers.get("traceparent")) or _cloud_trace(
        headers.get("X-Cloud-Trace-Context")
    )


def _traceparent(value: str | None) -> TraceContext | None:
    found = _TRACEPARENT.fullmatch((value or "").strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    # Version ff is invalid; version 00 has nothing after the flags; ids of zeros are invalid.
    if version == "ff" or (version == "00" and rest) or not int(trace_id, 16):
        return None
    if not int(span_id, 16):
        return None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def _cloud_trace(value: str | None) -> TraceContext | None:
    found = _CLOUD_TRACE.fullmatch((value or "").strip())
    if found is None:
        return None
    trace_id, span, option = found.groups()
    if not int(trace_id, 16):
        return None
    span_id = None
    if span is not None and 0 < int(span) < 2**64:
        span_id = f"{int(span):016x}"
    return TraceContext(trace_id.lower(), span_id, None if option is None else option == "1")


class ProjectId:
    """The project log lines name: configured, else asked of the metadata server once.

    :meth:`get` never waits: the first call starts the lookup in a daemon thread and
    answers None until it has succeeded. A failed lookup is not retried (the server is not
    on Google Cloud, or cannot reach its metadata server): the fields stay omitted.
    """

    def __init__(self, timeout: float = METADATA_TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        self._found: dict[str, str | None] = {}  # metadata host -> project (None: failed)
        self._lock = threading.Lock()

    def get(self, configured: str | None, metadata_host: str) -> str | None:
        """``configured`` if set, else the project the metadata server at ``metadata_host``
        reported (None while it is being asked, or when it could not be)."""
        if configured:
            return configured
        if metadata_host in self._found:
            return self._found[metadata_host]
        with self._lock:
            if metadata_host not in self._found:
                self._found[metadata_host] = None
                threading.Thread(
                    target=self._lookup, args=(metadata_host,), name="project-id", daemon=True
                ).start()
        return None

    def _lookup(self, host: str) -> None:
        # http.client, not urllib: the metadata server is never reached through a proxy.
        connection = http.client.HTTPConnection(host, timeout=self._timeout)
        try:
            connection.request("GET", _PROJECT_PATH, headers={"Metadata-Flavor": "Google"})
            response = connection.getresponse()
            text = response.read(256).decode("ascii", "replace").strip()
            ok = response.status == 200
        except (OSError, http.client.HTTPException, ValueError):
            return
        finally:
            connection.close()
        if ok and _PROJECT_ID.fullmatch(text):
            self._found[host] = text
