"""Wall-clock time in milliseconds, injectable so tests can move it.

The one clock of the gateway: event receipt times, session and challenge
expiry, rate limits, batch and status timestamps, auction deadlines. Code
that needs the time takes a :data:`Clock` (default :func:`now_ms`) rather
than reading ``time`` itself. Durations (how long something took, a
cool-down) use ``time.monotonic``/``time.perf_counter`` instead, because
the wall clock can jump.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""A function returning milliseconds since the Unix epoch."""


def now_ms() -> int:
    """Milliseconds since the Unix epoch, rounded down (exact integer arithmetic)."""
    return time.time_ns() // 1_000_000
