"""What an instance's memory holds, measured and estimated (standard library only).

Cloud Run kills an instance whose memory goes over its limit, with every request in
flight, and its temp dir is memory too. What counts is what the instance cannot reclaim:
the anonymous memory of every process (Python objects, request bodies, packed weights held
privately) plus the files the function wrote to its temp dir (a downloaded model, the
packed-weights file). File pages mapped from the deployed source, a bundled model
included, are page cache: reclaimable, not counted.

This module is the one owner of those rules:

- :func:`anonymous_bytes` measures a process (``Pss_Anon`` of ``/proc/PID/smaps_rollup``);
- :class:`ModelFootprint` is what one loaded model costs, as the model layer measured it;
- :func:`request_budget` is what a worker may admit for requests once the model is in;
- :func:`repository_shares` splits a worker's memory between a repository's models and
  its requests;
- :func:`estimate` is what ``deploy.sh`` checks ``--memory`` against before deploying
  (through :mod:`serving.estimate`, which like this module needs only the standard library).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from serving.admission import BodyForm, cost

MIB = 1 << 20
# Models at least this big are served by the compiled engine, whose one shared copy of the
# weights beats a copy per interpreter; below it, the copies cost less than the compiled
# runtime's own memory (+2 MB per process, measured) and start (+15-20 ms).
SHARED_WEIGHTS_MIN_BYTES = 1 * MIB
# Of what a worker has left once the model is in, the share its requests may take; the rest
# is the allocator's slack and the runtime's working memory (measured: bench, "memory").
BUDGET_FRACTION = 0.45
# The smallest request budget a worker is given, however little the model leaves.
MIN_REQUEST_BUDGET = 1 * MIB
# A function instance serving the bundled model, anonymous PSS of its process tree after
# 400 requests (functions-framework, Flask, numpy, LiteRT): 45.5 MiB with one gunicorn
# worker, 58.2 MiB with two. The arbiter and each worker share copy-on-write pages, hence
# a fixed part and a part per worker.
INSTANCE_BASE_BYTES = 32 * MIB
WORKER_BASE_BYTES = 14 * MIB


def anonymous_bytes(pid: int | str = "self") -> int:
    """Anonymous PSS of a process in bytes (0 when it cannot be read, e.g. not Linux)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss_Anon:"):
            return int(line.split()[1]) * 1024
    return 0


def release_free_heap() -> None:
    """Give the C allocator's free heap pages back to the system (glibc ``malloc_trim``).

    Packing a model's weights frees tens of megabytes that glibc keeps in its heap, where
    they still count against the instance's memory (measured: 8 MB of a 128 MB model's
    packing). A no-op where the C library has no ``malloc_trim``.
    """
    import ctypes  # only for models big enough to have packed weights

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


@dataclass(frozen=True)
class ModelFootprint:
    """What one loaded model costs, measured at load.

    ``engine_bytes``: anonymous memory the first engine added to its process;
    ``engines_per_process``: how many such engines a process may build (the pool size for
    interpreters, which each pack their own weights; 1 for the compiled engine);
    ``shared_bytes``: files written to the temp dir that the whole instance shares once
    (the packed weights, a downloaded model file).
    """

    engine_bytes: int
    engines_per_process: int
    shared_bytes: int

    @property
    def per_process_bytes(self) -> int:
        """The most one worker holds for this model."""
        return self.engine_bytes * self.engines_per_process

    def instance_bytes(self, workers: int) -> int:
        """The most the instance holds for this model with ``workers`` processes."""
        return self.shared_bytes + workers * self.per_process_bytes

    def as_log(self, workers: int) -> dict[str, int]:
        """The load log's ``footprint`` field."""
        return {
            "engine_bytes": self.engine_bytes,
            "engines_per_process": self.engines_per_process,
            "shared_bytes": self.shared_bytes,
            "instance_bytes": self.instance_bytes(workers),
        }


