"""TensorFlow Serving REST API: predict bodies <-> InferRequest/InferResponse, status, metadata.

Shapes follow TensorFlow Serving's documented behaviour
(https://www.tensorflow.org/tfx/serving/api_rest): row format ``instances`` answers
``predictions`` (one entry per instance; a single-output model omits the output name),
columnar ``inputs`` answers ``outputs`` (whole tensors; named only for several outputs).
Float values may be ``NaN``, ``Infinity`` or ``-Infinity``, in requests and answers.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from serving.errors import BadRequest, ServingError
from serving.model import Model, Signature, TensorSpec
from serving.model.arrays import to_array
from serving.protocol import jsonio
from serving.protocol.datatypes import Datatype
from serving.protocol.types import InferRequest, InferResponse


class Layout(enum.Enum):
    """TF Serving's two request formats; the answer uses the request's."""

    ROW = "row"  # {"instances": [...]} -> {"predictions": [...]}
    COLUMNAR = "columnar"  # {"inputs": ...} -> {"outputs": ...}


def decode_predict(data: bytes, model: Model) -> tuple[InferRequest, Layout]:
    """The request and its layout from a predict body (``signature_name`` optional)."""
    body = jsonio.loads(data)
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with 'instances' or 'inputs'")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise BadRequest(
            "request must contain exactly one of 'instances' (row format) or 'inputs' "
            "(columnar format)" + (", not both" if has_rows else "")
        )
    key = body.get("signature_name")
    if key is not None and not isinstance(key, str):
        raise BadRequest(f"'signature_name' must be a string, received {type(key).__name__}")
    signature = model.signature(key)
    array = functools.partial(to_array, booleans_possible=jsonio.may_hold_booleans(data))
    if has_rows:
        inputs, layout = _rows(body["instances"], signature, array), Layout.ROW
    else:
        inputs, layout = _columns(body["inputs"], signature, array), Layout.COLUMNAR
    return InferRequest(inputs=inputs, signature=signature.key), layout


ToArray = Callable[..., np.ndarray]


def _rows(instances: Any, signature: Signature, to_array: ToArray) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    if not isinstance(instances[0], dict):
        return _single_input(instances, signature, "each instance must be an object", to_array)
    if not all(isinstance(instance, dict) for instance in instances):
        raise BadRequest("'instances' mixes objects and values: use one form for every instance")
    columns: dict[str, list[Any]] = {}
    for number, instance in enumerate(instances):
        if number and instance.keys() != instances[0].keys():
            raise BadRequest(
                f"instance {number} has inputs {sorted(instance)}, "
                f"instance 0 has {sorted(instances[0])}: every instance needs the same inputs"
            )
        for name, value in instance.items():
            columns.setdefault(name, []).append(value)
    return {name: to_array(values, what=f"input {name!r}") for name, values in columns.items()}


def _columns(inputs: Any, signature: Signature, to_array: ToArray) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict):
        return {name: to_array(value, what=f"input {name!r}") for name, value in inputs.items()}
    return _single_input(inputs, signature, "'inputs' must be an object", to_array)


def _single_input(
    value: Any, signature: Signature, form: str, to_array: ToArray
) -> dict[str, np.ndarray]:
    """An unnamed value is the signature's only input; with several inputs, names are needed."""
    specs = signature.inputs
    if len(specs) != 1:
        names = ", ".join(s.name for s in specs)
        raise BadRequest(f"the model has {len(specs)} inputs ({names}): {form} keyed by input name")
    return {specs[0].name: to_array(value, what=f"input {specs[0].name!r}")}


def encode_predict(response: InferResponse, layout: Layout) -> bytes:
    """The predict answer for ``response`` in the request's layout."""
    outputs = {t.name: np.ascontiguousarray(t.data) for t in response.outputs}
    finite = jsonio.all_finite(list(outputs.values()))
    single = len(outputs) == 1
    if layout is Layout.COLUMNAR:
        value: Any = next(iter(outputs.values())) if single else outputs
        return jsonio.dumps({"outputs": value}, finite=finite)
    if single:
        return jsonio.dumps({"predictions": next(iter(outputs.values()))}, finite=finite)
    sizes = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise BadRequest(
            "the model's outputs do not share a batch dimension, so they cannot be returned "
            "per instance: send the columnar format ('inputs') instead"
        )
    rows = [{name: value[i] for name, value in outputs.items()} for i in range(sizes.pop())]
    return jsonio.dumps({"predictions": rows}, finite=finite)


def status_body(version: str, state: str, error: ServingError | None) -> dict[str, Any]:
    """``GET /v1/models/{name}``: model_version_status as TensorFlow Serving reports it."""
    return {
        "model_version_status": [
            {
                "version": version,
                "state": state,
                "status": {
                    "error_code": "OK" if error is None else "UNAVAILABLE",
                    "error_message": "" if error is None else str(error),
                },
            }
        ]
    }


def _tensor_info(spec: TensorSpec) -> dict[str, Any]:
    info: dict[str, Any] = {
        "dtype": Datatype.of(spec.client_dtype).tf_name,
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in spec.shape],
            "unknown_rank": False,
        },
        "name": spec.name,
    }
    if spec.quantized:
        info["quantization"] = {
            "dtype": Datatype.of(spec.dtype).tf_name,
            "scale": spec.scale,
            "zero_point": spec.zero_point,
        }
    return info


def metadata_body(name: str, version: str, model: Model) -> dict[str, Any]:
    """``GET /v1/models/{name}/metadata``: every signature def, as TensorFlow Serving answers."""
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    signature.key: {
                        "inputs": {s.name: _tensor_info(s) for s in signature.inputs},
                        "outputs": {s.name: _tensor_info(s) for s in signature.outputs},
                        "method_name": "tensorflow/serving/predict",
                    }
                    for signature in model.signatures
                }
            },
            "backend": {"name": model.backend.name, "version": model.backend.version},
        },
    }
