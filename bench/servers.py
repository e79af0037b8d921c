"""Start and stop the servers under test on loopback, and time their cold start.

Each server runs in its own process group (so its gunicorn arbiter and workers are stopped
together) on a free ``127.0.0.1`` port. Cold start is the wall time from just before the
process is spawned to the first ``200`` answer to a predict request: the client retries a
refused connection every few milliseconds, and a connection gunicorn has accepted but not
yet served simply waits, so the time includes imports, model loading and the first invoke.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNTIME_VENV = REPO / ".venv-runtime"
# functions-framework's own default (gunicorn gthread, 1 worker, 4 threads per CPU): the
# baselines get the same server so only the model runtime differs.
GUNICORN_THREADS = (os.cpu_count() or 1) * 4


def stop_on_sigterm() -> None:
    """Make SIGTERM exit through ``finally`` blocks, so that every started server is stopped:
    each runs in its own session, which a signal to the benchmark's process group misses."""

    def exit_cleanly(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_cleanly)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runtime_python() -> Path:
    """The deployed environment's Python (``make .venv-runtime/.installed``), else this one."""
    candidate = RUNTIME_VENV / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server and which predict request proves it is serving."""

    name: str
    argv: tuple[str, ...]  # "{port}" is replaced by the port
    predict_path: str
    body: bytes
    env: Mapping[str, str] = field(default_factory=dict)  # "" unsets a variable
    fresh_cache: bool = False  # a new empty MODEL_CACHE_DIR per start (cold Cloud Storage)
    cwd: Path = REPO  # the checkout the server runs from
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def function_spec(
    name: str, model_path: str, body: bytes, *, source: Path = REPO, **env: str
) -> ServerSpec:
    """This function under functions-framework, as deployed (gunicorn); ``source`` is the
    checkout it runs from (another one gives a before/after on the same machine)."""
    ff = runtime_python().with_name("functions-framework")
    argv = (str(ff), "--target", "predict", "--source", str(source / "main.py"))
    argv += ("--host", "127.0.0.1", "--port", "{port}")
    return ServerSpec(
        name,
        argv,
        "/v1/models/model:predict",
        body,
        {"MODEL_PATH": model_path, **env},
        fresh_cache=model_path.startswith("gs://"),
        cwd=source,
    )


def gunicorn_spec(name: str, app: str, python: Path, body: bytes, **env: str) -> ServerSpec:
    """A Flask app ``module:app`` from ``bench/`` under gunicorn with the function's threading."""
    argv = (str(python), "-m", "gunicorn", "--chdir", str(REPO), "--bind", "127.0.0.1:{port}")
    argv += ("--workers", "1", "--threads", str(GUNICORN_THREADS), "--log-level", "error", app)
    return ServerSpec(name, argv, "/v1/models/model:predict", body, env)


def log_entries(text: str, message: str) -> list[dict]:
    """The JSON log lines of a server's ``text`` whose message is ``message``."""
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("message") == message:
                found.append(entry)
    return found


@dataclass
class Server:
    """A started server process (group) and where it listens."""

    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    cold_start_s: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        """What the server has written so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        # Workers left behind by a dead arbiter still belong to the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    spec: ServerSpec,
    log_dir: Path,
    timeout: float = 120.0,
    on_spawn: Callable[[int], None] | None = None,
) -> Server:
    """Start ``spec`` and wait for its first ``200`` predict answer; the time is its cold start.

    ``on_spawn(pid)`` is called right after the process exists (to watch its memory).

    Raises ``RuntimeError`` (with the server's log) if it exits, answers an error or misses
    ``timeout``; the process group is stopped in that case.
    """
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    env = {k: v for k, v in {**os.environ, **spec.env}.items() if v != ""}
    env["PYTHONUNBUFFERED"] = "1"
    if spec.fresh_cache:
        env["MODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="cache-", dir=log_dir)
    log_path = Path(tempfile.mkstemp(prefix=f"{spec.name}-", suffix=".log", dir=log_dir)[1])
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(spec, port, process, log_path)
    try:
        if on_spawn is not None:
            on_spawn(process.pid)
        _first_prediction(server, started + timeout)
    except BaseException:
        server.stop()
        raise
    server.cold_start_s = time.perf_counter() - started
    return server


def _first_prediction(server: Server, deadline: float) -> None:
    """POST the predict request until it succeeds; refused connections are retried."""
    spec = server.spec
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{spec.name} exited ({server.process.returncode}):\n{server.logs()}"
            )
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise RuntimeError(f"{spec.name}: no 200 predict answer in time:\n{server.logs()}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=remaining)
        try:
            connection.request("POST", spec.predict_path, spec.body, dict(spec.headers))
            response = connection.getresponse()
            payload = response.read()
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            time.sleep(0.005)
            continue
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(
                f"{spec.name}: first predict answered {response.status}: {payload[:300]!r}\n"
                + server.logs()
            )
        return
