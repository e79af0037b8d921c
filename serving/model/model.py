"""A loaded TFLite model: its signatures, and predictions on numpy arrays.

Usable without HTTP::

    with Model.load("model/quantized_model.tflite") as model:
        probabilities = model.predict({"pixels": images})["probabilities"]

Quantized (int8/uint8) inputs take real values (any float or integer array), which are
quantized with the tensor's scale and zero point, or raw codes (an array of the tensor's
own storage type), which pass through unchanged. Quantized outputs come back as real
float32 values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.errors import BadRequest, ModelLoadError
from serving.model import arrays, load_errors, metadata, shapes
from serving.model.backend import Backend, select_backend
from serving.model.metadata import ModelMetadata
from serving.model.pictures import PictureInput
from serving.model.pool import InterpreterPool, Slot
from serving.model.quantization import check_finite, dequantize, quantize
from serving.model.tensors import (
    DEFAULT_SIGNATURE,
    Interpreter,
    Signature,
    TensorSpec,
    read_signatures,
    shape_text,
)


@dataclass(frozen=True)
class Prediction:
    """Outputs of one :meth:`Model.run` with what it cost."""

    outputs: dict[str, np.ndarray]
    signature: str
    batch_size: int
    invokes: int
    invoke_ms: float


class Model:
    """A TFLite model served by a pool of interpreters (thread-safe).

    Every interpreter is built from the same bytes, read once at load: replacing or
    deleting the file afterwards changes nothing for the loaded model.
    """

    def __init__(
        self,
        path: str,
        backend: Backend,
        pool: InterpreterPool,
        signatures: tuple[Signature, ...],
        max_batch_size: int,
        size_bytes: int,
    ) -> None:
        self.path = path
        self.backend = backend
        self.signatures = signatures
        self.max_batch_size = max_batch_size
        self.size_bytes = size_bytes
        self._pool = pool
        self._by_key = {signature.key: signature for signature in signatures}
        self.metadata: ModelMetadata | None = None
        self.metadata_error: str | None = None
        self._pictures: dict[tuple[str, str], PictureInput] = {}

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        backend: str | None = None,
        pool_size: int = 1,
        num_threads: int = 1,
        max_batch_size: int = 64,
    ) -> Model:
        """Load ``path`` with one interpreter (more are made on demand, up to ``pool_size``).

        Raises :class:`ModelLoadError` (503) naming the file and the cause.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ModelLoadError(
                f"model path is a directory, not a .tflite file: {path}", "missing"
            )
        try:
            content = Path(path).read_bytes()
        except FileNotFoundError as e:
            raise ModelLoadError(f"model file not found: {path}", reason="missing") from e
        except OSError as e:
            raise ModelLoadError(
                f"model file could not be read: {path}: {e.strerror}", reason="missing"
            ) from e
        chosen = select_backend(backend)

        def factory() -> Interpreter:
            return chosen.make_interpreter(content, num_threads=num_threads)

        try:
            first = factory()
            signatures = read_signatures(first)
        except (ValueError, RuntimeError) as e:
            raise load_errors.explain(path, e, chosen) from e
        pool = InterpreterPool(factory, size=pool_size, first=first)
        model = cls(path, chosen, pool, signatures, max_batch_size, len(content))
        try:
            model.metadata = metadata.read(content, signatures)
        except metadata.MetadataError as e:  # served without it; the load log says why
            model.metadata_error = str(e)
        return model

    def annotate(self, found: ModelMetadata | None) -> None:
        """Replace the metadata (settings overrides); call before the model is shared."""
        self.metadata = found
        self._pictures.clear()

    def picture_input(self, signature: Signature, spec: TensorSpec) -> PictureInput | None:
        """How pictures become this input's values; None unless it is shaped like pictures."""
        key = (signature.key, spec.name)
        found = self._pictures.get(key)
        if found is None:
            if not metadata.is_picture(spec):
                return None
            info = self.metadata.input(*key) if self.metadata else None
            found = self._pictures.setdefault(
                key, PictureInput(signature.key, spec, info.normalization if info else None)
            )
        return found

    def labels(self, signature: Signature, spec: TensorSpec) -> tuple[str, ...] | None:
        """An output's class labels, from the metadata or ``LABELS_PATH``."""
        return self.metadata.output(signature.key, spec.name).labels if self.metadata else None

    @property
    def default(self) -> Signature:
        """The signature served when a request names none (``serving_default`` if present)."""
        return self.signatures[0]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The default signature's inputs."""
        return self.default.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The default signature's outputs."""
        return self.default.outputs

    @property
    def interpreters(self) -> int:
        """How many interpreters exist now."""
        return self._pool.created

    def signature(self, key: str | None = None) -> Signature:
        """The signature called ``key``; 400 naming the known ones.

        None, and ``serving_default`` on a model that has no signature by that name, mean
        the default signature, as in TensorFlow Serving.
        """
        found = self._by_key.get(key) if key is not None else self.default
        if found is None and key == DEFAULT_SIGNATURE:
            found = self.default
        if found is None:
            known = ", ".join(repr(s.key) for s in self.signatures)
            raise BadRequest(f"unknown signature {key!r}; the model's signatures are: {known}")
        return found

    def predict(
        self, inputs: Mapping[str, Any], signature: str | None = None
    ) -> dict[str, np.ndarray]:
        """Outputs by name for inputs by name (arrays with the batch dimension first)."""
        return self.run(inputs, signature).outputs

    def run(self, inputs: Mapping[str, Any], signature: str | None = None) -> Prediction:
        """Like :meth:`predict`, also reporting batch size, invokes and time in invoke."""
        chosen = self.signature(signature)
        arrays_by_name = _validate(chosen, inputs)
        batch = _batch_size(arrays_by_name)
        chunks = self._plan(chosen, batch)
        feeds = [(spec, arrays_by_name[spec.name]) for spec in chosen.inputs]
        pieces: list[list[np.ndarray]] = []
        invoke_ms = 0.0
        with self._pool.slot() as slot:
            for start, stop in chunks:
                chunk = feeds if len(chunks) == 1 else [(s, a[start:stop]) for s, a in feeds]
                try:
                    result, ms = _run_chunk(slot, chosen, chunk)
                except (RuntimeError, ValueError) as e:
                    shapes = ", ".join(f"{s.name} {shape_text(a.shape)}" for s, a in chunk)
                    raise BadRequest(
                        f"the model cannot run on inputs of shape {shapes}: {e}"
                    ) from e
                pieces.append(result)
                invoke_ms += ms
        outputs = {}
        for position, spec in enumerate(chosen.outputs):
            parts = [piece[position] for piece in pieces]
            value = parts[0] if len(parts) == 1 else _join(parts)
            outputs[spec.name] = (
                dequantize(value, spec.scale, spec.zero_point) if spec.quantized else value
            )
        return Prediction(outputs, chosen.key, batch, len(chunks), invoke_ms)

    def _plan(self, signature: Signature, batch: int) -> list[tuple[int, int]]:
        """Row ranges invoked one after another on one interpreter.

        A resizable batch dimension runs in chunks of at most ``max_batch_size``; a fixed
        batch of 1 runs instance by instance; any other fixed shape runs as given.
        """
        if batch <= 0:
            return [(0, batch)]
        if all(spec.batch_dynamic for spec in signature.inputs):
            step = self.max_batch_size
        elif all(spec.shape[:1] == (1,) for spec in signature.inputs):
            step = 1
        else:
            return [(0, batch)]
        return [(start, min(start + step, batch)) for start in range(0, batch, step)]

    def close(self) -> None:
        """Release the interpreters; later predictions raise a 503 error."""
        self._pool.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_chunk(
    slot: Slot, signature: Signature, feeds: list[tuple[TensorSpec, np.ndarray]]
) -> tuple[list[np.ndarray], float]:
    """Outputs in the signature's order for one chunk, and the time spent invoking."""
    if signature.main:
        return slot.run_main(feeds, [spec.index for spec in signature.outputs])
    encoded = {spec.name: _encoded(spec, array) for spec, array in feeds}
    result, ms = slot.run_signature(signature.key, encoded)
    return [result[spec.name] for spec in signature.outputs], ms


