"""Admission: which rule refuses, and the retry_after a refusal carries."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.events.admission import Admission, AdmissionLimits
from gateway.events.errors import Overloaded


def test_queue_bound_refuses_with_the_smallest_retry_after() -> None:
    admission = Admission(AdmissionLimits(queue_limit=10))
    admission.check(9, 0.0)
    with pytest.raises(Overloaded) as refused:
        admission.check(10, 0.001)
    assert refused.value.code == "AL1607"
    assert refused.value.details["retry_after"] == 100
    assert admission.refused == {"queue": 1, "wait": 0, "lag": 0}


def test_wait_rule_and_retry_after_growing_with_the_backlog_up_to_its_cap() -> None:
    admission = Admission(AdmissionLimits(queue_limit=1000, max_queue_wait_ms=40))
    admission.check(5, 0.039)
    with pytest.raises(Overloaded) as refused:
        admission.check(5, 0.3)
    assert refused.value.details["retry_after"] == 600
    with pytest.raises(Overloaded) as capped:
        admission.check(5, 60.0)
    assert capped.value.details["retry_after"] == 5000
    assert admission.refused["wait"] == 2
    # 0 turns the rule off.
    Admission(AdmissionLimits(queue_limit=1000, max_queue_wait_ms=0)).check(5, 60.0)


async def test_loop_lag_rule_closes_while_the_loop_is_late_and_reopens_after() -> None:
    admission = Admission(AdmissionLimits(queue_limit=1000, max_loop_lag_ms=30, lag_period_ms=5))
    admission.start()
    try:
        await asyncio.sleep(0.02)
        admission.check(0, 0.0)
        time.sleep(0.08)  # noqa: ASYNC251 -- blocking the loop is the point: its next tick runs late
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert admission.loop_lag_ms >= 30
        with pytest.raises(Overloaded):
            admission.check(0, 0.0)
        for _ in range(100):  # punctual ticks again (bounded: a busy machine is slower)
            await asyncio.sleep(0.01)
            if admission.loop_lag_ms < 30:
                break
        assert admission.loop_lag_ms < 30
        admission.check(0, 0.0)
    finally:
        admission.stop()
