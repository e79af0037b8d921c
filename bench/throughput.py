"""Throughput: a fixed number of calls from N concurrent clients, over HTTP or in-process.

Each client is a thread (over HTTP: with its own keep-alive connection) taking calls from
a shared budget until it is spent, so the total count is fixed whatever the concurrency.
The clients make one untimed call each, wait on a barrier, and the clock runs from its
release to the last answer. Over HTTP the server's CPU time (whole process tree) is
recorded too: CPU per request against requests per second shows where a server is bound.
So is the CPU other processes used meanwhile (the machine's busy time minus the server's
and the benchmark's): on a shared machine, scaling can only be judged with it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psutil

from bench.latency import Client

# A client: (make one call, release the client).
Worker = tuple[Callable[[], object], Callable[[], None]]


@dataclass(frozen=True)
class Throughput:
    """Calls per second at one level of concurrency (and the server's CPU, if known)."""

    clients: int
    requests: int
    seconds: float
    server_cpu_s: float | None = None
    others_cores: float | None = None  # CPU used meanwhile by processes not under test

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float | None:
        return None if self.server_cpu_s is None else 1000 * self.server_cpu_s / self.requests


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (all cores)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _concurrently(make_worker: Callable[[], Worker], clients: int, requests: int) -> float:
    """Seconds for ``clients`` threads to make ``requests`` calls in all."""
    budget = iter(range(requests))
    budget_lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client_loop() -> None:
        call, close = make_worker()
        try:
            call()  # connect and warm this client, untimed
            barrier.wait()
            while True:
                with budget_lock:
                    if next(budget, None) is None:
                        return
                call()
        except threading.BrokenBarrierError:
            pass  # another client failed; its error is reported
        except BaseException as e:  # reported to the caller below
            errors.append(e)
            barrier.abort()
        finally:
            close()

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    # A client that failed before the start broke the barrier; its error is raised below.
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"throughput with {clients} clients failed: {errors[0]!r}")
    return seconds


def run(
    port: int,
    pid: int,
    path: str,
    body: bytes,
    clients: int,
    requests: int,
    headers: dict[str, str] | None = None,
) -> Throughput:
    """``requests`` predict requests from ``clients`` concurrent HTTP clients to the server
    ``pid`` listening on ``port``."""

    def worker() -> Worker:
        client = Client(port)
        return (lambda: client.post(path, body, headers)), client.close

    before = tree_cpu_seconds(pid), _own_seconds(), _busy_seconds()
    seconds = _concurrently(worker, clients, requests)
    server = tree_cpu_seconds(pid) - before[0]
    others = _busy_seconds() - before[2] - server - (_own_seconds() - before[1])
    return Throughput(clients, requests, seconds, server, max(0.0, others) / seconds)


def in_process(
    model_path: str, x: np.ndarray, pool_size: int, clients: int, requests: int
) -> Throughput:
    """``Model.predict`` from ``clients`` threads sharing one model with ``pool_size``
    interpreters: what the pool does on this machine with no HTTP and no JSON."""
    from serving.model import Model

    with Model.load(model_path, pool_size=pool_size, num_threads=1) as model:
        (spec,) = model.inputs
        before = _own_seconds(), _busy_seconds()
        seconds = _concurrently(
            lambda: ((lambda: model.predict({spec.name: x})), lambda: None), clients, requests
        )
        others = _busy_seconds() - before[1] - (_own_seconds() - before[0])
    return Throughput(clients, requests, seconds, others_cores=max(0.0, others) / seconds)
