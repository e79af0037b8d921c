"""serving.storage.source against the real gcp-storage-emulator on loopback.

The emulator's request log (one line per request) shows what went over the wire, so a
cache hit is proven by the absence of a download request, not by our own flag alone.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.errors import ModelLoadError
from serving.storage.source import FetchedModel, cache_path, fetch, fetch_model, parse_gs_uri
from tests.concurrency import at_once
from tests.conftest import REPO
from tests.gcs_emulator import StorageEmulator, connections_to
from tests.server import free_port

BUCKET = "models"
NAME = "digits/v1/model.tflite"
URI = f"gs://{BUCKET}/{NAME}"
DATA = bytes(range(256)) * 40  # any bytes: the source does not parse models


def files_in(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*") if p.is_file())


def downloads(emulator: StorageEmulator) -> int:
    """How many object downloads the emulator has served."""
    return sum("GET /download/storage/v1/" in line for line in emulator.logs().splitlines())


# --- local paths --------------------------------------------------------------------------


def test_local_file_is_returned_as_is(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(DATA)
    assert fetch_model(str(model), cache_dir=tmp_path / "cache", timeout=1) == model
    result = fetch(str(model), cache_dir=tmp_path / "cache", timeout=1)
    assert (result.downloaded, result.size_bytes, result.generation) == (False, len(DATA), None)
    assert not (tmp_path / "cache").exists()


def test_local_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent.tflite"
    with pytest.raises(ModelLoadError) as err:
        fetch_model(str(path), cache_dir=tmp_path, timeout=1)
    assert str(err.value) == f"model file not found: {path}"
    assert (err.value.reason, err.value.status_code) == ("missing", 503)


def test_local_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is a directory") as err:
        fetch_model(str(tmp_path), cache_dir=tmp_path, timeout=1)
    assert err.value.reason == "missing"


def test_a_saved_model_folder_is_refused_with_the_command_that_converts_it(
    models: Path, tmp_path: Path
) -> None:
    path = models / "classifier_saved_model"
    with pytest.raises(ModelLoadError) as err:
        fetch_model(str(path), cache_dir=tmp_path, timeout=1)
    assert str(err.value) == (
        f"{path} is a TensorFlow SavedModel folder, not a TFLite model: convert it first "
        f"(python -m convert {path} -o {path}.tflite) and serve the .tflite file"
    )
    assert (err.value.reason, err.value.status_code) == ("not_tflite", 503)


def test_empty_model_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model path is empty") as err:
        fetch_model("", cache_dir=tmp_path, timeout=1)
    assert err.value.reason == "invalid"


def run_fresh_python(
    script: str, tmp_path: Path, trap: socket.socket, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new interpreter with no Google credentials anywhere.

    google-auth reads the metadata server address at import time, hence a new process.
    """
    trap_address = f"127.0.0.1:{trap.getsockname()[1]}"
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST")
    }
    environ.update(
        CLOUDSDK_CONFIG=str(tmp_path / "no-gcloud-config"),
        GCE_METADATA_HOST=trap_address,
        GCE_METADATA_IP=trap_address,
        **env,
    )
    cmd = [sys.executable, "-c", textwrap.dedent(script)]
    return subprocess.run(cmd, cwd=REPO, env=environ, capture_output=True, text=True, timeout=60)


def test_local_model_never_imports_google_cloud_storage(
    tmp_path: Path, metadata_trap: socket.socket
) -> None:
    """In a clean interpreter: a local fetch leaves google-cloud-storage unimported.

    The same process then fetches a gs:// URI (storage down, tiny timeout) to show the
    probe would notice the import.
    """
    model = tmp_path / "model.tflite"
    model.write_bytes(DATA)
    script = f"""
        import sys
        from pathlib import Path
        from serving.errors import ModelLoadError
        from serving.storage.source import fetch_model
        fetch_model({str(model)!r}, cache_dir=Path({str(tmp_path)!r}), timeout=1)
        print("local", "google.cloud.storage" in sys.modules)
        try:
            fetch_model("gs://bucket/model.tflite", cache_dir=Path({str(tmp_path)!r}), timeout=0.2)
        except ModelLoadError as e:
            print("gs", "google.cloud.storage" in sys.modules, e.reason)
        """
    storage_down = f"http://127.0.0.1:{free_port()}"
    out = run_fresh_python(script, tmp_path, metadata_trap, STORAGE_EMULATOR_HOST=storage_down)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["local False", "gs True source"]


