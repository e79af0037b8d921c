"""What the deploy uploads, as the real gcloud computes it from .gcloudignore."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.deploy import fake_gcloud
from tests.deploy.deploy_script import PROJECT, REPO, run_deploy
from tests.deploy.offline_gcloud import GCLOUD, NO_GCLOUD_REASON, run_offline
from tests.server import free_port, zeros_infer_body

pytestmark = pytest.mark.skipif(GCLOUD is None, reason=NO_GCLOUD_REASON)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
RUNTIME_FILES = {"main.py", "requirements.txt", "model/quantized_model.tflite"}


def files_for_upload(directory: Path) -> set[str]:
    """``gcloud meta list-files-for-upload DIRECTORY``, as relative POSIX paths."""
    result = run_offline([GCLOUD, "meta", "list-files-for-upload", str(directory)])
    assert result.returncode == 0, result.stderr
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def test_checkout_uploads_only_the_runtime() -> None:
    uploaded = files_for_upload(REPO)
    serving = {p.relative_to(REPO).as_posix() for p in (REPO / "serving").rglob("*.py")}
    assert serving, "serving package has no modules"
    assert uploaded == RUNTIME_FILES | serving


def test_the_dry_run_counts_the_files_gcloud_uploads() -> None:
    """deploy.sh's upload line (files, bytes) is what gcloud computes from .gcloudignore."""
    uploaded = files_for_upload(REPO)
    size = sum((REPO / path).stat().st_size for path in uploaded)
    result = run_deploy("--dry-run", "--project", PROJECT)
    assert result.returncode == 0, result.stderr
    assert f"\n# upload: {len(uploaded)} files, {size} bytes before compression, from {REPO}\n" in (
        result.stderr
    )


def test_upload_is_small() -> None:
    uploaded = files_for_upload(REPO)
    assert "model/quantized_model.tflite" in uploaded
    total = sum((REPO / path).stat().st_size for path in uploaded)
    assert total < MAX_UPLOAD_BYTES, f"upload is {total} bytes"


def test_everything_else_stays_out(tmp_path: Path) -> None:
    """A tree with the usual clutter: only the runtime files survive."""
    tree = tmp_path / "checkout"
    tree.mkdir()
    shutil.copy(REPO / ".gcloudignore", tree / ".gcloudignore")
    kept = [
        "main.py",
        "requirements.txt",
        "model/quantized_model.tflite",
        "serving/__init__.py",
        "serving/http/app.py",
    ]
    dropped = [
        "deploy.sh",
        "Makefile",
        "README.md",
        "pyproject.toml",
        "requirements-dev.txt",
        "requirements-legacy.txt",
        "requirements-test.txt",
        ".gitignore",
        ".git/HEAD",
        ".ci/run",
        ".venv/bin/python",
        ".venv-legacy/lib/x.py",
        ".venv-runtime/lib/x.py",
        ".venv-py313/lib/python3.13/site-packages/x.py",
        ".pytest_cache/v/cache",
        ".ruff_cache/CACHEDIR.TAG",
        "tests/test_main.py",
        "tests/deploy/test_checks.py",
        "convert/__main__.py",
        "convert/requirements.txt",
        "batch/cli.py",
        "batch/requirements.txt",
        ".venv-batch/lib/python3.11/site-packages/apache_beam/__init__.py",
        "bench/run.py",
        "bench/results.json",
        "docs/notes.md",
        "build/lib/x.py",
        "model/train_digits.py",
        "model/float_model.tflite",
        "model/saved_model/saved_model.pb",
        "serving/__pycache__/app.cpython-312.pyc",
        "serving/http/__pycache__/app.cpython-312.pyc",
        "serving/.DS_Store",
        "__pycache__/main.cpython-312.pyc",
        "notebook.ipynb",
    ]
    for path in kept + dropped:
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text("x")
    assert files_for_upload(tree) == set(kept)


def test_uploaded_files_alone_serve_predictions(tmp_path: Path) -> None:
    """Nothing the function needs is ignored: a copy of just the upload serves a prediction."""
    assert_upload_serves(REPO, tmp_path)


def test_a_local_model_ships_in_a_staged_upload_and_serves(tmp_path: Path) -> None:
    """``--model FILE``: gcloud gets a staged folder whose upload is the runtime plus FILE,
    served as the function would serve it (MODEL_PATH as deploy.sh sets it, from the source
    root); the staged folder is removed afterwards and the bundled model is untouched."""
    bundled = REPO / "model" / "quantized_model.tflite"
    before = bundled.read_bytes()
    model = tmp_path / "my_model.tflite"
    model.write_bytes(before)
    fake_dir = tmp_path / "bin"
    fake_gcloud.install(fake_dir)
    result = run_deploy(
        "--project",
        PROJECT,
        "--model",
        str(model),
        env={"FAKE_GCLOUD_KEEP_SOURCE": "1"},
        path=f"{fake_dir}{os.pathsep}{os.environ['PATH']}",
    )
    assert result.returncode == 0, result.stderr
    deploy = fake_gcloud.calls(fake_dir)[0]
    (source,) = [a.removeprefix("--source=") for a in deploy if a.startswith("--source=")]
    assert Path(source).parent == Path(tempfile.gettempdir())
    assert not Path(source).exists(), "the staged source was left behind"
    (variables,) = [a.removeprefix("--set-env-vars=") for a in deploy if "--set-env-vars=" in a]
    assert "MODEL_PATH=model/my_model.tflite" in variables.split(",")
    staged = fake_dir / "source"
    uploaded = files_for_upload(staged)
    assert uploaded == files_for_upload(REPO) - {"model/quantized_model.tflite"} | {
        "model/my_model.tflite"
    }
    assert bundled.read_bytes() == before
    assert_upload_serves(staged, tmp_path, {"MODEL_PATH": "model/my_model.tflite"})


def assert_upload_serves(source: Path, tmp_path: Path, env_vars: dict | None = None) -> None:
    """A copy of just the files gcloud uploads from ``source`` serves a prediction."""
    bundle = tmp_path / "upload"
    for path in files_for_upload(source):
        (bundle / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / path, bundle / path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODEL_PATH")}
    env.update(env_vars or {})
    command = [str(Path(sys.executable).with_name("functions-framework")), "--target", "predict"]
    command += ["--source", "main.py", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=bundle, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                ready = requests.get(f"{url}/v2/health/ready", timeout=30)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert ready.status_code == 200, ready.text
        body = zeros_infer_body(url)  # fits whatever model the upload holds
        if body is None:
            pytest.skip("the uploaded model takes BYTES: zeros are no valid request for it")
        response = requests.post(f"{url}/v2/models/model/infer", json=body, timeout=30)
        assert response.status_code == 200, response.text
        served = requests.get(f"{url}/v2/models/model", timeout=30).json()["outputs"]
        assert [o["name"] for o in response.json()["outputs"]] == [o["name"] for o in served]
    finally:
        server.terminate()
        server.wait(timeout=10)
