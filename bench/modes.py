"""Quantization modes side by side: file size and median invoke latency in the serving runtime.

The .tflite files come from ``bench.models`` (the converter's ``convert.quantize.convert``
on the same MobileNetV2-sized SavedModel). Each is invoked on one interpreter with one
thread, as the function runs it, on the same random image. The modes take turns in blocks
of invokes, so a change in machine load during the measurement hits all of them alike;
the median per mode is reported. For the converter's fuller report (agreement with the
original, conversion time) see ``bench/quantization_modes.py``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from bench.latency import bare_interpreter

BLOCK = 10


def measure(files: dict[str, Path], x: np.ndarray, count: int) -> dict[str, dict[str, float]]:
    """``{mode: {"bytes": size, "invoke_ms": median of count invokes}}`` for every file."""
    interpreters = {mode: bare_interpreter(str(path), x) for mode, path in files.items()}
    for interpreter in interpreters.values():
        interpreter.invoke()  # the first invoke prepares kernels: not timed
    times: dict[str, list[float]] = {mode: [] for mode in files}
    for start in range(0, count, BLOCK):
        for mode, interpreter in interpreters.items():
            for _ in range(min(BLOCK, count - start)):
                started = time.perf_counter()
                interpreter.invoke()
                times[mode].append((time.perf_counter() - started) * 1000)
    return {
        mode: {"bytes": path.stat().st_size, "invoke_ms": statistics.median(times[mode])}
        for mode, path in files.items()
    }
