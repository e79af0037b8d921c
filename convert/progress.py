"""A progress bar for calibration and evaluation that stays out of the way.

Bars go to the terminal's stderr as it was when the CLI started, so they still show while
TensorFlow's converter output is captured (see :mod:`convert.quiet`). They appear only on
a terminal and only for runs longer than a second.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

_stream: TextIO | None = None


def keep_terminal() -> TextIO:
    """A private duplicate of stderr, made once, that survives fd 2 being redirected.

    The CLI calls this first thing, before any output is captured.
    """
    global _stream
    if _stream is None:
        try:
            _stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (OSError, ValueError):  # stderr without a file descriptor (e.g. in pytest)
            _stream = sys.stderr
    return _stream


def progress(items: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    """Yield ``items``, drawing a bar labelled ``desc`` on a terminal for long runs."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with ai-edge-litert; without it, no bar
        yield from items
        return
    stream = keep_terminal()
    disable = not (hasattr(stream, "isatty") and stream.isatty())
    with tqdm(
        items, total=total, desc=desc, file=stream, disable=disable, delay=1.0, leave=False
    ) as bar:
        yield from bar
