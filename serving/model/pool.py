"""A bounded pool of engine runners, so concurrent requests never share one.

Neither a TFLite interpreter nor a LiteRT compiled model is thread-safe. Each request
borrows a whole runner for the duration of its invokes. Runners are created on demand up
to ``size``: the cold request pays for exactly one, and a second is built only when two
requests actually overlap.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from serving.errors import ServingError

R = TypeVar("R")


class PoolClosed(ServingError):
    """The model was released (``Model.close``); nothing can run on it any more (503)."""

    status_code = 503


class Pool(Generic[R]):
    """Up to ``size`` runners created lazily by ``factory``; borrow one with :meth:`borrow`."""

    def __init__(self, factory: Callable[[], R], size: int, first: R | None = None) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[R] = [first] if first is not None else []
        self._created = len(self._idle)
        self._closed = False
        self._cond = threading.Condition()
        self.build_ms: list[float] = []  # how long each runner after the first took to build

    @property
    def size(self) -> int:
        """The most runners this pool holds at once."""
        return self._size

    @property
    def created(self) -> int:
        """How many runners exist now (idle or busy)."""
        return self._created

    @contextlib.contextmanager
    def borrow(self) -> Iterator[R]:
        """Borrow a runner, waiting while all ``size`` are busy.

        A runner whose use raised is discarded rather than returned: after a failed
        resize or invoke its state is unknown, and the next request must not inherit it.
        """
        runner = self._take()
        try:
            yield runner
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise
        with self._cond:
            if not self._closed:
                self._idle.append(runner)
            self._cond.notify()

    def _take(self) -> R:
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
        started = time.perf_counter()
        try:
            runner = self._factory()
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise
        self.build_ms.append((time.perf_counter() - started) * 1000)
        return runner

    def close(self) -> None:
        """Drop idle runners and refuse new borrowers; busy ones finish their work."""
        with self._cond:
            self._closed = True
            self._created -= len(self._idle)
            self._idle.clear()
            self._cond.notify_all()
