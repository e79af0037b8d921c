"""The progress line a terminal shows while DirectRunner runs."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.batch.conftest import SKIP_WITHOUT_BEAM, write_jsonl
from tests.conftest import REPO

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


@pytest.mark.slow
def test_the_command_shows_progress_on_a_terminal_only(tmp_path, digits_model):
    """30,000 rows take a few seconds: long enough for the 1 s progress line."""
    rows = np.random.default_rng(0).random((30_000, 8, 8, 1)).round(2)
    jsonl = write_jsonl(tmp_path / "rows.jsonl", [row.tolist() for row in rows])
    command = [sys.executable, "-m", "batch", "--model", str(digits_model), "--input", str(jsonl)]
    primary, secondary = pty.openpty()
    seen = bytearray()

    def drain() -> None:  # read while it runs: a full terminal buffer would block the writer
        with contextlib.suppress(OSError):  # EIO once the other side is closed
            while chunk := os.read(primary, 65536):
                seen.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        result = subprocess.run(
            [*command, "--output", str(tmp_path / "tty")],
            cwd=REPO, stdout=subprocess.PIPE, stderr=secondary, timeout=300, check=False,
        )  # fmt: skip
    finally:
        os.close(secondary)
        reader.join(timeout=30)
        os.close(primary)
    assert result.returncode == 0
    assert b"\r\x1b[Kbatch: " in seen
    assert b" predicted, 0 errors, " in seen
    assert b"python -m batch: 30000 predicted, 0 errors" in result.stdout

    piped = subprocess.run(
        [*command, "--output", str(tmp_path / "pipe")],
        cwd=REPO, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert piped.returncode == 0
    assert b"batch: " not in piped.stderr.replace(b"python -m batch", b"")
