"""Benchmark the embedded ledger, and the real Fabric network beside it with ``--fabric``.

The same workload, through the same Fabric Gateway client, on each ledger:

- evaluate latency (sequential ``Get``), p50/p99;
- submit-to-commit latency (sequential ``Put``: endorse → submit → commit status);
- committed transactions per second with N concurrent submitters (each waits
  for its commit), and how many failed.

The embedded ledger runs in a temporary folder (block: ``--batch-max-tx`` or
``--batch-timeout-ms``). With ``--fabric`` the native network is brought up
under a temporary home (ports from ``--base-port``, the same batch timeout),
the benchmark's chaincode (``kvcc.py``) deployed, measured, and stopped.

    .venv/bin/python scripts/bench/embedded_ledger.py
    .venv/bin/python scripts/bench/embedded_ledger.py --fabric
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from kvcc import CHAINCODE  # noqa: E402
from ledger_workload import (  # noqa: E402
    bench_evaluate,
    bench_submit_latency,
    bench_throughput,
    line,
    summary_ms,
)
from report import Section, Table  # noqa: E402

from gateway.ledger.gateway import Gateway  # noqa: E402

KVCC = Path(__file__).with_name("kvcc.py")


async def measure(
    label: str, gw: Gateway, channel: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Print and return the workload's figures on one ledger."""
    print(f"ledger: {label}")
    evaluates = await bench_evaluate(gw, channel, args.evaluates)
    print(line("evaluate", evaluates))
    serial = await bench_submit_latency(gw, channel, args.submits)
    print(line("submit-to-commit (serial)", serial))
    out: dict[str, Any] = {
        "ledger": label,
        "evaluate_ms": summary_ms(evaluates),
        "submit_serial_ms": summary_ms(serial),
        "throughput": [],
    }
    for concurrency in args.concurrency:
        rate, lat, failed = await bench_throughput(gw, channel, args.total, concurrency)
        ok = f"({len(lat)} ok, {failed} failed)"
        print(f"  committed tx/s, {concurrency:>3} clients  {rate:8.1f}  {ok}")
        if lat:
            print(line(f"submit-to-commit c={concurrency}", lat))
        out["throughput"].append(
            {
                "concurrency": concurrency,
                "tx_per_s": rate,
                "failed": failed,
                "submit_ms": summary_ms(lat),
            }
        )
    return out


@asynccontextmanager
async def embedded(args: argparse.Namespace, home: Path) -> AsyncIterator[tuple[Gateway, str]]:
    from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
    from gateway.ledger.embedded_client import embedded_gateway

    ledger = EmbeddedLedger.open(
        EmbeddedConfig(
            root=home / "embedded",
            chaincodes={CHAINCODE: "kvcc:CONTRACTS"},
            batch_max_tx=args.batch_max_tx,
            batch_timeout_s=args.batch_timeout_ms / 1000,
        )
    )
    gw = embedded_gateway(ledger, ledger.ca.enroll("Org1", "bench", "member"), org="Org1")
    try:
        yield gw, ledger.config.channel
    finally:
        await gw.close()
        height = ledger.height
        await ledger.close()
        size = (home / "embedded" / "ledger.sqlite").stat().st_size / 1e6
        print(f"  blocks: {height}, ledger file {size:.1f} MB")


def bring_up_fabric(args: argparse.Namespace, home: Path) -> tuple[object, Callable[[], None]]:
    from gateway.config import load_settings
    from network.control import NativeNetwork
    from network.install import find_fabric

    base = load_settings()
    settings = dataclasses.replace(
        base,
        home=home / "fabric",
        network=dataclasses.replace(
            base.network, base_port=args.base_port, batch_timeout_ms=args.batch_timeout_ms
        ),
    )
    install = find_fabric(settings.fabric_home, os.environ.get("PATH", os.defpath))
    network = NativeNetwork(settings, install, env_path=os.environ.get("PATH", os.defpath))
    t = time.perf_counter()
    network.up()
    print(f"fabric network up in {time.perf_counter() - t:.1f} s")
    try:
        network.deploy(KVCC, CHAINCODE)
    except BaseException:
        network.down()
        raise
    return network, network.down


async def run(args: argparse.Namespace, home: Path) -> list[dict[str, Any]]:
    results = []
    async with embedded(args, home) as (gw, channel):
        results.append(
            await measure(
                f"embedded (block: {args.batch_max_tx} tx or {args.batch_timeout_ms} ms)",
                gw,
                channel,
                args,
            )
        )
    if args.fabric:
        from gateway.ledger.connection import from_profile

        network, down = bring_up_fabric(args, home)
        try:
            profile = network.profile()  # type: ignore[attr-defined]
            msp = network.enroll("Org1", "bench", "member")  # type: ignore[attr-defined]
            async with from_profile(profile, msp, org="Org1") as gw:
                # The first calls after a deployment may find the chaincode not yet listed.
                for _ in range(100):
                    try:
                        await (
                            gw.network(profile.channel).contract(CHAINCODE).submit("Put", "w", "1")
                        )
                        break
                    except Exception:
                        await asyncio.sleep(0.2)
                results.append(
                    await measure(
                        f"Fabric v2.5 native network (BatchTimeout {args.batch_timeout_ms} ms, "
                        "3 Raft orderers, 3 peer orgs)",
                        gw,
                        profile.channel,
                        args,
                    )
                )
        finally:
            down()
            print("fabric network stopped")
    return results


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fabric", action="store_true", help="also measure the native network")
    parser.add_argument("--base-port", type=int, default=7880)
    parser.add_argument("--batch-timeout-ms", type=int, default=20)
    parser.add_argument("--batch-max-tx", type=int, default=100)
    parser.add_argument("--evaluates", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--total", type=int, default=2000, help="submits per throughput run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    return parser


def bench(smoke: bool, progress: Callable[[str], None]) -> Section:
    """The workload on the embedded ledger (Fabric has its own benchmark, fabric_client)."""
    argv = ["--evaluates", "20", "--submits", "5", "--total", "40", "--concurrency", "8"]
    args = parser().parse_args(argv if smoke else ["--total", "1000"])
    progress("embedded ledger: evaluate, serial submit, concurrent submits")
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-") as tmp:
        (r,) = asyncio.run(run(args, Path(tmp)))
    rows = [
        [
            "evaluate (serial)",
            "–",
            r["evaluate_ms"]["n"],
            r["evaluate_ms"]["p50"],
            r["evaluate_ms"]["p99"],
        ],
        [
            "submit → commit (serial)",
            "–",
            r["submit_serial_ms"]["n"],
            r["submit_serial_ms"]["p50"],
            r["submit_serial_ms"]["p99"],
        ],
    ]
    for t in r["throughput"]:
        rows.append(
            [
                f"submit → commit, {t['concurrency']} concurrent",
                t["tx_per_s"],
                t["submit_ms"]["n"],
                t["submit_ms"]["p50"],
                t["submit_ms"]["p99"],
            ]
        )
    table = Table(
        r["ledger"],
        ["call", "committed tx/s", "n", "p50 ms", "p99 ms"],
        rows,
        ["client and ledger in one process on one core: the bound is this process's CPU"],
    )
    return Section("Embedded ledger through the Fabric Gateway client", [table], r)


def main() -> int:
    args = parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
