"""What the network's processes use, grouped by kind (peer, orderer, ca, chaincode).

Shared by the benchmarks that run load against the native network: memory
(``by_kind`` over VmRSS figures) and CPU (:class:`CpuMeter`, from
``/proc/<pid>/stat`` of the processes recorded in the network's pid files).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from network.processes import cpu_seconds, proportional_kib, resident_kib, running_in


def kind_of(process: str) -> str:
    """``peer0.org1`` → peer, ``orderer2`` → orderer, ``cc.<name>.<peer>`` → chaincode."""
    if process.startswith("cc."):
        return "chaincode"
    return process.split(".")[0].rstrip("0123456789")


def by_kind(per: dict[str, float]) -> dict[str, float]:
    kinds: dict[str, float] = {}
    for name, value in per.items():
        kinds[kind_of(name)] = kinds.get(kind_of(name), 0.0) + value
    return dict(sorted(kinds.items()))


class CpuMeter:
    """CPU used by the network's processes, and by this one, between start() and stop()."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir
        self._start: dict[str, float] = {}
        self._wall = 0.0
        self._own = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {name: cpu_seconds(pid) for name, pid in running_in(self._run_dir).items()}
        sample["client"] = time.process_time()
        return sample

    def start(self) -> None:
        self._start = self._sample()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Cores used per kind over the interval (1.0 = one core busy throughout)."""
        end = self._sample()
        wall = time.perf_counter() - self._wall
        used = {n: (end[n] - self._start[n]) / wall for n in end if n in self._start}
        return by_kind(used)


def cpu_report(cores: dict[str, float], committed_per_s: float) -> str:
    """One line: each kind's share of a core and its CPU per committed transaction."""
    total = sum(cores.values())
    parts = [
        f"{kind} {share * 100:.0f}% ({share / committed_per_s * 1000:.2f} ms/tx)"
        for kind, share in sorted(cores.items(), key=lambda kv: -kv[1])
        if share >= 0.005
    ]
    return (
        f"  cpu: {total * 100:.0f}% of {os.cpu_count()} cores in all "
        f"({total / committed_per_s * 1000:.2f} ms/tx): " + ", ".join(parts)
    )


def memory_report(run_dir: Path) -> str:
    """Summed VmRSS (by kind) and summed Pss of the network's processes, in MiB."""
    running = running_in(run_dir)
    per = {name: resident_kib(pid) / 1024 for name, pid in running.items()}
    pss = sum(proportional_kib(pid) for pid in running.values()) / 1024
    kinds = ", ".join(f"{k} {v:.0f}" for k, v in by_kind(per).items())
    return (
        f"{sum(per.values()):.0f} MiB summed VmRSS in {len(per)} processes ({kinds}); "
        f"{pss:.0f} MiB summed Pss (shared binary pages counted once)"
    )
