"""The workload both ledger benchmarks measure, through the project's Fabric client.

Used by ``fabric_client.py`` and ``embedded_ledger.py`` so the two ledgers are
measured by the very same calls: sequential evaluates, sequential submits, and
N concurrent submitters each waiting for its commit.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from kvcc import CHAINCODE
from stats import latency_summary

from gateway.ledger.gateway import Gateway


def summary_ms(values: list[float]) -> dict[str, float | int | None]:
    """Latency summary (ms) of durations in seconds, with the mean."""
    ms = [v * 1000 for v in values]
    return {**latency_summary(ms), "mean": statistics.fmean(ms) if ms else None}


def line(name: str, values: list[float]) -> str:
    s = summary_ms(values)
    return (
        f"{name:<28} n={s['n']:<6} p50={s['p50'] or 0:8.2f} ms  "
        f"p99={s['p99'] or 0:8.2f} ms  mean={s['mean'] or 0:8.2f} ms"
    )


async def bench_evaluate(gw: Gateway, channel: str, n: int) -> list[float]:
    contract = gw.network(channel).contract(CHAINCODE)
    key = f"bench-{uuid.uuid4().hex[:8]}"
    await contract.submit("Put", key, "x")
    for _ in range(20):  # warm-up
        await contract.evaluate("Get", key)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await contract.evaluate("Get", key)
        out.append(time.perf_counter() - t)
    return out


Orgs = Callable[[int], list[str]]


def no_orgs(_i: int) -> list[str]:
    return []


async def bench_submit_latency(
    gw: Gateway, channel: str, n: int, orgs: Orgs = no_orgs
) -> list[float]:
    contract = gw.network(channel).contract(CHAINCODE)
    prefix = uuid.uuid4().hex[:8]
    for i in range(5):
        await contract.submit("Put", f"warm-{prefix}-{i}", "x")
    out = []
    for i in range(n):
        t = time.perf_counter()
        await contract.submit("Put", f"lat-{prefix}-{i}", "x", endorsing_orgs=orgs(i))
        out.append(time.perf_counter() - t)
    return out


async def bench_throughput(
    gw: Gateway, channel: str, total: int, concurrency: int, orgs: Orgs = no_orgs
) -> tuple[float, list[float], int]:
    contract = gw.network(channel).contract(CHAINCODE)
    prefix = uuid.uuid4().hex[:8]
    queue = iter(range(total))
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in queue:
            t = time.perf_counter()
            try:
                await contract.submit(
                    "Put", f"tp-{prefix}-{i}", "v", endorsing_orgs=orgs(i), timeout=60
                )
            except Exception as exc:  # counted and reported, the run goes on
                failures += 1
                if failures <= 3:
                    print(f"  submit failed: {exc}", file=sys.stderr)
                continue
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu) * 1000 / max(len(latencies), 1)
    # This process's CPU: the client alone on Fabric; client and ledger together
    # on the embedded ledger. A busy shared machine distorts it less than wall time.
    print(
        f"  this process: {cpu_ms:.2f} ms CPU per committed submit "
        f"(one core would allow ≈ {1000 / max(cpu_ms, 1e-3):.0f}/s)"
    )
    return len(latencies) / elapsed, latencies, failures
