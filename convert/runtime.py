"""Load the converted model in the serving runtime: the same code the function runs.

:class:`serving.Model` picks the interpreter backend exactly as the deployed function
does (``SERVING_BACKEND`` or the first importable: LiteRT, tflite-runtime, TensorFlow) and
(de)quantizes int8 inputs and outputs, so predictions here are what clients will get.
A model with several signatures is also run signature by signature
(:class:`SignatureRunners`: the same backend's signature runners, same (de)quantization).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serving import Model, ModelLoadError, TensorSpec


@dataclass(frozen=True)
class RuntimeCheck:
    """Whether the .tflite loads in the serving runtime, with which backend, and its tensors."""

    backend: str
    backend_version: str
    loads: bool
    error: str | None = None
    reason: str | None = None  # ModelLoadError.reason: custom_op, op_version, ...
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def describe(spec: TensorSpec) -> str:
    """``pixels int8 (-1, 8, 8, 1) q=0.00392*(x+128)``: name, stored dtype, shape, quantization."""
    text = f"{spec.name} {spec.dtype} {tuple(spec.shape)}"
    if spec.quantized:
        text += f" scale={spec.scale:.6g} zero_point={spec.zero_point}"
    return text


def load_in_runtime(path: Path, num_threads: int) -> tuple[Model | None, RuntimeCheck]:
    """(the loaded model or None, what happened); never raises for a model it cannot run."""
    from serving.backend import select_backend

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
    """Every signature of a ``.tflite`` through the serving backend's interpreter.

    Inputs given as real numbers are quantized for int8/uint8 tensors and outputs
    dequantized, as the server does, so answers compare with the original model's.
    """

    def __init__(self, path: Path, num_threads: int) -> None:
        from serving.backend import select_backend

        backend = select_backend(os.environ.get("SERVING_BACKEND") or None)
        self._interpreter = backend.make_interpreter(str(path), num_threads=num_threads)
        self._runners: dict[str, Any] = {}

    @property
    def keys(self) -> list[str]:
        """The signature keys the runtime sees."""
        return list(self._interpreter.get_signature_list())

    def predict(self, key: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Signature ``key``'s outputs, dequantized, for one batch of inputs by name."""
        return self._call(key, feed)[0]

    def invoke_ms(self, key: str, feed: dict[str, np.ndarray]) -> float:
        """Time of one call of signature ``key``, in milliseconds."""
        return self._call(key, feed)[1]

    def _call(self, key: str, feed: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        runner = self._runners.get(key)
        if runner is None:
            runner = self._runners[key] = self._interpreter.get_signature_runner(key)
        args = {
            name: _quantize(np.asarray(feed[name]), detail)
            for name, detail in runner.get_input_details().items()
        }
        started = time.perf_counter()
        result = runner(**args)
        elapsed = (time.perf_counter() - started) * 1000
        details = runner.get_output_details()
        return {name: _dequantize(value, details[name]) for name, value in result.items()}, elapsed


def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale and x.dtype.kind == "f":
        info = np.iinfo(dtype)
        q = np.round(x / scale) + zero_point
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _dequantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if x.dtype.kind in "iu" and scale:
        return (x.astype(np.float32) - zero_point) * np.float32(scale)
    return x
