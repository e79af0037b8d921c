"""Open Inference Protocol (KServe V2) bodies <-> InferRequest/InferResponse, and metadata.

See https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol/ .
Tensors carry ``name``, ``shape``, ``datatype`` and either JSON ``data`` (flat row-major
or nested) or, with the binary tensor data extension, ``parameters.binary_data_size``
bytes after the JSON header (:mod:`serving.protocol.v2_binary`). Which datatypes an input
accepts is :func:`serving.protocol.datatypes.accepted`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.errors import BadRequest
from serving.model import Model, Signature, TensorSpec
from serving.model.arrays import coerce
from serving.protocol import classify, images, jsonio, v2_binary
from serving.protocol.datatypes import REAL_VALUE_DATATYPES, Datatype, accepted
from serving.protocol.types import Encoded, InferRequest, InferResponse, RequestedOutput
from serving.settings import DEFAULT_MAX_IMAGE_PIXELS

PLATFORM = "tensorflow_lite"
EXTENSIONS = ("binary_tensor_data", "classification", "model_repository")
MAX_RANK = 16  # far above any TFLite model; bounds the work a hostile shape can ask for
MAX_DIMENSION = 2**31 - 1  # TFLite dimensions are int32
# numpy refuses a shape whose non-zero dimensions multiply past its index range even when
# another dimension is 0; no body within the size limit holds this many elements anyway.
MAX_ELEMENTS = 2**31 - 1


def decode_infer(
    data: bytes,
    header_length: str | None,
    model: Model,
    *,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> InferRequest:
    """The request in an infer body (JSON, or JSON header + binary tensor data).

    A picture input also takes ``BYTES``: one encoded picture per batch item (raw bytes
    with the binary extension, base64 text in JSON).
    """
    header, tail_bytes = v2_binary.split(data, header_length)
    document = jsonio.parse(header, what="inference request")
    body = document.value
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with an 'inputs' list")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest(f"'id' must be a string, received {jsonio.kind(request_id)}")
    parameters = _object(body.get("parameters"), "'parameters'")
    signature = model.signature(_optional(parameters, "signature_name", str, "parameters"))
    binary_outputs = _optional(parameters, "binary_data_output", bool, "parameters") or False
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    tail = v2_binary.Tail(tail_bytes)
    inputs: dict[str, np.ndarray] = {}
    for position, tensor in enumerate(tensors):
        name, array = _input(tensor, position, signature, tail, document)
        if array.dtype == object:
            binary = "binary_data_size" in (tensor.get("parameters") or {})
            array = _pictures(name, array, model, signature, max_image_pixels, binary)
        if name in inputs:
            raise BadRequest(f"input {name!r} is given twice")
        inputs[name] = array
    tail.check_consumed()
    return InferRequest(
        inputs=inputs,
        outputs=_requested_outputs(body.get("outputs"), signature),
        signature=signature.key,
        id=request_id,
        binary_outputs=binary_outputs,
    )


def _input(
    tensor: Any,
    position: int,
    signature: Signature,
    tail: v2_binary.Tail,
    document: jsonio.Document,
) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise BadRequest(f"inputs[{position}] must be an object with a string 'name'")
    name = tensor["name"]
    spec = signature.known_input(name)
    what = f"input {name!r}"
    for key in ("shape", "datatype"):
        if key not in tensor:
            raise BadRequest(f"{what}: missing {key!r}")
    shape = _shape(tensor["shape"], what)
    datatype = Datatype.parse(tensor["datatype"])
    if datatype is None:
        names = ", ".join(d.value for d in Datatype)
        given = jsonio.shown(tensor["datatype"])
        raise BadRequest(f"{what}: datatype {given} is not one of {names}")
    if datatype not in accepted(spec) and datatype is not Datatype.BYTES:
        raise BadRequest(f"{what}: datatype {datatype.value} is not accepted; {_expected(spec)}")
    parameters = _object(tensor.get("parameters"), f"{what}: 'parameters'")
    size = _optional(parameters, "binary_data_size", int, what)
    if size is not None:
        if "data" in tensor:
            raise BadRequest(f"{what}: has both 'data' and binary_data_size; send one")
        if size < 0:
            raise BadRequest(f"{what}: binary_data_size must not be negative, received {size}")
        return name, v2_binary.decode(tail.take(size, what=what), datatype, shape, what=what)
    if "data" not in tensor:
        raise BadRequest(f"{what}: missing 'data' (or parameters.binary_data_size)")
    return name, _json_data(tensor["data"], datatype, shape, what, document)


def _pictures(
    name: str,
    array: np.ndarray,
    model: Model,
    signature: Signature,
    max_image_pixels: int,
    binary: bool,
) -> np.ndarray:
    """BYTES elements holding encoded pictures, one per batch item, as the input's values."""
    what = f"input {name!r}"
    spec = signature.known_input(name)
    if Datatype.of(spec.dtype) is Datatype.BYTES:
        return array  # string inputs take strings
    picture = model.picture_input(signature, spec)
    if picture is None:
        raise BadRequest(f"{what}: datatype BYTES is not accepted; {_expected(spec)}")
    if array.ndim < 1 or math.prod(array.shape[1:]) != 1:
        raise BadRequest(
            f"{what}: BYTES pictures take shape [batch] or [batch, 1] (one encoded picture "
            f"per batch item), received {list(array.shape)}"
        )
    items = list(array.reshape(-1))
    data = (
        [bytes(item) for item in items]
        if binary
        else [images.from_base64(item.decode(), what=what) for item in items]
    )
    return images.to_input(data, picture, max_pixels=max_image_pixels, what=what)


