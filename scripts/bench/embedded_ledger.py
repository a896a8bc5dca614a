"""Benchmark the embedded ledger, and the real Fabric network beside it with ``--fabric``.

The same workload, through the same Fabric Gateway client, on each ledger:

- evaluate latency (sequential ``Get``), p50/p99;
- submit-to-commit latency (sequential ``Put``: endorse → submit → commit status);
- committed transactions per second with N concurrent submitters (each waits
  for its commit), and how many failed.

The embedded ledger runs in a temporary folder (block: ``--batch-max-tx`` or
``--batch-timeout-ms``). With ``--fabric`` the native network is brought up
under a temporary home (ports from ``--base-port``, the same batch timeout),
the test chaincode deployed, measured, and stopped.

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

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ledger_workload import bench_evaluate, bench_submit_latency, bench_throughput, line  # noqa: E402

from gateway.ledger.gateway import Gateway  # noqa: E402

TESTCC = REPO / "tests" / "chaincode" / "testcc"


async def measure(label: str, gw: Gateway, channel: str, args: argparse.Namespace) -> None:
    print(f"ledger: {label}")
    print(line("evaluate", await bench_evaluate(gw, channel, args.evaluates)))
    print(line("submit-to-commit (serial)", await bench_submit_latency(gw, channel, args.submits)))
    for concurrency in args.concurrency:
        rate, lat, failed = await bench_throughput(gw, channel, args.total, concurrency)
        ok = f"({len(lat)} ok, {failed} failed)"
        print(f"  committed tx/s, {concurrency:>3} clients  {rate:8.1f}  {ok}")
        if lat:
            print(line(f"submit-to-commit c={concurrency}", lat))


@asynccontextmanager
async def embedded(args: argparse.Namespace, home: Path) -> AsyncIterator[tuple[Gateway, str]]:
    from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
    from gateway.ledger.embedded_client import embedded_gateway

    ledger = EmbeddedLedger.open(
        EmbeddedConfig(
            root=home / "embedded",
            chaincodes={"testcc": "tests.chaincode.testcc:CONTRACTS"},
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
        network.deploy(TESTCC, "testcc")
    except BaseException:
        network.down()
        raise
    return network, network.down


async def run(args: argparse.Namespace, home: Path) -> None:
    async with embedded(args, home) as (gw, channel):
        await measure(
            f"embedded (block: {args.batch_max_tx} tx or {args.batch_timeout_ms} ms)",
            gw,
            channel,
            args,
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
                        await gw.network(profile.channel).contract("testcc").submit("Put", "w", "1")
                        break
                    except Exception:
                        await asyncio.sleep(0.2)
                await measure(
                    f"Fabric v2.5 native network (BatchTimeout {args.batch_timeout_ms} ms, "
                    "3 Raft orderers, 3 peer orgs)",
                    gw,
                    profile.channel,
                    args,
                )
        finally:
            down()
            print("fabric network stopped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fabric", action="store_true", help="also measure the native network")
    parser.add_argument("--base-port", type=int, default=7880)
    parser.add_argument("--batch-timeout-ms", type=int, default=20)
    parser.add_argument("--batch-max-tx", type=int, default=100)
    parser.add_argument("--evaluates", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--total", type=int, default=2000, help="submits per throughput run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
