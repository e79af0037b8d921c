"""TensorFlow Serving REST API: predict bodies <-> InferRequest/InferResponse, status, metadata.

Shapes follow TensorFlow Serving's documented behaviour
(https://www.tensorflow.org/tfx/serving/api_rest): row format ``instances`` answers
``predictions`` (one entry per instance; a single-output model omits the output name),
columnar ``inputs`` answers ``outputs`` (whole tensors; named only for several outputs).
Float values may be ``NaN``, ``Infinity`` or ``-Infinity``, in requests and answers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.errors import BadRequest, ServingError
from serving.model import Model, Signature, TensorSpec
from serving.model.tensors import shape_text
from serving.protocol import images, jsonio
from serving.protocol.datatypes import Datatype
from serving.protocol.types import InferRequest, InferResponse
from serving.settings import DEFAULT_MAX_IMAGE_PIXELS


class Layout(enum.Enum):
    """TF Serving's two request formats; the answer uses the request's."""

    ROW = "row"  # {"instances": [...]} -> {"predictions": [...]}
    COLUMNAR = "columnar"  # {"inputs": ...} -> {"outputs": ...}


def decode_predict(
    data: bytes, model: Model, *, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> tuple[InferRequest, Layout]:
    """The request and its layout from a predict body (``signature_name`` optional).

    A picture input (``[batch, height, width, 1|3]``) also takes ``{"b64": "..."}``
    encoded pictures wherever its value goes, as TF Serving encodes binary values.
    """
    document = jsonio.parse(data)
    body = document.value
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with 'instances' or 'inputs'")
    key = signature_name(body)  # checked first, as TF Serving does
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise BadRequest(
            "request must contain exactly one of 'instances' (row format) or 'inputs' "
            "(columnar format)" + (", not both" if has_rows else "")
        )
    signature = model.signature(key)
    values = Values(model, signature, max_image_pixels, document)
    if has_rows:
        inputs, layout = rows(body["instances"], values, "instances"), Layout.ROW
    else:
        inputs, layout = _columns(body["inputs"], values), Layout.COLUMNAR
    return InferRequest(inputs=inputs, signature=signature.key), layout


def decode_picture(
    data: bytes,
    declared: images.PictureFormat,
    model: Model,
    key: str | None,
    max_image_pixels: int,
) -> InferRequest:
    """A raw picture body (``Content-Type: image/...``) as a batch of one for the signature's
    only input, which must be a picture input."""
    signature = model.signature(key)
    specs = signature.inputs
    picture = model.picture_input(signature, specs[0]) if len(specs) == 1 else None
    if picture is None:
        listed = ", ".join(f"{s.name} {shape_text(s.shape)}" for s in specs)
        raise BadRequest(
            f"an {declared.value} body needs a model with one picture input shaped "
            f"[batch, height, width, 1|3]; signature {signature.key!r} takes {listed}: "
            "send JSON instead"
        )
    what = f"input {specs[0].name!r}"
    array = images.to_input(
        [data], picture, max_pixels=max_image_pixels, declared=declared, what=what
    )
    return InferRequest(inputs={specs[0].name: array}, signature=signature.key)


def decode_examples(
    data: bytes, model: Model, api: str, *, max_image_pixels: int, or_picture: bool = False
) -> tuple[dict[str, Any], InferRequest]:
    """The body and request of a Classify or Regress call (``api``): ``{"examples": [{input
    name: value}, ...]}``, values as for predict, with an optional ``signature_name``."""
    document = jsonio.parse(data)
    body = document.value
    if not isinstance(body, dict) or "examples" not in body:
        pictures = f" or one picture body ({images.MEDIA_TYPES})" if or_picture else ""
        raise BadRequest(
            f"{api} takes a JSON object with 'examples' (a list of {{input name: value}})"
            + pictures
        )
    signature = model.signature(signature_name(body))
    values = Values(model, signature, max_image_pixels, document)
    inputs = rows(body["examples"], values, "examples")
    return body, InferRequest(inputs=inputs, signature=signature.key)


def signature_name(body: dict[str, Any]) -> str | None:
    """The body's optional ``signature_name``; 400 unless a string."""
    key = body.get("signature_name")
    if key is not None and not isinstance(key, str):
        raise BadRequest(f"'signature_name' must be a string, received {jsonio.kind(key)}")
    return key


class Values:
    """Turns one input's JSON values into an array: numbers, or ``{"b64": ...}`` pictures."""

    def __init__(
        self, model: Model, signature: Signature, max_image_pixels: int, document: jsonio.Document
    ) -> None:
        self.model = model
        self.signature = signature
        self.max_image_pixels = max_image_pixels
        self.document = document

    def array(self, name: str, value: Any, *, batched: bool) -> np.ndarray:
        """``value`` (a list of instances when ``batched``) as the input's array."""
        what = f"input {name!r}"
        spec = self.signature.known_input(name)
        items = value if batched and isinstance(value, list) else [value]
        pictures = [_is_b64(item) for item in items]
        if not any(pictures):
            return self.document.array(value, what=what)
        if not all(pictures):
            raise BadRequest(f"{what}: mixes {{'b64': ...}} pictures and other values")
        picture = self.model.picture_input(self.signature, spec)
        if picture is None:
            shape = shape_text(spec.shape)
            raise BadRequest(
                f"{what}: {{'b64': ...}} values are accepted only by picture inputs shaped "
                f"[batch, height, width, 1|3]; this input is {shape}"
            )
        data = [images.from_base64(item["b64"], what=what) for item in items]
        return images.to_input(data, picture, max_pixels=self.max_image_pixels, what=what)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {"b64"}


