"""``python -m serving``: the command it becomes, and the real server it starts from elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests

from serving.__main__ import FUNCTION, build_parser, command
from tests.conftest import REPO
from tests.server import free_port


def test_a_relative_model_is_the_callers_and_the_function_is_the_packages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["my_model.tflite", "--port", "9000"])
    argv, env = command(args, {"PYTHONPATH": "/elsewhere"})
    assert env["MODEL_PATH"] == str(tmp_path / "my_model.tflite")
    assert argv == [
        sys.executable, "-m", "functions_framework", "--target", "predict",
        "--source", str(FUNCTION), "--host", "127.0.0.1", "--port", "9000",
    ]  # fmt: skip
    assert FUNCTION.is_file()
    assert env["PYTHONPATH"] == os.pathsep.join([str(REPO), "/elsewhere"])


def test_model_path_from_the_environment_is_resolved_and_gs_uris_are_left_alone(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args([])
    assert command(args, {"MODEL_PATH": "m.tflite"})[1]["MODEL_PATH"] == str(tmp_path / "m.tflite")
    uri = "gs://bucket/m.tflite"
    assert command(args, {"MODEL_PATH": uri})[1]["MODEL_PATH"] == uri
    assert "MODEL_PATH" not in command(args, {})[1]  # the settings' default: the bundled model


def test_a_local_repository_is_resolved_too_and_a_gs_one_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args([])
    env = command(args, {"MODEL_REPOSITORY": "models"})[1]
    assert env["MODEL_REPOSITORY"] == str(tmp_path / "models")
    assert "MODEL_PATH" not in env  # a repository is never paired with a model
    uri = "gs://bucket/models"
    assert command(args, {"MODEL_REPOSITORY": uri})[1]["MODEL_REPOSITORY"] == uri


def test_it_serves_a_model_named_relative_to_another_folder(tmp_path, digits_model):
    """From a folder outside the checkout, ``python -m serving quantized_model.tflite``."""
    (tmp_path / "quantized_model.tflite").write_bytes(digits_model.read_bytes())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MODEL_PATH"}
    env["PYTHONPATH"] = str(REPO)  # the checkout, not installed: the test's own code
    server = subprocess.Popen(
        [sys.executable, "-m", "serving", "quantized_model.tflite", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/v2/models/model", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert [t["name"] for t in r.json()["inputs"]] == ["pixels"]
    finally:
        os.killpg(server.pid, 15)
        _, stderr = server.communicate(timeout=30)
    assert stderr.startswith(f"python -m serving: serving on http://127.0.0.1:{port}\n")
