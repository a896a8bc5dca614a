"""The issue's end-to-end cycle on a network of its own, from a cold start.

up -> deploy testcc -> invoke as Org1 (endorsed by two orgs) -> read on Org3 ->
down -> no process of ours alive (checked by pid).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from network.control import NativeNetwork
from network.install import FabricInstall
from network.probe import probe_for
from network.processes import is_alive
from tests.conftest import TESTCC_PATH, extra_base_port, network_settings

pytestmark = pytest.mark.fabric


def test_cold_up_deploy_invoke_read_down(tmp_path: Path, fabric_install: FabricInstall) -> None:
    # Its own ports, so it can run beside the session network.
    settings = network_settings(tmp_path / "home", base_port=extra_base_port(1))
    network = NativeNetwork(settings, fabric_install, env_path=os.environ.get("PATH", os.defpath))
    try:
        started = time.monotonic()
        result = network.up()
        up_seconds = time.monotonic() - started
        assert not result.already_running
        assert {
            "orderer1",
            "orderer2",
            "orderer3",
            "peer0.org1",
            "peer0.org2",
            "peer0.org3",
            "ca.ordererorg",
            "ca.org1",
            "ca.org2",
            "ca.org3",
        } <= set(result.started)
        assert network.up().already_running  # a second up is a no-op

        deployed = network.deploy(TESTCC_PATH, "testcc")
        assert not deployed.warm and deployed.sequence == 1
        profile = network.profile()
        with probe_for(profile, "Org1") as org1:
            committed = org1.submit("testcc", ["Put", "cycle-key", "cycle-value"])
        assert committed.block >= 1
        assert len(set(committed.endorsing_msps)) >= 2, committed.endorsing_msps
        assert "Org1MSP" in committed.endorsing_msps
        with probe_for(profile, "Org3") as org3:
            assert org3.evaluate("testcc", ["Get", "cycle-key"]) == b"cycle-value"
        print(f"cold up {up_seconds:.2f} s, cold deploy {deployed.seconds:.2f} s")

        # Down and up again: ledgers, identities and the chaincode servers come back.
        network.down()
        assert network.running() == {}
        again = network.up()
        assert not again.already_running
        assert any(name.startswith("cc.testcc.") for name in again.started)
        with probe_for(network.profile(), "Org3") as org3:
            assert org3.evaluate("testcc", ["Get", "cycle-key"]) == b"cycle-value"
    finally:
        pids = network.running()
        network.down()
    assert pids, "the network should have been running"
    alive = {name: pid for name, pid in pids.items() if is_alive(pid)}
    assert alive == {}
    assert network.running() == {}
    network.down(purge=True)
    assert not network.layout.root.exists()