def rows(instances: Any, values: Values, key: str) -> dict[str, np.ndarray]:
    """Row-format ``instances`` (or Classify ``examples``, named by ``key``) by input name."""
    if not isinstance(instances, list) or not instances:
        raise BadRequest(f"'{key}' must be a non-empty list")
    if not isinstance(instances[0], dict) or _is_b64(instances[0]):
        return _single_input(instances, values, "each instance must be an object", batched=True)
    if not all(isinstance(instance, dict) for instance in instances):
        raise BadRequest(f"'{key}' mixes objects and values: use one form for every instance")
    columns: dict[str, list[Any]] = {}
    for number, instance in enumerate(instances):
        if number and instance.keys() != instances[0].keys():
            raise BadRequest(
                f"instance {number} has inputs {_listed(instance)}, instance 0 has "
                f"{_listed(instances[0])}: every instance needs the same inputs"
            )
        for name, value in instance.items():
            columns.setdefault(name, []).append(value)
    return {name: values.array(name, items, batched=True) for name, items in columns.items()}


def _listed(instance: dict[str, Any]) -> str:
    return ", ".join(f"'{name}'" for name in sorted(instance)) or "none"


def _columns(inputs: Any, values: Values) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict) and not _is_b64(inputs):
        return {name: values.array(name, value, batched=True) for name, value in inputs.items()}
    return _single_input(inputs, values, "'inputs' must be an object", batched=True)


def _single_input(value: Any, values: Values, form: str, *, batched: bool) -> dict[str, np.ndarray]:
    """An unnamed value is the signature's only input; with several inputs, names are needed."""
    specs = values.signature.inputs
    if len(specs) != 1:
        names = ", ".join(s.name for s in specs)
        raise BadRequest(f"the model has {len(specs)} inputs ({names}): {form} keyed by input name")
    return {specs[0].name: values.array(specs[0].name, value, batched=batched)}


def encode_predict(response: InferResponse, layout: Layout) -> bytes:
    """The predict answer for ``response`` in the request's layout."""
    outputs = {t.name: np.ascontiguousarray(t.data) for t in response.outputs}
    finite = jsonio.all_finite(list(outputs.values()))
    if layout is Layout.COLUMNAR:
        value: Any = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        return jsonio.dumps({"outputs": value}, finite=finite)
    return jsonio.dumps({"predictions": predictions(outputs)}, finite=finite)


def predictions(outputs: dict[str, np.ndarray]) -> np.ndarray | list[dict[str, np.ndarray]]:
    """Row format's ``predictions``, indexable by instance: the only output's array, or one
    ``{output name: value}`` per instance; 400 when the outputs share no batch dimension."""
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    sizes = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise BadRequest(
            "the model's outputs do not share a batch dimension, so they cannot be returned "
            "per instance: send the columnar format ('inputs') instead"
        )
    return [{name: value[i] for name, value in outputs.items()} for i in range(sizes.pop())]


@dataclass(frozen=True)
class StatusEntry:
    """One version in a status answer: its number, TF Serving state name and last error."""

    version: str
    state: str
    error: ServingError | None = None


def status_body(versions: Sequence[StatusEntry]) -> dict[str, Any]:
    """``GET /v1/models/{name}``: model_version_status as TensorFlow Serving reports it."""
    return {
        "model_version_status": [
            {
                "version": entry.version,
                "state": entry.state,
                "status": {
                    "error_code": "OK" if entry.error is None else "UNAVAILABLE",
                    "error_message": "" if entry.error is None else str(entry.error),
                },
            }
            for entry in versions
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
                        "defaults": {},
                    }
                    for signature in model.signatures
                }
            },
            "backend": {"name": model.backend.name, "version": model.backend.version},
            **_tflite_metadata(model),
        },
    }


def _tflite_metadata(model: Model) -> dict[str, Any]:
    """The model's TFLite metadata (labels, normalisation, name), when it has any."""
    found = model.metadata
    if found is None:
        return {}
    signatures: dict[str, Any] = {}
    for signature in model.signatures:
        inputs = {s.name: found.input(signature.key, s.name).describe() for s in signature.inputs}
        outputs = {
            s.name: found.output(signature.key, s.name).describe() for s in signature.outputs
        }
        signatures[signature.key] = {
            "inputs": {k: v for k, v in inputs.items() if v},
            "outputs": {k: v for k, v in outputs.items() if v},
        }
    return {"tflite_metadata": {**found.describe(), "signatures": signatures}}
