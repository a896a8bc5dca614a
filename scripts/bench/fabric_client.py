"""Benchmark the Fabric Gateway client against the native network.

Reports, from one asyncio process:
- evaluate latency p50/p99 (sequential calls),
- submit-to-commit latency p50/p99 (sequential: endorse → submit → commit status),
- committed submits per second with N concurrent submits, their latency, and
  where the CPU went (peers, orderers, chaincode servers, this client).

Latency and throughput want different orderer settings, so by default each runs
on a network of its own, brought up under ``--home`` and stopped at the end:
latency at BatchTimeout ``--latency-batch-timeout-ms`` (20 ms: a transaction
waits at most that long for its block), throughput at
``--throughput-batch-timeout-ms`` (200 ms: blocks of 50-60 transactions, so the
cost each block carries on every node, from Raft to the peers' commit, is
shared). With ``--profile`` both run on that running network as it is.

Throughput runs once per ``--peer-memory`` choice (each peer's GOMEMLIMIT in MiB
and GOGC, ``network.peer_memory_mib`` / ``peer_gogc``), each on a network of its
own, and reports the network's memory after the load beside the rate.

Throughput is measured for each ``--endorse`` choice: ``gateway`` leaves the
choice of endorsers to the Gateway peer (its discovery picks its own org and one
more), ``pairs`` names each pair of orgs in turn, a majority of three, so each
org endorses two transactions in three.

    .venv/bin/python scripts/bench/fabric_client.py
    .venv/bin/python scripts/bench/fabric_client.py --profile <state>/network/profile.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ledger_workload import (  # noqa: E402
    Orgs,
    bench_evaluate,
    bench_submit_latency,
    bench_throughput,
    line,
    no_orgs,
)
from node_usage import CpuMeter, cpu_report, memory_report  # noqa: E402

from gateway.config import load_settings  # noqa: E402
from gateway.ledger.connection import from_profile  # noqa: E402
from network.profile import NetworkProfile  # noqa: E402

TESTCC = REPO / "tests" / "chaincode" / "testcc"


@dataclasses.dataclass(frozen=True)
class PeerMemory:
    mib: int
    gogc: int

    @classmethod
    def parse(cls, text: str) -> PeerMemory:
        mib, _, gogc = text.partition(":")
        return cls(int(mib), int(gogc or 100))

    def __str__(self) -> str:
        return f"peers GOMEMLIMIT {self.mib} MiB, GOGC {self.gogc}"


@contextmanager
def network_at(
    args: argparse.Namespace, batch_timeout_ms: int, peers: PeerMemory | None = None
) -> Iterator[Path]:
    """A running network's profile path: ``--profile``, or one brought up here."""
    if args.profile:
        yield args.profile
        return
    from network.control import NativeNetwork
    from network.install import find_fabric

    base = load_settings()
    network_settings = dataclasses.replace(
        base.network, base_port=args.base_port, batch_timeout_ms=batch_timeout_ms
    )
    if peers is not None:
        network_settings = dataclasses.replace(
            network_settings, peer_memory_mib=peers.mib, peer_gogc=peers.gogc
        )
    settings = dataclasses.replace(base, home=Path(args.home), network=network_settings)
    install = find_fabric(settings.fabric_home, settings.search_path)
    network = NativeNetwork(settings, install, env_path=settings.search_path)
    t = time.perf_counter()
    network.up()
    print(
        f"network up in {time.perf_counter() - t:.1f} s (orderer BatchTimeout "
        f"{batch_timeout_ms} ms, peers GOMEMLIMIT {network_settings.peer_memory_mib} MiB, "
        f"GOGC {network_settings.peer_gogc})"
    )
    t = time.perf_counter()
    network.deploy(TESTCC, "testcc")
    print(f"testcc deployed in {time.perf_counter() - t:.1f} s")
    try:
        yield network.layout.profile_file
    finally:
        if not args.keep:
            network.down(purge=True)
            print("network stopped")


def endorsers(profile: NetworkProfile, choice: str) -> Orgs:
    if choice == "gateway":
        return no_orgs
    msp_ids = [o.msp_id for o in profile.orgs]
    pairs = [list(pair) for pair in itertools.combinations(msp_ids, 2)]

    def orgs(i: int) -> list[str]:
        # Every pair of orgs in turn: each org's peer and chaincode server endorse
        # two transactions in three instead of all of them.
        return pairs[i % len(pairs)]

    return orgs


