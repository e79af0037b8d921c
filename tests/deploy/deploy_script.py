"""Run deploy.sh and read its --dry-run output back into argument vectors."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.deploy import fake_gcloud
from tests.deploy.offline_gcloud import run_offline

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy.sh"
PROJECT = "demo-project-1"
WARMUP_SA = "warmup@demo-project-1.iam.gserviceaccount.com"
URL_REFERENCE = "${FUNCTION_URL}"
STAGE_REFERENCE = "${STAGED_SOURCE}"
# The smallest file deploy.sh takes for a TFLite model: a root offset, then the identifier.
TFLITE_HEADER = b"\x1c\x00\x00\x00TFL3"
BASH = shutil.which("bash") or "/bin/bash"


def run_deploy(
    *args: str, env: Mapping[str, str] | None = None, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``bash deploy.sh ARGS`` with a clean, offline environment (``env`` added on top).

    ``path`` replaces PATH (e.g. a fake gcloud first, or no gcloud at all).
    """
    extra = dict(env or {})
    if path is not None:
        extra["PATH"] = path
    return run_offline([BASH, str(DEPLOY), *args], cwd=REPO, env=extra)


def deploy_with(fake_dir: Path, *args: str, env: Mapping[str, str] | None = None):
    """``deploy.sh ARGS`` for real, with the gcloud in ``fake_dir`` first on PATH."""
    return run_deploy(*args, env=env, path=f"{fake_dir}{os.pathsep}{os.environ['PATH']}")


def dry_run(*args: str, env: Mapping[str, str] | None = None) -> list[list[str]]:
    """The gcloud commands ``deploy.sh --dry-run ARGS`` prints, each as an argv list.

    The shell around them (``FUNCTION_URL=$(...)``, the scheduler ``if``/``else``) is peeled
    off, so callers compare plain argument vectors; the URL stays ``${FUNCTION_URL}``.
    """
    result = run_deploy("--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    return parse_commands(result.stdout)


def run_pasted(
    script: str, directory: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run dry-run output as a script (``bash -euo pipefail``) with the fake gcloud first on
    PATH; returns the result and the fake's directory (its call log, a kept source)."""
    fake_dir = directory / "bin"
    fake_gcloud.install(fake_dir)
    (directory / "dry_run.sh").write_text(script)
    full_env = {**os.environ, "PATH": f"{fake_dir}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    result = subprocess.run(
        [BASH, "-euo", "pipefail", str(directory / "dry_run.sh")],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result, fake_dir


def parse_commands(script: str) -> list[list[str]]:
    """Argument vectors of the gcloud commands in dry-run output (staging lines skipped)."""
    commands = []
    for raw in script.splitlines():
        line = raw.strip()
        if line in ("else", "fi") or line in staging_lines(script):
            continue
        if line.startswith("FUNCTION_URL=$(") and line.endswith(")"):
            line = line[len("FUNCTION_URL=$(") : -1]
        if line.startswith("if ") and line.endswith(" >/dev/null 2>&1; then"):
            line = line[len("if ") : -len(" >/dev/null 2>&1; then")]
        argv = shlex.split(line)
        assert argv[0] == "gcloud", f"not a gcloud command: {raw!r}"
        commands.append(argv)
    return commands


def staging_lines(script: str) -> list[str]:
    """The shell lines of dry-run output that stage a local model's source folder."""
    starts = ("STAGED_SOURCE=$(mktemp -d)", "cp ", "mkdir ", "printf ")
    return [line for line in script.splitlines() if line.startswith(starts)]


_UNITS = {"k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def memory_bytes(size: str) -> int:
    """``512Mi`` as bytes, as Cloud Run reads the --memory units."""
    number = int("".join(c for c in size if c.isdigit()))
    return number * _UNITS[size.lstrip("0123456789")]


def deploy_command(
    *,
    name: str = "tflite-predict",
    region: str = "us-central1",
    runtime: str = "python313",
    auth: str = "--no-allow-unauthenticated",
    memory: str = "1Gi",
    cpu: str = "1",
    concurrency: int = 4,
    min_instances: int = 0,
    max_instances: int = 10,
    timeout: str = "60s",
    env_vars: Sequence[str] = (),
    pool_size: int = 4,
    threads: int = 1,
    workers: int | None = None,
    model_name: str = "model",
    model_version: str = "1",
    extra: Sequence[str] = (),
    source: str | None = None,
    repository: str | None = None,
) -> list[str]:
    """The ``gcloud functions deploy`` argv deploy.sh should build, defaults unless given.

    ``workers`` defaults to the whole vCPUs in ``cpu`` (at least 1); concurrency and pool
    size are per instance and split among the workers, rounded up. ``repository`` replaces
    the single model's name and version with ``MODEL_REPOSITORY``.
    """
    if workers is None:
        workers = max(1, int(float(cpu.removesuffix("m")) / (1000 if cpu.endswith("m") else 1)))
    named = [f"MODEL_NAME={model_name}", f"MODEL_VERSION={model_version}"]
    variables = [
        *([f"MODEL_REPOSITORY={repository}"] if repository else named),
        f"INTERPRETER_POOL_SIZE={math.ceil(pool_size / workers)}",
        f"INTERPRETER_THREADS={threads}",
        f"WORKERS={workers}",
        f"THREADS={math.ceil(concurrency / workers)}",
        f"MEMORY_LIMIT_BYTES={memory_bytes(memory)}",
        f"GOOGLE_CLOUD_PROJECT={PROJECT}",
        *env_vars,
    ]
    return [
        "gcloud",
        "functions",
        "deploy",
        name,
        "--gen2",
        f"--project={PROJECT}",
        f"--region={region}",
        f"--runtime={runtime}",
        f"--source={source or REPO}",
        "--entry-point=predict",
        "--trigger-http",
        auth,
        f"--memory={memory}",
        f"--cpu={cpu}",
        f"--concurrency={concurrency}",
        f"--min-instances={min_instances}",
        f"--max-instances={max_instances}",
        f"--timeout={timeout}",
        "--set-env-vars=" + ",".join(variables),
        *extra,
    ]


def upload_command(model: Path, uri: str) -> list[str]:
    """The ``gcloud storage cp`` argv that copies ``model`` to ``uri`` before the deploy."""
    return ["gcloud", "storage", "cp", str(model), uri, f"--project={PROJECT}"]


def boost_command(
    name: str = "tflite-predict", region: str = "us-central1", *, on: bool = True
) -> list[str]:
    """The ``gcloud run services update`` argv that sets the service's startup CPU boost."""
    return [
        "gcloud",
        "run",
        "services",
        "update",
        name,
        f"--project={PROJECT}",
        f"--region={region}",
        "--cpu-boost" if on else "--no-cpu-boost",
    ]


def describe_command(name: str = "tflite-predict", region: str = "us-central1") -> list[str]:
    """The ``gcloud functions describe`` argv that reads the deployed URL."""
    return [
        "gcloud",
        "functions",
        "describe",
        name,
        f"--project={PROJECT}",
        f"--region={region}",
        "--format=value(serviceConfig.uri)",
    ]


def quoted(argv: Sequence[str]) -> str:
    """``argv`` as one shell line (for messages)."""
    return shlex.join(argv)
