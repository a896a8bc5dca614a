"""``scripts/bench/run``: every benchmark, or a named subset, in one bounded run.

    scripts/bench/run                     # the full run (tens of minutes on 2 cores)
    scripts/bench/run --smoke             # everything at a tiny size (< 1 min)
    scripts/bench/run merkle anchoring    # a subset, by name (--list shows the names)
    scripts/bench/run overload connections  # above capacity; 10,000 idle connections
    scripts/bench/run --fabric            # also the benchmarks that bring up a Fabric network

Progress goes to stderr. Results go to ``bench/results/<date>-<machine>.json``
and ``.md`` (``--out`` for another folder; a smoke run's files end in
``-smoke``): the machine (cores, CPU model, memory, load average before and
after, versions of Python, Node, Fabric and the libraries) and every
benchmark's tables and raw figures. Each benchmark bounds its own loops in
count and time; the run as a whole stops starting new benchmarks after
``--max-minutes``. Exit status 1 when a benchmark failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from nodejs import LOCK


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """``module.entry(smoke, progress)`` returns the benchmark's :class:`report.Section`."""

    name: str
    module: str
    what: str
    fabric: bool = False
    entry: str = "bench"


BENCHMARKS = (
    Benchmark("merkle", "merkle", "Merkle roots, streaming memory, proofs"),
    Benchmark("chaincode", "chaincode_bench", "the contracts in-process"),
    Benchmark("ledger", "embedded_ledger", "embedded ledger through the Fabric Gateway client"),
    Benchmark("anchoring", "anchoring", "batched anchoring against one transaction per event"),
    Benchmark("fastpath", "gateway_inprocess", "where the fast path's time goes, in one process"),
    Benchmark(
        "sidebyside",
        "gateway_events",
        "Node socket.io relay, stock python-socketio relay and our gateway, same load",
    ),
    Benchmark(
        "overload",
        "gateway_events",
        "our gateway at 1.5x and 3x its capacity, then back at half",
        entry="bench_overload",
    ),
    Benchmark(
        "connections",
        "connections",
        "idle WebSocket connections on one gateway: memory, connecting, delivery to all",
    ),
    Benchmark("fabric-network", "fabric_network", "native Fabric network timings", fabric=True),
    Benchmark("fabric-client", "fabric_client", "Fabric Gateway client on Fabric", fabric=True),
)


def run(
    chosen: list[Benchmark],
    *,
    smoke: bool,
    fabric: bool,
    max_minutes: float,
    progress: Callable[[str], None],
) -> tuple[list[report.Section], bool]:
    """Run ``chosen`` in order; return their sections and whether all of them ran cleanly."""
    sections: list[report.Section] = []
    ok = True
    deadline = time.monotonic() + max_minutes * 60
    for i, b in enumerate(chosen, 1):
        progress(f"({i}/{len(chosen)}) {b.name}: {b.what}")
        started = time.monotonic()
        if b.fabric and not fabric and not smoke:
            section = report.Section(
                b.what, skipped="opt-in with --fabric (brings up a native network: minutes)"
            )
        elif time.monotonic() > deadline:
            section = report.Section(b.what, skipped=f"the run's {max_minutes:g} min bound passed")
        else:
            try:
                entry = getattr(importlib.import_module(b.module), b.entry)
                section = entry(smoke, progress)
            except Exception as exc:
                ok = False
                traceback.print_exc()
                section = report.Section(b.what, skipped=f"FAILED: {type(exc).__name__}: {exc}")
        section.seconds = time.monotonic() - started
        if section.skipped:
            progress(f"    skipped: {section.skipped}")
        sections.append(section)
    return sections, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/bench/run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, under a minute in all")
    ap.add_argument("--fabric", action="store_true", help="include the Fabric benchmarks")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--out", type=Path, default=report.RESULTS_DIR, help="results folder")
    ap.add_argument("--max-minutes", type=float, default=40.0)
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<16} {b.what}" + (" (Fabric, opt-in)" if b.fabric else ""))
        return 0
    known = {b.name: b for b in BENCHMARKS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; --list shows the names")
    chosen = [known[n] for n in args.names] if args.names else list(BENCHMARKS)
    progress = report.Progress(quiet=args.quiet)
    started_at = report.now_iso()
    load_before = list(os.getloadavg())
    machine = report.describe_machine(LOCK)
    progress(
        f"{machine['cores']} cores ({machine['cpu_model']}), load {load_before[0]:.2f}; "
        f"Python {machine['python']}, Node {machine['node']}, Fabric {machine['fabric']}"
    )
    t0 = time.monotonic()
    sections, ok = run(
        chosen,
        smoke=args.smoke,
        fabric=args.fabric,
        max_minutes=args.max_minutes,
        progress=progress,
    )
    command = "scripts/bench/run" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    record = {
        "started": started_at,
        "command": command,
        "mode": "smoke" if args.smoke else "full",
        "seconds": time.monotonic() - t0,
        "machine": machine,
        "load_before": load_before,
        "load_after": list(os.getloadavg()),
        "benchmarks": [b.name for b in chosen],
    }
    json_path, md_path = report.write_results(sections, record, args.out)
    progress(f"wrote {json_path} and {md_path} in {record['seconds']:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
