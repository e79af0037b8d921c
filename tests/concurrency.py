"""Release several threads at the same instant, as concurrent first requests arrive."""

from __future__ import annotations

import threading
from collections.abc import Callable


def at_once(count: int, call: Callable[[], object]) -> list[object]:
    """Run ``call`` in ``count`` threads released together; results or raised errors."""
    barrier = threading.Barrier(count)
    outcomes: list[object] = []

    def worker() -> None:
        barrier.wait()
        try:
            outcomes.append(call())
        except Exception as e:
            outcomes.append(e)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes
