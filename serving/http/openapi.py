"""The OpenAPI 3.1 document of every route, both protocols and their error bodies (/openapi.json).

It describes the protocols, not the served model: input names, shapes and the model's
name are whatever ``GET /v2/models/{name}`` reports. The paths come from the route table
(:data:`serving.http.routes.ROUTES`, which the router matches too), and every datatype,
limit, state, encoding, picture type and default it states is the code's own constant.
Built once, on the first request for it, so it costs the cold start nothing. Bodies the
server writes with ``NaN``/``Infinity`` tokens (TF Serving's float convention) are outside
JSON and so outside what the schemas below can say.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from serving.http import body
from serving.http.operations import Body, Operation, Route, Tag
from serving.protocol import images, v2, v2_binary
from serving.protocol.classify import DEFAULT_TOP_K
from serving.protocol.datatypes import Datatype
from serving.repository.states import VersionState
from serving.runtime import ModelState
from serving.settings import NAME_PATTERN

Schema = dict[str, Any]

_JSON = "application/json"
_BINARY = "application/octet-stream"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: Schema, *required: str, **more: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), **more}


# A single model's states, then the ones only a repository's versions reach (END...).
_TF_STATES = list(
    dict.fromkeys([s.value for s in ModelState] + [s.tf_serving for s in VersionState])
)

_SCHEMAS: dict[str, Schema] = {
    "Error": _object(
        {"error": {"type": "string", "description": "what was wrong, for a person to read"}},
        "error",
    ),
    "InternalError": _object(
        {
            "error": {"type": "string"},
            "request_id": {
                "type": "string",
                "description": "the X-Request-Id of the request, to find its traceback in the logs",
            },
        },
        "error",
        description="An unexpected failure carries the request id; a misconfigured setting "
        "(a 500 naming the variable) does not.",
    ),
    "Tensor": {
        "description": "Tensor data: a number, a boolean, or nested lists of them (row-major).",
        "anyOf": [
            {"type": "number"},
            {"type": "boolean"},
            {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        ],
    },
    "Value": {
        "description": "A TF Serving value: a number, a boolean, an encoded picture "
        '`{"b64": "<base64>"}` (for a picture input), or nested lists of them.',
        "anyOf": [
            {"type": "number"},
            {"type": "boolean"},
            _object({"b64": {"type": "string", "contentEncoding": "base64"}}, "b64"),
            {"type": "array", "items": {"$ref": "#/components/schemas/Value"}},
        ],
    },
    "Strings": {
        "description": "BYTES data: a string, or nested lists of strings.",
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"$ref": "#/components/schemas/Strings"}},
        ],
    },
    # TensorFlow Serving REST API
    "PredictRequest": {
        "type": "object",
        "description": "Row format (`instances`) or columnar format (`inputs`), exactly one.",
        "properties": {
            "signature_name": {"type": "string"},
            "instances": {
                "type": "array",
                "minItems": 1,
                "description": "One entry per instance: a value for a single-input model, or "
                "an object keyed by input name.",
                "items": {
                    "anyOf": [
                        _ref("Value"),
                        {"type": "object", "additionalProperties": _ref("Value")},
                    ]
                },
            },
            "inputs": {
                "description": "Whole tensors: a value for a single-input model, or an "
                "object keyed by input name.",
                "anyOf": [_ref("Value"), {"type": "object", "additionalProperties": _ref("Value")}],
            },
        },
        "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    },
    "ClassifyRequest": {
        "type": "object",
        "description": "TF Serving's Classify API: one example per item, values as for predict "
        '(`{"b64": ...}` for pictures); or send one raw picture body (`image/*`).',
        "properties": {
            "signature_name": {"type": "string"},
            "top_k": {"type": "integer", "minimum": 1, "default": DEFAULT_TOP_K},
            "examples": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "additionalProperties": _ref("Value")},
            },
        },
        "required": ["examples"],
    },
    "RegressRequest": {
        "type": "object",
        "description": "TF Serving's Regress API: one example per item, values as for predict.",
        "properties": {
            "signature_name": {"type": "string"},
            "examples": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "additionalProperties": _ref("Value")},
            },
        },
        "required": ["examples"],
    },
    "RegressResponse": _object(
        {"results": {"type": "array", "description": "one number per example", "items": {}}},
        "results",
    ),
    "ClassifyResponse": _object(
        {
            "results": {
                "type": "array",
                "description": "One list per example of [label, score] pairs, best first.",
                "items": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "description": "[label, score]",
                        "items": {"type": ["string", "number"]},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                },
            }
        },
        "results",
    ),
    "PredictResponse": {
        "type": "object",
        "description": "`predictions` answers the row format, `outputs` the columnar format; "
        "a single-output model omits the output name.",
        "properties": {"predictions": {"type": "array"}, "outputs": {}},
        "oneOf": [{"required": ["predictions"]}, {"required": ["outputs"]}],
    },
    "ModelStatus": _object(
        {
            "model_version_status": {
                "type": "array",
                "items": _object(
                    {
                        "version": {"type": "string"},
                        "state": {"enum": _TF_STATES},
                        "status": _object(
                            {
                                "error_code": {"type": "string"},
                                "error_message": {"type": "string"},
                            },
                            "error_code",
                            "error_message",
                        ),
                    },
                    "version",
                    "state",
                    "status",
                ),
            }
        },
        "model_version_status",
    ),
    "TfTensorInfo": _object(
        {
            "dtype": {"type": "string"},
            "name": {"type": "string"},
            "tensor_shape": _object(
                {
                    "dim": {
                        "type": "array",
                        "items": _object(
                            {"size": {"type": "string"}, "name": {"type": "string"}}, "size"
                        ),
                    },
                    "unknown_rank": {"type": "boolean"},
                },
                "dim",
            ),
            "quantization": _object(
                {
                    "dtype": {"type": "string"},
                    "scale": {"type": "number"},
                    "zero_point": {"type": "integer"},
                },
                "dtype",
                "scale",
                "zero_point",
            ),
        },
        "dtype",
        "name",
        "tensor_shape",
    ),
    "ModelMetadata": _object(
        {
            "model_spec": _object(
                {
                    "name": {"type": "string"},
                    "signature_name": {"type": "string"},
                    "version": {"type": "string"},
                },
                "name",
                "version",
            ),
            "metadata": _object(
                {
                    "signature_def": _object(
                        {
                            "signature_def": {
                                "type": "object",
                                "additionalProperties": _object(
                                    {
                                        "inputs": {
                                            "type": "object",
                                            "additionalProperties": _ref("TfTensorInfo"),
                                        },
                                        "outputs": {
                                            "type": "object",
                                            "additionalProperties": _ref("TfTensorInfo"),
                                        },
                                        "method_name": {"type": "string"},
                                        "defaults": {"type": "object"},
                                    },
                                    "inputs",
                                    "outputs",
                                ),
                            }
                        },
                        "signature_def",
                    ),
                    "backend": _object(
                        {"name": {"type": "string"}, "version": {"type": "string"}},
                        "name",
                        "version",
                    ),
                },
                "signature_def",
            ),
        },
        "model_spec",
        "metadata",
    ),
    # Open Inference Protocol (KServe V2)
    "Datatype": {"enum": [datatype.value for datatype in Datatype]},
    "Shape": {
        "type": "array",
        "maxItems": v2.MAX_RANK,
        "items": {"type": "integer", "minimum": 0, "maximum": v2.MAX_DIMENSION},
    },
    "InferInput": _object(
        {
            "name": {"type": "string"},
            "shape": _ref("Shape"),
            "datatype": _ref("Datatype"),
            "data": {
                "description": "Flat row-major or nested; strings for BYTES. Absent when "
                "parameters.binary_data_size is given.",
                "anyOf": [_ref("Tensor"), _ref("Strings")],
            },
            "parameters": {
                "type": "object",
                "properties": {
                    "binary_data_size": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "bytes of this tensor after the JSON header "
                        "(binary tensor data extension)",
                    }
                },
            },
        },
        "name",
        "shape",
        "datatype",
    ),
    "InferRequest": _object(
        {
            "id": {"type": "string", "description": "echoed in the answer"},
            "parameters": {
                "type": "object",
                "properties": {
                    "signature_name": {"type": "string"},
                    "binary_data_output": {"type": "boolean"},
                },
            },
            "inputs": {"type": "array", "minItems": 1, "items": _ref("InferInput")},
            "outputs": {
                "type": "array",
                "description": "the outputs wanted, in order; all when absent",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "binary_data": {"type": "boolean"},
                                "classification": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "description": "answer the top k classes of this "
                                    '[batch, classes] output as BYTES "score:index[:label]"',
                                },
                            },
                        },
                    },
                    "name",
                ),
            },
        },
        "inputs",
    ),
    "InferOutput": _object(
        {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": _ref("Datatype"),
            "data": {"type": "array", "description": "flat, row-major"},
            "parameters": _object(
                {"binary_data_size": {"type": "integer", "minimum": 0}}, "binary_data_size"
            ),
        },
        "name",
        "shape",
        "datatype",
        oneOf=[{"required": ["data"]}, {"required": ["parameters"]}],
    ),
    "InferResponse": _object(
        {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": _ref("InferOutput")},
        },
        "model_name",
        "model_version",
        "outputs",
    ),
    "TensorMetadata": _object(
        {
            "name": {"type": "string"},
            "datatype": _ref("Datatype"),
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": -1},
                "description": "-1 is a dynamic dimension",
            },
            "parameters": _object(
                {
                    "accepted_datatypes": {"type": "array", "items": _ref("Datatype")},
                    "quantized_datatype": _ref("Datatype"),
                    "scale": {"type": "number"},
                    "zero_point": {"type": "integer"},
                },
                "accepted_datatypes",
            ),
        },
        "name",
        "datatype",
        "shape",
    ),
    "V2ModelMetadata": _object(
        {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"const": v2.PLATFORM},
            "inputs": {"type": "array", "items": _ref("TensorMetadata")},
            "outputs": {"type": "array", "items": _ref("TensorMetadata")},
            "parameters": _object(
                {
                    "backend": {"type": "string"},
                    "backend_version": {"type": "string"},
                    "signatures": {
                        "type": "object",
                        "additionalProperties": _object(
                            {
                                "inputs": {"type": "array", "items": _ref("TensorMetadata")},
                                "outputs": {"type": "array", "items": _ref("TensorMetadata")},
                            },
                            "inputs",
                            "outputs",
                        ),
                    },
                },
                "backend",
                "backend_version",
                "signatures",
            ),
        },
        "name",
        "versions",
        "platform",
        "inputs",
        "outputs",
    ),
    "ServerMetadata": _object(
        {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"enum": list(v2.EXTENSIONS)}},
        },
        "name",
        "version",
        "extensions",
    ),
    "RepositoryIndexRequest": {
        **_object(
            {"ready": {"type": "boolean", "description": "true: the loaded versions only"}},
            additionalProperties=False,
        ),
        "description": "An empty body is `{}` (tritonclient sends none).",
    },
    "RepositoryIndex": {
        "type": "array",
        "description": "Every version the repository serves (a single model: itself). A "
        "version not loaded yet is UNAVAILABLE and loads on its first request; a model that "
        "models.json keeps out has no version and the problem as its reason.",
        "items": _object(
            {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "state": {"enum": list(dict.fromkeys(s.triton for s in VersionState))},
                "reason": {"type": "string"},
            },
            "name",
            "state",
            "reason",
        ),
    },
    "Live": _object({"live": {"const": True}}, "live"),
    "Ready": _object({"ready": {"const": True}}, "ready"),
    "ModelReady": _object({"name": {"type": "string"}, "ready": {"const": True}}, "name", "ready"),
    "Document": {"type": "object", "description": "this OpenAPI document"},
}

_ERROR_STATUSES = {
    400: "The body is malformed or does not fit the model (names the field and the problem).",
    404: "No such model, version, label or path (names the ones that exist).",
    405: "The path exists, not for this method; `Allow` lists the methods (any route, for any "
    "method its operations do not list).",
    408: "The body did not arrive within BODY_TIMEOUT_SECONDS; the connection is closed.",
    413: "The body (or what it inflates to) is over MAX_REQUEST_BYTES, or would need more "
    "memory to decode than the process's whole request budget (REQUEST_MEMORY_BUDGET_BYTES).",
    415: "A Content-Encoding or picture type the server cannot decode.",
    500: "An unexpected failure (the traceback is in the logs under `request_id`), or a "
    "misconfigured setting (named).",
    503: "The model cannot be loaded (the next request tries again), a repository's "
    "models.json is unusable or its version does not fit in memory, or the request's "
    "memory did not fit the budget within ADMISSION_TIMEOUT_SECONDS (`Retry-After` says when "
    "to try again).",
}
_ERROR_HEADERS: dict[int, Schema] = {
    405: {"Allow": {"description": "the methods the path takes", "schema": {"type": "string"}}},
    503: {
        "Retry-After": {
            "description": "seconds to wait, when the memory budget was full (not on a load "
            "failure)",
            "schema": {"type": "string"},
        }
    },
}


def _error_response(status: int) -> Schema:
    schema = _ref("InternalError" if status == 500 else "Error")
    response: Schema = {
        "description": _ERROR_STATUSES[status],
        "content": {_JSON: {"schema": schema}},
    }
    if status in _ERROR_HEADERS:
        response["headers"] = _ERROR_HEADERS[status]
    return response


def _parameter(name: str, where: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_SEGMENT: Schema = {"type": "string", "pattern": f"^{NAME_PATTERN}$"}
_PATH_PARAMETERS = {
    "name": _parameter(
        "name", "path", "the served model's name (MODEL_NAME), or a repository's model", _SEGMENT
    ),
    "version": _parameter(
        "version",
        "path",
        "the served model's version (MODEL_VERSION); in a repository, a version number",
        _SEGMENT,
    ),
    "label": _parameter(
        "label",
        "path",
        "a version label of the repository's models.json (TensorFlow Serving's labels)",
        _SEGMENT,
    ),
}
_CONTENT_ENCODING = _parameter(
    "Content-Encoding",
    "header",
    "the body's compression; the inflated body is bounded by MAX_REQUEST_BYTES",
    {"enum": [e.value for e in body.Encoding] + [a for a in body.ALIASES if a]},
)
_HEADER_LENGTH = _parameter(
    v2_binary.HEADER_LENGTH,
    "header",
    "binary tensor data extension: the length of the JSON header at the start of the body; "
    "the binary data of each tensor with parameters.binary_data_size follows it",
    {"type": "integer", "minimum": 1},
)
_QUERY = {
    "top_k": _parameter(
        "top_k",
        "query",
        f"how many classes per example (default {DEFAULT_TOP_K})",
        {"type": "integer", "minimum": 1, "default": DEFAULT_TOP_K},
    )
}

_PICTURES = [f.value for f in images.PictureFormat] + list(images.ALIASES)
_PICTURE_BODY: Schema = {"schema": {"type": "string", "format": "binary"}}
_BODIES: dict[Body, Schema] = {
    Body.PREDICT: {
        "required": True,
        "description": "JSON; or one raw picture (`Content-Type: image/...`) for a model whose "
        "only input is shaped like pictures.",
        "content": {
            _JSON: {"schema": _ref("PredictRequest")},
            **dict.fromkeys(_PICTURES, _PICTURE_BODY),
        },
    },
    Body.CLASSIFY: {
        "required": True,
        "content": {
            _JSON: {"schema": _ref("ClassifyRequest")},
            **dict.fromkeys(_PICTURES, _PICTURE_BODY),
        },
    },
    Body.REGRESS: {"required": True, "content": {_JSON: {"schema": _ref("RegressRequest")}}},
    Body.INDEX: {
        "required": False,
        "content": {_JSON: {"schema": _ref("RepositoryIndexRequest")}},
    },
    Body.INFER: {
        "required": True,
        "description": "JSON; or, with the binary tensor data extension, a JSON header of "
        f"{v2_binary.HEADER_LENGTH} bytes followed by the tensors' raw little-endian data.",
        "content": {
            _JSON: {"schema": _ref("InferRequest")},
            _BINARY: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def _operation(op: Operation, template: str, variant: str) -> Schema:
    """One operation of the document, from the route table's entry."""
    content: Schema = {_JSON: {"schema": _ref(op.answer)}}
    if op.body is Body.INFER:
        content[_BINARY] = {
            "schema": {"type": "string", "format": "binary"},
            "description": "any output asked for binary data: a JSON header of "
            f"{v2_binary.HEADER_LENGTH} bytes, then each binary output's data",
        }
    parameters = [param for key, param in _PATH_PARAMETERS.items() if f"{{{key}}}" in template]
    if op.body is not None:
        parameters.append(_CONTENT_ENCODING)
    if op.body is Body.INFER:
        parameters.append(_HEADER_LENGTH)
    parameters += [_QUERY[name] for name in op.query]
    operation: Schema = {
        "summary": op.summary,
        "tags": [op.tag.value],
        "operationId": op.operation_id + variant,
        "responses": {
            "200": {"description": "OK", "content": content},
            **{str(s): {"$ref": f"#/components/responses/{s}"} for s in (*op.errors, 405)},
        },
    }
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = _BODIES[op.body]
    return operation


