"""Reference predictions straight from the interpreter's signature runner.

Deliberately independent of ``serving.model``: it goes through the runtime's own
SignatureRunner (which resizes inputs itself) and its own (de)quantization arithmetic, so
HTTP responses can be checked against it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from serving.model.backend import select_backend


def reference_predict(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by signature name for float inputs by signature name."""
    backend = select_backend(os.environ.get("SERVING_BACKEND"))
    interpreter = backend.make_interpreter(str(path), num_threads=1)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    feeds = {}
    for name, value in inputs.items():
        scale, zero_point = details[name]["quantization"]
        dtype = details[name]["dtype"]
        if scale:
            info = np.iinfo(dtype)
            quantized = np.round(np.asarray(value, np.float64) / scale) + zero_point
            feeds[name] = np.clip(quantized, info.min, info.max).astype(dtype)
        else:
            feeds[name] = np.asarray(value, dtype=dtype)
    outputs = runner(**feeds)
    result = {}
    for name, detail in runner.get_output_details().items():
        scale, zero_point = detail["quantization"]
        value = outputs[name]
        result[name] = (value.astype(np.float64) - zero_point) * scale if scale else value
    return result
