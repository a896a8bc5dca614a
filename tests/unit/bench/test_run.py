"""``scripts/bench/run``: the smoke run of every benchmark, under a minute, with its results."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

RUN = Path(__file__).resolve().parents[3] / "scripts" / "bench" / "run"


def test_smoke_run_writes_results_for_every_benchmark_in_under_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    out = subprocess.run(
        [str(RUN), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr[-3000:]
    assert elapsed < 60, f"the smoke run took {elapsed:.0f} s"
    (json_file,) = tmp_path.glob("*-smoke.json")
    (md_file,) = tmp_path.glob("*-smoke.md")
    doc = json.loads(json_file.read_text())
    listed = subprocess.run([str(RUN), "--list"], capture_output=True, text=True, check=True)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert doc["benchmarks"] == names
    assert len(doc["sections"]) == len(names)
    machine = doc["machine"]
    for key in ("cores", "cpu_model", "python", "node", "fabric", "libraries", "load_average"):
        assert key in machine
    assert machine["libraries"]["python-socketio"]
    assert len(doc["load_before"]) == 3 and len(doc["load_after"]) == 3
    ran = [s for s in doc["sections"] if not s["skipped"]]
    assert ran, "at least the benchmarks that need neither Fabric nor Node ran"
    assert all(s["tables"] for s in ran)
    assert all(s["skipped"] for s in doc["sections"] if not s["tables"])
    md = md_file.read_text()
    assert all(f"## {s['name']}" in md for s in doc["sections"])
    # Progress lines, one per benchmark at least, go to stderr.
    assert sum("/" in line and ")" in line for line in out.stderr.splitlines()) >= len(names)


def test_unknown_benchmark_names_are_refused() -> None:
    out = subprocess.run([str(RUN), "no-such-bench"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "unknown benchmark" in out.stderr
