"""``anchorline network --docker ...``: the same network with the nodes in containers.

The nodes (Fabric CAs, orderers, peers) run as the services of
``network/docker/compose.yaml`` (official images pinned to Fabric 2.5.16 and
Fabric CA 1.5.21, host networking, the state folder mounted at its own path),
each started in the foreground with ``docker compose run``, so it has a pid,
a log file and a pid file like a native node, and ``down`` stops it by pid.
The Fabric command-line tools run from the official images too, through small
wrapper scripts written into the state folder (``docker-fabric/bin``), which
forward the ``CORE_*``, ``ORDERER_*`` and ``FABRIC_*`` settings of each call.
Nothing but Docker is needed on the host; the chaincode servers run on the
host with this project's Python.

Everything else (identities from the CAs, configtx, channel joins, chaincode
lifecycle, readiness) is the native code path, unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from gateway.config import Settings
from network.errors import NetworkError
from network.install import TESTED_FABRIC, TESTED_FABRIC_CA, FabricInstall
from network.processes import ProcessSpec

COMPOSE_FILE = Path(__file__).parent / "docker" / "compose.yaml"
COMPOSE_BASE_PORT = 7100

IMAGES = {
    "ca": f"hyperledger/fabric-ca:{TESTED_FABRIC_CA}",
    "orderer": f"hyperledger/fabric-orderer:{TESTED_FABRIC}",
    "peer": f"hyperledger/fabric-peer:{TESTED_FABRIC}",
    "tools": f"hyperledger/fabric-tools:{TESTED_FABRIC}",
}
# Which image runs each command-line tool.
TOOL_IMAGES = {
    "fabric-ca-client": IMAGES["ca"],
    "fabric-ca-server": IMAGES["ca"],
    "configtxgen": IMAGES["tools"],
    "osnadmin": IMAGES["tools"],
    "peer": IMAGES["tools"],
    "orderer": IMAGES["orderer"],
}
CONFIG_IN_IMAGE = {
    "core.yaml": (IMAGES["peer"], "/etc/hyperledger/fabric/core.yaml"),
    "orderer.yaml": (IMAGES["orderer"], "/etc/hyperledger/fabric/orderer.yaml"),
}

_WRAPPER = """#!/bin/sh
# {tool} from {image}: the state folder mounted at its own path, host network,
# the caller's CORE_/ORDERER_/FABRIC_ settings forwarded. Written by anchorline.
forward=""
for name in $(env | sed -n 's/^\\(\\(CORE\\|ORDERER\\|FABRIC\\)_[A-Za-z0-9_]*\\)=.*/\\1/p'); do
    forward="$forward -e $name"
done
# $forward is unquoted on purpose: it holds only "-e NAME" pairs (names have no spaces).
exec {docker} run --rm -i --network host -u "$(id -u):$(id -g)" \\
    -v "{state}:{state}" $forward {image} {tool} "$@"
"""


class DockerUnavailable(NetworkError):
    """Docker (with the compose plugin and a running engine) is needed for --docker."""

    code = "AL1113"


def find_docker(path_env: str) -> str:
    docker = shutil.which("docker", path=path_env)
    if docker is None:
        raise DockerUnavailable("docker is not installed: run the native network (no --docker)")
    probe = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise DockerUnavailable(
            "no Docker engine answers (`docker info` failed): start it, or run the native "
            "network without --docker"
        )
    return docker


def compose_env(settings: Settings, docker: str) -> dict[str, str]:
    """What ``docker compose`` needs: the Compose file's variables and the docker binary."""
    return {
        "PATH": f"{Path(docker).parent}:{os.defpath}",
        "ANCHORLINE_NETWORK_DIR": str(settings.network_dir),
        "ANCHORLINE_UID": str(os.getuid()),
        "ANCHORLINE_GID": str(os.getgid()),
    }


def write_wrappers(root: Path, state: Path, docker: str) -> Path:
    """``root/bin/<tool>`` scripts running each tool in its image; return ``root/bin``."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool, image in TOOL_IMAGES.items():
        script = bin_dir / tool
        script.write_text(_WRAPPER.format(tool=tool, image=image, docker=docker, state=state))
        script.chmod(0o755)
    return bin_dir


def docker_install(settings: Settings, docker: str) -> FabricInstall:
    """A :class:`FabricInstall` whose binaries are the container wrappers."""
    if settings.network.base_port != COMPOSE_BASE_PORT:
        raise DockerUnavailable(
            f"--docker runs network/docker/compose.yaml, whose ports start at "
            f"{COMPOSE_BASE_PORT}; unset ANCHORLINE_NETWORK_BASE_PORT"
        )
    root = settings.network_dir / "docker-fabric"
    write_wrappers(root, settings.network_dir, docker)
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    for name, (image, path) in CONFIG_IN_IMAGE.items():
        if (config / name).exists():
            continue
        done = subprocess.run(
            [docker, "run", "--rm", image, "cat", path], capture_output=True, check=False
        )
        if done.returncode != 0:
            raise DockerUnavailable(f"could not read {path} from {image}: {done.stderr[-200:]!r}")
        (config / name).write_bytes(done.stdout)
    return FabricInstall(
        root=root,
        bin_dir=root / "bin",
        config_dir=config,
        source="docker",
        fabric_version=TESTED_FABRIC,
        ca_version=TESTED_FABRIC_CA,
    )


@dataclasses.dataclass(frozen=True)
class ComposeNodes:
    """Turns a native node's process spec into ``docker compose run`` of its service."""

    docker: str
    env: Mapping[str, str]
    compose_file: Path = COMPOSE_FILE

    def __call__(self, spec: ProcessSpec) -> ProcessSpec:
        argv = (
            self.docker, "compose", "-f", str(self.compose_file), "run", "--rm", "--no-deps",
            "--name", spec.name, spec.name,
        )  # fmt: skip
        return dataclasses.replace(spec, argv=argv, env=dict(self.env))

    def cleanup(self) -> None:
        """Remove the network's containers (after their processes were stopped by pid)."""
        subprocess.run(
            [self.docker, "compose", "-f", str(self.compose_file), "down", "--remove-orphans"],
            env=dict(self.env),
            capture_output=True,
            check=False,
        )
