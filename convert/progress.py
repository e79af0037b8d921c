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


def keep_terminal() -> TextIO | None:
    """A private duplicate of stderr when it is a terminal (else None), kept once made.

    The CLI calls this first thing, before fd 2 is ever redirected, so that bars drawn
    later still reach the terminal.
    """
    global _stream
    if _stream is None:
        try:
            if os.isatty(sys.stderr.fileno()):
                _stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (AttributeError, OSError, ValueError):  # no real descriptor (e.g. under pytest)
            pass
    return _stream


def progress(items: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    """Yield ``items``, drawing a bar labelled ``desc`` on a terminal for long runs."""
    stream = keep_terminal()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with ai-edge-litert; without it, no bar
        stream = None
    if stream is None:
        yield from items
        return
    with tqdm(items, total=total, desc=desc, file=stream, delay=1.0, leave=False) as bar:
        yield from bar
