"""The ``interpreter`` engine's runner: one TFLite ``Interpreter`` (any backend).

``invoke()`` releases the GIL, so runners of one pool run in parallel threads; each one
holds its own XNNPACK-packed copy of the weights (1x the weights per runner).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from serving.model.quantization import quantize, quantize_into
from serving.model.tensors import Interpreter, Signature, TensorSpec


class InterpreterRunner:
    """One interpreter, the input shapes it is allocated for, and its scratch buffers."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self._shapes: dict[int, tuple[int, ...]] = {
            int(d["index"]): tuple(int(x) for x in d["shape"])
            for d in interpreter.get_input_details()
        }
        self._scratch: dict[int, np.ndarray] = {}

    def run(
        self, signature: Signature, feeds: Sequence[tuple[TensorSpec, np.ndarray]]
    ) -> tuple[list[np.ndarray], float]:
        """See :class:`serving.model.engine.Runner`."""
        if signature.main:
            return self._run_main(feeds, [spec.index for spec in signature.outputs])
        encoded = {spec.name: _encoded(spec, array) for spec, array in feeds}
        result, ms = self._run_signature(signature.key, encoded)
        return [result[spec.name] for spec in signature.outputs], ms

    def _run_main(
        self, feeds: Sequence[tuple[TensorSpec, np.ndarray]], outputs: list[int]
    ) -> tuple[list[np.ndarray], float]:
        """Run the main subgraph: set the inputs, invoke, read the outputs (copies).

        A quantized input given as real (float) values is quantized straight into the
        interpreter's input buffer; anything else is copied in as it is. The interpreter
        is resized and re-allocated only when an input's shape changed.
        """
        interpreter = self.interpreter
        changed = [
            (spec.index, a.shape) for spec, a in feeds if a.shape != self._shapes[spec.index]
        ]
        if changed:
            for index, shape in changed:
                interpreter.resize_tensor_input(index, list(shape), strict=True)
            interpreter.allocate_tensors()
            for index, shape in changed:
                self._shapes[index] = tuple(shape)
        for spec, array in feeds:
            if spec.quantized and array.dtype.kind == "f":
                buffer = interpreter.tensor(spec.index)()
                quantize_into(
                    buffer,
                    array,
                    spec.scale,
                    spec.zero_point,
                    scratch=self._scratch_for(spec.index, array.shape),
                )
                del buffer  # invoke() refuses to run while a view of its buffers is alive
            else:
                interpreter.set_tensor(spec.index, array)
        started = time.perf_counter()
        interpreter.invoke()
        invoke_ms = (time.perf_counter() - started) * 1000
        return [interpreter.get_tensor(i) for i in outputs], invoke_ms

    def _run_signature(
        self, key: str, feeds: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], float]:
        """Run a signature that is not on the main subgraph through its signature runner.

        The runner is made per call, not kept: a live runner holds a reference to the
        interpreter's internals, and the interpreter then refuses ``allocate_tensors()`` and
        ``invoke()`` on the main subgraph ("at least 1 reference to internal data").
        """
        runner = self.interpreter.get_signature_runner(key)
        started = time.perf_counter()
        result = runner(**feeds)
        ms = (time.perf_counter() - started) * 1000
        del runner
        return result, ms

    def _scratch_for(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        scratch = self._scratch.get(index)
        if scratch is None or scratch.shape != shape:
            scratch = self._scratch[index] = np.empty(shape, dtype=np.float32)
        return scratch


def _encoded(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    """An input as the interpreter stores it (real values quantized; raw codes as given)."""
    if spec.quantized and array.dtype.kind == "f":
        return quantize(array, spec.scale, spec.zero_point, spec.dtype, what=f"input {spec.name!r}")
    return np.ascontiguousarray(array, dtype=spec.dtype)
