"""Orderer and peer processes: their environment, health and heights.

As in Fabric's no-Docker sample network, every node runs the install's
default ``core.yaml`` / ``orderer.yaml`` with environment overrides. The only
file change is a copy of ``core.yaml`` in the state folder with an empty
``vm.endpoint``: there is no Docker daemon, and an empty environment variable
cannot blank a viper setting. The install itself is never edited.

Health is read from each node's operations endpoint (``/healthz``) and block
heights and Raft leadership from its Prometheus ``/metrics``, so status checks
spawn no processes.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

from gateway.errors import ConfigError
from network.install import FabricInstall
from network.layout import Layout
from network.processes import ProcessSpec
from network.topology import HOST, OrdererNode, PeerNode, Topology

BUILDER_NAME = "anchorline-ccaas"
# The builder reads the per-peer chaincode addresses from this folder.
CCAAS_ENV = "ANCHORLINE_CCAAS_DIR"

# Fabric's default format without the terminal colour codes (the logs are files).
LOG_FORMAT = (
    "%{time:2006-01-02 15:04:05.000 MST} [%{module}] %{shortfunc} -> %{level:.4s} %{message}"
)


def go_memory(limit_mib: int, gogc: int) -> dict[str, str]:
    """Go runtime settings that keep a node's resident memory near ``limit_mib``.

    A soft limit (GOMEMLIMIT) makes the collector work harder, and return memory to
    the system sooner, as the heap nears it; a GOGC below 100 grows the heap less
    between collections. Nine Go processes share a small machine with the chaincode
    servers, so memory is traded for CPU only where the CPU is not the bottleneck.
    """
    return {"GOGC": str(gogc), "GOMEMLIMIT": f"{limit_mib}MiB"}


# Fabric logs every gRPC call at INFO: about 3 KB of peer log per transaction,
# a gigabyte an hour at 300 tx/s, with no rotation here. Failed endorsements,
# submissions and deliveries are still logged, at WARN, by the gateway, the
# endorser and the broadcast handler.
LOGGING_SPEC = "info:comm.grpc.server=warning"

# Orderers use little CPU (about a third of a core at 100 tx/s): keep them lean.
ORDERER_MEMORY_MIB = 40
ORDERER_GOGC = 50
# Peers take their limit and GOGC from the settings (network.peer_memory_mib,
# network.peer_gogc): they are the CPU bottleneck, and how much memory to give them
# is the operator's trade (see network/README.md). Below this limit a peer's own
# caches (about 40 MiB of LevelDB memtables) leave the collector running nonstop.
MIN_PEER_MEMORY_MIB = 64

_VM_ENDPOINT = re.compile(r"^(\s*endpoint:\s*)unix:///var/run/docker\.sock\s*$", re.MULTILINE)


def prepare_config(install: FabricInstall, layout: Layout) -> Path:
    """Copy the install's core.yaml/orderer.yaml into the state folder, vm.endpoint blanked."""
    target = layout.config_dir
    target.mkdir(parents=True, exist_ok=True)
    core = (install.config_dir / "core.yaml").read_text()
    (target / "core.yaml").write_text(_VM_ENDPOINT.sub(r"\1", core))
    shutil.copyfile(install.config_dir / "orderer.yaml", target / "orderer.yaml")
    return target


def orderer_spec(
    install: FabricInstall, layout: Layout, topology: Topology, node: OrdererNode, env_path: str
) -> ProcessSpec:
    org = topology.orderer_org
    ident = layout.node_identity(org.slug, node.name)
    tls = ident / "tls"
    data = layout.node_data(node.name)
    ca = str(layout.ca_cert(org.slug))
    env = {
        "PATH": env_path,
        **go_memory(ORDERER_MEMORY_MIB, ORDERER_GOGC),
        "FABRIC_CFG_PATH": str(layout.config_dir),
        "FABRIC_LOGGING_SPEC": LOGGING_SPEC,
        "FABRIC_LOGGING_FORMAT": LOG_FORMAT,
        "ORDERER_GENERAL_LISTENADDRESS": HOST,
        "ORDERER_GENERAL_LISTENPORT": str(node.port),
        "ORDERER_GENERAL_LOCALMSPID": org.msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": str(ident / "msp"),
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{ca}]",
        # Cluster (Raft) traffic shares the client listener and its TLS pair.
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{ca}]",
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_FILELEDGER_LOCATION": str(data / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(data / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(data / "etcdraft" / "snapshot"),
        "ORDERER_OPERATIONS_LISTENADDRESS": f"{HOST}:{node.ops_port}",
        "ORDERER_METRICS_PROVIDER": "prometheus",
        "ORDERER_ADMIN_LISTENADDRESS": f"{HOST}:{node.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{ca}]",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{ca}]",
    }
    argv = (str(install.binary("orderer")),)
    return ProcessSpec(node.name, argv, env, layout.log_file(node.name), layout.pid_file(node.name))


