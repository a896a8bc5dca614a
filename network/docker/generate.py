"""Write ``compose.yaml`` from the native node specs: ``python -m network.docker.generate``.

The Compose services carry exactly the environment the native nodes get (less
PATH), with the state folder as ``${ANCHORLINE_NETWORK_DIR}``, so the two ways
of running the network cannot drift apart; a unit test checks that the
committed file is what this writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.config import load_settings
from network.control import NativeNetwork
from network.install import TESTED_FABRIC, TESTED_FABRIC_CA, FabricInstall

TARGET = Path(__file__).parent / "compose.yaml"
_PLACEHOLDER_HOME = Path("/ANCHORLINE-STATE")
_PLACEHOLDER_DIR = str(_PLACEHOLDER_HOME / "network")
STATE = "${ANCHORLINE_NETWORK_DIR}"

HEADER = """\
# The Anchorline consortium network under Docker Compose: the same topology as the
# native network (network/topology.py, default base port 7100) on the official images
# pinned to Fabric 2.5.16 and Fabric CA 1.5.21. Written by `python -m
# network.docker.generate` from the native node settings; do not edit by hand.
#
# Host networking: every node listens on the same 127.0.0.1 port as natively, so the
# TLS certificates (SANs localhost, 127.0.0.1), the channel's orderer endpoints and
# anchor peers and the connection profile are the same. The state folder
# (ANCHORLINE_NETWORK_DIR, normally ~/.local/share/anchorline/network) is mounted at
# its own path: it holds the crypto from the Fabric CAs, the copied core.yaml and
# orderer.yaml and the CCaaS builder (POSIX sh, runs in the Alpine peer image).
# `anchorline network up --docker` starts each service with `docker compose run`
# and does the rest (identities, channel, chaincode) as natively.
"""


def _sub(value: str) -> str:
    return value.replace(_PLACEHOLDER_DIR, STATE)


def compose_document() -> dict[str, Any]:
    settings = load_settings({"ANCHORLINE_HOME": str(_PLACEHOLDER_HOME)})
    install = FabricInstall(
        root=Path("/fabric"),
        bin_dir=Path("/fabric/bin"),
        config_dir=Path("/fabric/config"),
        source="compose",
        fabric_version=TESTED_FABRIC,
        ca_version=TESTED_FABRIC_CA,
    )
    network = NativeNetwork(settings, install, env_path="/usr/bin:/bin")
    services: dict[str, Any] = {}
    for spec in network.node_specs():
        env = {k: _sub(v) for k, v in spec.env.items() if k != "PATH"}
        if spec.name.startswith("ca."):
            image = f"hyperledger/fabric-ca:{TESTED_FABRIC_CA}"
            args = [_sub(a) for a in spec.argv[1:]]
            home = args[args.index("--home") + 1]
            # The registrar secret is made by `network up` in the CA's home.
            args[args.index("-b") + 1] = f"registrar:$$(cat {home}/registrar.secret)"
            command = ["sh", "-c", "exec fabric-ca-server " + " ".join(args)]
        elif spec.name.startswith("orderer"):
            image = f"hyperledger/fabric-orderer:{TESTED_FABRIC}"
            command = ["orderer"]
        else:
            image = f"hyperledger/fabric-peer:{TESTED_FABRIC}"
            command = ["peer", "node", "start"]
        services[spec.name] = {
            "image": image,
            "container_name": spec.name,
            "network_mode": "host",
            "user": "${ANCHORLINE_UID:-0}:${ANCHORLINE_GID:-0}",
            "command": command,
            "environment": env,
            "volumes": [f"{STATE}:{STATE}"],
        }
    return {"name": "anchorline", "services": services}


def render() -> str:
    return HEADER + yaml.safe_dump(compose_document(), sort_keys=False, width=120)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
