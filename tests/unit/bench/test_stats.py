"""The benchmarks' own statistics: the nearest-rank percentile and the capacity search."""

from __future__ import annotations

import itertools
import random

import pytest
from stats import Trial, find_capacity, latency_summary, percentile


def test_percentile_is_the_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    random.Random(7).shuffle(values)
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99  # not 100: 99 % of the values are ≤ 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile(values, 0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floats


def test_percentile_rounds_the_rank_up_and_returns_an_observed_value() -> None:
    assert percentile([10.0, 20.0, 30.0], 0.5) == 20.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 20.0  # rank ceil(2.0) = 2
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.51) == 30.0  # rank ceil(2.04) = 3
    # Fewer than 100 samples: the p99 is the maximum.
    assert percentile([5.0, 1.0, 3.0], 0.99) == 5.0
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_percentile_agrees_with_the_definition_on_random_data() -> None:
    rng = random.Random(11)
    for n, q in itertools.product((1, 2, 3, 10, 99, 100, 101, 1000), (0.01, 0.5, 0.9, 0.99)):
        values = [rng.random() for _ in range(n)]
        p = percentile(values, q)
        assert p in values
        # The smallest value with at least q of the values at or below it.
        at_or_below = sum(v <= p for v in values)
        assert at_or_below >= q * n - 1e-9
        assert sum(v < p for v in values) < q * n


def test_latency_summary() -> None:
    s = latency_summary([3.0, 1.0, 2.0, 4.0])
    assert s == {"n": 4, "p50": 2.0, "p99": 4.0, "max": 4.0}
    assert latency_summary([]) == {"n": 0, "p50": None, "p99": None, "max": None}


class FakeServer:
    """Passes every trial at or below ``capacity`` events/s; counts the trials."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.rates: list[float] = []

    def __call__(self, rate: float) -> Trial:
        self.rates.append(rate)
        return Trial(rate, rate <= self.capacity, "" if rate <= self.capacity else "too fast")


@pytest.mark.parametrize("capacity", [1.0, 37.0, 999.0, 5000.0, 123456.0])
def test_climb_and_bisect_find_the_capacity_within_tolerance(capacity: float) -> None:
    server = FakeServer(capacity)
    cap = find_capacity(server, start=10, max_rate=1e6, min_rate=0.5, bisect_steps=8, max_trials=30)
    assert cap.stopped == "bisected"
    assert cap.rate is not None and cap.rate <= capacity
    assert cap.rate >= capacity / 1.1  # within the default 10 % tolerance
    assert cap.best is not None and cap.best.ok
    assert cap.failed is not None and not cap.failed.ok and cap.failed.rate > capacity
    assert cap.failed.rate <= cap.rate * 1.1
    assert server.rates == [t.rate for t in cap.trials]


def test_climb_stops_at_the_trial_count_bound_with_the_best_pass_so_far() -> None:
    server = FakeServer(1e9)
    cap = find_capacity(server, start=1, max_rate=1e12, factor=2, max_trials=5)
    assert server.rates == [1, 2, 4, 8, 16]
    assert cap.rate == 16 and cap.failed is None and cap.stopped == "trial count bound"


def test_climb_stops_at_the_time_bound() -> None:
    now = iter(range(100))
    server = FakeServer(1e9)
    # The clock advances one second per reading; a budget of 3 s allows 2 trials.
    cap = find_capacity(server, start=1, max_rate=1e12, budget_s=3, clock=lambda: next(now))
    assert len(server.rates) == 2 and cap.stopped == "time bound"
    assert cap.rate == server.rates[-1]


def test_climb_stops_at_max_rate_when_everything_passes() -> None:
    cap = find_capacity(FakeServer(1e9), start=10, max_rate=100, factor=3)
    assert [t.rate for t in cap.trials] == [10, 30, 90, 100]
    assert cap.rate == 100 and cap.stopped == "max rate 100 passed"


def test_start_too_high_descends_until_a_pass() -> None:
    server = FakeServer(3.0)
    cap = find_capacity(server, start=100, max_rate=1000, min_rate=0.1, bisect_steps=10)
    assert server.rates[:4] == [100, 50, 25, 12.5]
    assert cap.rate is not None and 3.0 / 1.1 <= cap.rate <= 3.0


def test_nothing_passes_gives_no_rate() -> None:
    server = FakeServer(0.0)
    cap = find_capacity(server, start=8, max_rate=100, min_rate=1, factor=2)
    assert server.rates == [8, 4, 2, 1]
    assert cap.rate is None and cap.best is None and cap.stopped == "failed down to 1"


def test_a_noisy_failure_below_capacity_never_reports_a_rate_that_did_not_pass() -> None:
    rates_ok = {10.0: True, 20.0: False, 15.0: True, 17.5: True, 18.75: False}

    def noisy(rate: float) -> Trial:
        return Trial(rate, rates_ok.get(rate, False))

    cap = find_capacity(noisy, start=10, max_rate=1000, bisect_steps=5, tolerance=0.01)
    assert cap.rate == 17.5
    assert all(t.ok for t in cap.trials if t.rate == cap.rate)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        find_capacity(FakeServer(1), start=0, max_rate=10)
    with pytest.raises(ValueError):
        find_capacity(FakeServer(1), start=20, max_rate=10)
    with pytest.raises(ValueError):
        find_capacity(FakeServer(1), start=1, max_rate=10, factor=1)
