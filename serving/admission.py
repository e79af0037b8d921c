"""The process's memory budget for requests in flight, and what each wire form costs.

Cloud Run kills an instance that exceeds its memory, with every request in flight. A
request is admitted only when its estimated cost fits the budget next to the requests
already running; otherwise it waits (at most ``ADMISSION_TIMEOUT_SECONDS``), then gets
503 with ``Retry-After``. One that could never fit is refused with 413 at once.

The costs per body byte are measured (``bench.reliability.cost_per_byte``;
docs/reliability.md): peak Python allocations while a body is decoded and run, divided by its
size, rounded up.
"""

from __future__ import annotations

import enum
import math
import threading
import time

from serving.errors import PayloadTooLarge, ServiceUnavailable


class BodyForm(enum.Enum):
    """How a body is decoded, which decides its memory cost per byte."""

    JSON = "json"  # Python objects, then numpy: measured 15.8x (V2) to 18.6x (TF rows), +1x body
    BINARY = "binary"  # V2 binary tensors: decoded in place (measured 0.01x), +1x the body


COST_PER_BYTE: dict[BodyForm, int] = {BodyForm.JSON: 20, BodyForm.BINARY: 2}


def cost(form: BodyForm, body_bytes: int) -> int:
    """Estimated peak bytes a body of ``body_bytes`` costs while it is decoded and run."""
    return COST_PER_BYTE[form] * body_bytes


class MemoryBudget:
    """Bytes admitted at once, shared by every thread of the process (0: unlimited)."""

    def __init__(self, capacity: int, timeout: float) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self._used = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        """Bytes admitted now."""
        return self._used

    def resize(self, capacity: int) -> None:
        """Change the budget (once the model's footprint is known); waiters re-check."""
        with self._cond:
            self.capacity = capacity
            self._cond.notify_all()

    def acquire(self, amount: int, *, what: str) -> int:
        """Wait until ``amount`` fits, then hold it; returns what to :meth:`release`.

        Raises :class:`PayloadTooLarge` when ``amount`` exceeds the whole budget and
        :class:`ServiceUnavailable` (with ``retry_after``) when it does not fit in time.
        """
        if not self.capacity:
            return 0
        if amount > self.capacity:
            raise PayloadTooLarge(
                f"{what} would need about {amount} bytes of memory to decode, more than this "
                f"process's request budget of {self.capacity} bytes "
                "(REQUEST_MEMORY_BUDGET_BYTES); send a smaller request or binary tensors"
            )
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while self._used + amount > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceUnavailable(
                        f"the server is busy: {what} needs about {amount} bytes of memory and "
                        f"{self._used} of {self.capacity} are in use; retry shortly",
                        retry_after=max(1, math.ceil(self.timeout / 2)),
                    )
                self._cond.wait(left)
            self._used += amount
        return amount

    def release(self, amount: int) -> None:
        """Give back what :meth:`acquire` returned."""
        if not amount:
            return
        with self._cond:
            self._used -= amount
            self._cond.notify_all()
