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

Three conversion paths (:func:`convert_source` tries a source's paths in order and falls
back when one yields a model that reads uninitialised variables):

- ``saved_model``: ``TFLiteConverter.from_saved_model`` on the directory, every requested
  signature key at once (TensorFlow's own SavedModel importer);
- ``concrete_functions``: the loaded SavedModel's signature functions with the loaded
  object, ``TFLiteConverter.from_concrete_functions(functions, loaded)``, which freezes
  variables the importer misses (Keras 3 models written by ``tf.saved_model.save``);
- ``call``: a SavedModel without signatures: its traced ``__call__`` the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convert import tflite_file
from convert.calibration import Dataset
from convert.errors import ConvertError
from convert.progress import progress
from convert.quiet import captured_stderr
from convert.sources import Source

MODES: dict[str, str] = {
    "int8": "full integer (int8 weights, activations, inputs and outputs)",
    "int8-float-io": "integer kernels with float32 inputs and outputs",
    "dynamic": "dynamic-range (int8 weights, float activations)",
    "float16": "float16 weights",
    "float32": "no quantization",
}
NEEDS_CALIBRATION = frozenset({"int8", "int8-float-io"})


PATHS: dict[str, str] = {
    "saved_model": "TFLiteConverter.from_saved_model",
    "concrete_functions": "the loaded signature functions (from_concrete_functions)",
    "call": "the traced __call__ (from_concrete_functions)",
}


def convert(saved_model_dir: Path, signature: str, mode: str, calibration: Dataset | None) -> bytes:
    """The ``.tflite`` flatbuffer for ``signature`` of the SavedModel in ``mode``.

    The ``saved_model`` path only; raises :class:`ConvertError` with the converter's own
    error lines when TensorFlow refuses (e.g. an op without an int8 kernel or outside the
    TFLite builtins).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature]
    )
    samples = None if calibration is None else {None: calibration}
    return _run(converter, mode, samples)


def convert_source(
    source: Source, mode: str, calibration: dict[str, Dataset] | None
) -> tuple[bytes, str, list[str]]:
    """(the ``.tflite`` with every signature of ``source`` under its own key, the path
    used, notes on paths abandoned).

    ``calibration`` maps signature keys to their samples. A path whose model reads
    uninitialised variables (``VAR_HANDLE``/``READ_VARIABLE`` ops, or a calibration that
    fails on them) or loses a signature is abandoned for the next; the last path's failure
    is raised as a :class:`ConvertError`.
    """
    notes: list[str] = []
    for i, path in enumerate(source.paths):
        last = i == len(source.paths) - 1
        try:
            content = _convert_path(source, path, mode, calibration)
        except ConvertError as e:
            if last or not any(op in e.message for op in tflite_file.VARIABLE_OPS):
                raise
            notes.append(f"path {path} abandoned: {e.message}")
            continue
        model = tflite_file.read(content)
        problem = _problem(model, source.keys)
        if problem is None:
            return content, path, notes
        if last:
            raise ConvertError(f"TensorFlow could not convert to {mode}: {problem}")
        notes.append(f"path {path} abandoned: {problem}")
    raise AssertionError("a source always has a conversion path")  # pragma: no cover


def _problem(model: object, keys: list[str]) -> str | None:
    variables = sorted(tflite_file.op_names(model) & tflite_file.VARIABLE_OPS)
    if variables:
        return f"the model reads uninitialised variables ({', '.join(variables)} ops)"
    found = [s.key for s in tflite_file.signatures(model)]
    if sorted(found) != sorted(keys):
        return f"signatures {', '.join(found)} instead of {', '.join(keys)}"
    return None


def _convert_path(
    source: Source, path: str, mode: str, calibration: dict[str, Dataset] | None
) -> bytes:
    import tensorflow as tf

    keys = source.keys
    if path == "saved_model":
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(source.saved_model_dir), signature_keys=keys
        )
        return _run(converter, mode, _by_key(calibration, {k: k for k in keys}))
    if path == "call":
        functions = [source.main.concrete]
    else:
        functions = [source.loaded.signatures[k] for k in keys]
    # TensorFlow names one function's signature serving_default and several after their
    # graphs; calibration must use those names, and the file gets the real keys back.
    internal = [DEFAULT_KEY] if len(functions) == 1 else [f.graph.name for f in functions]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, source.loaded)
    content = _run(converter, mode, _by_key(calibration, dict(zip(keys, internal, strict=True))))
    model = tflite_file.read(content)
    renamed = dict(zip(internal, keys, strict=True))
    found = [s.key for s in tflite_file.signatures(model)]
    if sorted(found) != sorted(internal):
        return content  # judged by _problem
    tflite_file.rename_signatures(model, [renamed[k] for k in found])
    return tflite_file.write(model)


DEFAULT_KEY = "serving_default"


def _by_key(
    calibration: dict[str, Dataset] | None, names: dict[str, str]
) -> dict[str | None, Dataset] | None:
    """Calibration keyed by the converter's own signature names (None: only one)."""
    if calibration is None:
        return None
    if len(names) == 1:
        return {None: next(iter(calibration.values()))}
    return {names[key]: data for key, data in calibration.items()}


def _run(converter: Any, mode: str, calibration: dict[str | None, Dataset] | None) -> bytes:
    """Set ``converter`` up for ``mode`` and convert."""
    import tensorflow as tf

    if mode not in MODES:
        raise ConvertError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode in NEEDS_CALIBRATION and calibration is None:
        raise ConvertError(f"--mode {mode} needs calibration data: pass --calibration PATH")
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


def _representative(data: dict[str | None, Dataset]) -> Iterator[Any]:
    """One sample at a time (batch of one), keyed by input name, with a progress bar;
    ``(signature, sample)`` pairs when several signatures are calibrated."""
    count = sum(len(d) for d in data.values())
    samples = (
        (key, {name: array[i : i + 1] for name, array in d.arrays.items()})
        for key, d in data.items()
        for i in range(len(d))
    )
    for key, sample in progress(samples, total=count, desc="calibrating"):
        yield sample if key is None else (key, sample)


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
