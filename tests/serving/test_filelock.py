"""serving.filelock: one holder of an exclusive lock, many of a shared one, a deadline."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from serving.filelock import LockTimeout, locked
from tests.conftest import REPO

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from serving.filelock import locked\n"
    "with locked(Path(sys.argv[1]), exclusive=True, timeout=5):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(float(sys.argv[2]))\n"
)


def test_an_exclusive_lock_held_by_another_process_times_out(tmp_path):
    path = tmp_path / "entry.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), "1.0"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "held\n"
    started = time.monotonic()
    with (
        pytest.raises(LockTimeout, match=f"{path} stayed locked for more than 0.2 s"),
        locked(path, exclusive=False, timeout=0.2),
    ):
        pass
    assert time.monotonic() - started < 0.9
    # Once the holder is gone (its descriptor closed), the lock is free again.
    holder.wait(timeout=10)
    with locked(path, exclusive=True, timeout=0.2):
        pass


def test_shared_locks_do_not_exclude_each_other_but_exclude_an_exclusive_one(tmp_path):
    path = tmp_path / "entry.lock"
    with (
        locked(path, exclusive=False, timeout=1),
        locked(path, exclusive=False, timeout=1),
        pytest.raises(LockTimeout),
        locked(path, exclusive=True, timeout=0.05),
    ):
        pass


def test_a_lock_in_a_missing_folder_is_an_os_error(tmp_path):
    with (
        pytest.raises(FileNotFoundError),
        locked(tmp_path / "missing" / "entry.lock", exclusive=True, timeout=1),
    ):
        pass