def peer_spec(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    node: PeerNode,
    env_path: str,
    *,
    memory_mib: int,
    gogc: int,
) -> ProcessSpec:
    if memory_mib < MIN_PEER_MEMORY_MIB or gogc <= 0:
        raise ConfigError(
            f"network.peer_memory_mib must be at least {MIN_PEER_MEMORY_MIB} and "
            f"network.peer_gogc positive (got {memory_mib} MiB, GOGC={gogc}); "
            "see network/README.md"
        )
    org = topology.org(node.org)
    ident = layout.node_identity(org.slug, node.name)
    tls = ident / "tls"
    data = layout.node_data(node.name)
    builders = (
        f"[{{name: {BUILDER_NAME}, path: {layout.builder_dir}, "
        f"propagateEnvironment: [{CCAAS_ENV}]}}]"
    )
    env = {
        "PATH": env_path,
        **go_memory(memory_mib, gogc),
        "FABRIC_CFG_PATH": str(layout.config_dir),
        "FABRIC_LOGGING_SPEC": LOGGING_SPEC,
        "FABRIC_LOGGING_FORMAT": LOG_FORMAT,
        "CORE_PEER_ID": node.name,
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(ident / "msp"),
        "CORE_PEER_LISTENADDRESS": node.address,
        "CORE_PEER_ADDRESS": node.address,
        "CORE_PEER_CHAINCODELISTENADDRESS": f"{HOST}:{node.chaincode_port}",
        "CORE_PEER_CHAINCODEADDRESS": f"{HOST}:{node.chaincode_port}",
        "CORE_PEER_GOSSIP_BOOTSTRAP": node.address,
        # What the other orgs' peers are told: without it they never find this one.
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": node.address,
        # Push and pull channel membership every 500 ms, and pull identities every
        # second, instead of every 4 s: the Gateway cannot plan a cross-org
        # endorsement until it has the other orgs' peers' state (a missed push
        # otherwise cost 4 or 8 s in `up`).
        "CORE_PEER_GOSSIP_PUBLISHSTATEINFOINTERVAL": "500ms",
        "CORE_PEER_GOSSIP_REQUESTSTATEINFOINTERVAL": "500ms",
        "CORE_PEER_GOSSIP_PULLINTERVAL": "1s",
        # A failed first dial of another org's anchor peer (it may still be starting)
        # is retried after this interval: Fabric's 25 s default stalled `up` once.
        "CORE_PEER_GOSSIP_RECONNECTINTERVAL": "1s",
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
        "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
        "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
        "CORE_PEER_FILESYSTEMPATH": str(data / "data"),
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(data / "snapshots"),
        "CORE_PEER_GATEWAY_ENABLED": "true",
        "CORE_OPERATIONS_LISTENADDRESS": f"{HOST}:{node.ops_port}",
        "CORE_METRICS_PROVIDER": "prometheus",
        "CORE_CHAINCODE_EXTERNALBUILDERS": builders,
        CCAAS_ENV: str(layout.ccaas_dir(node.name)),
    }
    argv = (str(install.binary("peer")), "node", "start")
    return ProcessSpec(node.name, argv, env, layout.log_file(node.name), layout.pid_file(node.name))


def healthy(ops_port: int, timeout: float = 0.5) -> bool:
    """True when the node's operations endpoint answers /healthz with status OK."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ops_port}/healthz", timeout=timeout) as resp:
            return bool(json.loads(resp.read()).get("status") == "OK")
    except (OSError, ValueError, urllib.error.URLError):
        return False


def listening(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port.

    A node's operations endpoint answers /healthz before its other listeners are
    open, so readiness checks both.
    """
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def metrics(ops_port: int, timeout: float = 0.5) -> str:
    """The node's Prometheus text, or "" if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ops_port}/metrics", timeout=timeout) as resp:
            return str(resp.read().decode())
    except (OSError, ValueError, urllib.error.URLError):
        return ""


def _gauge(text: str, name: str, channel: str) -> float | None:
    pattern = re.compile(
        rf'^{re.escape(name)}\{{[^}}]*channel="{re.escape(channel)}"[^}}]*\}}\s+(\S+)$',
        re.MULTILINE,
    )
    match = pattern.search(text)
    return float(match.group(1)) if match else None


def height(ops_port: int, channel: str) -> int | None:
    """Block height of ``channel`` on the node, or None if unknown (not joined, down)."""
    value = _gauge(metrics(ops_port), "ledger_blockchain_height", channel)
    return int(value) if value is not None else None


def is_raft_leader(ops_port: int, channel: str) -> bool:
    return _gauge(metrics(ops_port), "consensus_etcdraft_is_leader", channel) == 1.0
