"""The one wall clock: milliseconds since the epoch, and nobody else reading ``time`` for it."""

from __future__ import annotations

import ast
import time
from pathlib import Path

from gateway.clock import Clock, now_ms

_ROOT = Path(__file__).resolve().parents[2]
#: Wall-clock reads allowed outside gateway/clock.py, and why.
_ALLOWED = {
    # Fabric header timestamps are protobuf Timestamps in nanoseconds, not a Clock.
    "gateway/ledger/proposal.py",
}


def test_now_ms_is_the_wall_clock_in_whole_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    now = now_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(now, int)
    assert before <= now <= after


def test_a_clock_is_any_function_returning_milliseconds() -> None:
    fixed: Clock = lambda: 1_700_000_000_000  # noqa: E731 - a test's clock
    assert fixed() == 1_700_000_000_000


def _wall_clock_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"time", "time_ns"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "time"
    ]


def test_the_gateway_reads_the_wall_clock_in_one_place() -> None:
    # Durations use time.monotonic/perf_counter and are not counted here.
    found = {
        rel: lines
        for p in sorted((_ROOT / "gateway").rglob("*.py"))
        if (rel := str(p.relative_to(_ROOT))) not in _ALLOWED | {"gateway/clock.py"}
        and (lines := _wall_clock_reads(p))
    }
    assert found == {}
    assert _wall_clock_reads(_ROOT / "gateway" / "clock.py")
