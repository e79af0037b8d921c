"""The OpenAPI 3.1 document of every route, both protocols and their error bodies (/openapi.json).

It describes the protocols, not the served model: input names, shapes and the model's
name are whatever ``GET /v2/models/{name}`` reports. Built once, on the first request
for it (plain dicts, no import beyond the standard library), so it costs the cold start
nothing. Bodies the server writes with ``NaN``/``Infinity`` tokens (TF Serving's float
convention) are outside JSON and so outside what the schemas below can say.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

Schema = dict[str, Any]

_JSON = "application/json"
_BINARY = "application/octet-stream"
_DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
_MAX_RANK = 16  # serving.protocol.v2.MAX_RANK (not imported: it would pull in numpy)
_MAX_DIMENSION = 2**31 - 1  # serving.protocol.v2.MAX_DIMENSION


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: Schema, *required: str, **more: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), **more}


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
    "Value": {
        "description": "A tensor value: a number, a boolean, or nested lists of them (row-major).",
        "anyOf": [
            {"type": "number"},
            {"type": "boolean"},
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
            "top_k": {"type": "integer", "minimum": 1},
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
                        "state": {"enum": ["START", "LOADING", "AVAILABLE", "FAILED", "END"]},
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
    "Datatype": {"enum": _DATATYPES},
    "Shape": {
        "type": "array",
        "maxItems": _MAX_RANK,
        "items": {"type": "integer", "minimum": 0, "maximum": _MAX_DIMENSION},
    },
    "InferInput": _object(
        {
            "name": {"type": "string"},
            "shape": _ref("Shape"),
            "datatype": _ref("Datatype"),
            "data": {
                "description": "Flat row-major or nested; strings for BYTES. Absent when "
                "parameters.binary_data_size is given.",
                "anyOf": [_ref("Value"), _ref("Strings")],
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
                            "properties": {"binary_data": {"type": "boolean"}},
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
            "platform": {"type": "string"},
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
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
        "name",
        "version",
        "extensions",
    ),
    "Live": _object({"live": {"const": True}}, "live"),
    "Ready": _object({"ready": {"const": True}}, "ready"),
    "ModelReady": _object({"name": {"type": "string"}, "ready": {"const": True}}, "name", "ready"),
}

_ERROR_STATUSES = {
    "400": "The body is malformed or does not fit the model (names the field and the problem).",
    "404": "No such model, version or path.",
    "408": "The body did not arrive within BODY_TIMEOUT_SECONDS; the connection is closed.",
    "413": "The body (or what it inflates to) is over MAX_REQUEST_BYTES, or would need more "
    "memory to decode than the process's whole request budget (REQUEST_MEMORY_BUDGET_BYTES).",
    "415": "A Content-Encoding other than identity, gzip or deflate.",
    "500": "An unexpected failure (the traceback is in the logs under `request_id`), or a "
    "misconfigured setting (named).",
    "503": "The model cannot be loaded (the next request tries again), or the request's "
    "memory did not fit the budget within ADMISSION_TIMEOUT_SECONDS (`Retry-After` says when "
    "to try again).",
}
_RESPONSES: dict[str, Schema] = {
    status: {
        "description": description,
        "content": {_JSON: {"schema": _ref("InternalError" if status == "500" else "Error")}},
    }
    for status, description in _ERROR_STATUSES.items()
}
_RESPONSES["503"]["headers"] = {
    "Retry-After": {
        "description": "seconds to wait, when the memory budget was full (not on a load failure)",
        "schema": {"type": "string"},
    }
}
_RESPONSES["405"] = {
    "description": "The path exists, not for this method; `Allow` lists the methods (any "
    "route, for any method its operations do not list).",
    "headers": {"Allow": {"schema": {"type": "string"}}},
    "content": {_JSON: {"schema": _ref("Error")}},
}


def _parameter(name: str, where: str, description: str, schema: Schema) -> Schema:
    required = where == "path"
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }


_SEGMENT: Schema = {"type": "string", "pattern": "^[^/:]+$"}
_NAME = _parameter("name", "path", "the served model's name (MODEL_NAME)", _SEGMENT)
_VERSION = _parameter("version", "path", "the served model's version (MODEL_VERSION)", _SEGMENT)
_CONTENT_ENCODING = _parameter(
    "Content-Encoding",
    "header",
    "the body's compression; the inflated body is bounded by MAX_REQUEST_BYTES",
    {"enum": ["identity", "gzip", "deflate", "x-gzip"]},
)
_HEADER_LENGTH = _parameter(
    "Inference-Header-Content-Length",
    "header",
    "binary tensor data extension: the length of the JSON header at the start of the body; "
    "the binary data of each tensor with parameters.binary_data_size follows it",
    {"type": "integer", "minimum": 1},
)


def _operation(
    summary: str,
    tag: str,
    ok: Schema,
    errors: tuple[str, ...],
    *,
    params: tuple[Schema, ...] = (),
    body: Schema | None = None,
    ok_binary: bool = False,
) -> Schema:
    content: Schema = {_JSON: {"schema": ok}}
    if ok_binary:
        content[_BINARY] = {
            "schema": {"type": "string", "format": "binary"},
            "description": "any output asked for binary data: a JSON header of "
            "Inference-Header-Content-Length bytes, then each binary output's data",
        }
    operation: Schema = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "OK", "content": content},
            **{status: {"$ref": f"#/components/responses/{status}"} for status in errors},
        },
    }
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = body
    return operation


_GET_ERRORS = ("404", "500", "503")
_POST_ERRORS = ("400", "404", "408", "413", "415", "500", "503")
_TF, _V2, _DOC = "TensorFlow Serving REST API", "Open Inference Protocol (KServe V2)", "Contract"

_PICTURES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif")
_PICTURE_BODY: Schema = {"schema": {"type": "string", "format": "binary"}}
_PREDICT_BODY: Schema = {
    "required": True,
    "description": "JSON; or one raw picture (`Content-Type: image/...`) for a model whose only "
    "input is shaped like pictures.",
    "content": {
        _JSON: {"schema": _ref("PredictRequest")},
        **dict.fromkeys(_PICTURES, _PICTURE_BODY),
    },
}
_CLASSIFY_BODY: Schema = {
    "required": True,
    "content": {
        _JSON: {"schema": _ref("ClassifyRequest")},
        **dict.fromkeys(_PICTURES, _PICTURE_BODY),
    },
}
_TOP_K = _parameter(
    "top_k", "query", "how many classes per example (default 5)", {"type": "integer", "minimum": 1}
)
_INFER_BODY: Schema = {
    "required": True,
    "description": "JSON; or, with the binary tensor data extension, a JSON header of "
    "Inference-Header-Content-Length bytes followed by the tensors' raw little-endian data.",
    "content": {
        _JSON: {"schema": _ref("InferRequest")},
        _BINARY: {"schema": {"type": "string", "format": "binary"}},
    },
}


def _model_paths(prefix: str, suffix: str, operations: dict[str, Schema]) -> dict[str, Schema]:
    """The route with and without ``/versions/{version}``, each with its path parameters."""
    paths: dict[str, Schema] = {}
    for versioned in (False, True):
        path = f"{prefix}/{{name}}" + ("/versions/{version}" if versioned else "") + suffix
        params = (_NAME, _VERSION) if versioned else (_NAME,)
        item: Schema = {}
        for method, op in operations.items():
            op = copy.deepcopy(op)
            op["operationId"] += "_version" if versioned else ""
            op["parameters"] = [*params, *op.get("parameters", ())]
            item[method] = op
        paths[path] = item
    return paths


def _paths() -> dict[str, Schema]:
    status = _operation("Model status (loads the model)", _TF, _ref("ModelStatus"), ("404", "500"))
    predict = _operation(
        "Predict, row or columnar format",
        _TF,
        _ref("PredictResponse"),
        _POST_ERRORS,
        params=(_CONTENT_ENCODING,),
        body=_PREDICT_BODY,
    )
    paths: dict[str, Schema] = {
        "/": {
            "get": {**status, "operationId": "tf_root_status"},
            "post": {**predict, "operationId": "tf_root_predict"},
        },
    }
    paths.update(_model_paths("/v1/models", "", {"get": {**status, "operationId": "tf_status"}}))
    metadata = _operation("Signature defs", _TF, _ref("ModelMetadata"), _GET_ERRORS)
    paths.update(
        _model_paths("/v1/models", "/metadata", {"get": {**metadata, "operationId": "tf_metadata"}})
    )
    paths.update(
        _model_paths("/v1/models", ":predict", {"post": {**predict, "operationId": "tf_predict"}})
    )
    classify = _operation(
        "Classify: top-k labels and scores of the one [batch, classes] output",
        _TF,
        _ref("ClassifyResponse"),
        _POST_ERRORS,
        params=(_CONTENT_ENCODING, _TOP_K),
        body=_CLASSIFY_BODY,
    )
    paths.update(
        _model_paths(
            "/v1/models", ":classify", {"post": {**classify, "operationId": "tf_classify"}}
        )
    )
    regress = _operation(
        "Regress: the one float output ([batch] or [batch, 1]) of the signature, per example",
        _TF,
        _ref("RegressResponse"),
        _POST_ERRORS,
        params=(_CONTENT_ENCODING,),
        body={"required": True, "content": {_JSON: {"schema": _ref("RegressRequest")}}},
    )
    paths.update(
        _model_paths("/v1/models", ":regress", {"post": {**regress, "operationId": "tf_regress"}})
    )
    simple = (
        ("/v2", "Server metadata", _ref("ServerMetadata"), ("500",), "v2_server_metadata"),
        ("/v2/health/live", "Liveness (never loads)", _ref("Live"), ("500",), "v2_live"),
        (
            "/v2/health/ready",
            "Readiness (loads the model)",
            _ref("Ready"),
            ("500", "503"),
            "v2_ready",
        ),
    )
    for path, summary, ok, errors, operation_id in simple:
        paths[path] = {"get": {**_operation(summary, _V2, ok, errors), "operationId": operation_id}}
    model_metadata = _operation("Model metadata", _V2, _ref("V2ModelMetadata"), _GET_ERRORS)
    paths.update(
        _model_paths("/v2/models", "", {"get": {**model_metadata, "operationId": "v2_model"}})
    )
    ready = _operation("Model readiness (loads the model)", _V2, _ref("ModelReady"), _GET_ERRORS)
    paths.update(
        _model_paths("/v2/models", "/ready", {"get": {**ready, "operationId": "v2_model_ready"}})
    )
    infer = _operation(
        "Inference, JSON or binary tensor data",
        _V2,
        _ref("InferResponse"),
        _POST_ERRORS,
        params=(_CONTENT_ENCODING, _HEADER_LENGTH),
        body=_INFER_BODY,
        ok_binary=True,
    )
    paths.update(
        _model_paths("/v2/models", "/infer", {"post": {**infer, "operationId": "v2_infer"}})
    )
    document = _operation("This document", _DOC, {"type": "object"}, ("500",))
    paths["/openapi.json"] = {"get": {**document, "operationId": "openapi"}}
    return paths


@functools.cache
def encoded(version: str) -> bytes:
    """The document as JSON bytes, built on the first call for ``version`` and kept."""
    return json.dumps(document(version), separators=(",", ":")).encode()


def document(version: str) -> dict[str, Any]:
    """The OpenAPI document; ``version`` is the server's, as ``GET /v2`` reports it."""
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
        "tags": [{"name": _TF}, {"name": _V2}, {"name": _DOC}],
        "paths": _paths(),
        "components": {"schemas": copy.deepcopy(_SCHEMAS), "responses": copy.deepcopy(_RESPONSES)},
    }
