"""deploy.sh --dry-run says what would go live before the commands: the model (where from,
size, sha256), the upload (files, bytes), the memory estimate, what bills while idle."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.deploy.deploy_script import PROJECT, REPO, TFLITE_HEADER, WARMUP_SA, run_deploy

BUNDLED = REPO / "model" / "quantized_model.tflite"
BUCKET_MODEL = "gs://demo-models/digits/model.tflite"
HEADER_KEYS = ("model", "upload", "memory", "billed while idle")


def header(*args: str) -> dict[str, str]:
    """The dry run's ``# key: value`` lines before the commands, by key (checked in order)."""
    result = run_deploy("--dry-run", "--project", PROJECT, *args)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    start = lines.index("# deploy.sh --dry-run: nothing was run. What would go live:")
    assert lines[start + 1 + len(HEADER_KEYS)] == "# Commands, in order:"
    found = dict(line.removeprefix("# ").split(": ", 1) for line in lines[start + 1 : -1])
    assert tuple(found) == HEADER_KEYS
    return found


def digest(path: Path) -> str:
    return f"{path.stat().st_size} bytes, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}"


def test_the_bundled_model_in_the_upload() -> None:
    found = header()
    assert found["model"] == (
        f"{BUNDLED} (the bundled example), shipped in the upload; {digest(BUNDLED)}"
    )
    assert found["upload"].endswith(f" bytes before compression, from {REPO}")
    assert found["billed while idle"] == (
        "nothing: --min-instances 0 (scales to zero) and no warm-up job"
    )


def test_a_local_model_in_the_upload(tmp_path: Path) -> None:
    model = tmp_path / "mine.tflite"
    model.write_bytes(TFLITE_HEADER + b"weights" * 100)
    found = header("--model", str(model))
    assert found["model"] == (
        f"{model}, shipped in the upload as model/mine.tflite; 708 bytes, sha256 "
        f"{hashlib.sha256(model.read_bytes()).hexdigest()}"
    )
    assert found["upload"].endswith(
        f" bytes before compression, from a temporary copy of {REPO} with the model"
    )
    # The same runtime files, with this model in place of the bundled one.
    bundled_count, bundled_bytes = counts(header()["upload"])
    count, size = counts(found["upload"])
    assert (count, size) == (bundled_count, bundled_bytes - BUNDLED.stat().st_size + 708)


def counts(upload: str) -> tuple[int, int]:
    """(files, bytes) of an upload line."""
    files, _, size, *_ = upload.split(" ")
    return int(files), int(size)


def test_a_model_uploaded_to_cloud_storage(tmp_path: Path) -> None:
    model = tmp_path / "mine.tflite"
    model.write_bytes(TFLITE_HEADER)
    found = header("--model", str(model), "--upload", BUCKET_MODEL)
    assert found["model"] == (
        f"{BUCKET_MODEL}, copied there first from {model}; 8 bytes, sha256 "
        f"{hashlib.sha256(TFLITE_HEADER).hexdigest()}"
    )
    # The model is not in the function's upload.
    assert counts(found["upload"])[0] == counts(header()["upload"])[0] - 1


def test_a_model_only_in_cloud_storage() -> None:
    found = header("--model", BUCKET_MODEL)
    assert found["model"] == (
        f"{BUCKET_MODEL}, downloaded by the function when it starts (not uploaded from here: "
        "size and sha256 not checked)"
    )


def test_a_repository() -> None:
    found = header("--repository", "gs://demo-models/repo")
    assert found["model"] == (
        "the repository gs://demo-models/repo, listed by the function when it starts "
        "(not uploaded from here)"
    )


@pytest.mark.parametrize(
    ("args", "billed"),
    [
        (
            ("--min-instances", "1"),
            "--min-instances 1: 1 instance of 1 vCPU and 1Gi kept running at all times, at "
            "Cloud Run's idle rate",
        ),
        (
            ("--min-instances", "3", "--max-instances", "3", "--cpu", "2", "--memory", "2Gi"),
            "--min-instances 3: 3 instances of 2 vCPU and 2Gi kept running at all times, at "
            "Cloud Run's idle rate",
        ),
        (
            ("--warmup", "*/10 * * * *", "--warmup-service-account", WARMUP_SA),
            "--warmup: Cloud Scheduler job tflite-predict-warmup calls /v2/health/ready on "
            '"*/10 * * * *" (UTC), a job fee plus each call\'s instance time',
        ),
        (
            (
                "--min-instances",
                "1",
                "--warmup",
                "0 * * * *",
                "--warmup-service-account",
                WARMUP_SA,
            ),
            "--min-instances 1: 1 instance of 1 vCPU and 1Gi kept running at all times, at "
            "Cloud Run's idle rate; --warmup: Cloud Scheduler job tflite-predict-warmup calls "
            '/v2/health/ready on "0 * * * *" (UTC), a job fee plus each call\'s instance time',
        ),
    ],
    ids=["one min instance", "three", "warm-up", "both"],
)
def test_what_bills_while_idle(args: tuple[str, ...], billed: str) -> None:
    assert header(*args)["billed while idle"] == billed
