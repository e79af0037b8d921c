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
from typing import Any

import numpy as np

from serving.errors import ServingError


class PoolClosed(ServingError):
    """The model was released (``Model.close``); nothing can run on it any more (503)."""

    status_code = 503


class Slot:
    """One interpreter and the input shapes it is currently allocated for."""

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        self._shapes: dict[int, tuple[int, ...]] = {
            int(d["index"]): tuple(int(x) for x in d["shape"])
            for d in interpreter.get_input_details()
        }

    def run(
        self, feeds: dict[int, np.ndarray], outputs: list[int]
    ) -> tuple[list[np.ndarray], float]:
        """Set the inputs (resizing only when a shape changed), invoke, read the outputs.

        Returns the outputs (copies) and the time spent in ``invoke()`` in milliseconds.
        """
        interpreter = self.interpreter
        changed = [i for i, a in feeds.items() if a.shape != self._shapes[i]]
        if changed:
            for index in changed:
                interpreter.resize_tensor_input(index, list(feeds[index].shape), strict=True)
            interpreter.allocate_tensors()
            for index in changed:
                self._shapes[index] = feeds[index].shape
        for index, array in feeds.items():
            interpreter.set_tensor(index, array)
        started = time.perf_counter()
        interpreter.invoke()
        invoke_ms = (time.perf_counter() - started) * 1000
        return [interpreter.get_tensor(i) for i in outputs], invoke_ms


class InterpreterPool:
    """Up to ``size`` slots created lazily by ``factory``; borrow one with :meth:`slot`."""

    def __init__(self, factory: Callable[[], Any], size: int, first: Any | None = None) -> None:
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
