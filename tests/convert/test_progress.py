"""The progress bar: drawn on a terminal for runs over a second, absent otherwise."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest

from convert import progress as progress_module
from convert.progress import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _slow(count: int, seconds: float) -> Iterator[int]:
    for i in range(count):
        time.sleep(seconds / count)
        yield i


def test_long_runs_draw_a_bar_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(progress_module, "_stream", terminal)
    assert list(progress(_slow(30, 1.5), total=30, desc="calibrating")) == list(range(30))
    drawn = terminal.getvalue()
    assert "calibrating:" in drawn
    assert "/30" in drawn


def test_short_runs_draw_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(progress_module, "_stream", terminal)
    assert list(progress(range(1000), total=1000, desc="calibrating")) == list(range(1000))
    assert terminal.getvalue() == ""


def test_without_a_terminal_items_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "_stream", None)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # redirected: no file descriptor at all
    assert progress_module.keep_terminal() is None
    assert list(progress(iter("abc"), total=3, desc="tflite")) == ["a", "b", "c"]