def _json_data(
    data: Any, datatype: Datatype, shape: tuple[int, ...], what: str, document: jsonio.Document
) -> np.ndarray:
    if datatype is Datatype.BYTES:
        flat = data if isinstance(data, list) else [data]
        while flat and isinstance(flat[0], list):  # nested lists of strings
            flat = [item for row in flat for item in row]
        if not all(isinstance(item, str) for item in flat):
            raise BadRequest(f"{what}: BYTES data must be strings")
        array = np.array([item.encode() for item in flat], dtype=object)
    else:
        array = document.array(data, what=what)
    count = math.prod(shape)
    if array.size != count:
        raise BadRequest(
            f"{what}: 'data' has {array.size} values, shape {list(shape)} needs {count}"
        )
    if datatype is not Datatype.BYTES:
        # The declared datatype is checked first: FP32 values declared INT8 are refused.
        array = coerce(array, datatype.numpy, what=what)
    return array.reshape(shape)


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    ):
        shown = jsonio.shown(value)
        raise BadRequest(f"{what}: 'shape' must be a list of integers, received {shown}")
    if len(value) > MAX_RANK:
        raise BadRequest(f"{what}: 'shape' has {len(value)} dimensions, at most {MAX_RANK}")
    if any(d < 0 or d > MAX_DIMENSION for d in value):
        raise BadRequest(f"{what}: 'shape' {value} has a dimension outside [0, {MAX_DIMENSION}]")
    elements = math.prod(d for d in value if d)
    if elements > MAX_ELEMENTS:
        raise BadRequest(
            f"{what}: 'shape' {value} multiplies to {elements} elements (zero dimensions "
            f"aside), at most {MAX_ELEMENTS}"
        )
    return tuple(value)


def _expected(spec: TensorSpec) -> str:
    """What an input accepts, said the way a client can act on it."""
    names = [d.value for d in accepted(spec)]
    if spec.quantized:
        real = " or ".join(d.value for d in REAL_VALUE_DATATYPES)
        return f"expected {real} (real values) or {names[-1]} (quantized codes)"
    return f"expected {names[0]}"


