"""The real ``gcp-storage-emulator`` as a subprocess on loopback, plus pytest fixtures.

The emulator speaks the Cloud Storage JSON API; google-cloud-storage talks to it when
``STORAGE_EMULATOR_HOST`` is set. Test data is put in place with plain HTTP requests
(not google-cloud-storage), so the code under test is not also the test's setup tool.

Registered for the whole suite by ``pytest_plugins = ["tests.gcs_emulator"]`` in
``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.server import free_port


class StorageEmulator:
    """An in-memory Cloud Storage emulator on ``127.0.0.1:port``.

    ``start()`` and ``stop()`` may be called repeatedly; the port stays the same, so a
    test can point a client at storage that is down and bring it up later. Every start
    begins with empty storage (in-memory).
    """

    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        log_dir = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="gcs-emulator-"))
        self._log_path = log_dir / "emulator.log"

    @property
    def host(self) -> str:
        """The value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def logs(self) -> str:
        """Everything the emulator has written (one line per request it served)."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def start(self, timeout: float = 20.0) -> StorageEmulator:
        """Start the emulator and wait until it answers its health check."""
        if self.running:
            return self
        cmd = [sys.executable, "-m", "gcp_storage_emulator", "start"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--in-memory"]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"storage emulator exited early:\n{self.logs()}")
            try:
                if requests.get(self.host + "/", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"storage emulator not up on {self.host} after {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the emulator (its in-memory data is gone); the port is free again."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        r = requests.post(
            f"{self.host}/storage/v1/b",
            params={"project": "test"},
            json={"name": bucket},
            timeout=10,
        )
        if r.status_code != 409:
            r.raise_for_status()

    def upload(self, bucket: str, name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as ``gs://bucket/name`` (creating the bucket); returns the metadata.

        Each upload is a new object generation, as in Cloud Storage.
        """
        self.create_bucket(bucket)
        r = requests.post(
            f"{self.host}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    def patch_metadata(self, bucket: str, name: str, **fields: str) -> dict[str, Any]:
        """Change writable metadata (e.g. ``md5Hash``) without touching the content."""
        r = requests.patch(
            f"{self.host}/storage/v1/b/{bucket}/o/{quote(name, safe='')}", json=fields, timeout=10
        )
        r.raise_for_status()
        return r.json()

    def __enter__(self) -> StorageEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def stopped_storage_emulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageEmulator]:
    """An emulator on a free port, not running yet (call ``start()``), with
    ``STORAGE_EMULATOR_HOST`` pointing at it; stopped at the end of the test."""
    emulator = StorageEmulator(log_dir=tmp_path_factory.mktemp("gcs-emulator"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def storage_emulator(stopped_storage_emulator: StorageEmulator) -> StorageEmulator:
    """A started emulator on a free port, with ``STORAGE_EMULATOR_HOST`` pointing at it."""
    return stopped_storage_emulator.start()


@pytest.fixture
def metadata_trap() -> Iterator[socket.socket]:
    """A loopback listener standing in for the GCE metadata server; nothing accepts.

    Point google-auth at it (GCE_METADATA_HOST/IP) so that a call meant for the metadata
    server lands here, on loopback, where it can be counted.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        yield listener


def connections_to(listener: socket.socket) -> int:
    count = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            listener.accept()[0].close()
            count += 1
    return count
