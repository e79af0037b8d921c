"""One function per REST endpoint: check the model name, load, parse, run, format.

Each takes a :class:`Call` and returns ``(status, body)``; errors are raised as
:class:`ServingError` subclasses and turned into JSON by :mod:`serving.app`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from serving import kserve, tfserving
from serving.errors import NotFound, ServingError
from serving.model import Model, Prediction
from serving.runtime import LOADING, Runtime

Reply = tuple[int, dict[str, Any]]


@dataclass
class Call:
    """What an endpoint needs from the HTTP request, and what it reports back for logs."""

    runtime: Runtime
    params: dict[str, str]
    read_json: Callable[[], Any]
    timings: dict[str, float] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def model(self) -> Model:
        """The loaded model (loading it on a cold start), after checking name and version."""
        self.check_model()
        loaded = self.runtime.load()
        if loaded.load_ms is not None:
            self.timings["load"] = loaded.load_ms
            self.fields["cold_start"] = True
        return loaded.model

    def check_model(self) -> None:
        """404 unless the route names the served model (and its version, if given)."""
        settings = self.runtime.settings
        name = self.params.get("name", settings.model_name)
        if name != settings.model_name:
            raise NotFound(f"model {name!r} not found; this server serves {settings.model_name!r}")
        version = self.params.get("version")
        if version is not None and version != settings.model_version:
            raise NotFound(
                f"version {version!r} of model {name!r} not found; "
                f"this server serves version {settings.model_version!r}"
            )

    def run(self, model: Model, inputs: dict[str, Any]) -> Prediction:
        """Predict, recording batch size and invoke time for Server-Timing and logs."""
        prediction = model.run(inputs)
        self.timings["infer"] = prediction.invoke_ms
        self.fields.update(
            batch_size=prediction.batch_size,
            invokes=prediction.invokes,
            invoke_ms=round(prediction.invoke_ms, 3),
        )
        return prediction


def tf_status(call: Call) -> Reply:
    """TF Serving model status. Triggers the load unless one is already in progress."""
    call.check_model()
    state, error = call.runtime.state()
    if state != LOADING:
        with contextlib.suppress(ServingError):  # reported through the FAILED state below
            call.model()
        state, error = call.runtime.state()
    return 200, tfserving.status_body(call.runtime.settings.model_version, state, error)


def tf_metadata(call: Call) -> Reply:
    """TF Serving model metadata (signature def, quantization, backend)."""
    model = call.model()
    settings = call.runtime.settings
    return 200, tfserving.metadata_body(settings.model_name, settings.model_version, model)


def tf_predict(call: Call) -> Reply:
    """TF Serving predict, row (``instances``) or columnar (``inputs``) format."""
    model = call.model()
    inputs, request_format = tfserving.parse_predict(call.read_json(), model)
    prediction = call.run(model, inputs)
    return 200, tfserving.format_predict(prediction.outputs, request_format)


def unsupported_verb(call: Call) -> Reply:
    """TF Serving's classify/regress need TF Example signatures that TFLite models lack."""
    raise NotFound(f"':{call.params['verb']}' is not supported; this server answers ':predict'")


def v2_server_metadata(call: Call) -> Reply:
    """Open Inference Protocol server metadata."""
    try:
        version = metadata.version("tflite-cloud-function")
    except metadata.PackageNotFoundError:
        version = "0.1.0"
    return 200, {"name": "tflite-cloud-function", "version": version, "extensions": []}


def v2_live(call: Call) -> Reply:
    """Liveness: the process answers (never loads the model)."""
    return 200, {"live": True}


def v2_ready(call: Call) -> Reply:
    """Readiness: loads the model if needed, so a warm-up ping warms the instance."""
    call.model()
    return 200, {"ready": True}


def v2_model_ready(call: Call) -> Reply:
    """Model readiness (loads the model if needed)."""
    call.model()
    return 200, {"name": call.runtime.settings.model_name, "ready": True}


def v2_model_metadata(call: Call) -> Reply:
    """Open Inference Protocol model metadata."""
    model = call.model()
    settings = call.runtime.settings
    return 200, kserve.metadata_body(settings.model_name, settings.model_version, model)


def v2_infer(call: Call) -> Reply:
    """Open Inference Protocol inference; the request ``id`` is echoed."""
    model = call.model()
    body = call.read_json()
    inputs, requested = kserve.parse_infer(body, model)
    prediction = call.run(model, inputs)
    settings = call.runtime.settings
    return 200, kserve.format_infer(
        prediction.outputs,
        requested,
        name=settings.model_name,
        version=settings.model_version,
        request_id=body.get("id"),
    )