def _requested_outputs(value: Any, signature: Signature) -> tuple[RequestedOutput, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(f"'outputs' must be a list, received {jsonio.kind(value)}")
    known = [spec.name for spec in signature.outputs]
    requested: list[RequestedOutput] = []
    for position, output in enumerate(value):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise BadRequest(f"outputs[{position}] must be an object with a string 'name'")
        name = output["name"]
        if name not in known:
            raise BadRequest(
                f"unknown output {name!r}; the model's outputs are: {', '.join(known)}"
            )
        if any(r.name == name for r in requested):
            raise BadRequest(f"output {name!r} is requested twice")
        parameters = _object(output.get("parameters"), f"output {name!r}: 'parameters'")
        binary = _optional(parameters, "binary_data", bool, f"output {name!r}")
        count = _optional(parameters, "classification", int, f"output {name!r}")
        if count is not None:
            spec = next(s for s in signature.outputs if s.name == name)
            classify.check_request(spec, count, what=f"output {name!r}")
        requested.append(RequestedOutput(name=name, binary=binary, classification=count))
    return tuple(requested)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be an object, received {jsonio.kind(value)}")
    return value


def _optional(parameters: dict[str, Any], key: str, kind: type, what: str) -> Any:
    """``parameters[key]`` if present and of ``kind`` (bool is not an int here)."""
    value = parameters.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        received = jsonio.kind(value)
        raise BadRequest(f"{what}: {key} must be {_KIND_NAMES[kind]}, received {received}")
    return value


_KIND_NAMES = {int: "an integer", bool: "true or false", str: "a string"}


def encode_infer(response: InferResponse, request: InferRequest) -> Encoded:
    """The infer answer: JSON, or a JSON header and binary data when any output asks for it."""
    binary_for = {o.name: o.binary for o in request.outputs or ()}
    header: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
    }
    if response.id is not None:
        header["id"] = response.id
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    json_arrays: list[np.ndarray] = []
    for tensor in response.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype.value,
            "shape": list(tensor.shape),
        }
        binary = binary_for.get(tensor.name)
        if binary is None:
            binary = request.binary_outputs
        if binary:
            blob = v2_binary.encode(tensor.data)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            flat = np.ascontiguousarray(tensor.data).reshape(-1)
            entry["data"] = flat.tolist() if tensor.datatype is Datatype.BYTES else flat
            json_arrays.append(flat)
        entries.append(entry)
    header["outputs"] = entries
    numeric = [a for a in json_arrays if a.dtype != object]
    content = jsonio.dumps(header, finite=jsonio.all_finite(numeric))
    if not blobs:
        return Encoded(content)
    return Encoded(
        content + b"".join(blobs),
        content_type="application/octet-stream",
        headers={v2_binary.HEADER_LENGTH: str(len(content))},
    )


def _tensor_metadata(
    spec: TensorSpec, model: Model | None = None, signature: Signature | None = None
) -> dict[str, Any]:
    datatypes = [d.value for d in accepted(spec)]
    parameters: dict[str, Any] = {"accepted_datatypes": datatypes}
    meta: dict[str, Any] = {
        "name": spec.name,
        "datatype": Datatype.of(spec.client_dtype).value,
        "shape": list(spec.shape),
        "parameters": parameters,
    }
    if spec.quantized:
        parameters.update(
            quantized_datatype=Datatype.of(spec.dtype).value,
            scale=spec.scale,
            zero_point=spec.zero_point,
        )
    if model is not None and signature is not None:
        if signature.input(spec.name) is spec:
            if model.picture_input(signature, spec) is not None:
                datatypes.append(Datatype.BYTES.value)  # encoded pictures, one per item
            if model.metadata is not None:
                parameters.update(model.metadata.input(signature.key, spec.name).describe())
        elif model.metadata is not None:
            parameters.update(model.metadata.output(signature.key, spec.name).describe())
    return meta


def metadata_body(
    name: str, version: str, model: Model, versions: Sequence[str] | None = None
) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the default signature's tensors; every signature named.

    ``versions``: every version of the model that may be asked for (default: ``version``).
    """
    default = model.default
    parameters: dict[str, Any] = {
        "backend": model.backend.name,
        "backend_version": model.backend.version,
        "signatures": {
            s.key: {
                "inputs": [_tensor_metadata(spec, model, s) for spec in s.inputs],
                "outputs": [_tensor_metadata(spec, model, s) for spec in s.outputs],
            }
            for s in model.signatures
        },
    }
    if model.metadata is not None:
        parameters["model_metadata"] = model.metadata.describe()
    return {
        "name": name,
        "versions": list(versions) if versions is not None else [version],
        "platform": PLATFORM,
        "inputs": [_tensor_metadata(spec, model, default) for spec in default.inputs],
        "outputs": [_tensor_metadata(spec, model, default) for spec in default.outputs],
        "parameters": parameters,
    }


def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``: the server's name, version and protocol extensions."""
    return {"name": "tflite-cloud-function", "version": version, "extensions": list(EXTENSIONS)}
