"""Admission: which rule refuses, the retry_after a refusal carries, and fairness
between identities (with a fake monotonic clock)."""

from __future__ import annotations

import asyncio
import math
import random
import time

import pytest

from gateway.events.admission import Admission, AdmissionLimits, RecentShares
from gateway.events.errors import Overloaded


def test_queue_bound_refuses_with_the_smallest_retry_after() -> None:
    admission = Admission(AdmissionLimits(queue_limit=10))
    admission.check(9, 0.0, "a")
    with pytest.raises(Overloaded) as refused:
        admission.check(10, 0.001, "a")
    assert refused.value.code == "AL1607"
    assert refused.value.details["retry_after"] == 100
    assert admission.refused == {"queue": 1, "wait": 0, "lag": 0}


def test_wait_rule_and_retry_after_growing_with_the_backlog_up_to_its_cap() -> None:
    admission = Admission(AdmissionLimits(queue_limit=1000, max_queue_wait_ms=40))
    admission.check(5, 0.039, "a")
    with pytest.raises(Overloaded) as refused:
        admission.check(5, 0.3, "a")
    assert refused.value.details["retry_after"] == 600
    with pytest.raises(Overloaded) as capped:
        admission.check(5, 60.0, "a")
    assert capped.value.details["retry_after"] == 5000
    assert admission.refused["wait"] == 2
    # 0 turns the rule off.
    Admission(AdmissionLimits(queue_limit=1000, max_queue_wait_ms=0)).check(5, 60.0, "a")


async def test_loop_lag_rule_closes_while_the_loop_is_late_and_reopens_after() -> None:
    admission = Admission(AdmissionLimits(queue_limit=1000, max_loop_lag_ms=30, lag_period_ms=5))
    admission.start()
    try:
        await asyncio.sleep(0.02)
        admission.check(0, 0.0, "a")
        time.sleep(0.08)  # noqa: ASYNC251 -- blocking the loop is the point: its next tick runs late
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert admission.loop_lag_ms >= 30
        with pytest.raises(Overloaded):
            admission.check(0, 0.0, "a")
        for _ in range(100):  # punctual ticks again (bounded: a busy machine is slower)
            await asyncio.sleep(0.01)
            if admission.loop_lag_ms < 30:
                break
        assert admission.loop_lag_ms < 30
        admission.check(0, 0.0, "a")
    finally:
        admission.stop()


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admitted(admission: Admission, depth: int, wait_s: float, identity: str) -> bool:
    try:
        admission.check(depth, wait_s, identity)
    except Overloaded:
        return False
    return True


def test_when_a_rule_trips_the_heaviest_identity_is_refused_and_a_light_one_served() -> None:
    t = FakeTime()
    admission = Admission(AdmissionLimits(queue_limit=1000, max_queue_wait_ms=40), now=t)
    # 2,000/s from the flooder, 50/s from the witness, for a second: nothing trips yet.
    for ms in range(1000):
        t.now += 0.001
        assert _admitted(admission, 5, 0.0, "flooder")
        if ms % 20 == 0:
            assert _admitted(admission, 5, 0.0, "witness")
    # Now the oldest event has waited 60 ms: the flooder is refused, the witness is not.
    with pytest.raises(Overloaded) as refused:
        admission.check(5, 0.06, "flooder")
    assert refused.value.details == {"retry_after": 120}
    assert refused.value.message == (
        "the gateway is overloaded (an event has waited 60 ms for its commit): retry after 120 ms"
    )
    assert _admitted(admission, 5, 0.06, "witness")
    # So is an identity never seen before (its share is nothing yet).
    assert _admitted(admission, 5, 0.06, "newcomer")
    assert admission.refused == {"queue": 0, "wait": 1, "lag": 0}
    assert admission.spared == 2
    # The hard queue bound refuses everyone alike.
    with pytest.raises(Overloaded):
        admission.check(1000, 0.06, "witness")
    assert admission.refused["queue"] == 1


def test_a_flooder_refused_long_enough_loses_its_share_and_is_served_again() -> None:
    t = FakeTime()
    admission = Admission(
        AdmissionLimits(queue_limit=1000, max_queue_wait_ms=40, fair_half_life_ms=500), now=t
    )
    for _ in range(2000):
        t.now += 0.0005
        admission.check(0, 0.0, "flooder")
    for _ in range(10):
        admission.check(0, 0.0, "witness")
    assert not _admitted(admission, 0, 0.05, "flooder")
    # 5 s later (10 half-lives) its 2,000 recent events count for about one and a
    # half: the witness's ten new ones are now the larger share, so it is refused.
    t.now += 5.0
    for _ in range(10):
        admission.check(0, 0.0, "witness")
    assert admission.shares.count("flooder") < 2
    assert _admitted(admission, 0, 0.05, "flooder")
    assert not _admitted(admission, 0, 0.05, "witness")


