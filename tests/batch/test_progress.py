"""The progress line a terminal shows while DirectRunner runs."""

from __future__ import annotations

import io
import time

import pytest

from tests.batch.conftest import SKIP_WITHOUT_BEAM

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)


def test_progress_line_counts_what_was_scored_since_it_started():
    from batch.progress import Counts, ProgressLine

    counts = Counts()
    counts.add(100, 100)  # an earlier run in this process: not shown
    stream = io.StringIO()
    with ProgressLine(counts, stream, interval=0.02):
        counts.add(3, 1)
        deadline = time.monotonic() + 5
        while "3 predicted, 1 errors" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    text = stream.getvalue()
    assert "\rbatch: 3 predicted, 1 errors, " in text.replace("\x1b[K", "")
    assert text.endswith("\r\x1b[K")  # cleared for the summary line
