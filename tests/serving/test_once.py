"""serving.once: made once by one caller, kept, made again after a failure or a reset."""

from __future__ import annotations

import threading
import time

import pytest

from serving.errors import ModelLoadError
from serving.once import Once
from tests.concurrency import at_once


def test_concurrent_callers_share_one_attempt():
    once: Once[object] = Once()
    calls = []

    def make() -> object:
        calls.append(1)
        time.sleep(0.05)  # long enough for every caller to queue behind this attempt
        return object()

    results = at_once(8, lambda: once.get(make))
    assert len(calls) == 1
    assert len({id(value) for value, _ in results}) == 1
    assert sum(made for _, made in results) == 1
    assert once.peek() is results[0][0]


def test_callers_queued_behind_a_failure_get_its_error_and_the_next_one_retries():
    once: Once[str] = Once()
    failing = threading.Event()
    failing.set()
    calls = []

    def make() -> str:
        calls.append(1)
        time.sleep(0.3)  # every caller has read the attempt count and queued by then
        if failing.is_set():
            raise ModelLoadError("broken", "invalid")
        return "value"

    outcomes = at_once(6, lambda: once.get(make))
    assert len(calls) == 1  # the queued callers did not try again
    assert all(isinstance(e, ModelLoadError) and str(e) == "broken" for e in outcomes)
    assert (once.error is not None, once.attempts, once.loading) == (True, 1, False)
    failing.clear()
    assert once.get(make) == ("value", True)  # a later caller retries
    assert once.error is None
    assert once.get(make) == ("value", False)


def test_reset_forgets_the_value():
    once: Once[int] = Once()
    counter = iter(range(10))
    assert once.get(lambda: next(counter)) == (0, True)
    assert once.reset() == 0
    assert once.peek() is None
    assert once.get(lambda: next(counter)) == (1, True)


def test_other_exceptions_propagate_and_are_retried():
    once: Once[int] = Once()

    def boom() -> int:
        raise RuntimeError("not a ServingError")

    with pytest.raises(RuntimeError):
        once.get(boom)
    assert once.error is None
    assert once.get(lambda: 3) == (3, True)
