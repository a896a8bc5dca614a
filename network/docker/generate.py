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
#
# Profile "scaleout" (README, "Running several gateways"): two gateway processes on
# one PostgreSQL, Redis between them and HAProxy in front, on the ports and settings
# of docs/scaleout/ (Procfile, env, haproxy.cfg): `docker compose -f
# network/docker/compose.yaml --profile scaleout up postgres redis gateway1 gateway2
# balancer`; clients use 127.0.0.1:8080. The gateways use the embedded ledger of
# their shared home unless ANCHORLINE_LEDGER_KIND says otherwise.
"""

SCALEOUT = "scaleout"
# Paths of the scale-out services are relative to this folder, as Compose reads them.
_DOCS = "../../docs/scaleout"
_GATEWAY_PORTS = {"gateway1": 8081, "gateway2": 8082}


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
    services.update(scaleout_services())
    return {
        "name": "anchorline",
        "services": services,
        "volumes": {"anchorline-home": {}, "anchorline-postgres": {}},
    }


def scaleout_services() -> dict[str, Any]:
    """The services of the ``scaleout`` profile: the processes of docs/scaleout/Procfile
    and the PostgreSQL it expects, with the same commands, ports and settings."""
    common = {"network_mode": "host", "profiles": [SCALEOUT]}
    gateway = {
        **common,
        "image": "anchorline-gateway",
        "build": {"context": "../..", "dockerfile": "network/docker/gateway.Dockerfile"},
        "env_file": [f"{_DOCS}/env"],
        "volumes": ["anchorline-home:/var/lib/anchorline"],
        "depends_on": {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_started"},
        },
        # SIGTERM drains (docs/scaleout/anchorline-gateway@.service): give it the time.
        "stop_grace_period": "30s",
    }
    out: dict[str, Any] = {
        "postgres": {
            **common,
            "image": "postgres:15",
            "command": ["postgres", "-c", "listen_addresses=127.0.0.1", "-c", "port=5432"],
            "environment": {
                "POSTGRES_USER": "anchorline",
                "POSTGRES_PASSWORD": "change-me",
                "POSTGRES_DB": "anchorline",
            },
            "volumes": ["anchorline-postgres:/var/lib/postgresql/data"],
            "healthcheck": {
                "test": ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "anchorline"],
                "interval": "2s",
                "retries": 30,
            },
        },
        "redis": {
            **common,
            "image": "redis:7",
            "command": [
                "redis-server", "--bind", "127.0.0.1", "--port", "6379",
                "--save", "", "--appendonly", "no",
            ],
        },
    }  # fmt: skip
    for name, port in _GATEWAY_PORTS.items():
        out[name] = {
            **gateway,
            "container_name": f"anchorline-{name}",
            "command": ["anchorline", "gateway", "run"],
            "environment": {
                "ANCHORLINE_HOME": "/var/lib/anchorline",
                "ANCHORLINE_GATEWAY_PORT": str(port),
            },
        }
    out["balancer"] = {
        **common,
        "image": "haproxy:2.6",
        "command": ["haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
        "volumes": [f"{_DOCS}/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"],
        "depends_on": list(_GATEWAY_PORTS),
    }
    return out


class _Dumper(yaml.SafeDumper):
    """Writes a mapping shared by two services out twice: no YAML anchors to follow."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    return HEADER + yaml.dump(compose_document(), Dumper=_Dumper, sort_keys=False, width=120)


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
