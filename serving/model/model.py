"""A loaded TFLite model: its signatures, and predictions on numpy arrays.

Usable without HTTP::

    with Model.load("model/quantized_model.tflite") as model:
        probabilities = model.predict({"pixels": images})["probabilities"]

Quantized (int8/uint8) inputs take real values (any float or integer array), which are
quantized with the tensor's scale and zero point, or raw codes (an array of the tensor's
own storage type), which pass through unchanged. Quantized outputs come back as real
float32 values.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving import memory
from serving.errors import BadRequest, ModelLoadError
from serving.memory import ModelFootprint
from serving.model import arrays, load_errors, metadata, shapes
from serving.model.backend import Backend, select_backend
from serving.model.engine import Engine, EngineChoice, EngineKind, Runner, choose
from serving.model.interpreter_engine import InterpreterRunner
from serving.model.metadata import ModelMetadata
from serving.model.model_file import ModelFile
from serving.model.pictures import PictureInput
from serving.model.pool import Pool
from serving.model.quantization import check_finite, dequantize
from serving.model.tensors import (
    DEFAULT_SIGNATURE,
    Interpreter,
    Signature,
    TensorSpec,
    read_signatures,
    shape_text,
)
from serving.settings import DEFAULT_WEIGHT_CACHE_DIR

if TYPE_CHECKING:
    from serving.model.compiled_engine import CompiledFactory
    from serving.model.weight_cache import CacheUse, WeightCache


@dataclass(frozen=True)
class Prediction:
    """Outputs of one :meth:`Model.run` with what it cost."""

    outputs: dict[str, np.ndarray]
    signature: str
    batch_size: int
    invokes: int
    invoke_ms: float


class Model:
    """A TFLite model served by one engine (thread-safe).

    The file is held open and mapped, never read into the heap: replacing or deleting it
    afterwards changes nothing for the loaded model (see :mod:`serving.model.model_file`).
    """

    def __init__(
        self,
        file: ModelFile,
        backend: Backend,
        engine: Engine,
        choice: EngineChoice,
        signatures: tuple[Signature, ...],
        max_batch_size: int,
        footprint: ModelFootprint,
        weight_cache: CacheUse | None,
    ) -> None:
        self.path = file.name
        self.backend = backend
        self.engine = engine
        self.choice = choice
        self.signatures = signatures
        self.max_batch_size = max_batch_size
        self.size_bytes = file.size
        self.footprint = footprint
        self.weight_cache = weight_cache
        self._file = file
        self._by_key = {signature.key: signature for signature in signatures}
        self.metadata: ModelMetadata | None = None
        self.metadata_error: str | None = None
        self._pictures: dict[tuple[str, str], PictureInput] = {}

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        backend: str | None = None,
        engine: EngineKind | str | None = None,
        pool_size: int = 1,
        num_threads: int = 1,
        max_batch_size: int = 64,
        weight_cache_dir: str | Path | None = None,
        lock_timeout: float = 60.0,
    ) -> Model:
        """Load ``path`` and build its first engine runner (more are made on demand).

        ``engine`` forces ``compiled`` or ``interpreter`` (default: :func:`choose` decides);
        ``pool_size`` bounds the interpreter engine's runners (the compiled engine, which
        holds the GIL while it runs, has one per process); packed weights go to
        ``weight_cache_dir`` (default ``settings.DEFAULT_WEIGHT_CACHE_DIR``), whose locks wait at
        most ``lock_timeout`` seconds.

        Raises :class:`ModelLoadError` (503) naming the file and the cause.
        """
        path = os.fspath(path)
        forced = EngineKind(engine) if isinstance(engine, str) else engine
        file = ModelFile(path)
        chosen = select_backend(backend)
        try:
            describer = chosen.describe(file.path)
            signatures = read_signatures(describer)
        except (ValueError, RuntimeError) as e:
            raise load_errors.explain(path, e, chosen) from e
        # The compiled engine's modules are imported only for a model it may serve.
        compiled = _Compiled(chosen, file, signatures, weight_cache_dir, lock_timeout)
        choice = choose(
            forced,
            model_bytes=file.size,
            compiled_available=lambda: chosen.compiled is not None,
            unsupported=functools.partial(compiled.problem, describer),
        )
        del describer  # released before the engine is built and measured
        compiled.digest_read()  # before the engine is measured: not the engine's memory
        before = memory.anonymous_bytes()
        started = time.perf_counter()
        built, choice, use = _first_engine(
            file,
            chosen,
            signatures,
            choice,
            forced,
            compiled,
            pool_size=pool_size,
            num_threads=num_threads,
        )
        built.first_build_ms = (time.perf_counter() - started) * 1000
        if built.kind is EngineKind.COMPILED:
            memory.release_free_heap()  # what packing freed, before the footprint is taken
        footprint = ModelFootprint(
            engine_bytes=max(0, memory.anonymous_bytes() - before),
            engines_per_process=built.size,
            shared_bytes=use.bytes if use is not None else 0,
        )
        model = cls(file, chosen, built, choice, signatures, max_batch_size, footprint, use)
        try:
            model.metadata = metadata.read(file.mapped(), signatures)
        except metadata.MetadataError as e:  # served without it; the load log says why
            model.metadata_error = str(e)
        return model

    def annotate(self, found: ModelMetadata | None) -> None:
        """Replace the metadata (settings overrides); call before the model is shared."""
        self.metadata = found
        self._pictures.clear()

    def picture_input(self, signature: Signature, spec: TensorSpec) -> PictureInput | None:
        """How pictures become this input's values; None unless it is shaped like pictures."""
        key = (signature.key, spec.name)
        found = self._pictures.get(key)
        if found is None:
            if not metadata.is_picture(spec):
                return None
            info = self.metadata.input(*key) if self.metadata else None
            found = self._pictures.setdefault(
                key, PictureInput(signature.key, spec, info.normalization if info else None)
            )
        return found

    def labels(self, signature: Signature, spec: TensorSpec) -> tuple[str, ...] | None:
        """An output's class labels, from the metadata or ``LABELS_PATH``."""
        return self.metadata.output(signature.key, spec.name).labels if self.metadata else None

    @property
    def default(self) -> Signature:
        """The signature served when a request names none (``serving_default`` if present)."""
        return self.signatures[0]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The default signature's inputs."""
        return self.default.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The default signature's outputs."""
        return self.default.outputs

    @property
    def runners(self) -> int:
        """How many engine runners (interpreters or compiled models) exist now."""
        return self.engine.runners

    def signature(self, key: str | None = None) -> Signature:
        """The signature called ``key``; 400 naming the known ones.

        None, and ``serving_default`` on a model that has no signature by that name, mean
        the default signature, as in TensorFlow Serving.
        """
        found = self._by_key.get(key) if key is not None else self.default
        if found is None and key == DEFAULT_SIGNATURE:
            found = self.default
        if found is None:
            known = ", ".join(repr(s.key) for s in self.signatures)
            raise BadRequest(f"unknown signature {key!r}; the model's signatures are: {known}")
        return found

    def predict(
        self, inputs: Mapping[str, Any], signature: str | None = None
    ) -> dict[str, np.ndarray]:
        """Outputs by name for inputs by name (arrays with the batch dimension first)."""
        return self.run(inputs, signature).outputs

    def run(self, inputs: Mapping[str, Any], signature: str | None = None) -> Prediction:
        """Like :meth:`predict`, also reporting batch size, invokes and time in invoke."""
        chosen = self.signature(signature)
        arrays_by_name = _validate(chosen, inputs)
        batch = _batch_size(arrays_by_name)
        chunks = self._plan(chosen, batch)
        feeds = [(spec, arrays_by_name[spec.name]) for spec in chosen.inputs]
        pieces: list[list[np.ndarray]] = []
        invoke_ms = 0.0
        with self.engine.runner() as runner:
            for start, stop in chunks:
                chunk = feeds if len(chunks) == 1 else [(s, a[start:stop]) for s, a in feeds]
                try:
                    result, ms = runner.run(chosen, chunk)
                except (RuntimeError, ValueError) as e:
                    shapes = ", ".join(f"{s.name} {shape_text(a.shape)}" for s, a in chunk)
                    raise BadRequest(
                        f"the model cannot run on inputs of shape {shapes}: {e}"
                    ) from e
                pieces.append(result)
                invoke_ms += ms
        outputs = {}
        for position, spec in enumerate(chosen.outputs):
            parts = [piece[position] for piece in pieces]
            value = parts[0] if len(parts) == 1 else _join(parts)
            outputs[spec.name] = (
                dequantize(value, spec.scale, spec.zero_point) if spec.quantized else value
            )
        return Prediction(outputs, chosen.key, batch, len(chunks), invoke_ms)

    def _plan(self, signature: Signature, batch: int) -> list[tuple[int, int]]:
        """Row ranges invoked one after another on one interpreter.

        A resizable batch dimension runs in chunks of at most ``max_batch_size``; a fixed
        batch of 1 runs instance by instance; any other fixed shape runs as given.
        """
        if batch <= 0:
            return [(0, batch)]
        if all(spec.batch_dynamic for spec in signature.inputs):
            step = self.max_batch_size
        elif all(spec.shape[:1] == (1,) for spec in signature.inputs):
            step = 1
        else:
            return [(0, batch)]
        return [(start, min(start + step, batch)) for start in range(0, batch, step)]

    def close(self) -> None:
        """Release the engine and the file; later predictions raise a 503 error."""
        self.engine.close()
        self._file.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _validate(signature: Signature, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every input present, known, of a shape the model takes, in a dtype it can be fed.

    Raises :class:`BadRequest` before any interpreter is borrowed, so a bad request never
    costs one.
    """
    for name in inputs:
        signature.known_input(name)
    names = [spec.name for spec in signature.inputs]
    missing = [name for name in names if name not in inputs]
    if missing:
        raise BadRequest(f"missing input {missing[0]!r}")
    return {spec.name: _checked(spec, inputs[spec.name]) for spec in signature.inputs}


def _checked(spec: TensorSpec, value: Any) -> np.ndarray:
    what = f"input {spec.name!r}"
    array = value if isinstance(value, np.ndarray) else arrays.to_array(value, what=what)
    if array.dtype.kind not in "biuf":
        raise BadRequest(f"{what}: expected numbers, received {arrays.describe(array)}")
    array = shapes.fitted(spec, array)  # 400 unless the model can run this shape
    if spec.quantized:
        if array.dtype == spec.dtype:
            return array  # raw quantized codes pass through
        if array.dtype.kind != "f":
            array = arrays.coerce(array, spec.client_dtype, what=what)
        check_finite(array, what=what)
        return array
    return np.ascontiguousarray(arrays.coerce(array, spec.dtype, what=what))


def _batch_size(arrays_by_name: dict[str, np.ndarray]) -> int:
    sizes = {name: a.shape[0] for name, a in arrays_by_name.items() if a.ndim > 0}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in sizes.items())
        raise BadRequest(f"inputs disagree on the number of instances: {listed}")
    return next(iter(sizes.values()), 1)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts[0].ndim > 0 else np.stack(parts)


class _Compiled:
    """What the compiled engine needs for one model, its modules imported on first use (they
    cost the interpreter engine's cold start 10 ms it has no use for)."""

    def __init__(
        self,
        backend: Backend,
        file: ModelFile,
        signatures: tuple[Signature, ...],
        cache_dir: str | Path | None,
        lock_timeout: float,
    ) -> None:
        self.backend = backend
        self.file = file
        self.signatures = signatures
        self.cache_dir = Path(cache_dir or DEFAULT_WEIGHT_CACHE_DIR)
        self.lock_timeout = lock_timeout
        self._cache: WeightCache | None = None
        self._digest: threading.Thread | None = None

    def read_digest_meanwhile(self) -> None:
        """Start reading the model's digest (the weight cache's key) in a thread: on a 128 MB
        model it takes about 190 ms, which the batch probe's invoke can overlap."""
        cache = self.cache

        def read() -> None:
            # A failure here is met again, and handled, when the engine asks for the key.
            with contextlib.suppress(OSError):
                cache.key(self.file)

        self._digest = threading.Thread(target=read, name="model-digest", daemon=True)
        self._digest.start()

    def digest_read(self) -> None:
        """Wait for :meth:`read_digest_meanwhile`'s thread, if one was started."""
        if self._digest is not None:
            self._digest.join()
            self._digest = None

    @property
    def cache(self) -> WeightCache:
        if self._cache is None:
            from serving.model.weight_cache import WeightCache

            self._cache = WeightCache(
                self.cache_dir, runtime=self.backend.label, timeout=self.lock_timeout
            )
        return self._cache

    def problem(self, describer: Interpreter) -> str | None:
        """Why the compiled engine cannot serve the model (None: it can). The batch probe
        invokes the model once, so its verdict is kept per file version."""
        from serving.model import compiled_engine

        # Asked only when the compiled engine may serve the model: its key will be needed,
        # and the digest overlaps the probe (both release the GIL).
        self.read_digest_meanwhile()
        found = compiled_engine.unsupported(self.signatures)
        if found is not None:
            return found

        def probe() -> str:
            return compiled_engine.batch_problem(describer, self.signatures) or ""

        return self.cache.remembered(self.file, "batch-probe", probe) or None

    def factory(self, num_threads: int) -> CompiledFactory:
        from serving.model.compiled_engine import CompiledFactory

        return CompiledFactory(
            self.backend, self.file, self.signatures, num_threads=num_threads, cache=self.cache
        )


def _first_engine(
    file: ModelFile,
    backend: Backend,
    signatures: tuple[Signature, ...],
    choice: EngineChoice,
    forced: EngineKind | None,
    compiled: _Compiled,
    *,
    pool_size: int,
    num_threads: int,
) -> tuple[Engine, EngineChoice, CacheUse | None]:
    """The chosen engine with its first runner built, and what the weight cache did.

    A compiled model that fails to build is retried as an interpreter: if that fails too,
    its error (which names the op or the version) explains the load; if it works, it
    serves, unless the compiled engine was forced.
    """

    def interpreter() -> Runner:
        return InterpreterRunner(backend.make_interpreter(file.path, num_threads))

    if choice.kind is EngineKind.COMPILED:
        factory = compiled.factory(num_threads)
        try:
            first: Runner = factory()
        except (ValueError, RuntimeError) as e:
            failure = load_errors.first_line(str(e))
        else:
            # One runner per process: it holds the GIL while it runs (see engine.py).
            return Engine(choice.kind, Pool(factory, size=1, first=first)), choice, factory.last_use
        try:
            first = interpreter()
        except (ValueError, RuntimeError) as e:
            raise load_errors.explain(file.name, e, backend) from e
        if forced is EngineKind.COMPILED:
            raise ModelLoadError(
                f"SERVING_ENGINE=compiled: LiteRT's CompiledModel could not build {file.name} "
                f"({failure}), though an interpreter can; unset SERVING_ENGINE",
                reason="engine",
            )
        choice = EngineChoice(EngineKind.INTERPRETER, f"CompiledModel failed: {failure}")
    else:
        try:
            first = interpreter()
        except (ValueError, RuntimeError) as e:
            raise load_errors.explain(file.name, e, backend) from e
    pool = Pool(interpreter, size=pool_size, first=first)
    return Engine(EngineKind.INTERPRETER, pool), choice, None
