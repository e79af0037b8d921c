"""A bounded pool of interpreters, so concurrent requests run in parallel but never share one.

A TFLite interpreter is not thread-safe. Each request borrows a whole interpreter for
the duration of its invokes. Interpreters are created on demand up to ``size``: the
cold request pays for exactly one, and a second is built only when two requests
actually overlap.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from serving.errors import ServingError
from serving.model.quantization import quantize_into
from serving.model.tensors import Interpreter, TensorSpec


class PoolClosed(ServingError):
    """The model was released (``Model.close``); nothing can run on it any more (503)."""

    status_code = 503


class Slot:
    """One interpreter, the input shapes it is allocated for, and its scratch buffers."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self._shapes: dict[int, tuple[int, ...]] = {
            int(d["index"]): tuple(int(x) for x in d["shape"])
            for d in interpreter.get_input_details()
        }
        self._scratch: dict[int, np.ndarray] = {}

    def run_main(
        self, feeds: list[tuple[TensorSpec, np.ndarray]], outputs: list[int]
    ) -> tuple[list[np.ndarray], float]:
        """Run the main subgraph: set the inputs, invoke, read the outputs (copies).

        A quantized input given as real (float) values is quantized straight into the
        interpreter's input buffer; anything else is copied in as it is. The interpreter
        is resized and re-allocated only when an input's shape changed. Returns the
        outputs and the time spent in ``invoke()`` in milliseconds.
        """
        interpreter = self.interpreter
        changed = [
            (spec.index, a.shape) for spec, a in feeds if a.shape != self._shapes[spec.index]
        ]
        if changed:
            for index, shape in changed:
                interpreter.resize_tensor_input(index, list(shape), strict=True)
            interpreter.allocate_tensors()
            for index, shape in changed:
                self._shapes[index] = tuple(shape)
        for spec, array in feeds:
            if spec.quantized and array.dtype.kind == "f":
                buffer = interpreter.tensor(spec.index)()
                quantize_into(
                    buffer,
                    array,
                    spec.scale,
                    spec.zero_point,
                    scratch=self._scratch_for(spec.index, array.shape),
                )
                del buffer  # invoke() refuses to run while a view of its buffers is alive
            else:
                interpreter.set_tensor(spec.index, array)
        started = time.perf_counter()
        interpreter.invoke()
        invoke_ms = (time.perf_counter() - started) * 1000
        return [interpreter.get_tensor(i) for i in outputs], invoke_ms

    def run_signature(
        self, key: str, feeds: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], float]:
        """Run a signature that is not on the main subgraph through its signature runner.

        The runner is made per call, not kept: a live runner holds a reference to the
        interpreter's internals, and the interpreter then refuses ``allocate_tensors()`` and
        ``invoke()`` on the main subgraph ("at least 1 reference to internal data").
        """
        runner = self.interpreter.get_signature_runner(key)
        started = time.perf_counter()
        result = runner(**feeds)
        ms = (time.perf_counter() - started) * 1000
        del runner
        return result, ms

    def _scratch_for(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        scratch = self._scratch.get(index)
        if scratch is None or scratch.shape != shape:
            scratch = self._scratch[index] = np.empty(shape, dtype=np.float32)
        return scratch


class InterpreterPool:
    """Up to ``size`` slots created lazily by ``factory``; borrow one with :meth:`slot`."""

    def __init__(
        self, factory: Callable[[], Interpreter], size: int, first: Interpreter | None = None
    ) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[Slot] = [Slot(first)] if first is not None else []
        self._created = len(self._idle)
        self._closed = False
        self._cond = threading.Condition()

    @property
    def created(self) -> int:
        """How many interpreters exist now (idle or busy)."""
        return self._created

    @contextlib.contextmanager
    def slot(self) -> Iterator[Slot]:
        """Borrow an interpreter, waiting while all ``size`` are busy.

        A slot whose use raised is discarded rather than returned: after a failed
        resize or invoke its state is unknown, and the next request must not inherit it.
        """
        slot = self._take()
        try:
            yield slot
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise
        with self._cond:
            if not self._closed:
                self._idle.append(slot)
            self._cond.notify()

    def _take(self) -> Slot:
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed("the model has been closed")
                if self._idle:
                    return self._idle.pop()
                if self._created < self._size:
                    self._created += 1
                    break
                self._cond.wait()
        try:
            return Slot(self._factory())
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def close(self) -> None:
        """Drop idle interpreters and refuse new borrowers; busy ones finish their work."""
        with self._cond:
            self._closed = True
            self._created -= len(self._idle)
            self._idle.clear()
            self._cond.notify_all()
