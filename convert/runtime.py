"""Load the converted model in the serving runtime: the same code the function runs.

:class:`serving.Model` picks the interpreter backend exactly as the deployed function
does (``SERVING_BACKEND`` or the first importable: LiteRT, tflite-runtime, TensorFlow) and
(de)quantizes int8 inputs and outputs, so predictions here are what clients will get.
A model with several signatures is also run signature by signature
(:class:`SignatureRunners`, through the same :class:`serving.Model`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from convert.results import RuntimeCheck
from serving import Model, ModelLoadError, TensorSpec


def describe(spec: TensorSpec) -> str:
    """``pixels int8 (-1, 8, 8, 1) q=0.00392*(x+128)``: name, stored dtype, shape, quantization."""
    text = f"{spec.name} {spec.dtype} {tuple(spec.shape)}"
    if spec.quantized:
        text += f" scale={spec.scale:.6g} zero_point={spec.zero_point}"
    return text


def load_in_runtime(path: Path, num_threads: int) -> tuple[Model | None, RuntimeCheck]:
    """(the loaded model or None, what happened); never raises for a model it cannot run."""
    from serving.model.backend import select_backend

    forced = os.environ.get("SERVING_BACKEND") or None
    backend = select_backend(forced)
    try:
        model = Model.load(path, backend=forced, num_threads=num_threads, pool_size=1)
    except ModelLoadError as e:
        # The message names the temporary file; the user knows the model by its target name.
        message = e.message.replace(str(path), "the converted model")
        return None, RuntimeCheck(backend.name, backend.version, False, message, e.reason)
    check = RuntimeCheck(
        backend=backend.name,
        backend_version=backend.version,
        loads=True,
        inputs=[describe(s) for s in model.inputs],
        outputs=[describe(s) for s in model.outputs],
    )
    return model, check


class SignatureRunners:
    """Every signature of a ``.tflite`` through :class:`serving.Model`, as the server runs them.

    Real-valued inputs are quantized for int8/uint8 tensors and outputs dequantized by the
    serving code itself, so answers compare with the original model's.
    """

    def __init__(self, path: Path, num_threads: int) -> None:
        forced = os.environ.get("SERVING_BACKEND") or None
        self._model = Model.load(path, backend=forced, num_threads=num_threads, pool_size=1)

    @property
    def keys(self) -> list[str]:
        """The signature keys the runtime sees."""
        return [signature.key for signature in self._model.signatures]

    def predict(self, key: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Signature ``key``'s outputs, dequantized, for one batch of inputs by name."""
        return self._model.predict(feed, key)

    def invoke_ms(self, key: str, feed: dict[str, np.ndarray]) -> float:
        """Time spent in the interpreter for one call of signature ``key``, in milliseconds."""
        return self._model.run(feed, key).invoke_ms
