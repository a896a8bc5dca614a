"""The benchmarks' statistics: one percentile, one latency summary, one capacity search.

Every benchmark under ``scripts/bench/`` reports percentiles through
:func:`percentile`, so a p99 from one benchmark compares with a p99 from any
other. The definition is the **nearest rank**: the p-th percentile of n
values is the smallest value such that at least p % of the values are less
than or equal to it, i.e. ``sorted(values)[ceil(q * n) - 1]``. It is always a
value that was observed (no interpolation between two samples), and it never
reports a latency lower than the q-th fraction of what was measured. With
fewer than 100 samples the p99 is the maximum; the reports give the sample
count beside every percentile so that is visible.

(Before this module there were two: ``sorted[int(q * n)]``, one rank too high
whenever ``q * n`` is whole, and ``sorted[round(q * (n - 1))]``, which can be one
rank too low. Neither is kept.)
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0 < q ≤ 1; q = 0 gives the minimum); None when empty."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    # The epsilon keeps a product that floats round up past a whole rank
    # (0.07 * 100 = 7.000000000000001) at that rank.
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[rank - 1]


def latency_summary(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """``{n, p50, p99, max}`` of latencies in milliseconds (percentiles by nearest rank)."""
    return {
        "n": len(values_ms),
        "p50": percentile(values_ms, 0.5),
        "p99": percentile(values_ms, 0.99),
        "max": max(values_ms) if values_ms else None,
    }


@dataclasses.dataclass
class Trial:
    """One run at one offered rate: whether it met the criterion, and its figures."""

    rate: float
    ok: bool
    why: str = ""
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Capacity:
    """What a climb-and-bisect search found.

    ``best`` is the passing trial at the highest rate tried (None when no rate
    passed); ``failed`` the failing trial at the lowest rate above it (None when
    the search stopped at ``max_rate`` or its budget before any failure).
    ``stopped`` says why the search ended.
    """

    best: Trial | None
    failed: Trial | None
    trials: list[Trial]
    stopped: str

    @property
    def rate(self) -> float | None:
        return None if self.best is None else self.best.rate


def find_capacity(
    trial: Callable[[float], Trial],
    *,
    start: float,
    max_rate: float,
    min_rate: float = 1.0,
    factor: float = 2.0,
    bisect_steps: int = 3,
    tolerance: float = 0.1,
    max_trials: int = 12,
    budget_s: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
) -> Capacity:
    """Highest offered rate whose trial passes: climb by ``factor``, then bisect.

    From ``start`` the rate is multiplied by ``factor`` while trials pass (up to
    ``max_rate``); if ``start`` fails, it is divided instead until a trial passes
    or the rate falls below ``min_rate``. The interval between the last pass and
    the first failure is then halved ``bisect_steps`` times, or until its ends
    are within ``tolerance`` (relative) of each other. Bounded in count
    (``max_trials``) and in time (``budget_s``, checked before each trial): the
    answer is then the best pass so far, with ``stopped`` saying so.

    Assumes pass/fail is monotone in the rate; a noisy trial makes the answer
    a lower bound of what passed, never a rate that was not seen to pass.
    """
    if not 0 < min_rate <= start <= max_rate or factor <= 1:
        raise ValueError("need 0 < min_rate <= start <= max_rate and factor > 1")
    trials: list[Trial] = []
    deadline = clock() + budget_s
    best: Trial | None = None
    failed: Trial | None = None

    def run(rate: float) -> Trial | None:
        if len(trials) >= max_trials or clock() >= deadline:
            return None
        t = trial(rate)
        trials.append(t)
        return t

    def out_of_budget() -> str:
        return "trial count bound" if len(trials) >= max_trials else "time bound"

    rate = start
    first = run(rate)
    if first is None:
        return Capacity(None, None, trials, out_of_budget())
    if first.ok:
        best = first
        while failed is None and rate < max_rate:
            rate = min(max_rate, rate * factor)
            t = run(rate)
            if t is None:
                return Capacity(best, None, trials, out_of_budget())
            if t.ok:
                best = t
            else:
                failed = t
        if failed is None:
            return Capacity(best, None, trials, f"max rate {max_rate:g} passed")
    else:
        failed = first
        while best is None:
            rate = rate / factor
            if rate < min_rate:
                return Capacity(None, failed, trials, f"failed down to {min_rate:g}")
            t = run(rate)
            if t is None:
                return Capacity(None, failed, trials, out_of_budget())
            if t.ok:
                best = t
            else:
                failed = t
    for _ in range(bisect_steps):
        lo, hi = best.rate, failed.rate
        if hi <= lo * (1 + tolerance):
            break
        t = run((lo + hi) / 2)
        if t is None:
            return Capacity(best, failed, trials, out_of_budget())
        if t.ok:
            best = t
        else:
            failed = t
    return Capacity(best, failed, trials, "bisected")