def test_emulator_needs_no_credentials_and_no_metadata_server(
    storage_emulator: StorageEmulator, tmp_path: Path, metadata_trap: socket.socket
) -> None:
    storage_emulator.upload(BUCKET, NAME, DATA)
    script = f"""
        from pathlib import Path
        from serving.storage.source import fetch_model
        print(fetch_model({URI!r}, cache_dir=Path({str(tmp_path)!r}), timeout=10))
        """
    out = run_fresh_python(
        script, tmp_path, metadata_trap, STORAGE_EMULATOR_HOST=storage_emulator.host
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).read_bytes() == DATA
    assert connections_to(metadata_trap) == 0


def test_no_credentials_is_a_clear_error(tmp_path: Path, metadata_trap: socket.socket) -> None:
    """Off Google Cloud, without credentials (the metadata server probe answers nothing)."""
    script = f"""
        from pathlib import Path
        from serving.errors import ModelLoadError
        from serving.storage.source import fetch_model
        try:
            fetch_model({URI!r}, cache_dir=Path({str(tmp_path)!r}), timeout=5)
        except ModelLoadError as e:
            print(e.reason, e.status_code, e)
        """
    fast_probe = {"GCE_METADATA_TIMEOUT": "1", "GCE_METADATA_DETECT_RETRIES": "1"}
    out = run_fresh_python(script, tmp_path, metadata_trap, **fast_probe)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"source 503 no Google Cloud credentials to read {URI}: ")
    assert connections_to(metadata_trap) >= 1  # the probe went to the trap, not the network
    assert files_in(tmp_path) == []


# --- URIs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("gs://", "no bucket name"),
        ("gs:///model.tflite", "no bucket name"),
        ("gs://models", "no object name"),
        ("gs://models/", "no object name"),
        ("gs://Models/model.tflite", "bad bucket name"),
        ("gs://ab/model.tflite", "bad bucket name"),
        ("gs://-models/model.tflite", "bad bucket name"),
        ("gs://models-/model.tflite", "bad bucket name"),
        ("gs://mod els/model.tflite", "bad bucket name"),
        ("gs://models..x/model.tflite", "bad bucket name"),
        ("gs://" + "b" * 64 + "/model.tflite", "bad bucket name"),
        ("gs://models/dir/", "ends with '/'"),
        ("gs://models/a\nb.tflite", "control characters"),
        ("gs://models/.", "not allowed"),
        ("gs://models/..", "not allowed"),
        ("gs://models/" + "x" * 1025, "longer than 1024 bytes"),
    ],
)
def test_malformed_gs_uri(
    uri: str, problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storage is unreachable: any network attempt would fail with reason "source".
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ModelLoadError) as err:
        fetch_model(uri, cache_dir=tmp_path, timeout=5)
    assert err.value.reason == "invalid"
    assert repr(uri) in str(err.value)
    assert problem in str(err.value)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("uri", ["s3://models/model.tflite", "https://example.com/model.tflite"])
