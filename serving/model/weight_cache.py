"""XNNPACK's packed weights, packed once per instance into a file every engine maps.

LiteRT's CPU engine repacks a model's weights into XNNPACK's layout when it is built:
without a cache, every engine of every worker holds its own packed copy (1x the weights
each). Given ``xnnpack_weight_cache_path``, the first engine packs into that file and
every later one, in this process or another, maps it instead (checked on LiteRT 2.3.0:
128 MB of float32 weights, 4 engines in 136 MB of PSS; a mapped build takes 2-3 ms).

XNNPACK's own handling of that file is not enough to serve from, so this module owns it:

- **Key.** The file name carries the model's content digest, the runtime's version and a
  digest of the CPU's features: packed weights are only valid for the model, the runtime
  build and the kernels they were made with.
- **Atomic creation.** A process packs only under an exclusive ``flock`` and maps only
  under a shared one, and a manifest written last (by rename) vouches for a finished
  file: two workers starting together never both pack and never map a half-written file.
- **Never wrong.** A file without a manifest (a crash while packing), with a manifest of
  another model or runtime, or whose size, inode or mtime differ from the manifest's (a
  truncated or foreign file copied there) is deleted and packed again. XNNPACK alone
  would rebuild a truncated file but silently pack a foreign one into private memory.
- **Fallbacks.** A cache folder that cannot be created or locked (read-only), or that has
  no room for the packed weights, means packing into process memory, said once by the
  caller's log line. Room is checked before packing because XNNPACK aborts the whole
  process when the file system fills up under it (checked: SIGABRT on a full tmpfs).

On Cloud Run the temp dir is memory: the packed file costs the instance about 1x the
model's weights, once, whatever the number of workers and engines.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from serving.filelock import locked
from serving.model.model_file import FileIdentity, ModelFile

T = TypeVar("T")

FORMAT = 1  # bump when the manifest's meaning changes: older files are then repacked
SUFFIX = ".xnnpack"
# XNNPACK's packed weights measured 1.000-1.001x the .tflite file (float32 and int8 MLPs);
# the margin covers alignment padding and the file's header and index.
ROOM_FACTOR = 1.1
ROOM_MARGIN_BYTES = 1 << 20


class CacheState(enum.Enum):
    """What the cache did for an engine."""

    MAPPED = "mapped"  # a finished file existed: mapped, nothing packed
    PACKED = "packed"  # this process packed the file (then mapped it)
    PRIVATE = "private"  # no usable cache: packed into this process's memory


@dataclass(frozen=True)
class CacheUse:
    """The outcome of one :meth:`WeightCache.build`, for the load log."""

    state: CacheState
    path: Path | None
    bytes: int  # size of the packed file (0 when private)
    reason: str | None = None  # why the cache was rebuilt, or why it was not used


@dataclass(frozen=True)
class CacheKey:
    """Everything packed weights depend on."""

    model_sha256: str
    runtime: str
    cpu: str

    @property
    def file_name(self) -> str:
        import hashlib  # OpenSSL, 2 ms: only for a model with packed weights

        build = hashlib.sha256(f"{self.runtime}\n{self.cpu}".encode()).hexdigest()[:12]
        return f"{self.model_sha256[:24]}-{build}{SUFFIX}"

    def manifest(self, path: Path) -> dict[str, object]:
        stat = path.stat()
        return {
            "format": FORMAT,
            "model_sha256": self.model_sha256,
            "runtime": self.runtime,
            "cpu": self.cpu,
            "bytes": stat.st_size,
            "inode": stat.st_ino,
            "mtime_ns": stat.st_mtime_ns,
        }


def cpu_features() -> str:
    """A digest of what decides which kernels XNNPACK picks: the CPU model and its flags."""
    wanted = ("model name", "flags", "features", "cpu part", "cpu implementer")
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in wanted and key not in found:
                found[key] = " ".join(sorted(value.split()))
    text = os.uname().machine + "\n" + "\n".join(f"{k}={found[k]}" for k in sorted(found))
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


class WeightCache:
    """Packed-weights files in ``directory``, shared by every process of the instance."""

    def __init__(self, directory: Path, *, runtime: str, timeout: float) -> None:
        self.directory = Path(directory)
        self.runtime = runtime
        self.timeout = timeout
        self._cpu: str | None = None
        self._keys: dict[FileIdentity, CacheKey] = {}

    def key(self, model: ModelFile) -> CacheKey:
        """The key of ``model``'s packed weights (its digest memoised per file version)."""
        found = self._keys.get(model.identity)
        if found is None:
            if self._cpu is None:
                self._cpu = cpu_features()
            found = self._keys[model.identity] = CacheKey(
                self._digest(model), self.runtime, self._cpu
            )
        return found

    def build(self, model: ModelFile, build: Callable[[str], T]) -> tuple[T, CacheUse]:
        """``build(cache_path)`` with a finished packed file, packing it first if needed.

        ``build("")`` (no cache: private packing) when the folder cannot be used; the
        returned :class:`CacheUse` says which happened and why. Errors raised by
        ``build`` itself propagate (the lock is released).
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            key = self.key(model)
        except OSError as e:
            return build(""), self._private(f"cache folder {self.directory} unusable: {e}")
        path = self.directory / key.file_name
        lock = path.with_name(path.name + ".lock")
        try:
            with locked(lock, exclusive=False, timeout=self.timeout):
                if self._finished(path, key) is None:
                    return build(str(path)), CacheUse(CacheState.MAPPED, path, _size(path))
            with locked(lock, exclusive=True, timeout=self.timeout):
                problem = self._finished(path, key)
                if problem is None:  # another process packed it while we waited
                    return build(str(path)), CacheUse(CacheState.MAPPED, path, _size(path))
                return self._pack(model, key, path, problem, build)
        except OSError as e:
            return build(""), self._private(f"cache {path} unusable: {e}")

    def _pack(
        self,
        model: ModelFile,
        key: CacheKey,
        path: Path,
        problem: str,
        build: Callable[[str], T],
    ) -> tuple[T, CacheUse]:
        """Pack into ``path`` (exclusive lock held), then vouch for it with the manifest."""
        manifest = _manifest_path(path)
        manifest.unlink(missing_ok=True)
        path.unlink(missing_ok=True)  # processes mapping the old file keep their copy
        room = _free_bytes(self.directory)
        needed = int(model.size * ROOM_FACTOR) + ROOM_MARGIN_BYTES
        if room is not None and room < needed:
            return build(""), self._private(
                f"cache folder {self.directory} has {room} bytes free, the packed weights "
                f"need about {needed}"
            )
        result = build(str(path))
        if _size(path) == 0:  # XNNPACK could not write it and packed privately itself
            path.unlink(missing_ok=True)
            return result, self._private(f"XNNPACK wrote nothing to {path}")
        tmp = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(key.manifest(path)))
        os.replace(tmp, manifest)
        reason = None if problem == "absent" else f"repacked: {problem}"
        return result, CacheUse(CacheState.PACKED, path, _size(path), reason)

    def _finished(self, path: Path, key: CacheKey) -> str | None:
        """None if ``path`` is a finished file for ``key``, else what is wrong with it."""
        if not path.exists():
            return "absent"
        try:
            manifest = json.loads(_manifest_path(path).read_text())
        except (OSError, ValueError):
            return "no manifest (packing was interrupted)"
        if not isinstance(manifest, dict):
            return "malformed manifest"
        try:
            actual = key.manifest(path)
        except OSError as e:
            return f"unreadable: {e}"
        for field in ("format", "model_sha256", "runtime", "cpu", "bytes", "inode", "mtime_ns"):
            if manifest.get(field) != actual[field]:
                return f"{field} is {actual[field]!r}, its manifest says {manifest.get(field)!r}"
        return None

    def _digest(self, model: ModelFile) -> str:
        """The model's sha256, read once per file version: later workers read the memo."""
        return self.remembered(model, "sha256", model.sha256)

    def remembered(self, model: ModelFile, topic: str, compute: Callable[[], str]) -> str:
        """``compute()`` once per version of the model file and instance, then from the memo.

        The memo (``memo/<device-inode-size-mtime>.<topic>`` in the cache folder) is keyed
        by the file's identity, which a replaced or rewritten file changes. A folder that
        cannot be written just means computing again.
        """
        memo = self.directory / "memo" / f"{model.identity.text()}.{topic}"
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return memo.read_text()
        value = compute()
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(value)
            os.replace(tmp, memo)
        return value

    def _private(self, reason: str) -> CacheUse:
        return CacheUse(CacheState.PRIVATE, None, 0, reason)


def discard(path: Path) -> bool:
    """Delete a packed-weights file and its manifest; False if it is busy or undeletable.

    For a model that is unloaded (a repository making room): on Cloud Run the file is
    memory. Taken only when no process is packing or mapping it right now (the exclusive
    lock, without waiting); a process that mapped it earlier keeps its pages until it closes
    its engine, and the next build packs a fresh file.
    """
    try:
        with locked(path.with_name(path.name + ".lock"), exclusive=True, timeout=0):
            _manifest_path(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _free_bytes(directory: Path) -> int | None:
    try:
        stat = os.statvfs(directory)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize
