"""A repository larger than the instance's memory, on the real server: round-robin requests
over four models that fit two at a time all answer 200, the unloads are logged, the
repository's bookkeeping stays within its share, and the server's measured memory stays
under MEMORY_LIMIT_BYTES throughout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import requests

from serving.admission import BodyForm, cost
from serving.memory import (
    INSTANCE_BASE_BYTES,
    MIB,
    WORKER_BASE_BYTES,
    anonymous_bytes,
    repository_shares,
)
from tests.server import Server, running_server
from tests.serving.http.conftest import make_repository

MAX_REQUEST = 1 * MIB
ROUNDS = 3
RNG = np.random.default_rng(5)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (functions-framework's gunicorn arbiter and workers)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (
                (task / "children").read_text().split() if (task / "children").exists() else []
            )
            queue.extend(int(c) for c in children)
    return found


def _instance_bytes(server: Server, temp: Path) -> int:
    """What Cloud Run counts: the processes' anonymous memory and the files they wrote to
    the temp dir (memory there; on this machine a disk, so added here)."""
    written = sum(f.stat().st_size for f in temp.rglob("*") if f.is_file())
    return sum(anonymous_bytes(pid) for pid in _tree(server.process.pid)) + written


def _lines(server: Server, message: str) -> list[dict]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == message]


def test_round_robin_over_more_models_than_fit_every_answer_200(repository_models, tmp_path):
    root = make_repository(
        tmp_path / "repository",
        {f"{name}/1": repository_models / f"mlp_{i}.tflite" for i, name in enumerate("abcd")},
    )
    size = (repository_models / "mlp_0.tflite").stat().st_size
    # One loaded version holds its packed weights (~1x its file) and its engine (measured
    # 0-4 MB): one or two fit, never four, so round-robin over four reloads every time.
    capacity = int(size * 2.5)
    # The limit that leaves one worker ``capacity`` for models, the rest as repository_shares
    # sets it aside: the runtime, one worker, one JSON request at the body limit.
    limit = capacity + INSTANCE_BASE_BYTES + WORKER_BASE_BYTES + cost(BodyForm.JSON, MAX_REQUEST)
    shares = repository_shares(limit, 1, MAX_REQUEST)
    assert shares.models == capacity
    body = {"instances": RNG.random((2, 512), dtype=np.float32).tolist()}
    peaks, latencies = [], []
    with running_server(
        MODEL_REPOSITORY=str(root),
        MEMORY_LIMIT_BYTES=str(limit),
        MAX_REQUEST_BYTES=str(MAX_REQUEST),
        INTERPRETER_POOL_SIZE="1",
        WEIGHT_CACHE_DIR=str(tmp_path / "temp" / "weights"),
        MODEL_CACHE_DIR=str(tmp_path / "temp" / "models"),
        timeout=60,
    ) as server:
        for name in "abcd" * ROUNDS:
            started = time.perf_counter()
            answer = requests.post(f"{server.url}/v1/models/{name}:predict", json=body, timeout=60)
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["predictions"][0]) == 8
            peaks.append(_instance_bytes(server, tmp_path / "temp"))
        loaded = _lines(server, "model version loaded")
        unloaded = _lines(server, "model version unloaded")
    assert len(loaded) == 4 * ROUNDS  # every request reloads its model
    assert len(unloaded) >= 4 * ROUNDS - 2  # at most two stay loaded at the end
    assert all(line["capacity_bytes"] == shares.models for line in loaded + unloaded)
    assert all(line["repository_held_bytes"] <= shares.models for line in loaded + unloaded)
    assert max(peaks) <= limit, (max(peaks), limit)
    print(
        f"\nround-robin over 4 x {size / MIB:.1f} MB models, {shares.models / MIB:.1f} MiB for "
        f"models, limit {limit / MIB:.0f} MiB: instance memory (anonymous + temp files) "
        f"{min(peaks) / MIB:.1f}-{max(peaks) / MIB:.1f} MiB; request with reload "
        f"p50 {np.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
