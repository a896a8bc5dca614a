"""Running the ``peer`` and ``osnadmin`` CLIs as an org's admin."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from network.errors import CommandFailed
from network.install import FabricInstall
from network.layout import Layout
from network.topology import OrdererNode, Topology

ADMIN = "admin"


def admin_env(
    install: FabricInstall, layout: Layout, topology: Topology, org_name: str, env_path: str
) -> dict[str, str]:
    """Environment for ``peer`` CLI calls as ``org_name``'s admin against its own peer."""
    org = topology.org(org_name)
    peer = topology.peer_of(org.name)
    return {
        "PATH": env_path,
        "FABRIC_CFG_PATH": str(layout.config_dir),
        "FABRIC_LOGGING_SPEC": "warning",
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(layout.user_identity(org.slug, ADMIN) / "msp"),
        "CORE_PEER_ADDRESS": peer.address,
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_ROOTCERT_FILE": str(layout.ca_cert(org.slug)),
    }


def orderer_tls_args(layout: Layout, topology: Topology, orderer: OrdererNode) -> list[str]:
    """``-o``/``--cafile`` arguments for peer CLI calls that go through the orderer."""
    return [
        "-o",
        orderer.address,
        "--tls",
        "--cafile",
        str(layout.ca_cert(topology.orderer_org.slug)),
    ]


def run(argv: Sequence[str], env: dict[str, str], what: str, timeout: float = 60) -> str:
    """Run a Fabric CLI; raise CommandFailed with its last error line."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{what}: timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "Error" in ln or "error" in ln]
        detail = (errors or lines or ["no output"])[-1]
        raise CommandFailed(f"{what} failed: {detail}")
    return done.stdout + done.stderr


# The operations endpoint answers /healthz before the admin and peer listeners are up.
_NOT_LISTENING = ("connection refused", "Unavailable", "context deadline exceeded")


def run_until_listening(
    argv: Sequence[str], env: dict[str, str], what: str, budget: float = 20
) -> str:
    """:func:`run`, retried while the target does not accept connections yet."""
    deadline = time.monotonic() + budget
    while True:
        try:
            return run(argv, env, what)
        except CommandFailed as exc:
            if time.monotonic() > deadline or not any(m in exc.message for m in _NOT_LISTENING):
                raise
            time.sleep(0.1)


def osnadmin_join(
    install: FabricInstall, layout: Layout, topology: Topology, orderer: OrdererNode, env_path: str
) -> None:
    """Join ``orderer`` to the channel through its admin endpoint (mutual TLS)."""
    org = topology.orderer_org
    tls = layout.user_identity(org.slug, ADMIN) / "tls"
    run_until_listening(
        [
            str(install.binary("osnadmin")),
            "channel",
            "join",
            "--channelID",
            topology.channel,
            "--config-block",
            str(layout.genesis_block),
            "-o",
            f"127.0.0.1:{orderer.admin_port}",
            "--ca-file",
            str(layout.ca_cert(org.slug)),
            "--client-cert",
            str(tls / "server.crt"),
            "--client-key",
            str(tls / "server.key"),
        ],
        {"PATH": env_path},
        f"osnadmin channel join on {orderer.name}",
    )


def peer_join(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    org_name: str,
    env_path: str,
    block: Path | None = None,
) -> None:
    """Join ``org_name``'s peer to the channel from ``block`` (default: the genesis block)."""
    env = admin_env(install, layout, topology, org_name, env_path)
    run_until_listening(
        [str(install.binary("peer")), "channel", "join", "-b", str(block or layout.genesis_block)],
        env,
        f"peer channel join on {topology.peer_of(org_name).name}",
    )


def fetch_block(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    org_name: str,
    env_path: str,
    number: int,
    out: Path,
    orderer_args: Sequence[str],
) -> Path:
    """Block ``number`` of the channel, fetched from the orderer as ``org_name``'s admin."""
    run(
        [
            str(install.binary("peer")),
            "channel",
            "fetch",
            str(number),
            str(out),
            "-c",
            topology.channel,
            *orderer_args,
        ],
        admin_env(install, layout, topology, org_name, env_path),
        f"fetch block {number} of channel {topology.channel} as {org_name}'s admin",
    )
    return out
