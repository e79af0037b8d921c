"""Engines: what runs a model's signatures on numpy arrays, behind one protocol.

Two kinds, chosen per model by :func:`choose` (``SERVING_ENGINE`` forces one):

- ``compiled``: LiteRT's ``CompiledModel``. Its weights are packed once per instance into
  a file every engine maps (:mod:`serving.model.weight_cache`), so the instance holds one
  copy of them whatever the workers and the concurrency. ``run`` holds the GIL, so a
  process runs one inference at a time and parallelism comes from worker processes.
- ``interpreter``: a pool of TFLite ``Interpreter``s, the only engine of the legacy
  ``tflite_runtime`` and ``tensorflow`` backends. ``invoke`` releases the GIL, so a pool
  runs in parallel threads, but each interpreter packs its own copy of the weights.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from serving.errors import ModelLoadError
from serving.memory import SHARED_WEIGHTS_MIN_BYTES
from serving.model.pool import Pool
from serving.model.tensors import Signature, TensorSpec


class EngineKind(enum.Enum):
    """The closed set of engines; the values are ``SERVING_ENGINE``'s."""

    COMPILED = "compiled"
    INTERPRETER = "interpreter"


class Runner(Protocol):
    """One engine instance: used by one thread at a time, borrowed from the engine's pool."""

    def run(
        self, signature: Signature, feeds: Sequence[tuple[TensorSpec, np.ndarray]]
    ) -> tuple[list[np.ndarray], float]:
        """The signature's outputs, in its order, for one chunk; and milliseconds invoking.

        ``feeds`` are validated arrays in the signature's input order: real values for a
        quantized input (quantized here) or the tensor's own dtype.
        """
        ...


@dataclass(frozen=True)
class EngineChoice:
    """Which engine serves a model, and why (the load log says both)."""

    kind: EngineKind
    reason: str


class Engine:
    """Runners of one kind for one model, built on demand up to the pool size (thread-safe)."""

    def __init__(self, kind: EngineKind, pool: Pool[Runner]) -> None:
        self.kind = kind
        self.first_build_ms = 0.0  # set by the loader: the first runner's build time
        self._pool = pool

    @property
    def runners(self) -> int:
        """How many runners exist now."""
        return self._pool.created

    @property
    def size(self) -> int:
        """The most runners this process holds."""
        return self._pool.size

    @property
    def later_build_ms(self) -> list[float]:
        """How long each runner after the first took to build."""
        return list(self._pool.build_ms)

    @contextlib.contextmanager
    def runner(self) -> Iterator[Runner]:
        """Borrow a runner for a request's chunks (waits while all are busy)."""
        with self._pool.borrow() as runner:
            yield runner

    def close(self) -> None:
        """Refuse new work; busy runners finish."""
        self._pool.close()


def choose(
    forced: EngineKind | None,
    *,
    model_bytes: int,
    compiled_available: Callable[[], bool],
    unsupported: Callable[[], str | None],
) -> EngineChoice:
    """The engine for a model.

    Without a forced kind, the compiled engine serves every model of at least
    :data:`~serving.memory.SHARED_WEIGHTS_MIN_BYTES` that it can serve; smaller ones stay
    on the interpreter pool, whose copies then cost less than the compiled runtime itself.
    ``compiled_available`` (the backend has LiteRT's CompiledModel: importing it costs
    15-20 ms) and ``unsupported`` (why the compiled engine cannot hold the model's tensors,
    or None) are asked only when the answer matters.

    Raises :class:`ModelLoadError` (reason ``engine``) when the compiled engine is forced
    but cannot serve the model: a comparison must not silently measure the other engine.
    """
    if forced is EngineKind.INTERPRETER:
        return EngineChoice(forced, "SERVING_ENGINE=interpreter")
    if forced is None and model_bytes < SHARED_WEIGHTS_MIN_BYTES:
        return EngineChoice(
            EngineKind.INTERPRETER,
            f"model of {model_bytes} bytes, under {SHARED_WEIGHTS_MIN_BYTES}: copies of its "
            "weights cost less than the compiled engine's runtime",
        )
    if not compiled_available():
        cannot: str | None = "the backend has no LiteRT CompiledModel (ai-edge-litert)"
    else:
        cannot = unsupported()
    if cannot is not None:
        if forced is EngineKind.COMPILED:
            raise ModelLoadError(
                f"SERVING_ENGINE=compiled cannot serve this model: {cannot}; "
                "unset SERVING_ENGINE or set it to interpreter",
                reason="engine",
            )
        return EngineChoice(EngineKind.INTERPRETER, cannot)
    if forced is EngineKind.COMPILED:
        return EngineChoice(forced, "SERVING_ENGINE=compiled")
    return EngineChoice(EngineKind.COMPILED, "one shared copy of the weights")
