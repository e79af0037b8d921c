"""Latency: warm requests over HTTP on loopback, and predict in-process against bare invoke.

Every loop has a fixed count; every HTTP request has a timeout. Times are wall-clock
``perf_counter`` milliseconds; summaries are medians (p50) and the 99th percentile.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

REQUEST_TIMEOUT_S = 60.0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear interpolation."""
    return float(np.percentile(np.asarray(values), q))


class NotOk(RuntimeError):
    """A request answered with another status than 200 (``status``)."""

    def __init__(self, path: str, status: int, payload: bytes) -> None:
        super().__init__(f"POST {path} answered {status}: {payload[:300]!r}")
        self.status = status


class Client:
    """One keep-alive HTTP connection to ``127.0.0.1:port`` (like one busy caller)."""

    def __init__(self, port: int, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> float:
        """POST ``body`` (JSON unless ``headers`` say otherwise); the milliseconds until the
        whole answer was read. Non-200 raises :class:`NotOk`.

        A keep-alive connection the server closed while it was idle (gunicorn closes those
        after its keep-alive timeout, as a busy server queues 16 clients) is reopened and the
        request sent again once, as HTTP clients do; the time counts from the first try.
        """
        started = time.perf_counter()
        try:
            response = self._send(path, body, headers)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self._connection.close()
            response = self._send(path, body, headers)
        payload = response.read()
        ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise NotOk(path, response.status, payload)
        return ms

    def _send(
        self, path: str, body: bytes, headers: dict[str, str] | None
    ) -> http.client.HTTPResponse:
        self._connection.request(
            "POST", path, body, headers or {"Content-Type": "application/json"}
        )
        return self._connection.getresponse()

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class Latency:
    """Summary of one series of requests."""

    count: int
    p50_ms: float
    p99_ms: float


def summarize(samples: list[float]) -> Latency:
    """Count, median and 99th percentile."""
    return Latency(len(samples), statistics.median(samples), percentile(samples, 99))


def http_latency(port: int, path: str, body: bytes, count: int, warmup: int) -> Latency:
    """``warmup`` unrecorded requests, then ``count`` timed ones, one at a time."""
    client = Client(port)
    try:
        for _ in range(warmup):
            client.post(path, body)
        return summarize([client.post(path, body) for _ in range(count)])
    finally:
        client.close()


def alternating(
    a: Callable[[], None], b: Callable[[], None], count: int, block: int = 10
) -> tuple[float, float]:
    """Median milliseconds of ``a`` and of ``b``, ``count`` calls each, in alternating blocks
    of ``block`` calls (after one unrecorded call each). Blocks keep each one's steady
    state (as a server calls the same thing again and again) while drifting machine load
    still affects both alike."""
    a()
    b()
    times: tuple[list[float], list[float]] = ([], [])
    for start in range(0, count, block):
        for f, series in ((a, times[0]), (b, times[1])):
            for _ in range(min(block, count - start)):
                started = time.perf_counter()
                f()
                series.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def median_ms(call: Callable[[], object], count: int) -> float:
    """Median milliseconds of ``count`` calls of ``call``, after one unrecorded call."""
    call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass(frozen=True)
class Overhead:
    """Median predict through ``serving.model.Model`` against the bare ``invoke()``, and
    what a new interpreter costs (what loading the model in every request pays)."""

    predict_ms: float
    invoke_ms: float
    load_ms: float

    @property
    def ratio(self) -> float:
        return self.predict_ms / self.invoke_ms


def bare_interpreter(model_path: str, x: np.ndarray) -> Any:
    """An interpreter of the serving backend (one thread) with ``x`` already set as its
    input (quantized for an int8 input): ``invoke()`` is all that is left to time."""
    from serving.model.backend import select_backend

    interpreter = select_backend().make_interpreter(str(model_path), num_threads=1)
    (detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], list(x.shape))
    interpreter.allocate_tensors()
    scale, zero_point = detail["quantization"]
    feed = np.round(x / scale + zero_point) if scale else x
    interpreter.set_tensor(detail["index"], feed.astype(detail["dtype"]))
    return interpreter


def predict_vs_invoke(model_path: str, x: np.ndarray, count: int) -> Overhead:
    """``Model.predict`` (validate, quantize, invoke, dequantize) and a bare interpreter's
    ``invoke()`` on the same input, one interpreter thread each, as the function runs."""
    from serving.model import Model

    with Model.load(model_path, pool_size=1, num_threads=1) as model:
        (spec,) = model.inputs
        bare = bare_interpreter(model_path, x)
        predict_ms, invoke_ms = alternating(
            lambda: model.predict({spec.name: x}), bare.invoke, count
        )
    loads = []
    for _ in range(count):
        started = time.perf_counter()
        bare_interpreter(model_path, x)
        loads.append((time.perf_counter() - started) * 1000)
    return Overhead(predict_ms, invoke_ms, statistics.median(loads))
