"""One orderer killed with SIGKILL: transactions still commit; restarted, it catches up."""

from __future__ import annotations

import os
import signal
import time

import grpc
import pytest

from network import nodes
from network.probe import Committed, probe_for
from network.processes import is_alive, read_pid
from network.profile import NetworkProfile
from tests.conftest import FabricSession

pytestmark = [pytest.mark.fabric, pytest.mark.chaos]


def _submit_with_retry(
    profile: NetworkProfile, chaincode: str, key: str, budget: float, attempt_s: float = 1.0
) -> Committed:
    """Submit until VALID. A transaction handed to an orderer just as the leader dies can be
    lost, and its commit status never arrives: give each attempt a short deadline and retry
    (a new transaction each time), as a client must."""
    deadline = time.monotonic() + budget
    with probe_for(profile, "Org1") as org1:
        while True:
            try:
                return org1.submit(chaincode, ["Put", key, "after-kill"], timeout=attempt_s)
            except (grpc.RpcError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_leader_sigkill_commit_and_catch_up(
    fabric_session: FabricSession, fabric_network: NetworkProfile, testcc: str
) -> None:
    network = fabric_session.network
    channel = fabric_network.channel
    leader = next(o for o in network.topology.orderers if nodes.is_raft_leader(o.ops_port, channel))
    pid = read_pid(network.layout.pid_file(leader.name))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(pid)

    killed_at = time.monotonic()
    committed = _submit_with_retry(fabric_network, testcc, "after-leader-kill", budget=20)
    to_commit = time.monotonic() - killed_at
    print(f"first commit {to_commit:.2f} s after killing leader {leader.name}")
    assert committed.block > 0
    assert to_commit < 10, f"commit took {to_commit:.1f} s after the leader died"

    # Another block while it is down, so it has something to catch up on.
    _submit_with_retry(fabric_network, testcc, "while-down", budget=10)
    result = network.up()
    assert result.started == (leader.name,)

    others = [o for o in network.topology.orderers if o.name != leader.name]
    deadline = time.monotonic() + 30
    while True:
        target = max(nodes.height(o.ops_port, channel) or 0 for o in others)
        caught = nodes.height(leader.ops_port, channel)
        if caught == target:
            break
        assert time.monotonic() < deadline, f"{leader.name} at {caught}, others at {target}"
        time.sleep(0.1)
    assert target >= committed.block + 1
