"""A value made on first use by exactly one caller, kept, and made again after a failure.

The rule every lazily loaded model follows (the single model of :mod:`serving.runtime`,
each version of :mod:`serving.repository`): warm callers read the value without a lock;
concurrent first callers wait for the one attempt in progress; callers that queued behind
an attempt that failed get its error rather than piling another (possibly slow) attempt
onto a broken source; the next caller to arrive tries again, so a failure never sticks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from serving.errors import ServingError

T = TypeVar("T")


class Once(Generic[T]):
    """One lazily made value (thread-safe). ``make`` must raise :class:`ServingError`."""

    def __init__(self) -> None:
        self._value: T | None = None
        self.error: ServingError | None = None
        self.attempts = 0
        self.loading = False
        self._lock = threading.Lock()

    def peek(self) -> T | None:
        """The value if it has been made (and not reset), without waiting."""
        return self._value

    def get(self, make: Callable[[], T]) -> tuple[T, bool]:
        """The value, and whether this call made it (calling ``make`` if none exists)."""
        value = self._value
        if value is not None:  # the warm path: no lock
            return value, False
        seen = self.attempts
        with self._lock:
            if self._value is not None:
                return self._value, False
            if self.attempts != seen and self.error is not None:
                raise self.error
            self.loading = True
            try:
                value = make()
            except ServingError as e:
                self.error = e
                raise
            finally:
                self.attempts += 1
                self.loading = False
            self._value, self.error = value, None
            return value, True

    def reset(self) -> T | None:
        """Forget the value (the next :meth:`get` makes it again); returns what it was."""
        value, self._value = self._value, None
        return value
