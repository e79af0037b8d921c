"""serving.memory and serving.estimate: what an instance holds, and deploy.sh's --memory check."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from serving.admission import BodyForm, cost
from serving.memory import (
    INSTANCE_BASE_BYTES,
    MIB,
    MIN_REQUEST_BUDGET,
    SHARED_WEIGHTS_MIN_BYTES,
    WORKER_BASE_BYTES,
    ModelFootprint,
    RepositoryShares,
    anonymous_bytes,
    estimate,
    release_free_heap,
    repository_shares,
    suggested_memory,
)
from tests.conftest import REPO


def test_anonymous_memory_of_this_process_grows_with_what_it_allocates():
    before = anonymous_bytes()
    block = bytearray(64 * MIB)  # zero-filled: every page touched
    after = anonymous_bytes()
    assert 60 * MIB < after - before < 80 * MIB
    del block
    assert anonymous_bytes(os.getpid()) > 0
    assert anonymous_bytes(2**22 + 12345) == 0  # no such process: nothing, not an error


def test_a_footprint_counts_shared_files_once_and_engines_per_worker():
    footprint = ModelFootprint(engine_bytes=10, engines_per_process=4, shared_bytes=1000)
    assert footprint.per_process_bytes == 40
    assert footprint.instance_bytes(workers=2) == 1080
    assert footprint.as_log(2) == {
        "engine_bytes": 10,
        "engines_per_process": 4,
        "shared_bytes": 1000,
        "instance_bytes": 1080,
    }


def test_the_estimate_has_one_copy_of_big_weights_and_a_copy_per_interpreter_of_small_ones():
    big = estimate(128 * MIB, workers=2, pool_per_worker=2, max_request_bytes=MIB, downloaded=True)
    assert big.weights_bytes == 128 * MIB  # shared, whatever the workers and the pool
    assert big.download_bytes == 128 * MIB
    assert big.runtime_bytes == INSTANCE_BASE_BYTES + 2 * WORKER_BASE_BYTES
    assert big.request_bytes == cost(BodyForm.JSON, MIB)
    small = SHARED_WEIGHTS_MIN_BYTES - 1
    local = estimate(small, workers=2, pool_per_worker=2, max_request_bytes=MIB, downloaded=False)
    assert (local.weights_bytes, local.download_bytes) == (small * 4, 0)
    assert big.describe() == (
        "about 336 MiB (60 MiB runtime, 128 MiB weights, 128 MiB downloaded model, "
        "20 MiB for one JSON request at the body limit)"
    )


@pytest.mark.parametrize(
    ("total", "suggested"),
    [(100 * MIB, "128Mi"), (300 * MIB, "512Mi"), (950 * MIB, "2Gi"), (5000 * MIB, "8Gi")],
)
def test_the_suggestion_is_the_next_usual_size_with_headroom(total, suggested):
    assert suggested_memory(total) == suggested


def run_estimate(*args: str) -> subprocess.CompletedProcess[str]:
    # -S: no site-packages at all, as on a deployer's machine without the runtime.
    return subprocess.run(
        [sys.executable, "-S", "-m", "serving.estimate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_estimate_command_needs_only_the_standard_library():
    result = run_estimate(
        f"--model-bytes={128 * MIB}", f"--memory={2**30}", "--workers=1", "--pool-per-worker=4"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "about 374 MiB (46 MiB runtime, 128 MiB weights, 200 MiB for one JSON request at the "
        "body limit) of 1024 MiB\n"
    )


def test_the_estimate_command_refuses_what_does_not_fit_with_a_size_that_does():
    result = run_estimate(
        f"--model-bytes={900 * MIB}",
        f"--memory={2**30}",
        "--workers=2",
        "--pool-per-worker=1",
        "--downloaded",
    )
    assert result.returncode == 3
    assert result.stdout == (
        "1024 MiB cannot hold the model plus one request at the body limit: about 2060 MiB "
        "(60 MiB runtime, 900 MiB weights, 900 MiB downloaded model, 200 MiB for one JSON "
        "request at the body limit); use --memory 4Gi or more, or a smaller body limit "
        "(--env MAX_REQUEST_BYTES=...)\n"
    )


def test_the_estimate_command_takes_the_body_limit():
    result = run_estimate(
        f"--model-bytes={MIB}", "--memory=100000000", "--workers=1", "--pool-per-worker=1",
        "--max-request-bytes=1000000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "19 MiB for one JSON request at the body limit" in result.stdout


def test_the_estimate_command_refuses_bad_arguments():
    result = run_estimate("--model-bytes=many", "--memory=1")
    assert result.returncode == 2
    assert "--model-bytes: invalid int value: 'many'" in result.stderr


def test_free_heap_pages_go_back_to_the_system():
    blocks = [bytearray(100_000) for _ in range(1000)]  # 100 MB in the heap, not mmapped
    del blocks[:-1]  # freed, but glibc keeps the pages below the last block
    before = anonymous_bytes()
    release_free_heap()
    assert anonymous_bytes() < before - 50 * MIB


def test_a_repository_worker_has_a_request_budget_and_models_what_the_rest_leaves():
    request = cost(BodyForm.JSON, 1 * MIB)
    limit = INSTANCE_BASE_BYTES + WORKER_BASE_BYTES + request + 100 * MIB
    assert repository_shares(limit, 1, 1 * MIB) == RepositoryShares(100 * MIB, request)
    # Two workers split the one request's room and the models' room.
    two = INSTANCE_BASE_BYTES + 2 * WORKER_BASE_BYTES + request + 100 * MIB
    assert repository_shares(two, 2, 1 * MIB) == RepositoryShares(50 * MIB, request // 2)
    # REQUEST_MEMORY_BUDGET_BYTES is per worker, set aside for each.
    given = INSTANCE_BASE_BYTES + 2 * WORKER_BASE_BYTES + 2 * 3 * MIB + 100 * MIB
    assert repository_shares(given, 2, 1 * MIB, 3 * MIB) == RepositoryShares(50 * MIB, 3 * MIB)
    # A tiny body limit still leaves each worker the smallest budget.
    assert repository_shares(limit, 1, 1).requests == MIN_REQUEST_BUDGET
    assert repository_shares(0, 1, 1 * MIB) == RepositoryShares(None, 0)  # memory unknown: no limit
    assert repository_shares(10 * MIB, 1, 1 * MIB).models == 0  # nothing fits, never negative


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("limit_mib", [128, 512, 2048])
def test_a_repository_instance_never_holds_more_than_its_memory(workers, limit_mib):
    """The runtime, every worker's models and every worker's requests, all at their most."""
    limit = limit_mib * MIB
    shares = repository_shares(limit, workers, 2 * MIB)
    whole = INSTANCE_BASE_BYTES + workers * (WORKER_BASE_BYTES + shares.models + shares.requests)
    assert shares.models > 0
    assert limit - workers < whole <= limit  # at most one byte per worker lost to rounding


def test_the_estimate_of_a_repository_needs_only_the_standard_library(tmp_path):
    """deploy.sh checks a local repository with the function's listing on a bare python3."""
    version = tmp_path / "digits" / "3" / "model.tflite"
    version.parent.mkdir(parents=True)
    version.write_bytes(b"m" * 2 * MIB)
    result = run_estimate(
        f"--repository={tmp_path}", f"--memory={1024 * MIB}", "--workers=1", "--pool-per-worker=1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the largest version (digits/3, 2.0 MiB): about ")
