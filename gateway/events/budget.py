"""Emit budgets: how many events one identity, or one connection, may send per second.

A token bucket per key: ``burst`` tokens, refilled at ``rate_per_s``; an
emit takes one. Checked before anything else in the emit path, so a
refused event costs a dictionary lookup and a subtraction, and a flooding
member cannot take the gateway's time from the others. Durations use the
monotonic clock (the wall clock may jump).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from gateway.events.errors import EmitRateLimited

_MAX_KEYS = 100_000


class EmitBudget:
    """``rate_per_s`` events per second per key, with bursts of ``burst``; 0 turns it off.

    Memory is bounded: beyond 100,000 keys, the buckets that are full again
    are forgotten (they hold nothing worth keeping).
    """

    __slots__ = ("_buckets", "_burst", "_now", "_rate", "_what")

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        what: str,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = float(rate_per_s)
        self._burst = float(max(1, burst))
        self._what = what
        self._now = now
        self._buckets: dict[str, list[float]] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, key: str) -> None:
        """Spend one token of ``key``; raises :class:`EmitRateLimited` with
        ``retry_after`` (whole milliseconds until a token is back, like Overloaded's)
        when none is left."""
        if self._rate <= 0:
            return
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._prune(now)
            self._buckets[key] = [self._burst - 1.0, now]
            return
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens < 1.0 - 1e-9:  # float refill must not miss a token by an ulp
            bucket[0] = tokens
            retry = max(1, math.ceil((1.0 - tokens) / self._rate * 1000))
            raise EmitRateLimited(
                f"too many events from this {self._what} (at most {self._rate:g}/s, bursts of "
                f"{self._burst:g}): retry after {retry} ms",
                retry_after=retry,
            )
        bucket[0] = max(0.0, tokens - 1.0)

    def forget(self, key: str) -> None:
        """Drop ``key``'s bucket (a connection that closed)."""
        self._buckets.pop(key, None)

    def _prune(self, now: float) -> None:
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self._rate >= self._burst
        ]
        for k in full:
            del self._buckets[k]


__all__ = ["EmitBudget"]