def _paths(routes: tuple[Route, ...]) -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for route in routes:
        for template in route.templates():
            variant = "_version" if "{version}" in template else ""
            variant = "_label" if "{label}" in template else variant
            paths[template] = {
                method.lower(): _operation(op, template, variant)
                for method, op in route.methods.items()
            }
    return paths


@functools.cache
def encoded(version: str, routes: tuple[Route, ...]) -> bytes:
    """The document as JSON bytes, built on the first call for ``version`` and kept."""
    return json.dumps(document(version, routes), separators=(",", ":")).encode()


def document(version: str, routes: tuple[Route, ...]) -> dict[str, Any]:
    """The OpenAPI document of ``routes``; ``version`` is the server's, as ``GET /v2`` says."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TFLite Cloud Function",
            "version": version,
            "description": "A quantized TFLite model served over the TensorFlow Serving REST "
            "API and the Open Inference Protocol (KServe V2). Every answer is JSON; errors "
            'are `{"error": ...}`. Every route answers 405 with `Allow` to a method it '
            "does not list (HEAD is served as GET). Responses carry `X-Request-Id` and "
            "`Server-Timing`. Model names, input names and shapes are the served model's: "
            "see `GET /v2/models/{name}`.",
        },
        "servers": [{"url": "."}],
        "tags": [{"name": tag.value} for tag in Tag],
        "paths": copy.deepcopy(_paths(routes)),
        "components": {
            "schemas": copy.deepcopy(_SCHEMAS),
            "responses": {str(s): _error_response(s) for s in _ERROR_STATUSES},
        },
    }
