"""Throughput: a fixed number of requests from N concurrent keep-alive clients.

Each client is a thread with its own connection, taking requests from a shared budget
until it is spent, so the total count is fixed whatever the concurrency. The clients wait
on a barrier and the clock runs from its release to the last answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

from bench.latency import Client


@dataclass(frozen=True)
class Throughput:
    """Requests per second at one level of concurrency."""

    clients: int
    requests: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def run(port: int, path: str, body: bytes, clients: int, requests: int) -> Throughput:
    """Send ``requests`` predict requests from ``clients`` concurrent clients."""
    budget = iter(range(requests))
    budget_lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client_loop() -> None:
        client = Client(port)
        try:
            client.post(path, body)  # connect and warm this connection, untimed
            barrier.wait()
            while True:
                with budget_lock:
                    if next(budget, None) is None:
                        return
                client.post(path, body)
        except threading.BrokenBarrierError:
            pass  # another client failed; its error is reported
        except BaseException as e:  # reported to the caller below
            errors.append(e)
            barrier.abort()
        finally:
            client.close()

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
    return Throughput(clients, requests, seconds)