def header(profile: NetworkProfile, args: argparse.Namespace) -> None:
    print(
        f"ledger: Fabric, channel {profile.channel}, client org {args.org}, "
        f"{'calls spread over all peers' if args.spread else 'own org peer first'}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


async def latency(args: argparse.Namespace, profile_path: Path) -> None:
    profile = NetworkProfile.load(profile_path)
    header(profile, args)
    org = profile.org(args.org)
    gw = from_profile(profile, org.admin_msp_dir, org=args.org, spread=args.spread)
    try:
        evals = await bench_evaluate(gw, profile.channel, args.evaluates)
        print(line("evaluate", evals))
        lat = await bench_submit_latency(gw, profile.channel, args.submits)
        print(line("submit-to-commit (serial)", lat))
    finally:
        await gw.close()


async def throughput(args: argparse.Namespace, profile_path: Path) -> None:
    profile = NetworkProfile.load(profile_path)
    header(profile, args)
    org = profile.org(args.org)
    gw = from_profile(profile, org.admin_msp_dir, org=args.org, spread=args.spread)
    meter = CpuMeter(profile_path.parent / "run")
    try:
        await bench_submit_latency(gw, profile.channel, 0)  # warm connections and chaincode
        for choice in args.endorse:
            for concurrency in args.concurrency:
                meter.start()
                rate, lat_c, failed = await bench_throughput(
                    gw, profile.channel, args.total, concurrency, endorsers(profile, choice)
                )
                cores = meter.stop()
                print(
                    f"throughput endorsers={choice:<7} c={concurrency:<4} {rate:8.1f} committed/s "
                    f"({len(lat_c)} ok, {failed} failed)"
                )
                if lat_c:
                    print(line(f"  submit-to-commit c={concurrency}", lat_c))
                    print(cpu_report(cores, rate))
        print(f"client counters: {dict(gw.client.counters)}")
        print(f"  memory after the load: {memory_report(profile_path.parent / 'run')}")
    finally:
        await gw.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", type=Path, help="profile.json of a running network")
    parser.add_argument("--home", default="/tmp/anchorline-bench-fabric")
    parser.add_argument("--base-port", type=int, default=7800)
    parser.add_argument("--latency-batch-timeout-ms", type=int, default=20)
    parser.add_argument("--throughput-batch-timeout-ms", type=int, default=200)
    parser.add_argument(
        "--peer-memory",
        type=PeerMemory.parse,
        nargs="+",
        default=[PeerMemory(96, 100), PeerMemory(192, 100)],
        metavar="MIB[:GOGC]",
        help="peers' memory settings for the throughput part, one network each "
        "(default: 96:100, the network's default, and 192:100)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the networks running")
    parser.add_argument("--org", default="Org1")
    parser.add_argument(
        "--endorse",
        choices=("gateway", "pairs"),
        nargs="+",
        default=["pairs", "gateway"],
        help="gateway: its discovery picks endorsers; pairs: every pair of orgs in turn",
    )
    parser.add_argument(
        "--spread", action="store_true", help="share calls between all peers (default: own org's)"
    )
    parser.add_argument("--evaluates", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=200)
    parser.add_argument("--total", type=int, default=5000, help="submits per throughput run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 192])
    parser.add_argument(
        "--only", choices=("latency", "throughput"), help="run one of the two parts"
    )
    args = parser.parse_args()
    if args.keep and not args.profile and (args.only != "latency" and len(args.peer_memory) > 1):
        parser.error("--keep leaves one network running: pick it with --only and one --peer-memory")
    if args.keep and not args.profile and args.only is None:
        parser.error("--keep leaves one network running: pick it with --only")

    if args.only != "throughput":
        print("== latency")
        with network_at(args, args.latency_batch_timeout_ms) as profile_path:
            asyncio.run(latency(args, profile_path))
    if args.only != "latency":
        for peers in [None] if args.profile else args.peer_memory:
            print(f"== throughput{f' ({peers})' if peers else ''}")
            with network_at(args, args.throughput_batch_timeout_ms, peers) as profile_path:
                asyncio.run(throughput(args, profile_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
