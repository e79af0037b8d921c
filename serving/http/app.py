"""The one request handler: dispatch, and the one place errors become ``{"error": ...}``.

Any :class:`ServingError` becomes ``{"error": message}`` with its status; anything else
becomes a 500 with a request id, its traceback going to the logs only. Every response
carries ``Server-Timing`` (model load on a cold request, inference on predictions).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import flask
import orjson
from werkzeug.exceptions import HTTPException

from serving import logs, trace
from serving.admission import BodyForm, cost
from serving.errors import MethodNotAllowed, ServiceUnavailable, ServingError
from serving.http import body, routes
from serving.http.endpoints import Call
from serving.protocol import v2_binary
from serving.protocol.types import Encoded
from serving.runtime import Runtime

RUNTIME = Runtime()  # the process-wide model, shared by every warm request
PROJECT = trace.ProjectId()  # the project log lines name in their trace field


def handle(request: flask.Request, runtime: Runtime | None = None) -> flask.Response:
    """Answer one HTTP request to the function; its log lines carry its trace."""
    runtime = runtime or RUNTIME
    context = trace.from_headers(request.headers)
    if context is None:
        return _handle(request, runtime)
    fields = functools.partial(_trace_fields, runtime, context)
    fields()  # starts the metadata server lookup of the project, if needed (never waits)
    with logs.context(fields):
        return _handle(request, runtime)


def _trace_fields(runtime: Runtime, context: trace.TraceContext) -> Mapping[str, object]:
    try:
        settings = runtime.settings
    except ServingError:  # misconfigured: the request itself answers 500 naming the variable
        return {}
    return context.fields(PROJECT.get(settings.project_id, settings.metadata_host))


def _handle(request: flask.Request, runtime: Runtime) -> flask.Response:
    started = time.perf_counter()
    request_id = _request_id(request)
    held: list[int] = []  # request memory admitted for this request, released below
    form = BodyForm.BINARY if v2_binary.HEADER_LENGTH in request.headers else BodyForm.JSON

    def admit(size: int) -> None:
        held.append(runtime.budget.acquire(cost(form, size), what="this request"))

    def read_body(allow_empty: bool = False) -> bytes:
        settings = runtime.settings
        return body.read(
            request,
            limit=settings.max_request_bytes,
            timeout=settings.body_timeout,
            admit=admit,
            allow_empty=allow_empty,
        )

    call = Call(
        runtime=runtime,
        params={},
        headers=request.headers,
        query=request.args,
        read_body=read_body,
    )
    headers: dict[str, str] = {"X-Request-Id": request_id}
    content_type = "application/json"
    try:
        endpoint, call.params = routes.match(request.method, request.path)
        status, answer = endpoint(call)
        if isinstance(answer, Encoded):
            content, content_type = answer.content, answer.content_type
            headers.update(answer.headers)
        else:
            content = orjson.dumps(answer)
        error = None
    except ServingError as e:
        status, error = e.status_code, e.message
        content = orjson.dumps({"error": error})
        if isinstance(e, MethodNotAllowed):
            headers["Allow"] = ", ".join(e.allow)
        if isinstance(e, ServiceUnavailable):
            headers["Retry-After"] = str(e.retry_after)
    except Exception as e:
        status, error = 500, f"internal error: {type(e).__name__}"
        content = orjson.dumps({"error": error, "request_id": request_id})
        logs.log(logging.ERROR, f"unexpected failure: {e!r}", exc_info=True, request_id=request_id)
    finally:
        call.release()  # the repository versions it leased
        for amount in held:
            runtime.budget.release(amount)
    total_ms = (time.perf_counter() - started) * 1000
    headers["Server-Timing"] = _server_timing(call.timings, total_ms)
    headers["Content-Length"] = str(len(content))
    _log_request(request, status, error, total_ms, request_id, call)
    # functions-framework reads whatever body is left before a response that is not
    # streamed (its read_request hook); a body that was refused or never needed must not be
    # buffered, so the answer is handed over as a stream (one chunk, its length declared).
    return flask.Response(
        iter((content,)), status=status, headers=headers, content_type=content_type
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


def _server_timing(timings: dict[str, float], total_ms: float) -> str:
    parts = [f"{name};dur={ms:.3f}" for name, ms in timings.items()]
    parts.append(f"total;dur={total_ms:.3f}")
    return ", ".join(parts)


def _log_request(
    request: flask.Request,
    status: int,
    error: str | None,
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
    if error is not None:
        fields["error"] = error
    severity = (
        logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    )
    logs.log(severity, f"{request.method} {request.path} {status}", **fields)
