"""Benchmark the Fabric Gateway client against the native network.

Reports, from one asyncio process:
- evaluate latency p50/p99 (sequential calls),
- submit-to-commit latency p50/p99 (sequential: endorse → submit → commit status),
- committed submits per second with N concurrent submits (and their latency).

Uses the network described by ``--profile`` if given; otherwise brings up its
own native network under ``--home`` (ports from ``--base-port``, orderer
BatchTimeout ``--batch-timeout-ms``), deploys the test chaincode, and stops
the network at the end unless ``--keep``.

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
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ledger_workload import (  # noqa: E402
    bench_evaluate,
    bench_submit_latency,
    bench_throughput,
    line,
    no_orgs,
)

from gateway.config import load_settings  # noqa: E402
from gateway.ledger.connect import from_profile  # noqa: E402
from network.profile import NetworkProfile  # noqa: E402

TESTCC = REPO / "tests" / "chaincode" / "testcc"


def bring_up(args: argparse.Namespace) -> tuple[NetworkProfile, object | None]:
    from network.control import Network
    from network.install import find_fabric

    base = load_settings()
    settings = dataclasses.replace(
        base,
        home=Path(args.home),
        network=dataclasses.replace(
            base.network, base_port=args.base_port, batch_timeout_ms=args.batch_timeout_ms
        ),
    )
    install = find_fabric(settings.fabric_home, os.environ.get("PATH", os.defpath))
    network = Network(settings, install, env_path=os.environ.get("PATH", os.defpath))
    t = time.perf_counter()
    result = network.up()
    print(f"network up in {time.perf_counter() - t:.1f} s ({result})")
    t = time.perf_counter()
    network.deploy(TESTCC, "testcc")
    print(f"testcc deployed in {time.perf_counter() - t:.1f} s")
    return network.profile(), network


async def run(args: argparse.Namespace, profile: NetworkProfile) -> None:
    org = profile.org(args.org)
    gw = from_profile(profile, org.admin_msp_dir, org=args.org, spread=args.spread)
    try:
        evals = await bench_evaluate(gw, profile.channel, args.evaluates)
        print(line("evaluate", evals))
        orgs = no_orgs
        if args.endorse == "pairs":
            msp_ids = [o.msp_id for o in profile.orgs]
            pairs = [list(pair) for pair in itertools.combinations(msp_ids, 2)]

            def orgs(i: int) -> list[str]:
                # Every pair of orgs in turn (a majority of three), named by us: each
                # org's chaincode server endorses two transactions in three instead of
                # all of them, and both endorsements run at once, not one after the other.
                return pairs[i % len(pairs)]

        lat = await bench_submit_latency(gw, profile.channel, args.submits, orgs)
        print(line("submit-to-commit (serial)", lat))
        for concurrency in args.concurrency:
            rate, lat_c, failed = await bench_throughput(
                gw, profile.channel, args.total, concurrency, orgs
            )
            print(
                f"throughput c={concurrency:<4} {rate:8.1f} committed/s "
                f"({len(lat_c)} ok, {failed} failed)"
            )
            if lat_c:
                print(line(f"  submit-to-commit c={concurrency}", lat_c))
        print(f"client counters: {dict(gw.client.counters)}")
    finally:
        await gw.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", type=Path, help="profile.json of a running network")
    parser.add_argument("--home", default="/tmp/anchorline-bench-fabric")
    parser.add_argument("--base-port", type=int, default=7800)
    parser.add_argument("--batch-timeout-ms", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="leave the network running")
    parser.add_argument("--org", default="Org1")
    parser.add_argument(
        "--endorse",
        choices=("gateway", "pairs"),
        default="gateway",
        help="gateway: its discovery picks endorsers; pairs: every pair of orgs in turn",
    )
    parser.add_argument(
        "--spread", action="store_true", help="share calls between all peers (default: own org's)"
    )
    parser.add_argument("--evaluates", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=200)
    parser.add_argument("--total", type=int, default=3000, help="submits per throughput run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 128])
    args = parser.parse_args()

    network = None
    if args.profile:
        profile = NetworkProfile.load(args.profile)
    else:
        profile, network = bring_up(args)
    print(
        f"ledger: Fabric, channel {profile.channel}, client org {args.org}, "
        f"{'calls spread over all peers' if args.spread else 'own org peer first'}, "
        f"endorsers chosen by {args.endorse}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    try:
        asyncio.run(run(args, profile))
    finally:
        if network is not None and not args.keep:
            network.down(purge=True)  # type: ignore[attr-defined]
            print("network stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
