"""Where everything of the native network lives under ``Settings.network_dir``.

One state folder, outside the clone by default::

    config/            core.yaml and orderer.yaml copied from the install, vm.endpoint blanked
    configtx/          the generated configtx.yaml and the channel's genesis block
    orgs/<org>/        the org's CA home, its MSP, node and user identities, crl.pem
    nodes/<node>/      ledgers (peer file system, orderer file ledger, raft WAL/snapshots)
    logs/<process>.log one log per process (nodes, CAs, chaincode servers);
                       logs/network.log each `up` step with its duration
    run/<process>.pid  one pid file per process
    builder/           the CCaaS external builder the peers run (copied from network/builder)
    ccaas/<peer>/      per-peer chaincode connection details the builder reads
    packages/          chaincode packages (reproducible tarballs)
    state.json         what has been set up (identities, channel, chaincodes)
    profile.json       the connection profile (network.profile.NetworkProfile)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def configtx_dir(self) -> Path:
        return self.root / "configtx"

    @property
    def genesis_block(self) -> Path:
        return self.configtx_dir / "genesis.block"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def builder_dir(self) -> Path:
        return self.root / "builder"

    @property
    def packages_dir(self) -> Path:
        return self.root / "packages"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def profile_file(self) -> Path:
        return self.root / "profile.json"

    def log_file(self, process: str) -> Path:
        return self.logs_dir / f"{process}.log"

    def pid_file(self, process: str) -> Path:
        return self.run_dir / f"{process}.pid"

    def org_dir(self, org_slug: str) -> Path:
        return self.root / "orgs" / org_slug

    def ca_home(self, org_slug: str) -> Path:
        return self.org_dir(org_slug) / "ca"

    def ca_cert(self, org_slug: str) -> Path:
        """The org CA's certificate: root of trust for its ecerts and TLS certs alike."""
        return self.ca_home(org_slug) / "ca-cert.pem"

    def ca_admin_home(self, org_slug: str) -> Path:
        """fabric-ca-client home of the CA's bootstrap registrar."""
        return self.org_dir(org_slug) / "registrar"

    def org_msp(self, org_slug: str) -> Path:
        return self.org_dir(org_slug) / "msp"

    def crl_file(self, org_slug: str) -> Path:
        return self.org_dir(org_slug) / "crl.pem"

    def node_identity(self, org_slug: str, node: str) -> Path:
        """Holds msp/ and tls/{server.crt,server.key,ca.crt}."""
        return self.org_dir(org_slug) / "nodes" / node

    def user_identity(self, org_slug: str, name: str) -> Path:
        """Holds msp/ (and tls/ for admins)."""
        return self.org_dir(org_slug) / "users" / name

    def node_data(self, node: str) -> Path:
        return self.root / "nodes" / node

    def ccaas_dir(self, peer: str) -> Path:
        return self.root / "ccaas" / peer
