"""Memory of a server's whole process tree: proportional set size (PSS), now and at peak.

PSS charges each shared page to the processes sharing it in equal parts, so the sum over
a gunicorn arbiter and its worker counts shared libraries once, unlike RSS. The peak is
the largest sum seen by a sampler thread reading ``/proc/<pid>/smaps_rollup`` (through
psutil) every ``interval`` seconds while the server starts and serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psutil

MIB = 1024 * 1024


def tree_pss(pid: int) -> int:
    """PSS in bytes of ``pid`` and all its descendants (processes gone meanwhile count 0)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


class PeakSampler:
    """Samples a process tree's memory (``measure``, by default :func:`tree_pss`) in the
    background; ``peak`` is the largest.

    Use as a context manager around the phase to watch; the process to watch may be set
    after the sampler started (``watch``), as it is spawned inside the phase.
    """

    def __init__(self, interval: float = 0.05, measure: Callable[[int], int] = tree_pss) -> None:
        self.interval = interval
        self.measure = measure  # bytes of a process tree, by its root's pid
        self.peak = 0
        self.samples = 0
        self._pid: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        """Start counting ``pid``'s tree."""
        self._pid = pid

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._pid is not None:
                self.peak = max(self.peak, self.measure(self._pid))
                self.samples += 1

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
