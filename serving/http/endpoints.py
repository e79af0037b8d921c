"""One function per REST endpoint: check the model name, load, decode, run, encode.

Each takes a :class:`Call` and returns ``(status, body)``: a JSON-able dict, or an
:class:`~serving.protocol.types.Encoded` body from a protocol encoder. Errors are raised as
:class:`ServingError` subclasses and turned into JSON by :mod:`serving.http.app`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import serving
from serving.errors import NotFound, ServingError
from serving.model import Model, shapes
from serving.protocol import classify, images, regress, tfserving, v2, v2_binary
from serving.protocol.types import Encoded, InferRequest, InferResponse
from serving.runtime import ModelState, Runtime

Reply = tuple[int, dict[str, Any] | Encoded]


@dataclass
class Call:
    """What an endpoint needs from the HTTP request, and what it reports back for logs."""

    runtime: Runtime
    params: dict[str, str]
    headers: Mapping[str, str]
    read_body: Callable[[], bytes]
    query: Mapping[str, str] = field(default_factory=dict)
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

    def infer(self, model: Model, request: InferRequest, *, as_sent: bool = True) -> InferResponse:
        """Run ``request``, recording batch size and invoke time for Server-Timing and logs.

        ``as_sent``: a request reshaped to fit the model gets its outputs back in its own
        shape (predict, infer); otherwise they keep the model's (classify, regress).
        """
        prediction = model.run(request.inputs, request.signature)
        self.timings["infer"] = prediction.invoke_ms
        self.fields.update(
            signature=prediction.signature,
            batch_size=prediction.batch_size,
            invokes=prediction.invokes,
            invoke_ms=round(prediction.invoke_ms, 3),
        )
        signature = model.signature(prediction.signature)
        shaped = (
            shapes.restore(signature, request.inputs, prediction.outputs)
            if as_sent
            else prediction.outputs
        )
        settings = self.runtime.settings
        return InferResponse(
            outputs=classify.answered(model, signature, request, prediction.outputs, shaped),
            model_name=settings.model_name,
            model_version=settings.model_version,
            id=request.id,
        )


def tf_status(call: Call) -> Reply:
    """TF Serving model status. Triggers the load unless one is already in progress."""
    call.check_model()
    state, error = call.runtime.state()
    if state is not ModelState.LOADING:
        with contextlib.suppress(ServingError):  # reported through the FAILED state below
            call.model()
        state, error = call.runtime.state()
    return 200, tfserving.status_body(call.runtime.settings.model_version, state.value, error)


def tf_metadata(call: Call) -> Reply:
    """TF Serving model metadata (every signature def, quantization, backend)."""
    model = call.model()
    settings = call.runtime.settings
    return 200, tfserving.metadata_body(settings.model_name, settings.model_version, model)


def tf_predict(call: Call) -> Reply:
    """TF Serving predict, row (``instances``) or columnar (``inputs``) format, or one raw
    picture body (``Content-Type: image/...``) answered in row format."""
    model = call.model()
    declared = images.picture_format(call.headers.get("Content-Type"))
    limit = call.runtime.settings.max_image_pixels
    if declared is not None:
        request = tfserving.decode_picture(
            call.read_body(), declared, model, call.query.get("signature_name"), limit
        )
        layout = tfserving.Layout.ROW
    else:
        request, layout = tfserving.decode_predict(call.read_body(), model, max_image_pixels=limit)
    response = call.infer(model, request)
    return 200, Encoded(tfserving.encode_predict(response, layout))


def tf_classify(call: Call) -> Reply:
    """TF Serving classify: top-k labels and scores of the one ``[batch, classes]`` output."""
    model = call.model()
    request, k = classify.decode_classify(
        call.read_body(),
        model,
        content_type=call.headers.get("Content-Type"),
        query=call.query,
        max_image_pixels=call.runtime.settings.max_image_pixels,
    )
    signature = model.signature(request.signature)
    output = classify.classifier_output(signature)
    response = call.infer(model, request, as_sent=False)
    scores = next(t.data for t in response.outputs if t.name == output.name)
    return 200, Encoded(classify.encode_classify(scores, model.labels(signature, output), k))


def tf_regress(call: Call) -> Reply:
    """TF Serving regress: the one float-per-example output of the signature, per example."""
    model = call.model()
    request = regress.decode_regress(
        call.read_body(), model, max_image_pixels=call.runtime.settings.max_image_pixels
    )
    output = regress.regression_output(model.signature(request.signature))
    response = call.infer(model, request, as_sent=False)
    values = next(t.data for t in response.outputs if t.name == output.name)
    examples = call.fields["batch_size"]
    return 200, Encoded(regress.encode_regress(values, examples))


def server_version() -> str:
    """The server's version (``serving.__version__``, which pyproject.toml reads too)."""
    return serving.__version__


def v2_server_metadata(call: Call) -> Reply:
    """Open Inference Protocol server metadata, with the extensions supported."""
    return 200, v2.server_metadata(server_version())


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
    return 200, v2.metadata_body(settings.model_name, settings.model_version, model)


def v2_infer(call: Call) -> Reply:
    """Open Inference Protocol inference, JSON or binary tensor data; ``id`` is echoed."""
    model = call.model()
    header_length = call.headers.get(v2_binary.HEADER_LENGTH)
    request = v2.decode_infer(
        call.read_body(),
        header_length,
        model,
        max_image_pixels=call.runtime.settings.max_image_pixels,
    )
    response = call.infer(model, request)
    return 200, v2.encode_infer(response, request)
