"""What a repository holds: ``<repository>/<name>/<version>/model.tflite``, and ``models.json``.

A repository is a local directory or ``gs://bucket/prefix``. Listing reads names only
(and ``models.json``): no model file is opened or downloaded here. Entries that fit no
part of the layout are returned as :class:`Ignored`, for the caller to log.
google-cloud-storage is imported only for a ``gs://`` repository, as in
:mod:`serving.storage.source`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from serving.errors import ModelLoadError
from serving.repository.config import CONFIG_FILE
from serving.repository.names import InvalidSegment, Segment, check
from serving.storage import source
from serving.storage.gcs_uri import URI_SCHEME, parse_gs_prefix

MODEL_FILE = "model.tflite"


@dataclass(frozen=True)
class VersionSource:
    """Where one version's model file is: a local path or a ``gs://`` URI.

    ``generation`` is the object's generation (None for a local file), ``modified_ns`` a
    local file's modification time: a version whose file is overwritten is a new source,
    loaded afresh once the repository is listed again.
    """

    uri: str
    size_bytes: int
    generation: int | None = None
    modified_ns: int | None = None


@dataclass(frozen=True)
class Ignored:
    """An entry that is not part of the layout, and why."""

    entry: str
    why: str


@dataclass(frozen=True)
class Listing:
    """One listing of a repository."""

    location: str
    versions: Mapping[str, Mapping[int, VersionSource]]
    config_file: str
    config_text: bytes | None
    ignored: tuple[Ignored, ...]
    ms: float


def list_repository(location: str, *, cache_dir: Path, timeout: float) -> Listing:
    """List ``location`` (local directory or ``gs://bucket/prefix``) within ``timeout`` s.

    Raises:
        ModelLoadError: the repository is missing, unreadable or unreachable (503).
    """
    started = time.perf_counter()
    if URI_SCHEME.match(location):
        found = _list_gcs(location, cache_dir, timeout)
    else:
        found = _list_local(location)
    versions, config_file, config_text, ignored = found
    frozen = MappingProxyType({n: MappingProxyType(v) for n, v in sorted(versions.items())})
    ms = round((time.perf_counter() - started) * 1000, 1)
    return Listing(location, frozen, config_file, config_text, tuple(ignored), ms)


_Found = tuple[dict[str, dict[int, VersionSource]], str, bytes | None, list[Ignored]]


def _list_local(location: str) -> _Found:
    root = Path(location)
    config_file = str(root / CONFIG_FILE)
    if not root.is_dir():
        raise ModelLoadError(f"model repository {location} is not a directory", reason="missing")
    versions: dict[str, dict[int, VersionSource]] = {}
    ignored: list[Ignored] = []
    config_text = None
    try:
        for entry in sorted(root.iterdir()):
            if entry.name == CONFIG_FILE and entry.is_file():
                config_text = entry.read_bytes()
            elif not entry.is_dir():
                ignored.append(Ignored(str(entry), "not a model folder"))
            elif (problem := _problem(Segment.MODEL, entry.name)) is not None:
                ignored.append(Ignored(str(entry), problem))
            else:
                found = versions.setdefault(entry.name, {})
                for folder in sorted(entry.iterdir()):
                    _local_version(folder, found, ignored)
    except OSError as e:
        raise ModelLoadError(f"model repository {location} unreadable: {e}", reason="source") from e
    return versions, config_file, config_text, ignored


def _local_version(folder: Path, found: dict[int, VersionSource], ignored: list[Ignored]) -> None:
    problem = _problem(Segment.VERSION, folder.name)
    if problem is not None or not folder.is_dir():
        ignored.append(Ignored(str(folder), problem or "not a version folder"))
        return
    for extra in sorted(folder.iterdir()):
        if extra.name != MODEL_FILE:
            ignored.append(Ignored(str(extra), f"not {MODEL_FILE}"))
    model = folder / MODEL_FILE
    if model.is_file():
        stat = model.stat()
        found[int(folder.name)] = VersionSource(str(model), stat.st_size, None, stat.st_mtime_ns)
    else:
        ignored.append(Ignored(str(folder), f"no {MODEL_FILE} in it"))


def _list_gcs(location: str, cache_dir: Path, timeout: float) -> _Found:
    from serving.storage import gcs  # google-cloud-storage only on this branch

    deadline = time.monotonic() + timeout
    folder = parse_gs_prefix(location)
    base = f"gs://{folder.bucket}/{folder.name + '/' if folder.name else ''}"
    skip = len(folder.name) + 1 if folder.name else 0
    versions: dict[str, dict[int, VersionSource]] = {}
    ignored: dict[str, Ignored] = {}  # one line per ignored folder or file
    config_text = None
    for obj in gcs.list_objects(folder, timeout):
        relative = obj.name[skip:]
        if not relative or relative.endswith("/"):
            continue  # a folder placeholder (the console's "create folder")
        parts = relative.split("/")
        if relative == CONFIG_FILE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelLoadError(
                    f"listing {location} took longer than {timeout:g} s", reason="source"
                )
            fetched = source.fetch(base + CONFIG_FILE, cache_dir=cache_dir, timeout=remaining)
            config_text = fetched.path.read_bytes()
            continue
        ignore = _gcs_problem(parts)
        if ignore is not None:
            entry, why = ignore
            ignored.setdefault(entry, Ignored(base + entry, why))
            continue
        source_ = VersionSource(base + relative, obj.size, obj.generation)
        versions.setdefault(parts[0], {})[int(parts[1])] = source_
    return versions, base + CONFIG_FILE, config_text, list(ignored.values())


def _gcs_problem(parts: list[str]) -> tuple[str, str] | None:
    """The ignored entry (its relative name) and why, or None for a version's model file."""
    if len(parts) == 1:
        return parts[0], "not a model folder"
    if (problem := _problem(Segment.MODEL, parts[0])) is not None:
        return parts[0] + "/", problem
    if (problem := _problem(Segment.VERSION, parts[1])) is not None or len(parts) == 2:
        return "/".join(parts[:2]), problem or "not a version folder"
    if len(parts) > 3 or parts[2] != MODEL_FILE:
        return "/".join(parts), f"not {MODEL_FILE}"
    return None


def _problem(kind: Segment, name: str) -> str | None:
    try:
        check(kind, name)
    except InvalidSegment as e:
        return str(e)
    return None
