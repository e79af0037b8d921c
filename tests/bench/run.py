"""Run one of the benchmark's commands for a smoke test, bounded, servers stopped either way."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600  # a fresh checkout builds the bench models first; a loaded 2-core machine is slow


def run_quick(module: str, out: Path) -> str:
    """``python -m MODULE --quick --out OUT``; its stdout. Fails the test on a non-zero exit.

    On timeout the command gets SIGTERM first (the benchmark stops its servers on it: each
    runs in its own session, which killing the command alone would leave behind), then
    SIGKILL.
    """
    argv = [sys.executable, "-m", module, "--quick", "--out", str(out)]
    process = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(argv[1:])} took over {TIMEOUT_S} s:\n{stderr[-3000:]}")
    assert process.returncode == 0, stderr[-3000:]
    return stdout
