"""Timings and memory of the native Fabric network.

    .venv/bin/python scripts/bench/network.py [--tx 1000] [--threads 16] [--kills 3]

Brings up a fresh network in a temporary state folder (its own ports, base
9500 by default) and prints: `network up` from cold (per step), deploy of the
test chaincode cold and warm, resident memory of every process of the network
(summed VmRSS) idle and after N transactions, submit throughput, the time from
killing the Raft leader to the next committed transaction, and `down`.
Everything it starts is stopped at the end, by pid.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from node_usage import memory_report  # noqa: E402

from gateway.config import load_settings  # noqa: E402
from network import nodes  # noqa: E402
from network.control import NativeNetwork  # noqa: E402
from network.install import find_fabric  # noqa: E402
from network.probe import probe_for  # noqa: E402
from network.processes import (  # noqa: E402
    is_alive,
    read_pid,
)

TESTCC = REPO / "tests" / "chaincode" / "testcc"


def load(network: NativeNetwork, total: int, threads: int) -> tuple[float, int]:
    profile = network.profile()
    orgs = [o.name for o in profile.orgs]
    per_thread = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
    failures = [0]
    lock = threading.Lock()

    def worker(index: int) -> None:
        with probe_for(profile, orgs[index % len(orgs)]) as probe:
            for n in range(per_thread[index]):
                try:
                    probe.submit("testcc", ["Put", f"bench-{index}-{n}", "x" * 64], timeout=30)
                except (grpc.RpcError, RuntimeError):
                    with lock:
                        failures[0] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.monotonic() - started, failures[0]


def leader_kill(network: NativeNetwork) -> float:
    profile = network.profile()
    channel = profile.channel
    leader = next(o for o in network.topology.orderers if nodes.is_raft_leader(o.ops_port, channel))
    pid = read_pid(network.layout.pid_file(leader.name))
    assert pid is not None
    with probe_for(profile, "Org1") as probe:
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        while is_alive(pid):
            time.sleep(0.01)
        while time.monotonic() - killed < 30:
            try:
                probe.submit("testcc", ["Put", "after-kill", "1"], timeout=1.0)
                break
            except (grpc.RpcError, RuntimeError):
                time.sleep(0.05)
        elapsed = time.monotonic() - killed
    network.up()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tx", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=9500)
    args = parser.parse_args()

    install = find_fabric(load_settings().fabric_home, os.environ.get("PATH", os.defpath))
    home = Path(tempfile.mkdtemp(prefix="anchorline-bench-network-"))
    base = load_settings()
    settings = dataclasses.replace(
        base, home=home, network=dataclasses.replace(base.network, base_port=args.base_port)
    )
    print(f"Fabric {install.fabric_version} / CA {install.ca_version} from {install.root}")
    print(
        f"batch timeout {settings.network.batch_timeout_ms} ms, "
        f"raft tick {settings.network.raft_tick_ms} ms; state in {home}"
    )

    def progress(message: str) -> None:
        if message.endswith("s"):
            print(f"    {message.strip()}")

    network = NativeNetwork(
        settings, install, env_path=os.environ.get("PATH", os.defpath), progress=progress
    )
    try:
        print("network up (cold):")
        up = network.up()
        print(f"  up, cold, to channel ready and Gateway endorsing: {up.seconds:.2f} s")
        cold = network.deploy(TESTCC, "testcc")
        print(f"  deploy-chaincode cold: {cold.seconds:.2f} s")
        warm = network.deploy(TESTCC, "testcc")
        print(f"  deploy-chaincode warm (already committed): {warm.seconds:.2f} s")
        time.sleep(3)
        print(f"  resident idle: {memory_report(network.layout.run_dir)}")
        seconds, failed = load(network, args.tx, args.threads)
        print(
            f"  {args.tx} tx with {args.threads} threads: {seconds:.1f} s, "
            f"{args.tx / seconds:.0f} tx/s, {failed} failed"
        )
        print(f"  resident after {args.tx} tx: {memory_report(network.layout.run_dir)}")
        kills = [leader_kill(network) for _ in range(args.kills)]
        if kills:
            print(
                "  leader SIGKILL -> next commit: "
                + ", ".join(f"{k:.2f}" for k in kills)
                + " s (1 s per attempt, then retry)"
            )
        started = time.monotonic()
        network.down()
        print(f"  down: {time.monotonic() - started:.2f} s")
        network.down()
        restart_started = time.monotonic()
        network.up()
        restart = time.monotonic() - restart_started
        print(f"  up again (warm, crypto and ledgers kept): {restart:.2f} s")
    finally:
        network.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
