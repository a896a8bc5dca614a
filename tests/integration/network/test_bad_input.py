"""Bad input to the CLI: one-line error, non-zero exit, nothing left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from network.install import FabricInstall
from network.processes import read_pid
from tests.conftest import FabricSession, extra_base_port

CLI = [sys.executable, "-m", "gateway.cli.main"]


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def _one_line_error(done: subprocess.CompletedProcess[str], code: str) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error {code}: "), lines[0]
    return lines[0]


def _alive_under(home: Path) -> list[str]:
    run = home / "network" / "run"
    return [p.stem for p in run.glob("*.pid") if read_pid(p) is not None] if run.is_dir() else []


def test_fabric_home_pointing_at_nothing(tmp_path: Path) -> None:
    done = _cli(
        ["network", "up"], ANCHORLINE_HOME=str(tmp_path), FABRIC_HOME=str(tmp_path / "nothing")
    )
    line = _one_line_error(done, "AL1101")
    assert "FABRIC_HOME" in line and "does not exist" in line
    assert _alive_under(tmp_path) == []


@pytest.mark.fabric
def test_up_with_a_port_in_use(tmp_path: Path) -> None:
    base = extra_base_port(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 9))
        squatter.listen()
        done = _cli(
            ["network", "up"],
            ANCHORLINE_HOME=str(tmp_path),
            ANCHORLINE_NETWORK_BASE_PORT=str(base),
        )
    line = _one_line_error(done, "AL1102")
    assert str(base + 9) in line
    assert _alive_under(tmp_path) == []


@pytest.mark.fabric
def test_failure_half_way_stops_what_was_started(
    tmp_path: Path, fabric_install: FabricInstall
) -> None:
    """A release whose orderer dies at start: CAs were started, and must be stopped."""
    fake = tmp_path / "fabric"
    (fake / "bin").mkdir(parents=True)
    for binary in fabric_install.bin_dir.iterdir():
        if binary.name != "orderer":
            (fake / "bin" / binary.name).symlink_to(binary)
    broken = fake / "bin" / "orderer"
    broken.write_text("#!/bin/sh\necho 'orderer: simulated start failure' >&2\nexit 1\n")
    broken.chmod(0o755)
    (fake / "config").symlink_to(fabric_install.config_dir)
    home = tmp_path / "home"
    done = _cli(
        ["network", "up"],
        ANCHORLINE_HOME=str(home),
        FABRIC_HOME=str(fake),
        ANCHORLINE_NETWORK_BASE_PORT=str(extra_base_port(3)),
    )
    line = _one_line_error(done, "AL1103")
    assert "orderer" in line
    pid_files = list((home / "network" / "run").glob("*.pid"))
    assert any(p.stem.startswith("ca.") for p in pid_files), "the CAs should have been started"
    assert _alive_under(home) == []


def _session_env(fabric_session: FabricSession) -> dict[str, str]:
    settings = fabric_session.network.settings
    return {
        "ANCHORLINE_HOME": str(settings.home),
        "ANCHORLINE_NETWORK_BASE_PORT": str(settings.network.base_port),
        "ANCHORLINE_LEDGER_KIND": "fabric",
    }


@pytest.mark.fabric
def test_deploy_on_missing_path(fabric_session: FabricSession, tmp_path: Path) -> None:
    before = fabric_session.network.running()
    done = _cli(
        ["network", "deploy-chaincode", str(tmp_path / "missing")], **_session_env(fabric_session)
    )
    assert "does not exist" in _one_line_error(done, "AL1108")
    assert fabric_session.network.running() == before


@pytest.mark.fabric
def test_enroll_unknown_org_and_duplicate_name(fabric_session: FabricSession) -> None:
    env = _session_env(fabric_session)
    done = _cli(["network", "enroll", "--org", "Org7", "--name", "x", "--role", "member"], **env)
    assert "Org7" in _one_line_error(done, "AL1105")
    first = _cli(
        ["network", "enroll", "--org", "Org2", "--name", "cli-dup", "--role", "member"], **env
    )
    assert first.returncode == 0, first.stderr
    assert "cli-dup" in first.stdout
    again = _cli(
        ["network", "enroll", "--org", "Org2", "--name", "cli-dup", "--role", "member"], **env
    )
    assert "already registered" in _one_line_error(again, "AL1106")


@pytest.mark.fabric
def test_up_on_running_network_is_a_no_op(fabric_session: FabricSession) -> None:
    before = fabric_session.network.running()
    done = _cli(["network", "up"], **_session_env(fabric_session))
    assert done.returncode == 0, done.stderr
    assert "already running" in done.stdout
    assert fabric_session.network.running() == before


@pytest.mark.fabric
def test_status_lists_every_node(fabric_session: FabricSession) -> None:
    done = _cli(["network", "status"], **_session_env(fabric_session))
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("orderer1", "orderer2", "orderer3", "peer0.org1", "peer0.org2", "peer0.org3"):
        assert name in done.stdout
    assert "raft leader" in done.stdout
