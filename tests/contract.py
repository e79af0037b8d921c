"""/openapi.json as a checker of every exchange the in-process tests make with the function.

:func:`checking` wraps the function's WSGI app: each request and its answer are checked
against the document the server itself serves, as a client generated from it would see
them. The path and method must be documented (else the answer is 404 or 405), the status
must be one the operation lists, and the answer's body must validate against that status's
schema; when the answer is 200, the request's body must validate against the operation's
request schema too (JSON bodies, the JSON header of V2 binary bodies, compressed bodies
inflated; a raw picture's media type must be listed). A mismatch fails the test that made
the request, naming the path, the schema and the error.

Validation uses ``jsonschema_rs``, which the dev environment has (schemathesis needs it);
elsewhere (the 3.12/3.13 and legacy runs) the app is served unchecked.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import http.client
import http.server
import io
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from serving.http import openapi, routes
from serving.http.endpoints import server_version

try:
    import jsonschema_rs
except ImportError:  # not in the runtime environments
    jsonschema_rs = None

CHECKED: collections.Counter[str] = collections.Counter()  # what was checked, for the summary
MAX_CHECKED_BYTES = 8 << 20  # larger bodies (limit tests) are passed through unchecked
HEADER_LENGTH = "HTTP_INFERENCE_HEADER_CONTENT_LENGTH"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@functools.cache
def _document() -> dict[str, Any]:
    return openapi.document(server_version(), routes.ROUTES)


@functools.cache
def _validator(ref: str) -> Any:
    """A validator of the component ``ref`` (``#/components/...``) of the document."""
    return jsonschema_rs.Draft202012Validator(
        {"$ref": ref, "components": _document()["components"]}
    )


def _template_pattern(template: str, item: dict[str, Any]) -> re.Pattern[str]:
    """The paths ``template`` stands for, its parameters as their schemas' patterns say."""
    patterns = {
        p["name"]: p["schema"]["pattern"].strip("^$")
        for operation in item.values()
        for p in operation.get("parameters", ())
        if p["in"] == "path"
    }
    parts = re.split(r"(\{\w+\})", template)
    return re.compile(
        "".join(f"(?:{patterns[p[1:-1]]})" if p.startswith("{") else re.escape(p) for p in parts)
    )


@functools.cache
def _paths() -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    return [(_template_pattern(t, item), item) for t, item in _document()["paths"].items()]


def _schema_ref(schema: dict[str, Any]) -> str:
    assert "$ref" in schema, schema
    return schema["$ref"]


def _check(ref: str, data: bytes, where: str) -> None:
    try:
        value = _json(data)
    except _OutsideJson:
        return  # the document says so: such bodies are outside its schemas
    errors = list(_validator(ref).iter_errors(value))
    if errors:
        first = errors[0]
        raise AssertionError(
            f"{where} does not validate against {ref}: {first.message} "
            f"at {'/'.join(map(str, first.instance_path)) or 'the top'}"
        )


class _OutsideJson(Exception):
    """NaN/Infinity tokens: TF Serving's float convention, outside what JSON Schema says."""


def _outside(token: str) -> Any:
    raise _OutsideJson(token)


def _json(data: bytes) -> Any:
    return json.loads(data, parse_constant=_outside)


def check(
    method: str,
    path: str,
    request_headers: dict[str, str],
    request_body: bytes | None,
    status: int,
    response_headers: dict[str, str],
    response_body: bytes,
) -> None:
    """Raise AssertionError unless this exchange is what the document says."""
    where = f"{method} {path} -> {status}"
    normalized = path.rstrip("/") or "/"
    item = next((item for pattern, item in _paths() if pattern.fullmatch(normalized)), None)
    operation = None
    if item is None:
        assert status == 404, f"{where}: the path is not documented, yet answered {status}"
    else:
        operation = item.get("get" if method == "HEAD" else method.lower())
        if operation is None:
            assert status == 405, f"{where}: the method is not documented, yet answered {status}"
    if operation is not None:
        assert str(status) in operation["responses"], (
            f"{where}: status {status} is not documented for this operation "
            f"(documented: {', '.join(operation['responses'])})"
        )
        response = operation["responses"][str(status)]
    else:
        response = {"$ref": f"#/components/responses/{status}"}
    if "$ref" in response:
        response = _document()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    if method != "HEAD":
        _check_answer(where, response, response_headers, response_body)
    CHECKED["exchanges"] += 1
    if status == 200 and operation is not None and request_body is not None:
        _check_request(where, operation, request_headers, request_body)
        CHECKED["requests of 200 answers"] += 1


def _check_answer(
    where: str, response: dict[str, Any], headers: dict[str, str], data: bytes
) -> None:
    media = headers.get("content-type", "").split(";")[0].strip()
    content = response.get("content", {})
    assert media in content, f"{where}: answered {media!r}, documented {sorted(content)}"
    if media == "application/octet-stream":
        length = int(headers["inference-header-content-length"])
        _check(_schema_ref(content["application/json"]["schema"]), data[:length], where)
    elif media == "application/json":
        _check(_schema_ref(content[media]["schema"]), data, f"{where}: the answer")


def _check_request(
    where: str, operation: dict[str, Any], headers: dict[str, str], data: bytes
) -> None:
    content = operation.get("requestBody", {}).get("content")
    if content is None:
        return  # a body nobody reads (a GET with one)
    if not data.strip():
        assert not operation["requestBody"]["required"], f"{where}: no body, yet one is required"
        return
    media = (headers.get("CONTENT_TYPE") or "application/json").split(";")[0].strip().lower()
    encoding = headers.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        data = zlib.decompress(data)
    if media.startswith("image/"):
        assert media in content, f"{where}: sent {media!r}, documented {sorted(content)}"
        return
    schema = _schema_ref(content["application/json"]["schema"])
    if HEADER_LENGTH in headers:
        assert "application/octet-stream" in content, f"{where}: binary body not documented"
        data = data[: int(headers[HEADER_LENGTH])]
    _check(schema, data, f"{where}: the request")


def checking(app: WsgiApp) -> WsgiApp:
    """``app`` with every exchange checked by :func:`check` (unchanged without jsonschema_rs)."""
    if jsonschema_rs is None:
        return app

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = None
        if length <= MAX_CHECKED_BYTES and "wsgi.input" in environ:
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        seen: dict[str, Any] = {}

        def recording_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen["status"], seen["headers"] = int(status.split()[0]), headers
            return start_response(status, headers, *exc)

        chunks = list(app(environ, recording_start))
        answer = b"".join(chunks)
        if len(answer) <= MAX_CHECKED_BYTES:
            check(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", "/"),
                {k: v for k, v in environ.items() if isinstance(v, str)},
                body,
                seen["status"],
                {k.lower(): v for k, v in seen["headers"]},
                answer,
            )
        return [answer]

    return wrapped


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "date", "server"}


