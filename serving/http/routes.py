"""The one route table: what the router matches and what ``/openapi.json`` documents.

Each :class:`~serving.http.operations.Route` is an OpenAPI path template
(``/v1/models/{name}:predict``) and, per method, an operation: its endpoint and how the
document describes it. The router compiles the templates (``{name}`` and ``{version}``
follow the name rule of :mod:`serving.settings`); :mod:`serving.http.openapi` writes the
paths from the same table, so a route cannot be served without being documented, or the
reverse.
"""

from __future__ import annotations

import re
from dataclasses import replace

from serving.errors import MethodNotAllowed, NotFound
from serving.http import endpoints as ep
from serving.http.operations import (
    GET_ERRORS,
    POST_ERRORS,
    Body,
    Endpoint,
    Operation,
    Route,
    Tag,
)
from serving.protocol.types import Encoded


def openapi_document(call: ep.Call) -> ep.Reply:
    """The OpenAPI document of :data:`ROUTES` (built on first use; never loads the model)."""
    from serving.http import openapi  # imported here: no cost to the cold start

    return 200, Encoded(openapi.encoded(ep.server_version(), ROUTES))


_TF, _V2 = Tag.TF_SERVING, Tag.V2

_STATUS = Operation(
    ep.tf_status,
    "tf_status",
    "Model status: one model loads; a repository's versions are reported as they are",
    _TF,
    "ModelStatus",
    (400, 404, 500, 503),
)
_PREDICT = Operation(
    ep.tf_predict,
    "tf_predict",
    "Predict, row or columnar format",
    _TF,
    "PredictResponse",
    POST_ERRORS,
    Body.PREDICT,
)

ROUTES: tuple[Route, ...] = (
    # The bare function URL: status on GET, TF Serving predict on POST.
    Route(
        "/",
        {
            "GET": replace(_STATUS, operation_id="tf_root_status"),
            "POST": replace(_PREDICT, operation_id="tf_root_predict"),
        },
    ),
    Route("/v1/models/{name}", {"GET": _STATUS}, versioned=True, labelled=True),
    Route(
        "/v1/models/{name}/metadata",
        {
            "GET": Operation(
                ep.tf_metadata, "tf_metadata", "Signature defs", _TF, "ModelMetadata", GET_ERRORS
            )
        },
        versioned=True,
        labelled=True,
    ),
    Route("/v1/models/{name}:predict", {"POST": _PREDICT}, versioned=True, labelled=True),
    Route(
        "/v1/models/{name}:classify",
        {
            "POST": Operation(
                ep.tf_classify,
                "tf_classify",
                "Classify: top-k labels and scores of the one [batch, classes] output",
                _TF,
                "ClassifyResponse",
                POST_ERRORS,
                Body.CLASSIFY,
                query=("top_k",),
            )
        },
        versioned=True,
        labelled=True,
    ),
    Route(
        "/v1/models/{name}:regress",
        {
            "POST": Operation(
                ep.tf_regress,
                "tf_regress",
                "Regress: the one float output ([batch] or [batch, 1]) per example",
                _TF,
                "RegressResponse",
                POST_ERRORS,
                Body.REGRESS,
            )
        },
        versioned=True,
        labelled=True,
    ),
    Route(
        "/v2",
        {
            "GET": Operation(
                ep.v2_server_metadata,
                "v2_server_metadata",
                "Server metadata",
                _V2,
                "ServerMetadata",
                (500,),
            )
        },
    ),
    Route(
        "/v2/health/live",
        {"GET": Operation(ep.v2_live, "v2_live", "Liveness (never loads)", _V2, "Live", (500,))},
    ),
    Route(
        "/v2/health/ready",
        {
            "GET": Operation(
                ep.v2_ready,
                "v2_ready",
                "Readiness: one model loads; a repository is ready once listed",
                _V2,
                "Ready",
                (500, 503),
            )
        },
    ),
    Route(
        "/v2/models/{name}",
        {
            "GET": Operation(
                ep.v2_model_metadata,
                "v2_model",
                "Model metadata",
                _V2,
                "V2ModelMetadata",
                GET_ERRORS,
            )
        },
        versioned=True,
    ),
    Route(
        "/v2/models/{name}/ready",
        {
            "GET": Operation(
                ep.v2_model_ready,
                "v2_model_ready",
                "Model readiness: one model loads; a repository version is ready unless its "
                "last load failed",
                _V2,
                "ModelReady",
                GET_ERRORS,
            )
        },
        versioned=True,
    ),
    Route(
        "/v2/models/{name}/infer",
        {
            "POST": Operation(
                ep.v2_infer,
                "v2_infer",
                "Inference, JSON or binary tensor data",
                _V2,
                "InferResponse",
                POST_ERRORS,
                Body.INFER,
            )
        },
        versioned=True,
    ),
    Route(
        "/v2/repository/index",
        {
            "POST": Operation(
                ep.v2_repository_index,
                "v2_repository_index",
                "Model repository index (Triton's extension): every version and its state",
                _V2,
                "RepositoryIndex",
                (400, 408, 413, 415, 500, 503),
                Body.INDEX,
            )
        },
    ),
    Route(
        "/openapi.json",
        {
            "GET": Operation(
                openapi_document,
                "openapi",
                "This document",
                Tag.CONTRACT,
                "Document",
                (500,),
            )
        },
    ),
)

# Any other TF Serving verb gets a 404 naming the served ones (not documented: not served).
_OTHER_VERB = (
    Route("/v1/models/{name}:", {}, versioned=True, labelled=True).pattern.pattern
    + r"(?P<verb>\w+)"
)
VERBS = tuple(
    ":" + r.path.rsplit(":", 1)[1] for r in ROUTES if r.path.startswith("/v1/models/{name}:")
)


def match(method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
    """The endpoint and path parameters for a request; HEAD is served as GET.

    Raises :class:`NotFound` for an unknown path and :class:`MethodNotAllowed` (with
    the allowed methods) for a known path with another method.
    """
    normalized = path.rstrip("/") or "/"
    for route in ROUTES:
        found = route.pattern.fullmatch(normalized)
        if found is None:
            continue
        params = {k: v for k, v in found.groupdict().items() if v is not None}
        operation = route.methods.get("GET" if method == "HEAD" else method)
        if operation is None:
            allow = tuple(route.methods) + (("HEAD",) if "GET" in route.methods else ())
            raise MethodNotAllowed(
                f"{method} is not allowed on {path}; use {' or '.join(allow)}", allow=allow
            )
        return operation.endpoint, params
    verb = re.fullmatch(_OTHER_VERB, normalized)
    if verb is not None:
        served = ", ".join(f"'{v}'" for v in VERBS)
        raise NotFound(f"':{verb['verb']}' is not supported; this server answers {served}")
    raise NotFound(
        f"no route for {path}; see /v1/models/{{name}}:predict (TensorFlow Serving) "
        "or /v2/models/{name}/infer (Open Inference Protocol)"
    )
