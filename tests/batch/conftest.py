"""Running ``python -m batch`` (in-process or as a command) and reading what it wrote.

These tests run in the batch environment (``make pytest-batch``: Apache Beam, no
TensorFlow; fixture models come from ``MODEL_BUILDER_PYTHON``). Google credentials are
kept out of reach: no gcloud configuration, and google-auth's metadata-server address is
a closed loopback port, so a credentials lookup never leaves this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.server import free_port

SKIP_WITHOUT_BEAM = "the batch tests run in .venv-batch (make pytest-batch), which has Beam"

try:
    import apache_beam  # noqa: F401
except ImportError:  # another environment: the test modules skip themselves
    pass
else:  # before google-auth is imported (it reads these at import time)
    _CLOSED = f"127.0.0.1:{free_port()}"
    os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = _CLOSED
    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)


@pytest.fixture(autouse=True)
def _no_gcloud(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path_factory.mktemp("no-gcloud")))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))


@dataclass
class Run:
    """What one run of the command did: exit code, output lines, and its results."""

    code: int
    stdout: str
    stderr: str
    output: Path | None = None

    @property
    def summary(self) -> str:
        return self.stdout.strip().splitlines()[-1] if self.stdout.strip() else ""

    def lines(self, name: str) -> list[dict[str, Any]]:
        """Every line of every ``<name>-SSSSS-of-NNNNN.jsonl`` shard, parsed."""
        assert self.output is not None
        shards = sorted(self.output.glob(f"{name}-*-of-*.jsonl"))
        assert shards, f"no {name} shard in {self.output}: {os.listdir(self.output)}"
        return [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]


def run_cli(*args: str, output: Path | None = None, **env: str) -> Run:
    """``python -m batch ARGS`` in a new process (the real command, its exit code)."""
    result = subprocess.run(
        [sys.executable, "-m", "batch", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(result.returncode, result.stdout, result.stderr, output)


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str, output: Path | None = None):
    """``batch.cli.main(ARGS)`` in this process (Beam's DirectRunner runs here too)."""
    from batch import cli

    code = cli.main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err, output)


def scored(
    capsys: pytest.CaptureFixture[str], model: Path, pattern: str | Path, out: Path, *extra: str
):
    """``batch.cli.main`` on ``model``, ``pattern`` and ``out``: the run, which must succeed."""
    run = run_in_process(
        capsys,
        "--model",
        str(model),
        "--input",
        str(pattern),
        "--output",
        str(out),
        *extra,
        output=out,
    )
    assert run.code == 0, run.stderr
    return run


def write_jsonl(path: Path, lines: list[Any | bytes]) -> Path:
    """One JSON value per line (bytes are written as given, for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else json.dumps(line).encode())
            f.write(b"\n")
    return path


def by_instance(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Output lines keyed by their instance (as canonical JSON text)."""
    return {json.dumps(line["instance"], sort_keys=True): line for line in lines}