def test_identities_at_equal_shares_are_all_refused() -> None:
    t = FakeTime()
    admission = Admission(AdmissionLimits(queue_limit=1000, max_loop_lag_ms=0), now=t)
    for _ in range(3000):
        for who in ("a", "b", "c"):
            t.now += 0.0001
            admission.check(0, 0.0, who)
    assert [_admitted(admission, 0, 0.1, who) for who in ("a", "b", "c")] == [False] * 3


def _reference_refusal(limits: AdmissionLimits, depth: int, wait_s: float) -> str | None:
    """Issue 15's admission, before fairness: what a single identity must still get."""
    if depth >= limits.queue_limit:
        return f"{depth} events wait for a commit"
    if wait_s * 1000 >= limits.max_queue_wait_ms:
        return f"an event has waited {wait_s * 1000:.0f} ms for its commit"
    return None


def test_a_single_identity_is_refused_exactly_as_without_fairness() -> None:
    rng = random.Random(19)
    t = FakeTime()
    limits = AdmissionLimits(queue_limit=500, max_queue_wait_ms=40, max_loop_lag_ms=0)
    admission = Admission(limits, now=t)
    refusals = 0
    for _ in range(20_000):
        t.now += rng.choice([0.0, 1e-6, 0.0004, 0.003, 0.2, 3.0, 400.0])
        depth = rng.choice([0, 10, 499, 500, 900])
        wait_s = rng.choice([0.0, 0.039, 0.04, 0.3, 9.0])
        why = _reference_refusal(limits, depth, wait_s)
        if why is None:
            admission.check(depth, wait_s, "only")
            continue
        refusals += 1
        with pytest.raises(Overloaded) as refused:
            admission.check(depth, wait_s, "only")
        retry = int(min(5000, max(100, 2000 * wait_s)))
        assert refused.value.message == f"the gateway is overloaded ({why}): retry after {retry} ms"
        assert refused.value.details == {"retry_after": retry}
    assert refusals > 5000
    assert admission.spared == 0


def test_recent_shares_match_a_plain_recomputation() -> None:
    """The O(1) sums against the obvious O(n) definition, on random traffic."""
    rng = random.Random(7)
    t = FakeTime()
    half_life = 0.25
    shares = RecentShares(half_life, 1000, now=t)
    log: list[tuple[str, float]] = []
    names = [f"id{i}" for i in range(12)]
    weights = [2.0**-i for i in range(12)]
    checked = 0
    for _ in range(5000):
        t.now += rng.expovariate(2000.0)
        who = rng.choices(names, weights)[0]
        shares.add(who)
        log.append((who, t.now))
        if rng.random() < 0.02:
            counts = dict.fromkeys(names, 0.0)
            for name, at in log:
                counts[name] += 0.5 ** ((t.now - at) / half_life)
            total = sum(counts.values())
            squares = sum(c * c for c in counts.values())
            for name in names:
                assert math.isclose(shares.count(name), counts[name], rel_tol=1e-9, abs_tol=1e-12)
                margin = counts[name] * total - 0.5 * squares
                if abs(margin) > 1e-6 * squares:  # clear of the tolerance band
                    assert shares.at_fair_share(name) == (margin > 0), name
                    checked += 1
            heaviest = max(names, key=counts.__getitem__)
            assert shares.at_fair_share(heaviest)
    assert checked > 500


def test_memory_is_bounded_and_negligible_counts_make_room() -> None:
    t = FakeTime()
    shares = RecentShares(0.5, 100, now=t)
    for i in range(1000):
        shares.add(f"member-{i}")
    assert len(shares) == 100
    # Beyond the bound an identity is not counted: it stays light.
    assert shares.count("member-500") == 0.0
    assert not shares.at_fair_share("member-500")
    # Ten seconds later (20 half-lives) the old counts are negligible and make room.
    t.now += 10.0
    for i in range(1000, 1050):
        shares.add(f"member-{i}")
    assert len(shares) == 50
    assert shares.count("member-1000") == 1.0
    assert shares.at_fair_share("member-1000")
