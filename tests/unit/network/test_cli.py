"""The `anchorline doctor` and `anchorline network` commands, without a running network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.main import build_parser
from tests.unit.network.test_install import make_release

CLI = [sys.executable, "-m", "gateway.cli.main"]


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_network_subcommands_are_registered() -> None:
    parser = build_parser()
    for argv in (
        ["network", "up"],
        ["network", "down", "--purge"],
        ["network", "status"],
        ["network", "logs", "peer0.org1", "-n", "5"],
        ["network", "enroll", "--org", "Org1", "--name", "a", "--role", "auditor"],
        ["network", "revoke", "--org", "Org1", "--name", "a"],
        ["network", "deploy-chaincode", "some/path", "--name", "x"],
        ["network", "add-org"],
        ["network", "add-org", "Acme"],
        ["doctor"],
    ):
        assert callable(parser.parse_args(argv).handler)


def test_enroll_refuses_unknown_role() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["network", "enroll", "--org", "Org1", "--name", "a", "--role", "boss"]
        )


def test_doctor_reports_a_complete_release(tmp_path: Path) -> None:
    release = make_release(tmp_path / "fabric")
    done = _cli(
        ["doctor"],
        FABRIC_HOME=str(release),
        ANCHORLINE_HOME=str(tmp_path / "home"),
        ANCHORLINE_NETWORK_BASE_PORT="9700",
    )
    assert "found via FABRIC_HOME" in done.stdout
    for binary in ("peer", "orderer", "configtxgen", "osnadmin", "fabric-ca-server"):
        assert str(release / "bin" / binary) in done.stdout
    assert "grpcio" in done.stdout and "python" in done.stdout
    assert done.returncode == 0, done.stdout
    assert "can run" in done.stdout


def test_doctor_without_fabric_says_what_is_missing(tmp_path: Path) -> None:
    done = _cli(["doctor"], FABRIC_HOME=str(tmp_path / "none"), ANCHORLINE_HOME=str(tmp_path))
    assert done.returncode == 1
    assert "NOT FOUND" in done.stdout
    assert "does not exist" in done.stdout and "install-fabric.sh" in done.stdout


def test_doctor_flags_a_port_held_by_another_program(tmp_path: Path) -> None:
    import socket

    release = make_release(tmp_path / "fabric")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        done = _cli(
            ["doctor"],
            FABRIC_HOME=str(release),
            ANCHORLINE_HOME=str(tmp_path / "home"),
            ANCHORLINE_NETWORK_BASE_PORT=str(port),
        )
    assert done.returncode == 1
    assert f"{port} (ca.ordererorg)" in done.stdout


def test_status_without_network_exits_non_zero(tmp_path: Path) -> None:
    release = make_release(tmp_path / "fabric")
    done = _cli(["network", "status"], FABRIC_HOME=str(release), ANCHORLINE_HOME=str(tmp_path))
    assert done.returncode != 0
    assert "0/10 running" in done.stdout


def test_logs_unknown_process_is_one_line(tmp_path: Path) -> None:
    release = make_release(tmp_path / "fabric")
    done = _cli(
        ["network", "logs", "peer9"], FABRIC_HOME=str(release), ANCHORLINE_HOME=str(tmp_path)
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "error AL1100" in done.stderr


def test_add_org_defaults_to_org4() -> None:
    assert build_parser().parse_args(["network", "add-org"]).name == "Org4"


def test_add_org_without_a_running_network_is_one_line(tmp_path: Path) -> None:
    release = make_release(tmp_path / "fabric")
    env = {"FABRIC_HOME": str(release), "ANCHORLINE_HOME": str(tmp_path)}
    down = _cli(["network", "add-org"], **env)
    assert down.returncode == 1
    assert down.stderr.count("\n") == 1 and "error AL1104" in down.stderr
    assert "network up" in down.stderr
