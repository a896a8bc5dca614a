"""The one wall clock: whole milliseconds since the Unix epoch."""

from __future__ import annotations

import time

from gateway.clock import now_ms


def test_now_ms_is_the_wall_clock_in_whole_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = now_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(now, int)
    assert before <= now <= after
