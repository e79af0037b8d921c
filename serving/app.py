"""HTTP plumbing: read the body within its limit, dispatch, and answer JSON every time.

Any :class:`ServingError` becomes ``{"error": message}`` with its status; anything else
becomes a 500 with a request id, its traceback going to the logs only. Every response
carries ``Server-Timing`` (model load on a cold request, inference on predictions).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import flask
import orjson
from werkzeug.exceptions import HTTPException

from serving import logs, routes
from serving.endpoints import Call
from serving.errors import BadRequest, MethodNotAllowed, PayloadTooLarge, ServingError
from serving.runtime import Runtime

RUNTIME = Runtime()  # the process-wide model, shared by every warm request


def handle(request: flask.Request, runtime: Runtime | None = None) -> flask.Response:
    """Answer one HTTP request to the function."""
    runtime = runtime or RUNTIME
    started = time.perf_counter()
    request_id = _request_id(request)
    call = Call(runtime=runtime, params={}, read_json=lambda: _read_json(request, runtime))
    headers: dict[str, str] = {"X-Request-Id": request_id}
    try:
        endpoint, call.params = routes.match(request.method, request.path)
        status, body = endpoint(call)
    except ServingError as e:
        status, body = e.status_code, {"error": e.message}
        if isinstance(e, MethodNotAllowed):
            headers["Allow"] = ", ".join(e.allow)
    except Exception as e:
        status, body = (
            500,
            {"error": f"internal error: {type(e).__name__}", "request_id": request_id},
        )
        logs.log(logging.ERROR, f"unexpected failure: {e!r}", exc_info=True, request_id=request_id)
    total_ms = (time.perf_counter() - started) * 1000
    headers["Server-Timing"] = _server_timing(call.timings, total_ms)
    _log_request(request, status, body, total_ms, request_id, call)
    return flask.Response(
        orjson.dumps(body),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def framework_error(error: HTTPException) -> flask.Response:
    """JSON for the few answers functions-framework gives itself (``/favicon.ico``)."""
    return flask.Response(
        orjson.dumps({"error": f"{error.name}: {flask.request.path}"}),
        status=error.code or 500,
        mimetype="application/json",
    )


def _request_id(request: flask.Request) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex


def _read_json(request: flask.Request, runtime: Runtime) -> Any:
    """The request body as JSON, refusing bodies over ``MAX_REQUEST_BYTES`` unread."""
    limit = runtime.settings.max_request_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes is over the limit of {limit} bytes "
            "(MAX_REQUEST_BYTES)"
        )
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"request body is over the limit of {limit} bytes (MAX_REQUEST_BYTES)"
        )
    if not data.strip():
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        # orjson: a large tensor decodes 2-5x faster than with json, and decoding holds the
        # GIL, so it bounds how well concurrent requests overlap their invokes.
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:  # also bad UTF-8, NaN literals, nesting over 1024
        raise BadRequest(f"malformed JSON: {e}") from e


def _server_timing(timings: dict[str, float], total_ms: float) -> str:
    parts = [f"{name};dur={ms:.3f}" for name, ms in timings.items()]
    parts.append(f"total;dur={total_ms:.3f}")
    return ", ".join(parts)


def _log_request(
    request: flask.Request,
    status: int,
    body: dict[str, Any],
    total_ms: float,
    request_id: str,
    call: Call,
) -> None:
    fields: dict[str, Any] = {
        "httpRequest": {
            "requestMethod": request.method,
            "requestUrl": request.path,
            "status": status,
            "latency": f"{total_ms / 1000:.6f}s",
        },
        "request_id": request_id,
        "cold_start": False,
        **call.fields,
        "total_ms": round(total_ms, 3),
    }
    trace = request.headers.get("X-Cloud-Trace-Context", "").split("/")[0]
    if trace:
        fields["trace_id"] = trace
    if status >= 400:
        fields["error"] = body.get("error")
    severity = (
        logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    )
    logs.log(severity, f"{request.method} {request.path} {status}", **fields)
