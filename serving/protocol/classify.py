"""Labels out: TF Serving's Classify API and the V2 classification extension, from scores.

Classification reads one output shaped ``[batch, classes]``: its top ``k`` classes by
score, highest first (ties keep the lower index first), labelled from the model's metadata
or ``LABELS_PATH``.

- TF Serving ``:classify``: ``{"examples": [{"<input>": value}, ...]}`` (values as for
  predict, ``{"b64": ...}`` for pictures), or one raw picture body; answers
  ``{"results": [[["label", score], ...], ...]}``, top 5 unless ``top_k`` (body or query);
  the label is ``""`` for a model without labels, as TF Serving answers.
- V2: a requested output with ``parameters.classification: k`` comes back as a BYTES
  tensor ``[batch, k]`` of ``"score:index:label"`` (``"score:index"`` without labels),
  the score written as C's ``%f``, as Triton answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.errors import BadRequest
from serving.model import Model, Signature, TensorSpec
from serving.model.metadata import classes
from serving.protocol import images, jsonio, tfserving
from serving.protocol.datatypes import Datatype
from serving.protocol.types import InferRequest, Tensor

DEFAULT_TOP_K = 5


def check_request(spec: TensorSpec, count: int, *, what: str) -> None:
    """400 unless ``count`` classes can be taken from output ``spec``."""
    if count < 1:
        raise BadRequest(f"{what}: classification must be at least 1, received {count}")
    if classes(spec) is None:
        raise BadRequest(
            f"{what}: classification needs an output shaped [batch, classes]; "
            f"this output is {list(spec.shape)}"
        )


def classifier_output(signature: Signature) -> TensorSpec:
    """The signature's one ``[batch, classes]`` output; 400 naming its outputs otherwise."""
    found = [spec for spec in signature.outputs if classes(spec) is not None]
    if len(found) != 1:
        listed = ", ".join(f"{s.name} {list(s.shape)}" for s in signature.outputs)
        raise BadRequest(
            f"classify needs exactly one output shaped [batch, classes]; signature "
            f"{signature.key!r} has {listed}: use :predict for its raw outputs"
        )
    return found[0]


def top_k(value: Any, *, where: str) -> int:
    """A ``top_k`` given as a JSON integer or query text; 400 unless a positive integer."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(
            f"{where}: top_k must be a positive integer, received {jsonio.shown(value, 40)}"
        )
    return value


def decode_classify(
    data: bytes,
    model: Model,
    *,
    content_type: str | None,
    query: Mapping[str, str],
    max_image_pixels: int,
) -> tuple[InferRequest, int]:
    """The request in a Classify body (JSON ``examples`` or one raw picture) and its top k."""
    k = top_k(query["top_k"], where="query") if "top_k" in query else None
    declared = images.picture_format(content_type)
    if declared is not None:
        request = tfserving.decode_picture(
            data, declared, model, query.get("signature_name"), max_image_pixels
        )
        return request, k or DEFAULT_TOP_K
    body, request = tfserving.decode_examples(
        data, model, "classify", max_image_pixels=max_image_pixels, or_picture=True
    )
    if "top_k" in body:
        body_k = top_k(body["top_k"], where="body")
        if k is not None and k != body_k:
            raise BadRequest(f"top_k is {body_k} in the body but {k} in the query: give one")
        k = body_k
    return request, k or DEFAULT_TOP_K


def best(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, scores)`` of the top ``k`` classes of each row, highest first."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def encode_classify(scores: np.ndarray, labels: Sequence[str] | None, k: int) -> bytes:
    """``{"results": [[[label, score], ...], ...]}``, one list per example."""
    found, finite = results(scores, labels, k)
    return jsonio.dumps({"results": found}, finite=finite)


def results(
    scores: np.ndarray, labels: Sequence[str] | None, k: int
) -> tuple[list[list[list[Any]]], bool]:
    """One ``[[label, score], ...]`` list per row (top ``k``), and whether every score is
    finite (for :func:`jsonio.dumps`)."""
    order, values = best(scores, k)
    found = [
        [[_label(labels, int(i)) or "", float(v)] for i, v in zip(row, row_values, strict=True)]
        for row, row_values in zip(order, values, strict=True)
    ]
    return found, jsonio.all_finite([values])


def classification_tensor(scores: np.ndarray, labels: Sequence[str] | None, k: int) -> np.ndarray:
    """The V2 classification answer: ``[batch, k]`` strings ``"score:index[:label]"``."""
    order, values = best(scores, k)
    out = np.empty(order.shape, dtype=object)
    for r, (row, row_values) in enumerate(zip(order, values, strict=True)):
        for c, (i, v) in enumerate(zip(row, row_values, strict=True)):
            text, label = f"{float(v):f}:{int(i)}", _label(labels, i)
            out[r, c] = text if label is None else f"{text}:{label}"
    return out


def _label(labels: Sequence[str] | None, index: int) -> str | None:
    """The class's label; None without labels (or past the end of a short list)."""
    return labels[index] if labels is not None and index < len(labels) else None


def answered(
    model: Model,
    signature: Signature,
    request: InferRequest,
    scores: Mapping[str, np.ndarray],
    shaped: Mapping[str, np.ndarray],
) -> list[Tensor]:
    """The tensors answered for ``request``'s outputs (all, in order, when it names none).

    An output asked for ``classification`` k is the top k of its ``scores`` as BYTES
    ``[batch, k]``; any other is its value as ``shaped`` (the request's shape).
    """
    counts = {o.name: o.classification for o in request.outputs or () if o.classification}
    tensors = []
    for name in request.output_names() or list(shaped):
        if name in counts:
            spec = next(s for s in signature.outputs if s.name == name)
            strings = classification_tensor(
                scores[name], model.labels(signature, spec), counts[name]
            )
            tensors.append(Tensor(name, strings, Datatype.BYTES))
        else:
            tensors.append(Tensor(name, shaped[name], Datatype.of(shaped[name].dtype)))
    return tensors
