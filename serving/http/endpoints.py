"""One function per REST endpoint: check the model name, load, decode, run, encode.

Each takes a :class:`Call` and returns ``(status, body)``: a JSON-able dict, or an
:class:`~serving.protocol.types.Encoded` body from a protocol encoder. Errors are raised as
:class:`ServingError` subclasses and turned into JSON by :mod:`serving.http.app`.

With ``MODEL_REPOSITORY`` set, :meth:`Call.model` leases the version the path names from
the repository (released by :meth:`Call.release` when the answer is written), and the
status, readiness and index endpoints report the repository's versions without loading
them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

import serving
from serving.errors import BadRequest, NotFound, ServiceUnavailable, ServingError
from serving.model import Model, shapes
from serving.protocol import classify, images, regress, tfserving, v2, v2_binary
from serving.protocol.types import Encoded, InferRequest, InferResponse
from serving.runtime import ModelState, Runtime

if TYPE_CHECKING:
    from serving.repository import Lease, Repository, VersionState, VersionStatus

Reply = tuple[int, dict[str, Any] | list[Any] | Encoded]


@dataclass
class Call:
    """What an endpoint needs from the HTTP request, and what it reports back for logs."""

    runtime: Runtime
    params: dict[str, str]
    headers: Mapping[str, str]
    read_body: Callable[..., bytes]  # (allow_empty=False) -> the decoded body
    query: Mapping[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    leases: list[Lease] = field(default_factory=list)
    served: tuple[str, str] | None = None  # (name, version) of the model that answers

    def model(self) -> Model:
        """The loaded model (loading it on a cold start), after checking name and version.

        With a repository: the version the path names (its number or label, else the
        highest served), leased until :meth:`release`.
        """
        repository = self.runtime.repository
        if repository is not None:
            return self._lease(repository).model
        self.check_model()
        loaded = self.runtime.load()
        if loaded.load_ms is not None:
            self.timings["load"] = loaded.load_ms
            self.fields["cold_start"] = True
        settings = self.runtime.settings
        self.served = (settings.model_name, settings.model_version)
        return loaded.model

    def _lease(self, repository: Repository) -> Lease:
        lease = repository.get(
            self.model_name(repository), self.params.get("version"), self.params.get("label")
        )
        self.leases.append(lease)
        if lease.load_ms is not None:
            self.timings["load"] = lease.load_ms
            self.fields["cold_start"] = True
        self.served = (lease.name, str(lease.version))
        self.fields.update(model_name=lease.name, model_version=lease.version)
        return lease

    def release(self) -> None:
        """Give back the versions this call leased (a repository may unload them again)."""
        leases, self.leases = self.leases, []
        for lease in leases:
            lease.release()

    def model_name(self, repository: Repository) -> str:
        """The model the path names; 404 naming the repository's models on the bare URL."""
        name = self.params.get("name")
        if name is None:
            served = ", ".join(repr(n) for n in repository.catalog().names) or "none"
            raise NotFound(
                "this server serves a model repository: name the model in the path "
                f"(/v1/models/{{name}}:predict, /v2/models/{{name}}/infer); its models: {served}"
            )
        return name

    def statuses(self, repository: Repository, *, every: bool) -> tuple[VersionStatus, ...]:
        """The repository's versions the path names (404 naming what exists; loads
        nothing): the one its version or label names, else the highest served, or with
        ``every`` every version the model serves."""
        entry, number = repository.catalog().resolve(
            self.model_name(repository), self.params.get("version"), self.params.get("label")
        )
        found = repository.status(entry.name)
        if every and "version" not in self.params and "label" not in self.params:
            return found
        picked = tuple(s for s in found if s.version == number)
        if not picked:  # re-listed between the two looks, without it
            raise NotFound(f"version {number} of model {entry.name!r} left the repository")
        return picked

    def check_model(self) -> None:
        """404 unless the route names the served model (and its version, if given)."""
        settings = self.runtime.settings
        name = self.params.get("name", settings.model_name)
        if "label" in self.params:
            raise NotFound(
                f"version label {self.params['label']!r} not found; labels name versions of a "
                "model repository (MODEL_REPOSITORY, docs/repository.md), and this server "
                f"serves one model, {settings.model_name!r} version {settings.model_version!r}"
            )
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
        name, version = self.answering()
        return InferResponse(
            outputs=classify.answered(model, signature, request, prediction.outputs, shaped),
            model_name=name,
            model_version=version,
            id=request.id,
        )

    def answering(self) -> tuple[str, str]:
        """The name and version of the model :meth:`model` gave (the one that answers)."""
        if self.served is None:
            raise RuntimeError("Call.answering() before Call.model()")
        return self.served


