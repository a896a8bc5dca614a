"""--docker: wrappers and compose commands, checked against a recording `docker` stand-in.

There is no Docker engine on the development machines; the stand-in records the
argument vector it is given so the commands can be checked exactly.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from gateway.config import load_settings
from network.docker.generate import TARGET, render
from network.docker_mode import (
    ComposeNodes,
    DockerUnavailable,
    docker_install,
    find_docker,
    write_wrappers,
)
from network.processes import ProcessSpec


def _fake_docker(tmp_path: Path, info_rc: int = 0) -> Path:
    docker = tmp_path / "fakebin" / "docker"
    docker.parent.mkdir(parents=True)
    record = tmp_path / "docker-argv"
    docker.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = info ]; then exit {info_rc}; fi\n'
        f'for a in "$@"; do printf "%s\\n" "$a"; done > {record}\n'
        'if [ "$1" = run ] && [ "$(eval echo \\${$#})" = /etc/hyperledger/fabric/core.yaml ]; '
        "then echo 'peer: {}'; fi\n"
    )
    docker.chmod(0o755)
    return docker


def test_committed_compose_file_is_what_the_generator_writes() -> None:
    assert TARGET.read_text() == render()


def test_tool_wrapper_runs_the_image_with_forwarded_settings(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path)
    state = tmp_path / "state"
    bin_dir = write_wrappers(tmp_path / "wrappers", state, str(docker))
    env = {"PATH": os.defpath, "CORE_PEER_ADDRESS": "127.0.0.1:7116", "UNRELATED": "x"}
    subprocess.run([str(bin_dir / "peer"), "channel", "join", "-b", "g.block"], env=env, check=True)
    argv = (tmp_path / "docker-argv").read_text().splitlines()
    assert argv[:5] == ["run", "--rm", "-i", "--network", "host"]
    assert argv[argv.index("-e") : argv.index("-e") + 2] == ["-e", "CORE_PEER_ADDRESS"]
    assert "UNRELATED" not in argv
    assert f"{state}:{state}" in argv
    image = argv.index("hyperledger/fabric-tools:2.5.16")
    assert argv[image + 1 :] == ["peer", "channel", "join", "-b", "g.block"]


def test_ca_client_wrapper_uses_the_ca_image(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path)
    bin_dir = write_wrappers(tmp_path / "w", tmp_path / "s", str(docker))
    subprocess.run(
        [str(bin_dir / "fabric-ca-client"), "gencrl"], env={"PATH": os.defpath}, check=True
    )
    argv = (tmp_path / "docker-argv").read_text().splitlines()
    assert argv[-3:] == ["hyperledger/fabric-ca:1.5.21", "fabric-ca-client", "gencrl"]


def test_nodes_run_as_compose_services(tmp_path: Path) -> None:
    runner = ComposeNodes("/usr/bin/docker", {"ANCHORLINE_NETWORK_DIR": "/s"})
    spec = ProcessSpec("peer0.org1", ("/fabric/bin/peer", "node", "start"), {"CORE_X": "1"},
                       tmp_path / "l", tmp_path / "p")  # fmt: skip
    docker = runner(spec)
    assert docker.argv[:4] == ("/usr/bin/docker", "compose", "-f", str(runner.compose_file))
    assert docker.argv[4:] == ("run", "--rm", "--no-deps", "--name", "peer0.org1", "peer0.org1")
    assert docker.env == {"ANCHORLINE_NETWORK_DIR": "/s"}
    assert (docker.log, docker.pid_file) == (spec.log, spec.pid_file)


def test_docker_install_reads_config_from_the_images(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path)
    settings = load_settings({"ANCHORLINE_HOME": str(tmp_path / "home")})
    install = docker_install(settings, str(docker))
    assert install.source == "docker"
    assert (install.config_dir / "core.yaml").read_text() == "peer: {}\n"
    assert all((install.bin_dir / t).exists() for t in ("peer", "osnadmin", "configtxgen"))


def test_docker_mode_needs_the_compose_ports(tmp_path: Path) -> None:
    base = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    moved = dataclasses.replace(base, network=dataclasses.replace(base.network, base_port=9000))
    with pytest.raises(DockerUnavailable, match="7100"):
        docker_install(moved, "/usr/bin/docker")


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    docker = _fake_docker(tmp_path, info_rc=1)
    with pytest.raises(DockerUnavailable, match="no Docker engine"):
        find_docker(str(docker.parent))
    with pytest.raises(DockerUnavailable, match="not installed"):
        find_docker(str(tmp_path / "empty"))
