"""``gs://bucket/object`` URIs: parsing against Cloud Storage's naming rules, cache paths."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ModelLoadError

GS_SCHEME = "gs"
URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Bucket naming rules: lowercase letters, digits, '-', '_' and '.', starting and ending
# with a letter or digit; 3-63 characters, or up to 222 when dotted (63 per component).
_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?$")
_OBJECT_NAME_MAX_BYTES = 1024
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class GcsObject:
    """A parsed ``gs://bucket/object`` URI."""

    bucket: str
    name: str

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse_gs_uri(uri: str) -> GcsObject:
    """Split ``gs://bucket/object`` and check both parts against Cloud Storage's rules.

    Raises:
        ModelLoadError: reason ``invalid``, naming the URI and what is wrong with it.
    """
    return _parse(uri, folder=False)


def parse_gs_prefix(uri: str) -> GcsObject:
    """Split ``gs://bucket[/prefix]`` (a folder: the prefix may be empty or end with '/').

    The returned object's ``name`` is the prefix without its trailing '/' ('' for the
    whole bucket).

    Raises:
        ModelLoadError: reason ``invalid``, naming the URI and what is wrong with it.
    """
    return _parse(uri, folder=True)


def _parse(uri: str, *, folder: bool) -> GcsObject:
    scheme = URI_SCHEME.match(uri)
    if scheme is None or scheme.group(1).lower() != GS_SCHEME:
        raise _invalid(uri, "it does not start with gs://")
    bucket, slash, name = uri[scheme.end() :].partition("/")
    if not bucket:
        raise _invalid(uri, "no bucket name")
    if folder:
        name = name.rstrip("/")
    elif not slash or not name:
        raise _invalid(uri, "no object name after the bucket")
    problem = _bucket_problem(bucket) or (_object_problem(name) if name else None)
    if problem:
        raise _invalid(uri, problem)
    return GcsObject(bucket, name)


def _bucket_problem(bucket: str) -> str | None:
    limit = 222 if "." in bucket else 63
    if not 3 <= len(bucket) <= limit or not _BUCKET.match(bucket):
        return (
            f"bad bucket name {bucket!r} (3-63 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    if ".." in bucket or any(len(part) > 63 for part in bucket.split(".")):
        return f"bad bucket name {bucket!r} (empty or over-long dot-separated part)"
    return None


def _object_problem(name: str) -> str | None:
    if len(name.encode("utf-8", "surrogatepass")) > _OBJECT_NAME_MAX_BYTES:
        return f"object name longer than {_OBJECT_NAME_MAX_BYTES} bytes"
    if _CONTROL_CHARS.search(name):
        return "object name contains control characters"
    if name in (".", ".."):
        return f"object name {name!r} is not allowed"
    if name.endswith("/"):
        return "object name ends with '/' (a folder, not a model file)"
    return None


def _invalid(uri: str, problem: str) -> ModelLoadError:
    return ModelLoadError(f"invalid Cloud Storage URI {uri!r}: {problem}", reason="invalid")


def cache_path(cache_dir: Path, obj: GcsObject, generation: int) -> Path:
    """Where generation ``generation`` of ``obj`` is cached.

    The file name starts with a hash of the object name, so no object name (``..``,
    slashes, long or odd names) can escape ``cache_dir/<bucket>``; the readable tail is
    only for people listing the directory.
    """
    digest = hashlib.sha256(obj.name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    tail = re.sub(r"[^A-Za-z0-9._-]", "_", obj.name.rsplit("/", 1)[-1])[-64:]
    return cache_dir / obj.bucket / f"{digest}-{generation}-{tail}"
