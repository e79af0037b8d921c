"""serving.admission: requests admitted against the process's memory budget."""

from __future__ import annotations

import threading
import time

import pytest

from serving.admission import COST_PER_BYTE, BodyForm, MemoryBudget, cost
from serving.errors import PayloadTooLarge, ServiceUnavailable


def test_costs_per_wire_form():
    assert cost(BodyForm.JSON, 1000) == 1000 * COST_PER_BYTE[BodyForm.JSON]
    assert cost(BodyForm.BINARY, 1000) < cost(BodyForm.JSON, 1000)


def test_admits_while_it_fits_and_waits_for_a_release():
    budget = MemoryBudget(100, timeout=5)
    first = budget.acquire(60, what="a")
    admitted = threading.Event()

    def second() -> None:
        budget.acquire(60, what="b")
        admitted.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not admitted.wait(0.2)  # 120 > 100: it waits
    budget.release(first)
    assert admitted.wait(5)
    waiter.join(5)
    assert budget.used == 60


def test_a_request_that_cannot_be_admitted_in_time_is_503_with_retry_after():
    budget = MemoryBudget(100, timeout=0.2)
    budget.acquire(90, what="a")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        budget.acquire(20, what="this request")
    assert time.monotonic() - started >= 0.2
    assert raised.value.status_code == 503
    assert raised.value.retry_after == 1
    assert str(raised.value) == (
        "the server is busy: this request needs about 20 bytes of memory and 90 of 100 "
        "are in use; retry shortly"
    )
    assert budget.used == 90  # nothing leaked by the refusal


def test_more_than_the_whole_budget_is_413_at_once():
    budget = MemoryBudget(100, timeout=10)
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge, match="about 101 bytes of memory to decode"):
        budget.acquire(101, what="this request")
    assert time.monotonic() - started < 1


def test_zero_capacity_means_no_budget():
    budget = MemoryBudget(0, timeout=0.1)
    assert budget.acquire(10**12, what="x") == 0
    budget.release(0)
    assert budget.used == 0