def tf_status(call: Call) -> Reply:
    """TF Serving model status. Single model: triggers the load unless one is in progress.
    Repository: every version of the policy (or the one named) as it is; loads nothing."""
    repository = call.runtime.repository
    if repository is not None:
        versions = [
            tfserving.StatusEntry(str(s.version), s.state.tf_serving, s.error)
            for s in call.statuses(repository, every=True)
        ]
        return 200, tfserving.status_body(versions)
    call.check_model()
    state, error = call.runtime.state()
    if state is not ModelState.LOADING:
        with contextlib.suppress(ServingError):  # reported through the FAILED state below
            call.model()
        state, error = call.runtime.state()
    version = call.runtime.settings.model_version
    return 200, tfserving.status_body([tfserving.StatusEntry(version, state.value, error)])


def tf_metadata(call: Call) -> Reply:
    """TF Serving model metadata (every signature def, quantization, backend)."""
    model = call.model()
    return 200, tfserving.metadata_body(*call.answering(), model)


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
    """Readiness. Single model: loads it if needed, so a warm-up ping warms the instance.
    Repository: ready once listed (``models.json`` usable); loads nothing."""
    repository = call.runtime.repository
    if repository is None:
        call.model()
        return 200, {"ready": True}
    listed = repository.catalog()
    if listed.error is not None:
        raise listed.error
    return 200, {"ready": True}


def v2_model_ready(call: Call) -> Reply:
    """Model readiness. Single model: loads it if needed. Repository: a version that can
    serve (loaded, loading, or loaded on the next request) is ready; one whose last load
    failed is not (503 with that failure) until a request loads it; loads nothing."""
    repository = call.runtime.repository
    if repository is None:
        call.model()
        return 200, {"name": call.runtime.settings.model_name, "ready": True}
    (status,) = call.statuses(repository, every=False)
    if not status.state.ready:
        raise ServiceUnavailable(
            f"model {status.name!r} version {status.version} is not ready: its last load "
            f"failed: {status.error}; the next inference request loads it again"
        )
    return 200, {"name": status.name, "ready": True}


def v2_model_metadata(call: Call) -> Reply:
    """Open Inference Protocol model metadata (``versions``: every version served)."""
    model = call.model()
    name, version = call.answering()
    repository = call.runtime.repository
    versions = (
        [str(v) for v in repository.catalog().entry(name).served]
        if repository is not None
        else [version]
    )
    return 200, v2.metadata_body(name, version, model, versions)


def v2_repository_index(call: Call) -> Reply:
    """Triton's model repository index: every version and its state (``{"ready": true}``:
    the loaded ones only). Loads nothing."""
    from serving.repository import VersionState  # the one Triton state table, for both modes

    ready_only = _index_request(call.read_body(allow_empty=True))
    repository = call.runtime.repository
    if repository is None:
        state, error = call.runtime.state()
        settings = call.runtime.settings
        found = [
            _IndexItem(
                settings.model_name, settings.model_version, VersionState(state.value), error
            )
        ]
    else:
        found = [
            _IndexItem(s.name, None if s.version is None else str(s.version), s.state, s.error)
            for s in repository.status()
        ]
    loaded = VersionState.AVAILABLE  # Triton's READY: "loaded and ready for inferencing"
    return 200, [item.body() for item in found if not ready_only or item.state is loaded]


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


@dataclass(frozen=True)
class _IndexItem:
    """One entry of the repository index (version None: a model models.json keeps out)."""

    name: str
    version: str | None
    state: VersionState
    error: ServingError | None

    def body(self) -> dict[str, str]:
        item = {"name": self.name}
        if self.version is not None:  # optional in Triton's index
            item["version"] = self.version
        reason = str(self.error) if self.error is not None else self.state.triton_reason
        return {**item, "state": self.state.triton, "reason": reason}


def _index_request(data: bytes) -> bool:
    """Whether a repository index request asks for ready versions only (``{"ready": true}``);
    an empty body is ``{}`` (tritonclient sends none)."""
    if not data.strip():
        return False
    try:
        request = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"repository index request is not JSON: {e}") from e
    if not isinstance(request, dict):
        raise BadRequest(
            'repository index request must be a JSON object such as {"ready": true}, '
            f"received {type(request).__name__}"
        )
    unknown = sorted(set(request) - {"ready"})
    if unknown:
        raise BadRequest(
            f"repository index request: unknown key {unknown[0]!r}; the only key is 'ready'"
        )
    ready = request.get("ready", False)
    if not isinstance(ready, bool):
        raise BadRequest(
            f"repository index request: 'ready' must be true or false, received {ready!r}"
        )
    return ready
