"""Every benchmark runs at a tiny size and reports something (Fabric ones skip, saying why)."""

from __future__ import annotations

import importlib
import time

import pytest
from report import Section, markdown_table
from runner import BENCHMARKS, Benchmark


@pytest.mark.parametrize("b", BENCHMARKS, ids=lambda b: b.name)
def test_benchmark_runs_at_smoke_size(b: Benchmark) -> None:
    bench = getattr(importlib.import_module(b.module), b.entry)
    messages: list[str] = []
    started = time.monotonic()
    section = bench(True, messages.append)
    assert isinstance(section, Section)
    if section.skipped:
        pytest.skip(f"{b.name}: {section.skipped}")
    assert time.monotonic() - started < 30
    assert messages, "a benchmark shows its progress"
    assert section.tables and all(t.rows for t in section.tables)
    for table in section.tables:
        assert all(len(row) == len(table.columns) for row in table.rows)
        assert markdown_table(table).count("\n") == len(table.rows) + 1
    assert section.figures
