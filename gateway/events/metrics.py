"""Counters and histograms of the fast path, rendered by ``GET /metrics``.

Plain attributes updated inline (no locks: one event loop owns them), so
recording a sample costs a few attribute writes.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Final

# Upper bounds in seconds, Prometheus style.
ACK_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclasses.dataclass
class Histogram:
    bounds: tuple[float, ...] = ACK_BUCKETS
    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(ACK_BUCKETS) + 1))
    total: float = 0.0
    samples: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.samples += 1


@dataclasses.dataclass
class GatewayMetrics:
    """Everything ``/metrics`` reports."""

    connected_clients: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0
    events_rejected: dict[str, int] = dataclasses.field(default_factory=dict)
    deliveries: int = 0
    slow_consumer_disconnects: int = 0
    commits: int = 0
    commit_failures: int = 0
    commit_queue_depth: int = 0
    logins: int = 0
    login_refusals: dict[str, int] = dataclasses.field(default_factory=dict)
    ack_latency: Histogram = dataclasses.field(default_factory=Histogram)
    commit_latency: Histogram = dataclasses.field(default_factory=Histogram)
    # Accepted-event rate over the last complete second, for people reading /metrics by eye.
    events_per_second: float = 0.0

    def reject(self, code: str) -> None:
        self.events_rejected[code] = self.events_rejected.get(code, 0) + 1

    def refuse_login(self, code: str) -> None:
        self.login_refusals[code] = self.login_refusals.get(code, 0) + 1
