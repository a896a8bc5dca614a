"""The native network as one object: up, down, status, logs, enroll, revoke, deploy.

Everything runs under ``Settings.network_dir`` (see :mod:`network.layout`).
:class:`NativeNetwork` is the façade: it takes the lock, reads and saves the
:class:`~network.state.NetworkState`, and decides what to skip; the steps are in
:mod:`network.lifecycle` and the waits in :mod:`network.readiness`.
Guarantees a caller may rely on:

- :meth:`NativeNetwork.up` starts only what is not already running and returns
  when the channel is ready: every node healthy, a Raft leader elected, every
  peer joined, and every peer's Gateway service able to endorse across orgs.
  On a network that is fully running it does nothing and says so. If any step
  fails, every process this call started is stopped before the error is raised.
- :meth:`NativeNetwork.down` stops every process it finds a pid file for (by pid,
  SIGTERM then SIGKILL) and checks that none is alive afterwards.
- :meth:`NativeNetwork.add_org` adds a peer org to the running network (see
  :mod:`network.orgs`); from then on ``up``, ``down``, ``status`` and the
  connection profile include it.
- Commands on one network are serialised by a lock file in the state folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from gateway.config import Settings
from network import ca as fabric_ca
from network import chaincode as cc
from network import nodes
from network.channel import publish_crl
from network.errors import NetworkError, NodeFailed, NotRunning, OrgExists, UnknownOrg
from network.install import FabricInstall
from network.layout import Layout
from network.lifecycle import Lifecycle, NodeRunner, Progress
from network.orgs import add_org
from network.processes import ProcessSpec, Running, read_pid, running_in, stop
from network.profile import NetworkProfile
from network.readiness import Readiness
from network.state import NetworkState
from network.topology import OrgSpec, Topology, build_topology, check_org_name

__all__ = [
    "AddOrgResult",
    "DeployResult",
    "NativeNetwork",
    "NodeRunner",
    "ProcessStatus",
    "UpResult",
]


@dataclasses.dataclass(frozen=True)
class UpResult:
    already_running: bool
    seconds: float
    started: tuple[str, ...]
    profile: Path


@dataclasses.dataclass(frozen=True)
class DeployResult:
    name: str
    package_id: str
    sequence: int
    warm: bool
    seconds: float


@dataclasses.dataclass(frozen=True)
class AddOrgResult:
    name: str
    msp_id: str
    peer: str
    resumed: bool
    seconds: float
    started: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ProcessStatus:
    name: str
    kind: str  # ca | orderer | peer | chaincode
    pid: int | None
    healthy: bool | None
    height: int | None
    leader: bool = False


class NativeNetwork:
    """The native network described by ``settings``, run from ``install``.

    Not :class:`gateway.ledger.network.Network` (a channel as a Fabric Gateway
    client sees it): this one owns the processes.
    """

    def __init__(
        self,
        settings: Settings,
        install: FabricInstall,
        *,
        env_path: str = "/usr/local/bin:/usr/bin:/bin",
        python: str = sys.executable,
        progress: Progress | None = None,
        nodes_via: NodeRunner | None = None,
    ) -> None:
        self.settings = settings
        self.install = install
        self.layout = Layout(settings.network_dir)
        # PATH handed to the nodes: the peers run our builder programs with it.
        self.env_path = f"{install.bin_dir}:{env_path}"
        self.nodes_via = nodes_via
        self.python = python
        self.progress = progress
        try:
            added = self._state().member_orgs()
        except NetworkError:
            added = []  # `up` reports the unreadable state file; `down` still works
        self._use(self._topology(added))

    def _topology(self, added_orgs: list[str]) -> Topology:
        net = self.settings.network
        return build_topology(net.base_port, net.channel, added_orgs)

    def _use(self, topology: Topology) -> None:
        self.topology: Topology = topology
        self.readiness = Readiness(self.layout, topology)
        self.lifecycle = self._lifecycle(topology)

    def _lifecycle(self, topology: Topology) -> Lifecycle:
        return Lifecycle(
            self.settings,
            self.install,
            self.layout,
            topology,
            Readiness(self.layout, topology),
            env_path=self.env_path,
            python=self.python,
            progress=self.progress,
            nodes_via=self.nodes_via,
        )

    # -- inventory ----------------------------------------------------------------------

    def node_specs(self, create: bool = False) -> list[ProcessSpec]:
        """CAs, orderers and peers, in start order (``create``: make the CAs' secrets)."""
        return self.lifecycle.node_specs(create)

    def chaincode_specs(self, state: NetworkState | None = None) -> list[ProcessSpec]:
        return self.lifecycle.chaincode_specs(self._state() if state is None else state)

    def _state(self) -> NetworkState:
        return NetworkState.load(self.layout.state_file)

    def _all_pid_files(self) -> list[Path]:
        return sorted(self.layout.run_dir.glob("*.pid")) if self.layout.run_dir.is_dir() else []

    def running(self) -> dict[str, int]:
        """Every process of ours that is alive, by name."""
        return running_in(self.layout.run_dir)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with (self.layout.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- up -----------------------------------------------------------------------------

    def up(self) -> UpResult:
        started_at = time.monotonic()
        with self._lock():
            state = self._state()
            self.lifecycle.check_same_shape(state)
            node_specs = self.node_specs()
            cc_specs = self.chaincode_specs(state)
            alive = self.running()
            missing = [s for s in (*node_specs, *cc_specs) if s.name not in alive]
            if not missing and state.channel and self.layout.profile_file.exists():
                return UpResult(True, time.monotonic() - started_at, (), self.layout.profile_file)
            self.lifecycle.check_ports(missing, state)
            started: list[Running] = []
            try:
                self.lifecycle.bring_up(state, node_specs, cc_specs, alive, started)
            except BaseException:
                stop(started)
                raise
            return UpResult(
                False,
                time.monotonic() - started_at,
                tuple(r.name for r in started),
                self.layout.profile_file,
            )

    # -- down / status / logs -----------------------------------------------------------

    def down(self, purge: bool = False) -> list[str]:
        """Stop every process of ours; with ``purge`` also delete the whole state folder."""
        with self._lock():
            alive = self.running()
            leftover = stop([Running(n, p) for n, p in alive.items()])
            if leftover:
                raise NodeFailed(
                    "could not stop " + ", ".join(f"{r.name} (pid {r.pid})" for r in leftover)
                )
            for pid_file in self._all_pid_files():
                pid_file.unlink(missing_ok=True)
            if self.nodes_via is not None:
                self.nodes_via.cleanup()
            if self.layout.profile_file.exists():
                self.layout.profile_file.unlink()
        if purge and self.layout.root.is_dir():
            shutil.rmtree(self.layout.root)
        return sorted(alive)

    def status(self) -> list[ProcessStatus]:
        t, channel = self.topology, self.topology.channel
        out = []
        for c in t.cas:
            pid = read_pid(self.layout.pid_file(c.name))
            out.append(
                ProcessStatus(c.name, "ca", pid, nodes.healthy(c.ops_port) if pid else None, None)
            )
        for o in t.orderers:
            pid = read_pid(self.layout.pid_file(o.name))
            up = pid is not None
            out.append(
                ProcessStatus(
                    o.name,
                    "orderer",
                    pid,
                    nodes.healthy(o.ops_port) if up else None,
                    nodes.height(o.ops_port, channel) if up else None,
                    up and nodes.is_raft_leader(o.ops_port, channel),
                )
            )
        for p in t.peers:
            pid = read_pid(self.layout.pid_file(p.name))
            up = pid is not None
            out.append(
                ProcessStatus(
                    p.name,
                    "peer",
                    pid,
                    nodes.healthy(p.ops_port) if up else None,
                    nodes.height(p.ops_port, channel) if up else None,
                )
            )
        for spec in self.chaincode_specs():
            out.append(ProcessStatus(spec.name, "chaincode", read_pid(spec.pid_file), None, None))
        return out

    def process_names(self) -> list[str]:
        return [s.name for s in (*self.node_specs(), *self.chaincode_specs())]

    def log_file(self, name: str) -> Path:
        names = self.process_names()
        if name not in names:
            raise NetworkError(f"no process called {name!r}; known: {', '.join(names)}")
        return self.layout.log_file(name)

    def profile(self) -> NetworkProfile:
        if not self.layout.profile_file.exists():
            raise NotRunning("the network is not running: run `anchorline network up` first")
        return NetworkProfile.load(self.layout.profile_file)

    # -- identities -----------------------------------------------------------------------

    def _peer_org(self, org: str) -> OrgSpec:
        try:
            spec = self.topology.org(org)
        except KeyError:
            names = ", ".join(o.name for o in self.topology.peer_orgs)
            raise UnknownOrg(
                f"unknown org {org!r}: the network's member orgs are {names}"
            ) from None
        if spec.name == self.topology.orderer_org.name:
            raise UnknownOrg(f"{spec.name} runs the orderers; enrol members in a peer org")
        return spec

    def _require_ca(self, org: OrgSpec) -> fabric_ca.CAClient:
        if read_pid(self.layout.pid_file(org.ca.name)) is None or not self._state().identities:
            raise NotRunning(f"{org.ca.name} is not running: run `anchorline network up` first")
        return fabric_ca.CAClient(self.install, self.layout, org)

    def enroll(self, org: str, name: str, role: str, *, request: bytes | None = None) -> Path:
        """Register and enrol ``name`` in ``org`` with ``role``; return its MSP folder.

        With ``request`` (a PEM PKCS#10 request signed by a key kept elsewhere, e.g. in
        a PKCS#11 token) the certificate is for that key and no keystore is written."""
        spec = self._peer_org(org)
        if role not in fabric_ca.ROLES:
            raise NetworkError(f"unknown role {role!r}: use one of {', '.join(fabric_ca.ROLES)}")
        if not name or "/" in name or name.startswith(".") or ":" in name:
            raise NetworkError(f"identity name {name!r} is not usable as a folder name")
        client = self._require_ca(spec)
        if request is not None:
            return fabric_ca.issue_user_for_request(client, name, role, request)
        return fabric_ca.issue_user(client, name, role)

    def revoke(self, org: str, name: str, *, channel: bool = True) -> Path:
        """Revoke ``name``'s certificates and publish the org's CRL; return the CRL path.

        With ``channel`` (the default) the CRL also goes into the org's MSP in the
        channel configuration (returns once every peer has it), so the peers
        themselves refuse the revoked certificate, not only the gateway; that needs
        the network running. ``channel=False`` only writes the CRL file.
        """
        spec = self._peer_org(org)
        crl = self._require_ca(spec).revoke(name)
        if channel:
            self._require_running()
            publish_crl(
                self.install,
                self.layout,
                self.topology,
                spec,
                self.lifecycle.orderer_args(),
                self.env_path,
            )
        return crl

    # -- chaincode --------------------------------------------------------------------------

    def _require_running(self) -> NetworkState:
        state = self._state()
        alive = self.running()
        down = [s.name for s in self.node_specs() if s.name not in alive]
        if not state.channel or down:
            detail = f" ({', '.join(down)} not running)" if state.channel and down else ""
            raise NotRunning(f"the network is not running{detail}: run `anchorline network up`")
        return state

    def add_org(self, name: str = "Org4") -> AddOrgResult:
        """Add peer org ``name`` to the running network and its channel (see network.orgs).

        Returns once the org's peer has joined and caught up, every deployed chaincode
        answers there, every peer's Gateway endorses across orgs, and the connection
        profile lists the org. :class:`OrgExists` if it is already part of the network;
        an interrupted run resumes when called again. Processes this call started are
        stopped if it fails.
        """
        started_at = time.monotonic()
        if self.nodes_via is not None:
            raise NetworkError("add-org runs on the native network only, not with --docker")
        with self._lock():
            state = self._require_running()
            try:
                known = self.topology.org(name)
            except KeyError:
                pass
            else:
                raise OrgExists(
                    f"{known.name} is already part of the network (channel "
                    f"{self.topology.channel}): nothing to do"
                )
            check_org_name(name)
            unfinished = [n for n in state.added_orgs if n not in state.member_orgs() and n != name]
            if unfinished:
                raise NetworkError(
                    f"adding {unfinished[0]} did not finish: run `anchorline network add-org "
                    f"{unfinished[0]}` to finish it first"
                )
            resumed = name in state.added_orgs
            before = self.topology
            grown = self._topology([*state.member_orgs(), name])
            alive = self.running()
            started: list[Running] = []
            try:
                add_org(self._lifecycle(grown), before, state, name, alive, started)
            except BaseException:
                stop(started)
                raise
            self._use(grown)
            org = grown.org(name)
            return AddOrgResult(
                org.name,
                org.msp_id,
                grown.peer_of(org.name).name,
                resumed,
                time.monotonic() - started_at,
                tuple(r.name for r in started),
            )

    def deploy(self, path: Path, name: str | None = None) -> DeployResult:
        """Package, install, approve, commit and serve the chaincode at ``path``.

        The same package again (a warm deploy) only restarts whichever of its
        servers is down; a changed one is a new definition, sequence + 1.
        """
        started_at = time.monotonic()
        source = cc.resolve_source(path, name)
        with self._lock():
            state = self._require_running()
            package = cc.build_package(source, self.layout.packages_dir)
            entry = state.chaincodes.get(source.name)
            if entry is not None and entry.package_id == package.package_id:
                self.lifecycle.serve_again(source.name, entry, self.running())
                return DeployResult(
                    source.name,
                    package.package_id,
                    entry.sequence,
                    True,
                    time.monotonic() - started_at,
                )
            sequence = self.lifecycle.deploy_new(state, source, package, entry)
            return DeployResult(
                source.name, package.package_id, sequence, False, time.monotonic() - started_at
            )
