"""Token-bucket rate limits keyed by identity or client address."""

from __future__ import annotations

import math

from gateway.auth.errors import RateLimited
from gateway.clock import Clock, now_ms

_MAX_KEYS = 100_000


class RateLimiter:
    """Allows ``per_minute`` attempts per key, refilled continuously.

    Memory is bounded: when more than 100,000 keys are tracked, the buckets
    that are full again are forgotten (they carry no state worth keeping).
    """

    def __init__(self, per_minute: int, what: str, clock: Clock = now_ms) -> None:
        self._capacity = float(max(1, per_minute))
        self._rate_per_ms = self._capacity / 60_000.0
        self._what = what
        self._clock = clock
        self._buckets: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> None:
        """Take one token for ``key``; raises :class:`RateLimited` when none is left."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate_per_ms)
        if tokens < 1.0:
            retry_s = math.ceil((1.0 - tokens) / self._rate_per_ms / 1000.0)
            self._buckets[key] = (tokens, now)
            raise RateLimited(
                f"too many login attempts for this {self._what}; retry in {retry_s} s",
                retry_after_s=retry_s,
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > _MAX_KEYS:
            self._prune(now)

    def _prune(self, now: int) -> None:
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self._rate_per_ms >= self._capacity
        ]
        for k in full:
            del self._buckets[k]
