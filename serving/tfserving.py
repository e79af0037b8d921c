"""TensorFlow Serving REST API bodies: predict requests and responses, status, metadata.

Shapes follow TensorFlow Serving's documented behaviour
(https://www.tensorflow.org/tfx/serving/api_rest): row format ``instances`` answers
``predictions`` (one entry per instance; a single-output model omits the output name),
columnar ``inputs`` answers ``outputs`` (whole tensors; named only for several outputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving import codec
from serving.errors import BadRequest, ServingError
from serving.model import Model
from serving.tensors import TensorSpec

ROW, COLUMNAR = "row", "columnar"


def parse_predict(body: Any, model: Model) -> tuple[dict[str, np.ndarray], str]:
    """Inputs by name and the request format (``row`` or ``columnar``) of a predict body."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with 'instances' or 'inputs'")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise BadRequest(
            "request must contain exactly one of 'instances' (row format) or 'inputs' "
            "(columnar format)" + (", not both" if has_rows else "")
        )
    signature = body.get("signature_name")
    if signature is not None and signature not in (model.signature, "serving_default"):
        raise BadRequest(
            f"unknown signature_name {signature!r}; the model's signature is "
            f"{model.signature or 'serving_default'!r}"
        )
    if has_rows:
        return _parse_rows(body["instances"], model.inputs), ROW
    return _parse_columns(body["inputs"], model.inputs), COLUMNAR


def _parse_rows(instances: Any, specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    if not isinstance(instances[0], dict):
        return _single_input(instances, specs, "each instance must be an object")
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
    return {
        name: codec.to_array(values, what=f"input {name!r}") for name, values in columns.items()
    }


def _parse_columns(inputs: Any, specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict):
        return {
            name: codec.to_array(value, what=f"input {name!r}") for name, value in inputs.items()
        }
    return _single_input(inputs, specs, "'inputs' must be an object")


def _single_input(value: Any, specs: list[TensorSpec], form: str) -> dict[str, np.ndarray]:
    """An unnamed value is the model's only input; with several inputs, names are needed."""
    if len(specs) != 1:
        names = ", ".join(s.name for s in specs)
        raise BadRequest(f"the model has {len(specs)} inputs ({names}): {form} keyed by input name")
    return {specs[0].name: codec.to_array(value, what=f"input {specs[0].name!r}")}


def format_predict(outputs: dict[str, np.ndarray], request_format: str) -> dict[str, Any]:
    """The response body for ``outputs`` in the request's format."""
    single = len(outputs) == 1
    if request_format == COLUMNAR:
        if single:
            return {"outputs": codec.to_json(next(iter(outputs.values())))}
        return {"outputs": {name: codec.to_json(value) for name, value in outputs.items()}}
    if single:
        return {"predictions": codec.to_json(next(iter(outputs.values())))}
    sizes = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise BadRequest(
            "the model's outputs do not share a batch dimension, so they cannot be returned "
            "per instance: send the columnar format ('inputs') instead"
        )
    columns = {name: codec.to_json(value) for name, value in outputs.items()}
    return {
        "predictions": [
            {name: column[i] for name, column in columns.items()} for i in range(sizes.pop())
        ]
    }


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
        "dtype": codec.tf_datatype(spec.client_dtype),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in spec.shape],
            "unknown_rank": False,
        },
        "name": spec.name,
    }
    if spec.quantized:
        info["quantization"] = {
            "dtype": codec.tf_datatype(spec.dtype),
            "scale": spec.scale,
            "zero_point": spec.zero_point,
        }
    return info


def metadata_body(name: str, version: str, model: Model) -> dict[str, Any]:
    """``GET /v1/models/{name}/metadata``: the signature def, as TensorFlow Serving answers."""
    signature = model.signature or "serving_default"
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    signature: {
                        "inputs": {s.name: _tensor_info(s) for s in model.inputs},
                        "outputs": {s.name: _tensor_info(s) for s in model.outputs},
                        "method_name": "tensorflow/serving/predict",
                    }
                }
            },
            "backend": {"name": model.backend.name, "version": model.backend.version},
        },
    }