def request_budget(memory_limit: int, workers: int, footprint: ModelFootprint | None) -> int:
    """Bytes of request memory one worker admits at once (0: no budget, memory unknown).

    ``BUDGET_FRACTION`` of this worker's share of what the instance has left after the
    model (the whole memory before the model is loaded), at least ``MIN_REQUEST_BUDGET``.
    """
    if not memory_limit:
        return 0
    left = memory_limit - (footprint.instance_bytes(workers) if footprint else 0)
    return max(MIN_REQUEST_BUDGET, int(left * BUDGET_FRACTION) // workers)


@dataclass(frozen=True)
class RepositoryShares:
    """One worker's shares of the instance's memory when it serves a model repository.

    ``models``: bytes its loaded versions may hold (None: memory unknown, no limit);
    ``requests``: bytes of request memory it admits at once (0: no budget).
    """

    models: int | None
    requests: int


def repository_shares(
    memory_limit: int, workers: int, max_request_bytes: int, request_budget: int = 0
) -> RepositoryShares:
    """How a repository's models and its requests split the instance, fixed from the start.

    The request budget is set aside first: ``request_budget`` per worker when given
    (``REQUEST_MEMORY_BUDGET_BYTES``), else one JSON request at the body limit for the
    whole instance, split between the workers (at least ``MIN_REQUEST_BUDGET`` each). What
    the runtime and those budgets leave is split evenly between the workers for models:
    each worker loads its own versions, so the shares bound the sum whatever each one
    holds. Unlike single-model mode, the request budget does not grow back when models
    leave: a load never waits for requests, nor a request for a load.
    """
    if not memory_limit:
        return RepositoryShares(None, request_budget)
    requests = request_budget or max(
        MIN_REQUEST_BUDGET, cost(BodyForm.JSON, max_request_bytes) // workers
    )
    left = memory_limit - INSTANCE_BASE_BYTES - workers * (WORKER_BASE_BYTES + requests)
    return RepositoryShares(max(0, left // workers), requests)


@dataclass(frozen=True)
class Estimate:
    """What an instance will hold, before it is deployed (see :func:`estimate`)."""

    runtime_bytes: int
    weights_bytes: int
    download_bytes: int
    request_bytes: int

    @property
    def total(self) -> int:
        return self.runtime_bytes + self.weights_bytes + self.download_bytes + self.request_bytes

    def describe(self) -> str:
        parts = [
            f"{mib(self.runtime_bytes)} runtime",
            f"{mib(self.weights_bytes)} weights",
        ]
        if self.download_bytes:
            parts.append(f"{mib(self.download_bytes)} downloaded model")
        parts.append(f"{mib(self.request_bytes)} for one JSON request at the body limit")
        return f"about {mib(self.total)} ({', '.join(parts)})"


def estimate(
    model_bytes: int,
    *,
    workers: int,
    pool_per_worker: int,
    max_request_bytes: int,
    downloaded: bool,
) -> Estimate:
    """An instance's memory for a model of ``model_bytes``: runtime, weights, one request.

    Weights: one shared copy (compiled engine) from :data:`SHARED_WEIGHTS_MIN_BYTES` on,
    else a copy per interpreter of every worker. A model read from Cloud Storage is also
    in the temp dir. The request is the costliest one the body limit admits: JSON.
    """
    shared = model_bytes >= SHARED_WEIGHTS_MIN_BYTES
    weights = model_bytes if shared else model_bytes * pool_per_worker * workers
    return Estimate(
        runtime_bytes=INSTANCE_BASE_BYTES + WORKER_BASE_BYTES * workers,
        weights_bytes=weights,
        download_bytes=model_bytes if downloaded else 0,
        request_bytes=cost(BodyForm.JSON, max_request_bytes),
    )


# Cloud Run's usual memory sizes, the ones a suggestion rounds up to.
_SIZES_MIB = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def suggested_memory(total: int) -> str:
    """The smallest usual Cloud Run ``--memory`` above ``total`` bytes (with 10% headroom)."""
    wanted = total * 1.1 / MIB
    for size in _SIZES_MIB:
        if size >= wanted:
            return f"{size // 1024}Gi" if size >= 1024 else f"{size}Mi"
    return f"{_SIZES_MIB[-1] // 1024}Gi"


def mib(n: int) -> str:
    """Bytes in MiB for messages: whole above 10 MiB, else one decimal."""
    return f"{n / MIB:.0f} MiB" if n >= 10 * MIB else f"{n / MIB:.1f} MiB"
