"""state.json: typed, and a file written by the dict-based control code still reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import load_settings
from network.control import NativeNetwork
from network.errors import NetworkError
from network.install import find_fabric
from network.state import ChaincodeEntry, NetworkState, Shape
from tests.unit.network.test_install import make_release

# Exactly what the dict-based `Network._save_state` wrote after `up` and one deploy.
OLD_FILE = {
    "chaincodes": {
        "testcc": {
            "index": 0,
            "label": "testcc_1",
            "module": "testcc",
            "package_id": "testcc_1:" + "ab" * 32,
            "pythonpath": "/src/tests/chaincode",
            "sequence": 2,
        }
    },
    "channel": True,
    "identities": True,
    "shape": {"base_port": 7100, "channel": "anchorline"},
}


def test_a_file_of_the_earlier_format_loads_and_saves_the_same(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(OLD_FILE, indent=2, sort_keys=True) + "\n")
    state = NetworkState.load(path)
    assert state.identities and state.channel
    assert state.shape == Shape(7100, "anchorline")
    assert state.chaincodes["testcc"] == ChaincodeEntry(
        0, "testcc_1:" + "ab" * 32, "testcc_1", 2, "testcc", "/src/tests/chaincode"
    )
    before = path.read_text()
    state.save(path)
    assert path.read_text() == before


def test_missing_keys_and_missing_files_are_a_network_not_set_up(tmp_path: Path) -> None:
    assert NetworkState.load(tmp_path / "absent.json") == NetworkState()
    (tmp_path / "half.json").write_text('{"identities": true}')
    assert NetworkState.load(tmp_path / "half.json") == NetworkState(identities=True)
    (tmp_path / "torn.json").write_text('{"identities": tr')
    assert NetworkState.load(tmp_path / "torn.json") == NetworkState()
    assert "shape" not in NetworkState().to_json()


@pytest.mark.parametrize(
    "bad",
    [
        [1, 2],
        {"chaincodes": {"testcc": {"index": 0}}},
        {"shape": {"base_port": "x", "channel": "c"}},
    ],
)
def test_a_file_of_another_shape_is_refused_not_taken_as_empty(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(NetworkError, match="down --purge"):
        NetworkState.load(path)


def test_status_and_down_find_a_network_the_earlier_code_set_up(tmp_path: Path) -> None:
    settings = load_settings({"ANCHORLINE_HOME": str(tmp_path / "home")})
    network = NativeNetwork(settings, find_fabric(make_release(tmp_path / "fabric"), None))
    network.layout.root.mkdir(parents=True)
    network.layout.state_file.write_text(json.dumps(OLD_FILE))
    rows = network.status()
    chaincode = [r.name for r in rows if r.kind == "chaincode"]
    assert chaincode == [f"cc.testcc.{p.name}" for p in network.topology.peers]
    assert all(r.pid is None for r in rows)
    assert "cc.testcc.peer0.org1" in network.process_names()
    assert network.down() == []


def test_added_orgs_keep_their_order_and_steps(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = NetworkState(identities=True, channel=True)
    # Org10 sorts before Org4: the file must not reorder them (the order gives ports).
    state.added_orgs = {"Org4": "member", "Org10": "in-channel"}
    state.save(path)
    again = NetworkState.load(path)
    assert list(again.added_orgs.items()) == [("Org4", "member"), ("Org10", "in-channel")]
    assert again.member_orgs() == ["Org4"]
    assert "added_orgs" not in NetworkState().to_json()  # earlier files stay as they were


def test_an_unknown_add_org_step_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({**OLD_FILE, "added_orgs": [{"name": "Org4", "step": "halfway"}]}))
    with pytest.raises(NetworkError, match=str(path)):
        NetworkState.load(path)
