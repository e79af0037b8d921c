"""Keep TensorFlow's chatter off the user's terminal, but keep it for error messages.

TensorFlow and its converter write to file descriptor 2 from C++, past ``sys.stderr``.
:func:`captured_stderr` redirects the descriptor itself into a temporary file for the
duration of a block; the text is then available to explain a failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass


def quiet_tensorflow() -> None:
    """Silence TensorFlow's Python and C++ logging; call before importing TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore", module=r"tensorflow(\..*)?$")
    warnings.filterwarnings("ignore", module=r"keras(\..*)?$")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


@dataclass
class Captured:
    """What was written to fd 2 inside a :func:`captured_stderr` block (filled on exit)."""

    text: str = ""

    def error_lines(self) -> list[str]:
        """Lines that look like errors (``error:``), as the MLIR converter prints them."""
        return [line.strip() for line in self.text.splitlines() if "error:" in line]


@contextlib.contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Redirect fd 2 (C++ and Python writes alike) into a buffer for the block."""
    captured = Captured()
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError):  # no real descriptor (pytest capture): nothing to redirect
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
