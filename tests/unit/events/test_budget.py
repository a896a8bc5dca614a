"""Emit budgets: a token bucket per key, with retry_after, off at 0, bounded memory."""

from __future__ import annotations

import pytest

from gateway.events.budget import EmitBudget
from gateway.events.errors import EmitRateLimited


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate_then_retry_after() -> None:
    t = FakeTime()
    budget = EmitBudget(10, 5, "identity", now=t)
    for _ in range(5):
        budget.take("a")
    with pytest.raises(EmitRateLimited) as refused:
        budget.take("a")
    assert refused.value.code == "AL1610"
    assert refused.value.details["retry_after"] == 100
    budget.take("b")  # another key has its own bucket
    t.now += 0.1
    budget.take("a")
    with pytest.raises(EmitRateLimited):
        budget.take("a")
    t.now += 10  # refills up to the burst, not beyond
    for _ in range(5):
        budget.take("a")
    with pytest.raises(EmitRateLimited):
        budget.take("a")


def test_zero_turns_the_budget_off_and_forget_drops_a_key() -> None:
    off = EmitBudget(0, 1, "connection")
    for _ in range(10_000):
        off.take("a")
    t = FakeTime()
    budget = EmitBudget(1, 1, "connection", now=t)
    budget.take("a")
    with pytest.raises(EmitRateLimited):
        budget.take("a")
    budget.forget("a")
    budget.take("a")