def _encoded(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    """An input as the interpreter stores it (real values quantized; raw codes as given)."""
    if spec.quantized and array.dtype.kind == "f":
        return quantize(array, spec.scale, spec.zero_point, spec.dtype, what=f"input {spec.name!r}")
    return np.ascontiguousarray(array, dtype=spec.dtype)


def _validate(signature: Signature, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every input present, known, of a shape the model takes, in a dtype it can be fed.

    Raises :class:`BadRequest` before any interpreter is borrowed, so a bad request never
    costs one.
    """
    names = [spec.name for spec in signature.inputs]
    unknown = [name for name in inputs if name not in names]
    if unknown:
        raise BadRequest(
            f"unknown input {unknown[0]!r}; the model's inputs are: {', '.join(names)}"
        )
    missing = [name for name in names if name not in inputs]
    if missing:
        raise BadRequest(f"missing input {missing[0]!r}")
    return {spec.name: _checked(spec, inputs[spec.name]) for spec in signature.inputs}


def _checked(spec: TensorSpec, value: Any) -> np.ndarray:
    what = f"input {spec.name!r}"
    array = value if isinstance(value, np.ndarray) else arrays.to_array(value, what=what)
    if array.dtype.kind not in "biuf":
        raise BadRequest(f"{what}: expected numbers, received values of type {array.dtype}")
    array = shapes.fitted(spec, array)  # 400 unless the model can run this shape
    if spec.quantized:
        if array.dtype == spec.dtype:
            return array  # raw quantized codes pass through
        if array.dtype.kind != "f":
            array = arrays.coerce(array, spec.client_dtype, what=what)
        check_finite(array, what=what)
        return array
    return np.ascontiguousarray(arrays.coerce(array, spec.dtype, what=what))


def _batch_size(arrays_by_name: dict[str, np.ndarray]) -> int:
    sizes = {name: a.shape[0] for name, a in arrays_by_name.items() if a.ndim > 0}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise BadRequest(f"inputs disagree on the number of instances: {listed}")
    return next(iter(sizes.values()), 1)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts[0].ndim > 0 else np.stack(parts)
