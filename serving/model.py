"""A loaded TFLite model: describe its tensors and predict on numpy arrays.

Usable without HTTP::

    with Model.load("model/quantized_model.tflite") as model:
        probabilities = model.predict({"keras_tensor": images})["output_0"]

Quantized (int8/uint8) inputs and outputs are exchanged as real float32 values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving import codec, load_errors
from serving.backend import Backend, select_backend
from serving.errors import BadRequest, ModelLoadError
from serving.pool import InterpreterPool
from serving.tensors import TensorSpec, read_specs


@dataclass(frozen=True)
class Prediction:
    """Outputs of one :meth:`Model.run` with what it cost."""

    outputs: dict[str, np.ndarray]
    batch_size: int
    invokes: int
    invoke_ms: float


class Model:
    """A TFLite model served by a pool of interpreters (thread-safe)."""

    def __init__(
        self,
        path: str,
        backend: Backend,
        pool: InterpreterPool,
        signature: str | None,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        max_batch_size: int,
    ) -> None:
        self.path = path
        self.backend = backend
        self.signature = signature
        self.inputs = inputs
        self.outputs = outputs
        self.max_batch_size = max_batch_size
        self._pool = pool
        self._input_names = {spec.name: spec for spec in inputs}

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
        if not os.path.exists(path):
            raise ModelLoadError(f"model file not found: {path}", reason="missing")
        if os.path.isdir(path):
            raise ModelLoadError(
                f"model path is a directory, not a .tflite file: {path}", "missing"
            )
        chosen = select_backend(backend)

        def factory() -> Any:
            interpreter = chosen.make_interpreter(path, num_threads=num_threads)
            interpreter.allocate_tensors()
            return interpreter

        try:
            first = factory()
            signature, inputs, outputs = read_specs(first)
        except (ValueError, RuntimeError) as e:
            raise load_errors.explain(path, e, chosen) from e
        pool = InterpreterPool(factory, size=pool_size, first=first)
        return cls(path, chosen, pool, signature, inputs, outputs, max_batch_size)

    @property
    def interpreters(self) -> int:
        """How many interpreters exist now."""
        return self._pool.created

    def predict(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Outputs by name for inputs by name (arrays with the batch dimension first)."""
        return self.run(inputs).outputs

    def run(self, inputs: Mapping[str, Any]) -> Prediction:
        """Like :meth:`predict`, also reporting batch size, invokes and time in invoke."""
        arrays = self._validate(inputs)
        feeds = {spec.index: self._encode(spec, arrays[spec.name]) for spec in self.inputs}
        batch = _batch_size(arrays)
        chunks = self._plan(batch)
        pieces: list[list[np.ndarray]] = []
        invoke_ms = 0.0
        with self._pool.slot() as slot:
            for start, stop in chunks:
                chunk = {i: a[start:stop] for i, a in feeds.items()} if len(chunks) > 1 else feeds
                try:
                    result, ms = slot.run(chunk, [spec.index for spec in self.outputs])
                except RuntimeError as e:
                    shapes = ", ".join(
                        f"{s.name} {codec.shape_text(chunk[s.index].shape)}" for s in self.inputs
                    )
                    raise BadRequest(
                        f"the model cannot run on inputs of shape {shapes}: {e}"
                    ) from e
                pieces.append(result)
                invoke_ms += ms
        outputs = {}
        for position, spec in enumerate(self.outputs):
            parts = [piece[position] for piece in pieces]
            value = parts[0] if len(parts) == 1 else _join(parts)
            outputs[spec.name] = (
                codec.dequantize(value, spec.scale, spec.zero_point) if spec.quantized else value
            )
        return Prediction(outputs, batch, len(chunks), invoke_ms)

    def _validate(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = [name for name in inputs if name not in self._input_names]
        if unknown:
            raise BadRequest(
                f"unknown input {unknown[0]!r}; the model's inputs are: "
                + ", ".join(self._input_names)
            )
        missing = [name for name in self._input_names if name not in inputs]
        if missing:
            raise BadRequest(f"missing input {missing[0]!r}")
        arrays = {}
        for spec in self.inputs:
            what = f"input {spec.name!r}"
            array = inputs[spec.name]
            if not isinstance(array, np.ndarray):
                array = codec.to_array(array, what=what)
            _check_shape(spec, array.shape)
            arrays[spec.name] = codec.coerce(array, spec.client_dtype, what=what)
        return arrays

    @staticmethod
    def _encode(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
        if spec.quantized:
            return codec.quantize(
                array, spec.scale, spec.zero_point, spec.dtype, what=f"input {spec.name!r}"
            )
        return np.ascontiguousarray(array, dtype=spec.dtype)

    def _plan(self, batch: int) -> list[tuple[int, int]]:
        """Row ranges invoked one after another on one interpreter.

        A resizable batch dimension runs in chunks of at most ``max_batch_size``; a fixed
        batch of 1 runs instance by instance; any other fixed shape runs as given.
        """
        if batch <= 0:
            return [(0, batch)]
        if all(spec.batch_dynamic for spec in self.inputs):
            step = self.max_batch_size
        elif all(spec.shape[:1] == (1,) for spec in self.inputs):
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


def _check_shape(spec: TensorSpec, received: tuple[int, ...]) -> None:
    expected = spec.shape
    fixed_one_batch = len(expected) > 0 and expected[0] == 1
    fits = len(received) == len(expected) and all(
        e in (-1, r) or (i == 0 and fixed_one_batch and r >= 1)
        for i, (e, r) in enumerate(zip(expected, received, strict=True))
    )
    if not fits:
        raise BadRequest(
            f"input {spec.name!r}: expected shape {codec.shape_text(expected)}, "
            f"received {codec.shape_text(received)}"
        )


def _batch_size(arrays: dict[str, np.ndarray]) -> int:
    sizes = {name: a.shape[0] for name, a in arrays.items() if a.ndim > 0}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise BadRequest(f"inputs disagree on the number of instances: {listed}")
    return next(iter(sizes.values()), 1)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts[0].ndim > 0 else np.stack(parts)
