"""Open Inference Protocol (KServe V2) bodies: infer requests and responses, metadata.

See https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ .
Tensors carry ``name``, ``shape``, ``datatype`` and ``data`` (flat row-major or nested);
responses always use flat data. Quantized tensors are exchanged as FP32 real values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from serving import codec
from serving.errors import BadRequest
from serving.model import Model
from serving.tensors import TensorSpec

PLATFORM = "tensorflow_lite"


def parse_infer(body: Any, model: Model) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """Inputs by name, and the requested output names (``None``: all) of an infer body."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with an 'inputs' list")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    inputs: dict[str, np.ndarray] = {}
    for position, tensor in enumerate(tensors):
        name, array = _parse_tensor(tensor, position)
        if name in inputs:
            raise BadRequest(f"input {name!r} is given twice")
        inputs[name] = array
    return inputs, _requested_outputs(body.get("outputs"), model)


def _parse_tensor(tensor: Any, position: int) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise BadRequest(f"inputs[{position}] must be an object with a string 'name'")
    name = tensor["name"]
    what = f"input {name!r}"
    for key in ("shape", "datatype", "data"):
        if key not in tensor:
            raise BadRequest(f"{what}: missing {key!r}")
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"{what}: 'shape' must be a list of non-negative integers")
    datatype = tensor["datatype"]
    if datatype not in codec.V2_DATATYPES:
        supported = ", ".join(codec.V2_DATATYPES)
        raise BadRequest(f"{what}: datatype {datatype!r} is not supported (use one of {supported})")
    array = codec.to_array(tensor["data"], what=what)
    if array.size != math.prod(shape):
        raise BadRequest(
            f"{what}: 'data' has {array.size} values, shape {codec.shape_text(shape)} "
            f"needs {math.prod(shape)}"
        )
    # The declared datatype is checked first, so FP32 data sent as INT8 is refused even
    # when the model would have accepted floats.
    array = codec.coerce(array, codec.V2_DATATYPES[datatype], what=what)
    return name, array.reshape(shape)


def _requested_outputs(outputs: Any, model: Model) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise BadRequest("'outputs' must be a list of objects with a string 'name'")
    known = [spec.name for spec in model.outputs]
    names = [o["name"] for o in outputs]
    for name in names:
        if name not in known:
            raise BadRequest(
                f"unknown output {name!r}; the model's outputs are: {', '.join(known)}"
            )
    return names


def format_infer(
    outputs: dict[str, np.ndarray],
    requested: list[str] | None,
    *,
    name: str,
    version: str,
    request_id: Any = None,
) -> dict[str, Any]:
    """The infer response: flat data, shape and datatype for each (requested) output."""
    body: dict[str, Any] = {"model_name": name, "model_version": version}
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = [
        {
            "name": output,
            "datatype": codec.v2_datatype(outputs[output].dtype),
            "shape": list(outputs[output].shape),
            "data": codec.to_json(outputs[output].reshape(-1)),
        }
        for output in (requested or outputs)
    ]
    return body


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": spec.name,
        "datatype": codec.v2_datatype(spec.client_dtype),
        "shape": list(spec.shape),
    }
    if spec.quantized:
        meta["parameters"] = {
            "quantized_datatype": codec.v2_datatype(spec.dtype),
            "scale": spec.scale,
            "zero_point": spec.zero_point,
        }
    return meta


def metadata_body(name: str, version: str, model: Model) -> dict[str, Any]:
    """``GET /v2/models/{name}``: name, versions, platform, input and output tensors."""
    return {
        "name": name,
        "versions": [version],
        "platform": PLATFORM,
        "inputs": [_tensor_metadata(spec) for spec in model.inputs],
        "outputs": [_tensor_metadata(spec) for spec in model.outputs],
        "parameters": {"backend": model.backend.name, "backend_version": model.backend.version},
    }
