"""Score batch elements with the function's own rules; no Beam here.

An element is ``(source, data)``: a JSONL line (``source`` its file) or a picture file
(``source`` its URI). Each element is decoded alone, exactly as the function decodes one
instance of ``{"instances": [...]}`` (:mod:`serving.protocol.tfserving`) or one raw picture
body (:func:`serving.protocol.tfserving.decode_picture`); decoded instances of the same
inputs, dtypes and shapes then run as one batch through :meth:`serving.model.Model.run`.
Every element becomes exactly one :class:`Outcome`: a prediction line or an error line.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from serving.errors import BadRequest, ServingError
from serving.model import Model, Signature
from serving.protocol import classify, images, jsonio, tfserving
from serving.settings import DEFAULT_MAX_IMAGE_PIXELS

Element = tuple[str, bytes]


class InputKind(enum.Enum):
    """What ``--input`` matched: JSONL files, or picture files (one instance each)."""

    JSONL = "jsonl"
    PICTURES = "pictures"


# File suffixes read as pictures; the format is then declared, as a Content-Type would.
PICTURE_SUFFIXES = {
    ".jpg": images.PictureFormat.JPEG,
    ".jpeg": images.PictureFormat.JPEG,
    ".png": images.PictureFormat.PNG,
    ".webp": images.PictureFormat.WEBP,
    ".bmp": images.PictureFormat.BMP,
    ".gif": images.PictureFormat.GIF,
}


def picture_format(uri: str) -> images.PictureFormat | None:
    """The picture format a file name's suffix names, None for any other file."""
    return PICTURE_SUFFIXES.get(PurePosixPath(uri).suffix.lower())


@dataclass(frozen=True)
class Outcome:
    """One output line (JSON, no newline); ``ok`` says which output it goes to."""

    ok: bool
    line: bytes


@dataclass(frozen=True)
class _Decoded:
    index: int
    element: Element
    inputs: dict[str, np.ndarray]


class Scorer:
    """Decodes, runs and encodes batches of elements of one kind on one loaded model."""

    def __init__(
        self,
        model: Model,
        kind: InputKind,
        signature: str | None = None,
        *,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        top_k: int = classify.DEFAULT_TOP_K,
        workers: int = 1,
    ) -> None:
        self.model = model
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self.kind = kind
        self.signature: Signature = model.signature(signature)
        self.max_image_pixels = max_image_pixels
        self.top_k = top_k
        self._labelled = _labelled_output(model, self.signature)

    def score(self, batch: Sequence[Element]) -> list[Outcome]:
        """One outcome per element, in the batch's order.

        With ``workers`` > 1 the batch is cut into that many slices scored at once on
        threads: each slice borrows its own interpreter from the model's pool (invoke and
        picture decoding release the GIL), so one worker process uses the machine's cores.
        """
        if self.workers < 2 or len(batch) < 2:
            return self._score(batch)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="batch-score")
        step = -(-len(batch) // self.workers)
        slices = [batch[start : start + step] for start in range(0, len(batch), step)]
        return [outcome for part in self._executor.map(self._score, slices) for outcome in part]

    def _score(self, batch: Sequence[Element]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        groups: dict[tuple[Any, ...], list[_Decoded]] = {}
        for index, element in enumerate(batch):
            try:
                inputs = self._decode(element)
            except ServingError as e:
                outcomes[index] = self._error(element, e)
                continue
            groups.setdefault(_group_key(inputs), []).append(_Decoded(index, element, inputs))
        for members in groups.values():
            for decoded, outcome in self._run(members):
                outcomes[decoded.index] = outcome
        assert all(outcome is not None for outcome in outcomes)
        return outcomes  # type: ignore[return-value]

    def _decode(self, element: Element) -> dict[str, np.ndarray]:
        source, data = element
        if self.kind is InputKind.PICTURES:
            declared = picture_format(source)
            if declared is None:  # the launcher lets only picture suffixes through
                suffixes = ", ".join(PICTURE_SUFFIXES)
                raise BadRequest(f"{source}: not a picture file name ({suffixes})")
            request = tfserving.decode_picture(
                data, declared, self.model, self.signature.key, self.max_image_pixels
            )
            return request.inputs
        if not data.strip():
            raise BadRequest("empty line: expected one JSON instance")
        document = jsonio.parse(data, what="line")
        values = tfserving.Values(self.model, self.signature, self.max_image_pixels, document)
        return tfserving.rows([document.value], values, "instances")

    def _run(self, members: list[_Decoded]) -> list[tuple[_Decoded, Outcome]]:
        """Run ``members`` as one batch; if the model refuses it, each alone (its own error)."""
        names = list(members[0].inputs)
        inputs = (
            members[0].inputs
            if len(members) == 1
            else {name: np.concatenate([m.inputs[name] for m in members]) for name in names}
        )
        try:
            outputs = self.model.run(inputs, self.signature.key).outputs
            rows = tfserving.predictions(outputs)
        except BadRequest as e:
            if len(members) == 1:
                return [(members[0], self._error(members[0].element, e))]
            return [pair for member in members for pair in self._run([member])]
        labels = None
        if self._labelled is not None:
            name, names = self._labelled
            labels, _ = classify.results(outputs[name], names, self.top_k)
        return [
            (member, self._prediction(member.element, rows[i], labels[i] if labels else None))
            for i, member in enumerate(members)
        ]

    def _instance(self, element: Element) -> bytes:
        """The ``instance`` field: the line's own JSON text, or ``{"uri": ...}``."""
        source, data = element
        if self.kind is InputKind.PICTURES:
            return jsonio.dumps({"uri": source})
        return data.strip()

    def _prediction(self, element: Element, row: Any, labels: list[Any] | None) -> Outcome:
        values = list(row.values()) if isinstance(row, dict) else [row]
        line = b'{"instance":' + self._instance(element) + b',"prediction":'
        line += jsonio.dumps(row, finite=jsonio.all_finite([np.asarray(v) for v in values]))
        if labels is not None:
            scores = np.asarray([score for _, score in labels])
            line += b',"labels":' + jsonio.dumps(labels, finite=jsonio.all_finite([scores]))
        return Outcome(True, line + b"}")

    def _error(self, element: Element, error: ServingError) -> Outcome:
        source, data = element
        if self.kind is InputKind.PICTURES:
            return Outcome(False, jsonio.dumps({"instance": {"uri": source}, "error": str(error)}))
        text = data.decode("utf-8", errors="replace").strip()
        return Outcome(False, jsonio.dumps({"instance": text, "error": f"{source}: {error}"}))


def _labelled_output(model: Model, signature: Signature) -> tuple[str, tuple[str, ...]] | None:
    """The output ``labels`` come from: the one ``[batch, classes]`` output, if it has labels."""
    try:
        spec = classify.classifier_output(signature)
    except BadRequest:
        return None
    labels = model.labels(signature, spec)
    return (spec.name, tuple(labels)) if labels else None


def _group_key(inputs: dict[str, np.ndarray]) -> tuple[Any, ...]:
    """Instances with the same key can be concatenated into one batch."""
    return tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(inputs.items()))
