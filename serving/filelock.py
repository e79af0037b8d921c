"""Advisory file locks between the processes (and threads) of one instance, with a deadline.

gunicorn workers share nothing but the file system, so "only one of us downloads the
model" and "only one of us packs the weights" are decided by ``flock`` on a lock file
beside the shared file. Each call opens its own descriptor, so two threads of one process
exclude each other as two processes do; closing the descriptor releases the lock, so a
process that dies holding one never blocks the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

_POLL_SECONDS = 0.005


class LockTimeout(OSError):
    """The lock stayed held by someone else for longer than the deadline."""


@contextlib.contextmanager
def locked(path: Path, *, exclusive: bool, timeout: float) -> Iterator[None]:
    """Hold ``path``'s lock (created if absent) for the ``with`` block.

    Raises:
        LockTimeout: the lock was not free within ``timeout`` seconds.
        OSError: the lock file cannot be created or opened (read-only or missing folder).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{path} stayed locked for more than {timeout:g} s") from None
                time.sleep(_POLL_SECONDS)
        yield
    finally:
        os.close(fd)
