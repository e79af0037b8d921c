"""`make serve` says the URL it serves on before the first request, and serves there."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.deploy.deploy_script import REPO
from tests.server import free_port

MAKE = shutil.which("make")
# The environment running these tests has functions-framework and requirements.txt installed:
# `make serve` is pointed at it (and told not to rebuild it) instead of creating .venv-runtime.
VENV = Path(sys.executable).parent.parent


@pytest.mark.skipif(MAKE is None, reason="make not installed")
@pytest.mark.timeout(90)
def test_make_serve_prints_its_url_then_serves_it() -> None:
    port = free_port()
    command = [MAKE, "--no-print-directory", "-o", f"{VENV}/.installed", "serve"]
    command += [f"RUNTIME={VENV}", f"PORT={port}"]
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "MAKEFLAGS", "MFLAGS")}
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # make and the server it starts: one group, stopped together
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout])
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        # Nothing has been asked of the server yet: the first line is already the address.
        first = lines.get(timeout=30)
        assert first == f"make serve: serving on {url} (try: curl {url}/v2/health/ready)\n"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "make serve exited"
            try:
                response = requests.get(f"{url}/v2/health/ready", timeout=30)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"nothing listening on {url}"
                time.sleep(0.1)
        assert response.status_code == 200, response.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=10)