def test_unsupported_scheme(uri: str, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unsupported model URI scheme") as err:
        fetch_model(uri, cache_dir=tmp_path, timeout=1)
    assert err.value.reason == "invalid"
    assert repr(uri) in str(err.value)


@pytest.mark.parametrize(
    ("uri", "bucket", "name"),
    [
        ("gs://models/model.tflite", "models", "model.tflite"),
        ("GS://models/a b/c.tflite", "models", "a b/c.tflite"),
        ("gs://my_bucket.example.com/v1/../x", "my_bucket.example.com", "v1/../x"),
    ],
)
def test_parse_gs_uri(uri: str, bucket: str, name: str) -> None:
    obj = parse_gs_uri(uri)
    assert (obj.bucket, obj.name) == (bucket, name)


# --- Cloud Storage ------------------------------------------------------------------------


def test_download_is_verified_and_cached(storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    meta = storage_emulator.upload(BUCKET, NAME, DATA)
    result = fetch(URI, cache_dir=tmp_path, timeout=10)
    assert isinstance(result, FetchedModel)
    assert result.downloaded
    assert result.path.read_bytes() == DATA
    assert (result.size_bytes, result.generation) == (len(DATA), int(meta["generation"]))
    assert result.path.parent == tmp_path / BUCKET
    assert str(meta["generation"]) in result.path.name
    assert files_in(tmp_path) == [result.path]
    assert downloads(storage_emulator) == 1


def test_cache_hit_does_not_download(storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    storage_emulator.upload(BUCKET, NAME, DATA)
    first = fetch(URI, cache_dir=tmp_path, timeout=10)
    before = first.path.stat()
    second = fetch(URI, cache_dir=tmp_path, timeout=10)
    assert second.path == first.path
    assert not second.downloaded
    after = second.path.stat()
    # A fresh download would have renamed a new file (new inode) into place.
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert downloads(storage_emulator) == 1


def test_new_generation_is_downloaded(storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    storage_emulator.upload(BUCKET, NAME, DATA)
    old = fetch(URI, cache_dir=tmp_path, timeout=10)
    new_data = DATA[::-1] + b"v2"
    storage_emulator.upload(BUCKET, NAME, new_data)
    new = fetch(URI, cache_dir=tmp_path, timeout=10)
    assert new.downloaded
    assert new.generation != old.generation
    assert new.path != old.path
    assert new.path.read_bytes() == new_data
    assert downloads(storage_emulator) == 2


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:], id="one-byte-flipped"),
        pytest.param(lambda b: b + b"\0", id="extra-byte"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
def test_corrupt_cache_file_is_replaced(
    corrupt, storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    storage_emulator.upload(BUCKET, NAME, DATA)
    cached = fetch(URI, cache_dir=tmp_path, timeout=10).path
    cached.write_bytes(corrupt(DATA))
    result = fetch(URI, cache_dir=tmp_path, timeout=10)
    assert result.downloaded
    assert result.path == cached
    assert cached.read_bytes() == DATA
    assert files_in(tmp_path) == [cached]
    assert downloads(storage_emulator) == 2


def test_crc32c_is_used_when_there_is_no_md5(
    storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    """Composite objects have only a crc32c: it must be checked, and a mismatch caught."""
    storage_emulator.upload(BUCKET, NAME, DATA)
    storage_emulator.patch_metadata(BUCKET, NAME, md5Hash="")
    assert fetch(URI, cache_dir=tmp_path / "good", timeout=10).path.read_bytes() == DATA
    storage_emulator.patch_metadata(BUCKET, NAME, crc32c="AAAAAA==")
    with pytest.raises(ModelLoadError, match=r"does not match its metadata: crc32c \S+, expected"):
        fetch(URI, cache_dir=tmp_path / "bad", timeout=10)
    assert files_in(tmp_path / "bad") == []


def test_checksum_mismatch_leaves_nothing_behind(
    storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    """The object's bytes do not match its md5: error, no partial file, stale copy unused."""
    storage_emulator.upload(BUCKET, NAME, DATA)
    cached = fetch(URI, cache_dir=tmp_path, timeout=10).path
    storage_emulator.patch_metadata(BUCKET, NAME, md5Hash="AAAAAAAAAAAAAAAAAAAAAA==")
    with pytest.raises(ModelLoadError) as err:
        fetch(URI, cache_dir=tmp_path, timeout=10)
    assert err.value.reason == "source"
    assert URI in str(err.value)
    assert "md5" in str(err.value)
    assert "expected AAAAAAAAAAAAAAAAAAAAAA==" in str(err.value)
    assert files_in(tmp_path) == [cached]  # the old copy, never returned; no .part file


def test_object_missing(storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    storage_emulator.create_bucket(BUCKET)
    with pytest.raises(ModelLoadError) as err:
        fetch_model(URI, cache_dir=tmp_path, timeout=10)
    assert str(err.value) == f"Cloud Storage object not found: {URI}"
    assert (err.value.reason, err.value.status_code) == ("missing", 503)
    assert files_in(tmp_path) == []


def test_bucket_missing(storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        fetch_model(URI, cache_dir=tmp_path, timeout=10)
    assert str(err.value) == f"Cloud Storage bucket {BUCKET!r} not found for {URI}"
    assert err.value.reason == "missing"


def test_storage_down_then_up(stopped_storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    """Down: a quick 503-class error naming the host; up on the same port: success."""
    timeout = 2.0
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        fetch_model(URI, cache_dir=tmp_path, timeout=timeout)
    elapsed = time.monotonic() - started
    assert elapsed < timeout + 1.0
    assert err.value.reason == "source"
    assert f"127.0.0.1:{stopped_storage_emulator.port}" in str(err.value)
    assert "Connection refused" in str(err.value)
    assert URI in str(err.value)
    assert files_in(tmp_path) == []

    stopped_storage_emulator.start()
    stopped_storage_emulator.upload(BUCKET, NAME, DATA)
    assert fetch_model(URI, cache_dir=tmp_path, timeout=timeout).read_bytes() == DATA


def test_concurrent_threads_download_once(
    storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    storage_emulator.upload(BUCKET, NAME, DATA)
    threads = 8
    outcomes = at_once(threads, lambda: fetch(URI, cache_dir=tmp_path, timeout=20))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == []
    results = [o for o in outcomes if isinstance(o, FetchedModel)]
    assert len(results) == threads
    assert len({r.path for r in results}) == 1
    assert sum(r.downloaded for r in results) == 1
    assert files_in(tmp_path) == [results[0].path]
    assert results[0].path.read_bytes() == DATA
    assert downloads(storage_emulator) == 1


def test_concurrent_processes_share_the_cache(
    storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    storage_emulator.upload(BUCKET, NAME, DATA)
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from serving.storage.source import fetch
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # start together
        print(fetch({URI!r}, cache_dir=Path({str(tmp_path)!r}), timeout=20).path)
        """
    )
    start_at = str(time.time() + 2.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, start_at],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    assert files_in(tmp_path) == [Path(paths.pop())]
    assert files_in(tmp_path)[0].read_bytes() == DATA


ODD_NAMES = [
    "...",
    ".hidden",
    "a//b",
    "%2e%2e/x",
    "ünï cödé/模型.tflite",
    "/".join(["d" * 200] * 4) + "/m.tflite",  # longer than a file name may be
]


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_odd_object_names_are_cached_inside_the_bucket_dir(
    name: str, storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    storage_emulator.upload(BUCKET, name, DATA)
    path = fetch_model(f"gs://{BUCKET}/{name}", cache_dir=tmp_path, timeout=10)
    assert path.parent == tmp_path / BUCKET
    assert path.read_bytes() == DATA
    assert files_in(tmp_path) == [path]


@pytest.mark.parametrize("name", ["../../escape.tflite", "a/../../../x", "..x/..", "/abs"])
def test_cache_path_cannot_escape_the_bucket_dir(name: str, tmp_path: Path) -> None:
    """The emulator refuses dot segments; Cloud Storage allows them in object names."""
    path = cache_path(tmp_path, parse_gs_uri(f"gs://{BUCKET}/{name}"), 7)
    assert path.resolve().parent == (tmp_path / BUCKET).resolve()
    assert path != cache_path(tmp_path, parse_gs_uri(f"gs://{BUCKET}/{name}x"), 7)
    assert path != cache_path(tmp_path, parse_gs_uri(f"gs://{BUCKET}/{name}"), 8)


# --- failures the emulator cannot produce: a loopback stand-in for Cloud Storage ----------


@pytest.fixture
def forbidding_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback server answering every request 403 as Cloud Storage does."""

    class Forbidden(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"error": {"code": 403, "message": "caller does not have storage.objects.get"}}
            ).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
    yield URI
    server.shutdown()
    server.server_close()


def test_permission_denied(forbidding_storage: str, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        fetch_model(forbidding_storage, cache_dir=tmp_path, timeout=5)
    assert str(err.value).startswith(f"permission denied reading {URI}: ")
    assert "storage.objects.get" in str(err.value)
    assert err.value.reason == "source"


def test_hanging_storage_is_bounded_by_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts connections but never answers: give up at the timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # never accept()ed: the kernel completes connects, nobody reads
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{listener.getsockname()[1]}")
        timeout = 1.5
        started = time.monotonic()
        with pytest.raises(ModelLoadError) as err:
            fetch_model(URI, cache_dir=tmp_path, timeout=timeout)
        elapsed = time.monotonic() - started
    assert timeout * 0.9 <= elapsed < timeout + 1.0
    assert err.value.reason == "source"
    assert files_in(tmp_path) == []
