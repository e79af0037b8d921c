"""The ``compiled`` engine's runner: one LiteRT ``CompiledModel`` on the shared packed weights.

Built from the model's path with ``CpuOptions(xnnpack_weight_cache_path=...)``: the first
runner of an instance packs the weights into the cache file, every later one (another
pool slot, another worker) maps it (:mod:`serving.model.weight_cache`). ``CompiledModel``
reports neither quantization nor dynamic dimensions, so the signatures come from the
backend's describing interpreter and are matched to the compiled model's by name.

Inputs go through the compiled model's own tensor buffers, created per signature and input
shapes and kept until the shapes change (as an interpreter keeps its allocation). Outputs
go through buffers over host memory sized here: after ``resize_input_tensor``, LiteRT
2.3.0 keeps the output buffer requirements of the compiled shape (LiteRT issue #5774), so
its own output buffers are too small for a batch ("Custom allocation is too small", then
heap corruption, checked). An output's shape is its signature with the batch in the
leading dimension; :func:`unsupported` admits only models whose outputs follow that rule,
checked once at load by shape propagation on the describing interpreter. Quantized
inputs given as real values are quantized into a scratch array of the tensor's type,
which the buffer then copies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving import native_log
from serving.model.backend import Backend
from serving.model.model_file import ModelFile
from serving.model.quantization import quantize_into
from serving.model.tensors import DEFAULT_SIGNATURE, Interpreter, Signature, TensorSpec, shape_text
from serving.model.weight_cache import CacheUse, WeightCache

# The dtypes LiteRT 2.3.0's TensorBuffer reads and writes (ai_edge_litert.tensor_buffer).
SUPPORTED_DTYPES = frozenset(
    np.dtype(t) for t in (np.float32, np.float16, np.int32, np.int8, np.uint8, np.bool_)
)


PROBE_BATCH = 2  # the batch the load-time shape check propagates


def unsupported(signatures: Sequence[Signature]) -> str | None:
    """Why the compiled engine cannot hold these tensors, or None when it can.

    Every tensor must have a dtype LiteRT's TensorBuffer holds, and every output a shape
    that is static but for a leading batch dimension.
    """
    for signature in signatures:
        for spec in (*signature.inputs, *signature.outputs):
            if spec.dtype not in SUPPORTED_DTYPES:
                return (
                    f"tensor {spec.name!r} of signature {signature.key!r} is {spec.dtype}, "
                    "which LiteRT's TensorBuffer cannot hold"
                )
        for spec in signature.outputs:
            if -1 in spec.shape[1:]:
                return (
                    f"output {spec.name!r} of signature {signature.key!r} has shape "
                    f"{shape_text(spec.shape)}: only a leading batch dimension can be dynamic"
                )
    return None


def batch_problem(describer: Interpreter, signatures: Sequence[Signature]) -> str | None:
    """None if every output with a dynamic leading dimension has the inputs' batch there.

    Checked by running ``describer`` (a delegate-free interpreter) on zeros at a batch of
    :data:`PROBE_BATCH`: output shapes computed by the graph (a Flatten's RESHAPE takes its
    shape from SHAPE ops) are only known after an invoke, not after allocation. Costs one
    invoke without XNNPACK: 26 ms (32 MB int8 MLP) to 108 ms (128 MB float32), measured.
    """
    for signature in signatures:
        if not any(spec.shape[:1] == (-1,) for spec in signature.outputs):
            continue
        if not all(spec.batch_dynamic for spec in signature.inputs):
            return f"signature {signature.key!r} has a dynamic output but a fixed input batch"
        feeds = {spec.name: np.zeros(_probe_shape(spec), spec.dtype) for spec in signature.inputs}
        try:
            shapes = _probe(describer, signature, feeds)
        except (ValueError, RuntimeError) as e:
            return f"signature {signature.key!r} cannot run a batch of {PROBE_BATCH}: {e}"
        for spec in signature.outputs:
            expected = tuple(_probe_shape(spec))
            if shapes[spec.name] != expected:
                return (
                    f"output {spec.name!r} of signature {signature.key!r} is "
                    f"{shape_text(shapes[spec.name])} for a batch of {PROBE_BATCH}, not "
                    f"{shape_text(expected)}"
                )
    return None


def _probe(
    describer: Interpreter, signature: Signature, feeds: dict[str, np.ndarray]
) -> dict[str, tuple[int, ...]]:
    """Output shapes after one invoke on ``feeds``."""
    if describer.get_signature_list():
        result = describer.get_signature_runner(signature.key)(**feeds)
        return {name: tuple(int(d) for d in value.shape) for name, value in result.items()}
    for spec in signature.inputs:  # no signature defs: the main subgraph, by tensor index
        describer.resize_tensor_input(spec.index, list(feeds[spec.name].shape), strict=True)
    describer.allocate_tensors()
    for spec in signature.inputs:
        describer.set_tensor(spec.index, feeds[spec.name])
    describer.invoke()
    return {
        spec.name: tuple(int(d) for d in describer.get_tensor(spec.index).shape)
        for spec in signature.outputs
    }


def _probe_shape(spec: TensorSpec) -> list[int]:
    return [
        PROBE_BATCH if i == 0 and d == -1 else (1 if d == -1 else d)
        for i, d in enumerate(spec.shape)
    ]


@dataclass
class _Layout:
    """Where one of our signatures is in the compiled model, and its current buffers."""

    index: int
    key: str
    inputs: dict[str, int]  # input name -> position in the compiled model's input list
    outputs: dict[str, int]
    shapes: tuple[tuple[int, ...], ...] | None = None  # the input shapes the buffers are for
    input_buffers: list[Any] | None = None
    output_buffers: list[Any] | None = None
    output_shapes: list[tuple[int, ...]] | None = None
    output_memory: list[np.ndarray] | None = None  # what output_buffers point into


class CompiledRunner:
    """One compiled model and its tensor buffers (one thread at a time)."""

    def __init__(self, compiled: Any, signatures: Sequence[Signature], buffer_class: Any) -> None:
        self._model = compiled
        listed: dict[str, dict[str, list[str]]] = compiled.get_signature_list()
        self._layouts: dict[str, _Layout] = {}
        for signature in signatures:
            # A model without signature defs has one placeholder signature in CompiledModel.
            key = signature.key
            if key not in listed and len(listed) == 1 and signature.key == DEFAULT_SIGNATURE:
                key = next(iter(listed))
            names = listed[key]
            self._layouts[signature.key] = _Layout(
                index=compiled.get_signature_index(key),
                key=key,
                inputs={name: i for i, name in enumerate(names["inputs"])},
                outputs={name: i for i, name in enumerate(names["outputs"])},
            )
        self._scratch: dict[tuple[str, str], np.ndarray] = {}
        self._buffer_class = buffer_class

    def run(
        self, signature: Signature, feeds: Sequence[tuple[TensorSpec, np.ndarray]]
    ) -> tuple[list[np.ndarray], float]:
        """See :class:`serving.model.engine.Runner`."""
        layout = self._layouts[signature.key]
        if layout.shapes != tuple(array.shape for _, array in feeds):
            # New buffers: LiteRT makes an accelerator registry of its own on their first
            # write and logs it natively, once per process (checked on 2.3.0).
            with native_log.captured(engine="compiled"):
                self._allocate(layout, signature, feeds)
                return self._run(layout, signature, feeds)
        return self._run(layout, signature, feeds)

    def _run(
        self, layout: _Layout, signature: Signature, feeds: Sequence[tuple[TensorSpec, np.ndarray]]
    ) -> tuple[list[np.ndarray], float]:
        assert layout.input_buffers is not None
        assert layout.output_buffers is not None
        assert layout.output_shapes is not None
        for spec, array in feeds:
            buffer = layout.input_buffers[layout.inputs[spec.name]]
            if spec.quantized and array.dtype.kind == "f":
                codes = self._scratch_for(signature.key, spec, array.shape)
                quantize_into(codes, array, spec.scale, spec.zero_point)
                buffer.write(codes)
            else:
                buffer.write(array)
        started = time.perf_counter()
        self._model.run_by_index(layout.index, layout.input_buffers, layout.output_buffers)
        ms = (time.perf_counter() - started) * 1000
        outputs = []
        for spec in signature.outputs:
            position = layout.outputs[spec.name]
            shape = layout.output_shapes[position]
            flat = layout.output_buffers[position].read(int(np.prod(shape)), spec.dtype)
            outputs.append(flat.reshape(shape))
        return outputs, ms

    def _allocate(
        self, layout: _Layout, signature: Signature, feeds: Sequence[tuple[TensorSpec, np.ndarray]]
    ) -> None:
        """Resize the inputs whose shape changed, then create buffers for the new shapes."""
        layout.shapes = None  # a failure below leaves no stale buffers behind
        current = self._model.get_input_tensor_details(layout.key)
        for spec, array in feeds:
            if tuple(current[spec.name]["shape"]) != array.shape:
                self._model.resize_input_tensor(
                    layout.inputs[spec.name], list(array.shape), layout.index
                )
        batch = feeds[0][1].shape[0] if feeds and feeds[0][1].ndim else 1
        by_position = sorted(signature.outputs, key=lambda spec: layout.outputs[spec.name])
        shapes = [
            tuple(batch if i == 0 and d == -1 else d for i, d in enumerate(spec.shape))
            for spec in by_position
        ]
        memory = [
            _aligned(shape, spec.dtype) for shape, spec in zip(shapes, by_position, strict=True)
        ]
        layout.input_buffers = self._model.create_input_buffers(layout.index)
        layout.output_buffers = [self._buffer_class.create_from_host_memory(m) for m in memory]
        layout.output_memory = memory
        layout.output_shapes = shapes
        layout.shapes = tuple(array.shape for _, array in feeds)

    def _scratch_for(self, key: str, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
        scratch = self._scratch.get((key, spec.name))
        if scratch is None or scratch.shape != shape:
            scratch = self._scratch[(key, spec.name)] = np.empty(shape, dtype=spec.dtype)
        return scratch


class CompiledFactory:
    """Builds :class:`CompiledRunner` s of one model, all on one packed-weights file."""

    def __init__(
        self,
        backend: Backend,
        model: ModelFile,
        signatures: Sequence[Signature],
        *,
        num_threads: int,
        cache: WeightCache,
    ) -> None:
        compiled = backend.compiled
        if compiled is None:
            raise RuntimeError(f"{backend.label} has no CompiledModel")
        self._module = compiled
        self._backend = backend
        self._model = model
        self._signatures = tuple(signatures)
        self._num_threads = num_threads
        self._cache = cache
        self.last_use: CacheUse | None = None

    def __call__(self) -> CompiledRunner:
        """A new runner (packing the weights into the cache first if no one has)."""
        runner, use = self._cache.build(self._model, self._build)
        self.last_use = use
        return runner

    def _build(self, cache_path: str) -> CompiledRunner:
        module = self._module
        options = module.Options(
            module.HardwareAccelerator.CPU,
            cpu_options=module.CpuOptions(
                num_threads=self._num_threads, xnnpack_weight_cache_path=cache_path
            ),
        )
        with native_log.captured(backend=self._backend.name, engine="compiled"):
            compiled = module.CompiledModel.from_file(
                self._model.path, environment=_environment(module), options=options
            )
        return CompiledRunner(compiled, self._signatures, module.TensorBuffer)


_environment_lock = threading.Lock()
_environments: dict[int, Any] = {}


def _environment(module: Any) -> Any:
    """The process's one LiteRT environment (accelerator registry), created on first use.

    Without one, every ``CompiledModel`` creates and destroys its own: about 20 native log
    lines and a few milliseconds per build, and lines on stderr, outside any capture,
    whenever a discarded runner is collected (checked on LiteRT 2.3.0).
    """
    with _environment_lock:
        found = _environments.get(id(module))
        if found is None:
            found = _environments[id(module)] = module.Environment.create()
        return found


def _aligned(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A flat, zeroed array of ``shape``'s size, 64-byte aligned as LiteRT's host buffers need
    (an unaligned array would be copied, and the copy is what the run would write into)."""
    count = int(np.prod(shape))
    raw = np.zeros(count * dtype.itemsize + 64, dtype=np.uint8)
    offset = (-raw.ctypes.data) % 64
    return raw[offset : offset + count * dtype.itemsize].view(dtype)
