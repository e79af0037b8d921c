"""Run the real function under functions-framework (gunicorn) on a free loopback port."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _functions_framework() -> str:
    return str(Path(sys.executable).with_name("functions-framework"))


@dataclass
class Server:
    """A running server: its base URL, process and combined stdout/stderr log file."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def logs(self) -> str:
        """Everything the server has written so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(
    model_path: str | Path | None = None, *, timeout: float = 30.0, **env: str
) -> Iterator[Server]:
    """Start ``functions-framework --target predict`` on a free loopback port.

    ``env`` adds environment variables (MODEL_NAME=..., INTERPRETER_POOL_SIZE=...).
    Yields a :class:`Server`; the server is stopped on exit.
    """
    port = free_port()
    environ = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    if model_path is not None:
        environ["MODEL_PATH"] = str(model_path)
    cmd = [_functions_framework(), "--target", "predict", "--source", str(REPO / "main.py")]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log_dir = Path(tempfile.mkdtemp(prefix="ff-server-"))
    log_path = log_dir / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = Server(url=url, process=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.logs()}")
            try:
                requests.get(url + "/v2/health/live", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server not up on {url} after {timeout} s") from None
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def zeros_infer_body(url: str, model: str = "model") -> dict | None:
    """A V2 infer body of zeros shaped as the served model's own metadata says (None when
    an input takes BYTES, for which zeros are no valid request): a request that fits
    whatever model is served, the bundled example or a user's own in its place."""
    meta = requests.get(f"{url}/v2/models/{model}", timeout=30).json()
    if any(spec["datatype"] == "BYTES" for spec in meta["inputs"]):
        return None
    inputs = []
    for spec in meta["inputs"]:
        shape = [1 if size < 0 else size for size in spec["shape"]]
        zero = False if spec["datatype"] == "BOOL" else 0
        data = [zero] * math.prod(shape)
        inputs.append(
            {"name": spec["name"], "datatype": spec["datatype"], "shape": shape, "data": data}
        )
    return {"inputs": inputs}
