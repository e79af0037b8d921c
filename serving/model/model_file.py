"""The model file, held open for as long as the model is served.

Engines are built from a path, so that the runtime maps the file instead of copying its
bytes into each process's heap. The path they get is the open descriptor's
(``/proc/self/fd/N`` on Linux), not the name: a file replaced or deleted after the load
cannot give a later engine of the same model another model, because the descriptor keeps
the original inode alive.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from serving.errors import LoadFailure, ModelLoadError
from serving.not_tflite import convert_first

_PROC_FD = Path("/proc/self/fd")


@dataclass(frozen=True)
class FileIdentity:
    """What tells two versions of a file apart without reading it (as make and rsync do)."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    def text(self) -> str:
        """One token for file names: ``device-inode-size-mtime``."""
        return f"{self.device}-{self.inode}-{self.size}-{self.mtime_ns}"


class ModelFile:
    """An open, read-only model file; :attr:`path` names it for the engines."""

    _fd = -1  # until the file is open

    def __init__(self, path: str) -> None:
        if os.path.isdir(path):
            if hint := convert_first(path):
                raise ModelLoadError(hint, reason=LoadFailure.NOT_TFLITE)
            raise ModelLoadError(
                f"model path is a directory, not a .tflite file: {path}", reason="missing"
            )
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise ModelLoadError(f"model file not found: {path}", reason="missing") from e
        except OSError as e:
            raise ModelLoadError(
                f"model file could not be read: {path}: {e.strerror}", reason="missing"
            ) from e
        stat = os.fstat(self._fd)
        self.name = path
        self.identity = FileIdentity(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        pinned = _PROC_FD / str(self._fd)
        self.path = str(pinned) if pinned.exists() else path

    @property
    def size(self) -> int:
        """Bytes in the file."""
        return self.identity.size

    def mapped(self) -> mmap.mmap | bytes:
        """The whole file as a read-only mapping (page cache, not heap); empty: ``b""``."""
        if self.size == 0:
            return b""
        return mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)

    def sha256(self) -> str:
        """The content digest (hex), read through the open descriptor into one buffer (a
        fresh 1 MiB block per read would leave megabytes in the allocator's heap)."""
        import hashlib  # OpenSSL: 2 ms of import a model that needs no digest never pays

        digest = hashlib.sha256()
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        offset = 0
        while read := os.preadv(self._fd, [buffer], offset):
            digest.update(view[:read])
            offset += read
        return digest.hexdigest()

    def close(self) -> None:
        """Release the descriptor (engines built from it keep their own mappings)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