@contextlib.contextmanager
def checking_proxy(upstream: str) -> Iterator[str]:
    """A loopback proxy to the server at ``upstream`` (``http://127.0.0.1:PORT``) that checks
    every exchange through it; yields its URL. A mismatch fails the block, when it ends.

    Without jsonschema_rs, ``upstream`` itself is yielded.
    """
    if jsonschema_rs is None:
        yield upstream
        return
    host, port = upstream.removeprefix("http://").split(":")
    failures: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            sent = self.rfile.read(length) if length else b""
            upstream_connection = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                upstream_connection.request(self.command, self.path, sent, dict(self.headers))
                answer = upstream_connection.getresponse()
                data = answer.read()
                headers = answer.getheaders()
            finally:
                upstream_connection.close()
            environ = {
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            if self.headers.get("Inference-Header-Content-Length") is not None:
                environ[HEADER_LENGTH] = self.headers["Inference-Header-Content-Length"]
            try:
                check(
                    self.command,
                    self.path.split("?", 1)[0],
                    environ,
                    sent,
                    answer.status,
                    {k.lower(): v for k, v in headers},
                    data,
                )
            except AssertionError as e:
                failures.append(str(e))
            self.send_response(answer.status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _forward  # noqa: N815 (http.server)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    assert not failures, "exchanges /openapi.json does not allow:\n" + "\n".join(failures)
