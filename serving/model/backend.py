"""Which TFLite interpreter implementation runs the model.

Order of preference: LiteRT (``ai_edge_litert``, maintained, numpy 2, Python 3.12+),
then the legacy ``tflite_runtime`` (Python <= 3.11, numpy < 2, too old for some op
versions current converters emit), then ``tensorflow.lite`` (heavy; last resort).
``SERVING_BACKEND`` forces one of ``litert``, ``tflite_runtime``, ``tensorflow``.

Every backend builds interpreters from a path, so the runtime maps the model file rather
than copying it into the heap. LiteRT also has ``CompiledModel`` (:attr:`Backend.compiled`),
the engine whose packed weights can be shared between processes (see
:mod:`serving.model.weight_cache`).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any

from serving import native_log
from serving.errors import ModelLoadError
from serving.model.tensors import Interpreter
from serving.settings import BACKENDS

# name -> (module holding Interpreter, distribution whose version is reported)
_CANDIDATES: dict[str, tuple[str, str]] = {
    "litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow"),
}
# The backends that also have LiteRT's CompiledModel, and the module holding it.
_COMPILED: dict[str, str] = {"litert": "ai_edge_litert.compiled_model"}
PREFERENCE: tuple[str, ...] = BACKENDS  # settings owns the names SERVING_BACKEND takes

_lock = threading.Lock()
_cache: dict[str | None, Backend] = {}


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    version: str
    interpreter_class: Any
    module: Any

    @property
    def label(self) -> str:
        """``name version``, as messages and the cache key name the runtime."""
        return f"{self.name} {self.version}"

    def make_interpreter(self, path: str, num_threads: int | None = None) -> Interpreter:
        """A new interpreter for the model at ``path``, tensors allocated.

        The runtime maps the file. Allocation applies the default delegate (XNNPACK, which
        packs its own copy of the weights) and logs natively: see :mod:`serving.native_log`.
        """
        with native_log.captured(backend=self.name):
            interpreter = self.interpreter_class(model_path=path, num_threads=num_threads)
            interpreter.allocate_tensors()
        return interpreter

    def describe(self, path: str) -> Interpreter:
        """An interpreter that only describes the model: no delegate, no tensors allocated.

        It reads signatures, shapes and quantization in well under a millisecond and costs
        no copy of the weights, whichever engine then serves the model.
        """
        resolver = self.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        with native_log.captured(backend=self.name):
            return self.interpreter_class(model_path=path, experimental_op_resolver_type=resolver)

    @property
    def compiled(self) -> Any | None:
        """LiteRT's ``compiled_model`` module, or None when this backend has no CompiledModel."""
        name = _COMPILED.get(self.name)
        if name is None:
            return None
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


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
    return Backend(
        name=name,
        version=_version(distribution),
        interpreter_class=module.Interpreter,
        module=module,
    )


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
