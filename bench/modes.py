"""Quantization modes side by side: file size and median invoke latency in the serving runtime.

The .tflite files come from ``bench.models`` (the converter's ``convert.quantize.convert``
on the same MobileNetV2-sized SavedModel). Each is invoked on one interpreter with one
thread, as the function runs it, on the same random image; the median is reported.
For the converter's fuller report (agreement with the original, conversion time) see
``bench/quantization_modes.py``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from bench.latency import bare_interpreter


def invoke_ms(path: Path, x: np.ndarray, count: int) -> float:
    """Median milliseconds of ``invoke()`` on ``x`` (quantized for int8 inputs)."""
    interpreter = bare_interpreter(str(path), x)
    interpreter.invoke()  # first invoke prepares kernels: not timed
    times = []
    for _ in range(count):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(files: dict[str, Path], x: np.ndarray, count: int) -> dict[str, dict[str, float]]:
    """``{mode: {"bytes": size, "invoke_ms": median}}`` for every mode's file."""
    return {
        mode: {"bytes": path.stat().st_size, "invoke_ms": invoke_ms(path, x, count)}
        for mode, path in files.items()
    }
