"""Turn a SavedModel signature into ``.tflite`` bytes in one of five modes.

=================  ==========================================================  ===========
mode               what                                                        calibration
=================  ==========================================================  ===========
``int8``           full integer: int8 weights, activations, inputs and outputs  required
``int8-float-io``  integer kernels; float32 inputs/outputs (quantized inside)   required
``dynamic``        int8 weights, float activations (dynamic-range)              no
``float16``        float16 weights, float32 compute                             no
``float32``        no quantization                                              no
=================  ==========================================================  ===========
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convert.calibration import Dataset
from convert.errors import ConvertError
from convert.progress import progress
from convert.quiet import captured_stderr

MODES: dict[str, str] = {
    "int8": "full integer (int8 weights, activations, inputs and outputs)",
    "int8-float-io": "integer kernels with float32 inputs and outputs",
    "dynamic": "dynamic-range (int8 weights, float activations)",
    "float16": "float16 weights",
    "float32": "no quantization",
}
NEEDS_CALIBRATION = frozenset({"int8", "int8-float-io"})


def convert(saved_model_dir: Path, signature: str, mode: str, calibration: Dataset | None) -> bytes:
    """The ``.tflite`` flatbuffer for ``signature`` of the SavedModel in ``mode``.

    Raises :class:`ConvertError` with the converter's own error lines when TensorFlow
    refuses (e.g. an op without an int8 kernel or outside the TFLite builtins).
    """
    import tensorflow as tf

    if mode not in MODES:
        raise ConvertError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode in NEEDS_CALIBRATION and calibration is None:
        raise ConvertError(f"--mode {mode} needs calibration data: pass --calibration PATH")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature]
    )
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in NEEDS_CALIBRATION:
        assert calibration is not None
        converter.representative_dataset = lambda: _representative(calibration)
        # Integer kernels only: conversion fails, naming the op, rather than silently
        # leaving float ops in a model that was asked to be integer.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with captured_stderr() as log:
        try:
            return converter.convert()
        except Exception as e:  # ConverterError, ValueError, RuntimeError from MLIR
            failure = e
    raise ConvertError(
        f"TensorFlow could not convert to {mode}: {_reason(failure, log.error_lines())}"
    )


def _representative(data: Dataset) -> Iterator[dict[str, Any]]:
    """One sample at a time (batch of one), keyed by input name, with a progress bar."""
    count = len(data)
    for i in progress(range(count), total=count, desc="calibrating"):
        yield {name: array[i : i + 1] for name, array in data.arrays.items()}


def _reason(error: BaseException, logged: list[str]) -> str:
    """The most telling part of the converter's complaint, on one line.

    Ops outside the TFLite builtins are listed by name (the serving runtime has no
    TensorFlow ops to fall back on); otherwise the first ``error:`` line, without MLIR's
    source locations, or the exception's first line.
    """
    lines = [line for line in str(error).splitlines() if "error:" in line] + logged
    ops = sorted({op for line in lines for op in _NOT_BUILTIN.findall(line)})
    if ops:
        return f"ops not in the TFLite builtins the serving runtime provides: {', '.join(ops)}"
    text = lines[0] if lines else (str(error).strip().splitlines() or [type(error).__name__])[0]
    text = _LOCATION.sub("", text.split("error:", 1)[-1].strip())
    return text if len(text) <= 300 else text[:297] + "..."


_NOT_BUILTIN = re.compile(r"'(tf\.\w+)' op is neither a custom op nor a flex op")
_LOCATION = re.compile(r"^loc\(.*?\)+:\s*")
