"""Where the model file comes from: a local path, or a Cloud Storage object cached locally.

``MODEL_PATH`` is either a local file or ``gs://bucket/object``. A Cloud Storage object is
downloaded once into ``cache_dir`` and reused while its generation, size and checksum still
match the object's metadata. google-cloud-storage is imported only on the ``gs://`` branch:
it costs ~0.2 s, which a cold start from a bundled model must not pay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from serving.errors import LoadFailure, ModelLoadError
from serving.not_tflite import convert_first
from serving.storage.gcs_uri import GS_SCHEME, URI_SCHEME, cache_path, parse_gs_uri

__all__ = ["FetchedModel", "cache_path", "fetch", "fetch_model", "parse_gs_uri"]


@dataclass(frozen=True)
class FetchedModel:
    """The outcome of :func:`fetch`, for logs: where the file is and what it cost.

    ``downloaded`` is False for a local path and for a verified cache hit;
    ``generation`` is None for a local path.
    """

    path: Path
    uri: str
    downloaded: bool
    size_bytes: int
    generation: int | None
    ms: float


def fetch_model(uri: str, *, cache_dir: Path, timeout: float) -> Path:
    """Return a local file holding the model named by ``uri`` (see :func:`fetch`)."""
    return fetch(uri, cache_dir=cache_dir, timeout=timeout).path


def fetch(uri: str, *, cache_dir: Path, timeout: float) -> FetchedModel:
    """Resolve ``uri`` (a local path or ``gs://bucket/object``) to a verified local file.

    A local file is returned as-is. A Cloud Storage object is cached under
    ``cache_dir/<bucket>/`` keyed by object name and generation; the cached file is used
    only if its size and checksum (md5, else crc32c) match the object's metadata,
    otherwise the object is downloaded to a unique temporary name in the same directory,
    verified, then atomically renamed into place. Network calls are bounded by
    ``timeout`` seconds in total (retries included).

    Raises:
        ModelLoadError: reason ``missing`` (no such file, bucket or object), ``invalid``
            (malformed URI) or ``source`` (storage unreachable, permission denied,
            checksum mismatch, cache not writable, timeout).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    started = time.perf_counter()
    scheme = URI_SCHEME.match(uri)
    if scheme is None:
        path = _local_file(uri)
        return FetchedModel(path, uri, False, path.stat().st_size, None, _ms_since(started))
    if scheme.group(1).lower() != GS_SCHEME:
        raise ModelLoadError(
            f"unsupported model URI scheme {scheme.group(1)!r} in {uri!r}: "
            "use a local path or gs://bucket/object",
            reason="invalid",
        )
    obj = parse_gs_uri(uri)
    from serving.storage import gcs  # google-cloud-storage only on this branch

    path, downloaded, meta = gcs.fetch_object(obj, Path(cache_dir), timeout)
    return FetchedModel(path, uri, downloaded, meta.size, meta.generation, _ms_since(started))


def _local_file(uri: str) -> Path:
    if not uri:
        raise ModelLoadError("model path is empty", reason="invalid")
    path = Path(uri)
    if path.is_file():
        return path
    if path.is_dir():
        if hint := convert_first(path):
            raise ModelLoadError(hint, reason=LoadFailure.NOT_TFLITE)
        raise ModelLoadError(f"model path is a directory, not a file: {path}", reason="missing")
    raise ModelLoadError(f"model file not found: {path}", reason="missing")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
