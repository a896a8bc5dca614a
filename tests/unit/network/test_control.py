"""NativeNetwork checks that need no running network."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError
from network.control import NativeNetwork
from network.errors import NetworkError, NotRunning
from network.install import find_fabric
from tests.unit.network.test_install import make_release


def _network(tmp_path: Path, base_port: int) -> NativeNetwork:
    settings = load_settings({"ANCHORLINE_HOME": str(tmp_path / "home")})
    settings = dataclasses.replace(
        settings, network=dataclasses.replace(settings.network, base_port=base_port)
    )
    install = find_fabric(make_release(tmp_path / "fabric"), None)
    return NativeNetwork(settings, install)


def test_restart_with_other_ports_is_refused(tmp_path: Path) -> None:
    network = _network(tmp_path, 9300)
    network.layout.root.mkdir(parents=True)
    state = {"identities": True, "shape": {"base_port": 7100, "channel": "anchorline"}}
    network.layout.state_file.write_text(json.dumps(state))
    with pytest.raises(NetworkError, match="down --purge"):
        network.up()
    assert network.running() == {}


def test_commands_needing_a_network_say_so(tmp_path: Path) -> None:
    network = _network(tmp_path, 9300)
    with pytest.raises(NotRunning, match="network up"):
        network.enroll("Org1", "alice", "member")
    with pytest.raises(NotRunning, match="network up"):
        network.deploy(Path(__file__).resolve().parents[2] / "chaincode" / "testcc")
    with pytest.raises(NotRunning):
        network.profile()
    assert network.down() == []


def test_peer_memory_comes_from_the_settings(tmp_path: Path) -> None:
    network = _network(tmp_path, 9300)
    settings = dataclasses.replace(
        network.settings,
        network=dataclasses.replace(network.settings.network, peer_memory_mib=192, peer_gogc=150),
    )
    specs = NativeNetwork(settings, network.install).node_specs()
    peers = [s for s in specs if s.name.startswith("peer")]
    assert len(peers) == 3
    assert {(s.env["GOMEMLIMIT"], s.env["GOGC"]) for s in peers} == {("192MiB", "150")}
    others = [s for s in network.node_specs() if s.name.startswith("orderer")]
    assert {s.env["GOMEMLIMIT"] for s in others} == {"40MiB"}


@pytest.mark.parametrize(("memory", "gogc"), [(32, 100), (96, 0)])
def test_too_little_peer_memory_is_refused(tmp_path: Path, memory: int, gogc: int) -> None:
    network = _network(tmp_path, 9300)
    settings = dataclasses.replace(
        network.settings,
        network=dataclasses.replace(
            network.settings.network, peer_memory_mib=memory, peer_gogc=gogc
        ),
    )
    with pytest.raises(ConfigError, match=r"network\.peer_memory_mib must be at least 64"):
        NativeNetwork(settings, network.install).node_specs()
