"""Counts of scored elements in this process, and the progress line a terminal shows.

The counts are per process: a DirectRunner running its workers as threads of the launching
process (the default, see :mod:`batch.cli`) updates the very counters the line reads.
Beam's own metrics give the final counts (they also cover worker processes).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Counts:
    """Predicted and error counts, updated from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.predicted = 0
        self.errors = 0

    def add(self, predicted: int, errors: int) -> None:
        with self._lock:
            self.predicted += predicted
            self.errors += errors

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.predicted, self.errors


COUNTS = Counts()


class ProgressLine:
    """Rewrites one terminal line every ``interval`` seconds until stopped (a context)."""

    def __init__(self, counts: Counts, stream: TextIO = sys.stderr, interval: float = 1.0):
        self.counts = counts
        self.stream = stream
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch-progress", daemon=True)
        self._started = 0.0
        self._base = (0, 0)

    def __enter__(self) -> ProgressLine:
        self._started = time.perf_counter()
        self._base = self.counts.snapshot()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.stream.write("\r\x1b[K")  # clear the line: the summary follows
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            predicted, errors = self.counts.snapshot()
            predicted -= self._base[0]
            errors -= self._base[1]
            seconds = time.perf_counter() - self._started
            rate = (predicted + errors) / seconds if seconds > 0 else 0.0
            self.stream.write(
                f"\r\x1b[Kbatch: {predicted} predicted, {errors} errors, "
                f"{seconds:.0f} s, {rate:.0f} instances/s"
            )
            self.stream.flush()
