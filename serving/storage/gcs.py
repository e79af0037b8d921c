"""Download a Cloud Storage object into a verified local cache (google-cloud-storage).

Imported only for ``gs://`` models: google-cloud-storage costs ~0.2 s to import, which a
cold start from a bundled model must not pay. The library itself is imported inside the
functions, so importing this module stays cheap too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from serving import filelock
from serving.errors import ModelLoadError
from serving.storage.gcs_uri import GcsObject, cache_path

if TYPE_CHECKING:
    from google.cloud.storage import Client

_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectMetadata:
    """What the cached file must match: Cloud Storage's ``size``, ``md5Hash``, ``crc32c``."""

    generation: int
    size: int
    md5_b64: str | None
    crc32c_b64: str | None


def _checksum_mismatch(path: Path, meta: ObjectMetadata) -> str | None:
    """None if ``path`` has the object's size and checksum, else what differs.

    md5 when the metadata has one; composite objects have only crc32c.

    Raises:
        OSError: ``path`` cannot be read.
    """
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size != meta.size:
            return f"size {size} bytes, expected {meta.size}"
        if meta.md5_b64:
            kind, expected, digest = "md5", meta.md5_b64, hashlib.md5(usedforsecurity=False)
        elif meta.crc32c_b64:
            import google_crc32c  # a dependency of google-cloud-storage

            kind, expected, digest = "crc32c", meta.crc32c_b64, google_crc32c.Checksum()
        else:
            return "the object's metadata has neither md5Hash nor crc32c to verify against"
        while chunk := f.read(_READ_CHUNK):
            digest.update(chunk)
    actual = base64.b64encode(digest.digest()).decode("ascii")
    return None if actual == expected else f"{kind} {actual}, expected {expected}"


# One google-cloud-storage client per process and endpoint: STORAGE_EMULATOR_HOST is read
# when a client is built, so another endpoint needs its own client.
_clients: dict[str | None, Client] = {}
_entry_locks: dict[Path, threading.Lock] = {}
_lock = threading.Lock()


def _storage_client() -> Client:
    from google.cloud import storage

    endpoint = os.environ.get("STORAGE_EMULATOR_HOST")
    with _lock:
        client = _clients.get(endpoint)
        if client is None:
            # project=None: a download needs no project, and looking one up costs a
            # metadata-server round trip. With STORAGE_EMULATOR_HOST set the client uses
            # anonymous credentials: no call to Google or to the metadata server.
            client = storage.Client(project=None)
            # This cache only labels OpenTelemetry spans, yet on the first use of a bucket
            # it starts a background GET of the bucket that retries for 120 s when storage
            # is down. We do not trace, so switch it off (the library checks for None).
            if getattr(client, "_bucket_metadata_cache", None) is not None:
                client._bucket_metadata_cache = None
            _clients[endpoint] = client
        return client


def _entry_lock(target: Path) -> threading.Lock:
    # One thread per process fills a cache entry; the others wait and then reuse it.
    # Across processes, a file lock (fetch_object) and an atomic rename keep it safe.
    with _lock:
        return _entry_locks.setdefault(target, threading.Lock())


def fetch_object(
    obj: GcsObject, cache_dir: Path, timeout: float
) -> tuple[Path, bool, ObjectMetadata]:
    """Download (or reuse) ``obj``; returns the cached path, whether it was downloaded,
    and the metadata it was verified against."""
    deadline = time.monotonic() + timeout
    client = _client_for(obj)
    with _translated(client, obj, deadline, timeout):
        blob = client.bucket(obj.bucket).blob(obj.name)
        blob.reload(**_call_budget(obj, deadline, timeout))
        meta = ObjectMetadata(int(blob.generation), int(blob.size), blob.md5_hash, blob.crc32c)
        target = cache_path(cache_dir, obj, meta.generation)
        lock = _entry_lock(target)
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise _timed_out(obj, timeout)
        try:
            # Other workers of the instance too: the one that downloads holds the file lock,
            # the others wait and then verify its file, so the temp dir (memory on Cloud
            # Run) never holds two downloads of one model at once.
            with filelock.locked(
                _lock_path(Path(cache_dir), target),
                exclusive=True,
                timeout=max(deadline - time.monotonic(), 0.0),
            ):
                if _is_valid(target, meta):
                    return target, False, meta
                _download(client, obj, meta, target, deadline, timeout)
                return target, True, meta
        except filelock.LockTimeout as e:
            raise _timed_out(obj, timeout) from e
        finally:
            lock.release()


@dataclass(frozen=True)
class ListedObject:
    """One object of a listing: its full name, size and generation."""

    name: str
    size: int
    generation: int


