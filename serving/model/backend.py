"""Which TFLite interpreter implementation runs the model.

Order of preference: LiteRT (``ai_edge_litert``, maintained, numpy 2, Python 3.12+),
then the legacy ``tflite_runtime`` (Python <= 3.11, numpy < 2, too old for some op
versions current converters emit), then ``tensorflow.lite`` (heavy; last resort).
``SERVING_BACKEND`` forces one of ``litert``, ``tflite_runtime``, ``tensorflow``.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any

from serving import native_log
from serving.errors import ModelLoadError
from serving.model.tensors import Interpreter

# name -> (module holding Interpreter, distribution whose version is reported)
_CANDIDATES: dict[str, tuple[str, str]] = {
    "litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow"),
}
PREFERENCE: tuple[str, ...] = ("litert", "tflite_runtime", "tensorflow")

_lock = threading.Lock()
_cache: dict[str | None, Backend] = {}


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    version: str
    interpreter_class: Any

    def make_interpreter(self, model_content: bytes, num_threads: int | None = None) -> Interpreter:
        """A new interpreter for the model's bytes, tensors allocated (one per thread at a time).

        Built from bytes read once, not from the path: a file replaced or deleted after
        the load cannot give later interpreters of the same pool another model. Allocation
        applies the default delegate, which logs natively: see :mod:`serving.native_log`.
        """
        with native_log.captured(backend=self.name):
            interpreter = self.interpreter_class(
                model_content=model_content, num_threads=num_threads
            )
            interpreter.allocate_tensors()
        return interpreter


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        # tensorflow may be installed as tensorflow-cpu
        try:
            return metadata.version(distribution + "-cpu")
        except metadata.PackageNotFoundError:
            return "unknown"


def _import(name: str) -> Backend:
    module_name, distribution = _CANDIDATES[name]
    module = importlib.import_module(module_name)
    return Backend(name=name, version=_version(distribution), interpreter_class=module.Interpreter)


def select_backend(forced: str | None = None) -> Backend:
    """The backend to use: ``forced`` if given, else the first importable by preference.

    Raises :class:`ModelLoadError` (503) naming what to install when none imports.
    """
    with _lock:
        if forced in _cache:
            return _cache[forced]
        if forced is not None and forced not in _CANDIDATES:
            raise ModelLoadError(
                f"unknown interpreter backend {forced!r}; choose one of {', '.join(PREFERENCE)}",
                reason="backend",
            )
        errors: list[str] = []
        for name in (forced,) if forced else PREFERENCE:
            try:
                backend = _import(name)
            except Exception as e:  # ImportError, or numpy ABI errors raised at import
                errors.append(f"{name}: {e}")
                continue
            _cache[forced] = backend
            return backend
        raise ModelLoadError(
            "no TFLite interpreter backend could be imported ("
            + "; ".join(errors)
            + "); install ai-edge-litert",
            reason="backend",
        )