def list_objects(folder: GcsObject, timeout: float) -> list[ListedObject]:
    """Every object under ``folder`` (``name`` is a prefix, '' for the whole bucket),
    within ``timeout`` seconds in total (paging and retries included)."""
    deadline = time.monotonic() + timeout
    client = _client_for(folder)
    prefix = f"{folder.name}/" if folder.name else ""
    with _translated(client, folder, deadline, timeout):
        pages = client.list_blobs(
            folder.bucket, prefix=prefix, **_call_budget(folder, deadline, timeout)
        )
        return [
            ListedObject(blob.name, int(blob.size or 0), int(blob.generation)) for blob in pages
        ]


def _client_for(obj: GcsObject) -> Client:
    from google.auth import exceptions as auth_errors

    try:
        return _storage_client()
    except auth_errors.GoogleAuthError as e:
        raise ModelLoadError(
            f"no Google Cloud credentials to read {obj.uri}: {e}", reason="source"
        ) from e


@contextlib.contextmanager
def _translated(client: Client, obj: GcsObject, deadline: float, timeout: float) -> Iterator[None]:
    """Cloud Storage's errors as :class:`ModelLoadError` naming ``obj`` (503, retried)."""
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors

    try:
        yield
    except api_errors.NotFound as e:
        raise _not_found(client, obj, deadline) from e
    except (api_errors.Forbidden, api_errors.Unauthorized) as e:
        raise ModelLoadError(
            f"permission denied reading {obj.uri}: {e.message}", reason="source"
        ) from e
    except api_errors.RetryError as e:
        host = urlparse(client.api_endpoint).netloc or client.api_endpoint
        raise ModelLoadError(
            f"Cloud Storage unreachable at {host} for {obj.uri} "
            f"(gave up after {timeout:g} s): {e.cause or e}",
            reason="source",
        ) from e
    except api_errors.GoogleAPICallError as e:
        raise ModelLoadError(f"Cloud Storage error reading {obj.uri}: {e}", reason="source") from e
    except auth_errors.GoogleAuthError as e:
        raise ModelLoadError(
            f"cannot authenticate to Cloud Storage for {obj.uri}: {e}", reason="source"
        ) from e
    except OSError as e:  # requests' errors are OSErrors too
        raise ModelLoadError(f"reading {obj.uri} failed: {e}", reason="source") from e


def _lock_path(cache_dir: Path, target: Path) -> Path:
    """The file lock of a cache entry: beside the cache folder, which holds only models."""
    locks = cache_dir.with_name(cache_dir.name + ".locks") / target.parent.name
    locks.mkdir(parents=True, exist_ok=True)
    return locks / f"{target.name}.lock"


def _call_budget(obj: GcsObject, deadline: float, timeout: float) -> dict[str, Any]:
    """``timeout=`` and ``retry=`` for one storage call: what is left of the budget.

    The library's default retry keeps retrying connection errors for 120 s.
    """
    from google.cloud.storage.retry import DEFAULT_RETRY

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(obj, timeout)
    return {"timeout": remaining, "retry": DEFAULT_RETRY.with_timeout(remaining)}


def _timed_out(obj: GcsObject, timeout: float) -> ModelLoadError:
    return ModelLoadError(f"fetching {obj.uri} took longer than {timeout:g} s", reason="source")


def _not_found(client: Client, obj: GcsObject, deadline: float) -> ModelLoadError:
    message = f"Cloud Storage object not found: {obj.uri}"
    remaining = deadline - time.monotonic()
    if remaining > 0:
        # Which one is missing? Needs storage.buckets.get, which a reader may lack:
        # then the plain object message stands.
        with contextlib.suppress(Exception):
            if not client.bucket(obj.bucket).exists(timeout=remaining, retry=None):
                message = f"Cloud Storage bucket {obj.bucket!r} not found for {obj.uri}"
    return ModelLoadError(message, reason="missing")


def _is_valid(target: Path, meta: ObjectMetadata) -> bool:
    try:
        return _checksum_mismatch(target, meta) is None
    except OSError:  # absent or unreadable: download a fresh copy
        return False


def _download(
    client: Client,
    obj: GcsObject,
    meta: ObjectMetadata,
    target: Path,
    deadline: float,
    timeout: float,
) -> None:
    """Download into a unique temporary file next to ``target``, verify, rename.

    A corrupt file at ``target`` stays until the rename replaces it; it is never used,
    since every use verifies it first.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as e:
        raise ModelLoadError(
            f"cannot write the model cache {target.parent}: {e}", reason="source"
        ) from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            # Pinned to the verified generation, so an overwrite in between cannot mix
            # versions; raw, so gzip-encoded objects are not inflated past their size.
            blob = client.bucket(obj.bucket).blob(obj.name, generation=meta.generation)
            blob.download_to_file(
                f, raw_download=True, checksum=None, **_call_budget(obj, deadline, timeout)
            )
        problem = _checksum_mismatch(tmp, meta)
        if problem:
            raise ModelLoadError(
                f"download of {obj.uri} (generation {meta.generation}) does not match "
                f"its metadata: {problem}",
                reason="source",
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
