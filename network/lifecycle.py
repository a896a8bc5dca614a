"""Bringing the native network up step by step, and the chaincode lifecycle (deploy).

:class:`Lifecycle` knows what the processes are (``node_specs``,
``chaincode_specs``), starts them and drives each step of a cold or warm start
and of a deploy. It takes no lock and decides nothing about what to skip:
:class:`network.control.NativeNetwork` does both. Progress is recorded in the
:class:`~network.state.NetworkState` it is given and saved after every step, so an
interrupted `up` resumes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from gateway.config import Settings
from network import ca as fabric_ca
from network import chaincode as cc
from network import configtx, nodes, peercli
from network.builder import install_builder
from network.errors import ChaincodeError, CommandFailed, NetworkError, NotRunning, PortInUse
from network.install import FabricInstall
from network.layout import Layout
from network.processes import ProcessSpec, Running, read_pid, spawn, stop
from network.profile import build_profile
from network.readiness import Readiness, journal, parallel, port_free
from network.state import ChaincodeEntry, NetworkState, Shape
from network.topology import HOST, OrgSpec, PeerNode, Topology

Progress = Callable[[str], None]


class NodeRunner(Protocol):
    """Runs the nodes some other way than as native processes (see network.docker_mode)."""

    def __call__(self, spec: ProcessSpec) -> ProcessSpec: ...

    def cleanup(self) -> None: ...


class Lifecycle:
    """The steps of `up` and `deploy` for the network described by ``settings``."""

    def __init__(
        self,
        settings: Settings,
        install: FabricInstall,
        layout: Layout,
        topology: Topology,
        readiness: Readiness,
        *,
        env_path: str,
        python: str = sys.executable,
        progress: Progress | None = None,
        nodes_via: NodeRunner | None = None,
    ) -> None:
        self.settings = settings
        self.install = install
        self.layout = layout
        self.topology = topology
        self.readiness = readiness
        # PATH handed to the nodes: the peers run our builder programs with it.
        self.env_path = env_path
        self.python = python
        self._progress = progress or (lambda _msg: None)
        # None: nodes are native processes; else how to run them (Docker Compose).
        self.nodes_via = nodes_via

    # -- inventory ----------------------------------------------------------------------

    def node_specs(self, create: bool = False) -> list[ProcessSpec]:
        """CAs, orderers and peers, in start order (``create``: make the CAs' secrets)."""
        t, lay, inst, path = self.topology, self.layout, self.install, self.env_path
        specs = [fabric_ca.server_spec(inst, lay, org, path, create=create) for org in t.orgs]
        specs += [nodes.orderer_spec(inst, lay, t, o, path) for o in t.orderers]
        memory = self.settings.network.peer_memory_mib
        gogc = self.settings.network.peer_gogc
        specs += [
            nodes.peer_spec(inst, lay, t, p, path, memory_mib=memory, gogc=gogc) for p in t.peers
        ]
        if self.nodes_via is not None:
            specs = [self.nodes_via(s) for s in specs]
        return specs

    def chaincode_specs(self, state: NetworkState) -> list[ProcessSpec]:
        """One chaincode server per deployed chaincode and peer, by chaincode name."""
        specs = []
        for name, entry in sorted(state.chaincodes.items()):
            specs += self.specs_for(name, entry)
        return specs

    def specs_for(self, name: str, entry: ChaincodeEntry) -> list[ProcessSpec]:
        return [self._chaincode_spec(name, entry, i, p) for i, p in enumerate(self.topology.peers)]

    def _chaincode_spec(
        self, name: str, entry: ChaincodeEntry, peer_index: int, peer: PeerNode
    ) -> ProcessSpec:
        org = self.topology.org(peer.org)
        tls = self.layout.node_identity(org.slug, peer.name) / "tls"
        port = self.topology.chaincode_port(entry.index, peer_index)
        proc = f"cc.{name}.{peer.name}"
        env = {
            "PATH": self.env_path,
            "PYTHONPATH": entry.pythonpath,
            "PYTHONUNBUFFERED": "1",
            "CHAINCODE_SERVER_ADDRESS": f"{HOST}:{port}",
            "CHAINCODE_ID": entry.package_id,
            "CHAINCODE_TLS_DISABLED": "false",
            # The peer's own TLS pair: issued by the org CA for 127.0.0.1.
            "CHAINCODE_TLS_KEY": str(tls / "server.key"),
            "CHAINCODE_TLS_CERT": str(tls / "server.crt"),
            "CHAINCODE_CLIENT_CA_CERT": str(self.layout.ca_cert(org.slug)),
        }
        argv = (self.python, "-m", "chaincode.runtime", entry.module)
        return ProcessSpec(proc, argv, env, self.layout.log_file(proc), self.layout.pid_file(proc))

    # -- checks and starting ------------------------------------------------------------

    def check_same_shape(self, state: NetworkState) -> None:
        """Refuse to restart a network made with other ports or another channel name.

        The genesis block and the certificates hold the ports and the channel of the
        first `up`; starting the nodes elsewhere would give a network that never forms.
        """
        made = state.shape
        wanted = Shape(base_port=self.topology.base_port, channel=self.topology.channel)
        if state.identities and made is not None and made != wanted:
            raise NetworkError(
                f"the network in {self.layout.root} was made with base port "
                f"{made.base_port} and channel {made.channel!r}; run `anchorline network "
                "down --purge` to start over, or set ANCHORLINE_NETWORK_BASE_PORT/CHANNEL back"
            )
        state.shape = wanted

    def check_ports(self, specs: Sequence[ProcessSpec], state: NetworkState) -> None:
        """:class:`PortInUse` if a port one of ``specs`` will listen on is taken."""
        names = {s.name for s in specs}
        for owner, port in self.topology.all_ports():
            if owner.split(" ")[0] in names and not port_free(port):
                raise PortInUse(
                    f"port {port} ({owner}) on {HOST} is in use by another process; free it "
                    f"or set ANCHORLINE_NETWORK_BASE_PORT to move the network's ports"
                )
        for name, entry in state.chaincodes.items():
            for i, peer in enumerate(self.topology.peers):
                port = self.topology.chaincode_port(entry.index, i)
                if f"cc.{name}.{peer.name}" in names and not port_free(port):
                    raise PortInUse(f"port {port} (chaincode {name} for {peer.name}) is in use")

    def start(
        self, specs: Sequence[ProcessSpec], alive: dict[str, int], started: list[Running]
    ) -> list[Running]:
        """Spawn those of ``specs`` not in ``alive``; each is appended to ``started`` at once."""
        new = []
        for spec in specs:
            if spec.name in alive:
                continue
            running = spawn(spec)
            started.append(running)
            new.append(running)
        return new

    def step(self, label: str) -> contextlib.AbstractContextManager[None]:
        progress, layout = self._progress, self.layout

        def note(message: str) -> None:
            progress(message)
            journal(layout, message)

        @contextlib.contextmanager
        def timed() -> Iterator[None]:
            started = time.monotonic()
            note(f"  {label} ...")
            yield
            note(f"  {label}: done in {time.monotonic() - started:.2f} s")

        return timed()

    # -- up -----------------------------------------------------------------------------

    def bring_up(
        self,
        state: NetworkState,
        node_specs: list[ProcessSpec],
        cc_specs: list[ProcessSpec],
        alive: dict[str, int],
        started: list[Running],
    ) -> None:
        """Every step from configuration to a channel whose Gateways endorse across orgs."""
        t, lay, ready = self.topology, self.layout, self.readiness
        with self.step("configuration"):
            if not state.identities:
                # A cold start: anything left from a half-finished earlier one goes.
                for leftover in ("orgs", "configtx", "nodes", "ccaas", "packages"):
                    shutil.rmtree(lay.root / leftover, ignore_errors=True)
                state.identities, state.channel, state.chaincodes = False, False, {}
                state.save(lay.state_file)
            lay.logs_dir.mkdir(parents=True, exist_ok=True)
            nodes.prepare_config(self.install, lay)
            install_builder(lay.builder_dir)
            node_specs[:] = self.node_specs(create=True)
            by_name = {s.name: s for s in node_specs}
        with self.step(f"{len(t.cas)} certificate authorities"):
            ready.cas(self.start([by_name[c.name] for c in t.cas], alive, started))
        if not state.identities:
            with self.step("identities from Fabric CA (nodes, TLS, admins)"):
                parallel(self.issue_org, list(t.orgs))
                state.identities = True
                state.save(lay.state_file)
        if not lay.genesis_block.exists():
            with self.step("genesis block"):
                configtx.write_configtx(
                    lay,
                    t,
                    self.settings.network.batch_timeout_ms,
                    self.settings.network.raft_tick_ms,
                )
                configtx.genesis_block(self.install, lay, t, self.env_path)
        with self.step(f"{len(t.orderers)} orderers and {len(t.peers)} peers"):
            specs = [by_name[o.name] for o in t.orderers] + [by_name[p.name] for p in t.peers]
            ready.nodes(self.start(specs, alive, started))
        if not state.channel:
            with self.step(f"channel '{t.channel}' (osnadmin join, peer join)"):
                parallel(
                    lambda o: peercli.osnadmin_join(self.install, lay, t, o, self.env_path),
                    list(t.orderers),
                )
                parallel(
                    lambda org: peercli.peer_join(self.install, lay, t, org.name, self.env_path),
                    list(t.peer_orgs),
                )
                state.channel = True
                state.save(lay.state_file)
        with self.step("channel ready (Raft leader, peer heights)"):
            ready.channel(started)
        if cc_specs:
            with self.step(f"{len(cc_specs)} chaincode servers"):
                self.start(cc_specs, alive, started)
        with self.step("Gateway endorsing across orgs on every peer"):
            ready.gateway(started)
            for name in state.chaincodes:
                ready.chaincode(name, started)
        build_profile(lay, t).save(lay.profile_file)

    def issue_org(self, org: OrgSpec) -> None:
        """Enrol the org's nodes and admin with its CA; write its channel MSP and CRL."""
        client = fabric_ca.CAClient(self.install, self.layout, org)
        client.enroll_registrar()
        t = self.topology
        # (name, identity type) of the nodes this org runs.
        if org.name == t.orderer_org.name:
            node_jobs = [(o.name, "orderer") for o in t.orderers]
        else:
            node_jobs = [(t.peer_of(org.name).name, "peer")]

        def issue(job: tuple[str, str] | None) -> None:
            if job is None:
                fabric_ca.issue_user(client, peercli.ADMIN, "admin", with_tls=True)
            else:
                fabric_ca.issue_node(client, job[0], job[1])

        jobs: list[tuple[str, str] | None] = [*node_jobs, None]
        parallel(issue, jobs)
        fabric_ca.write_org_msp(self.layout, org)
        client.publish_crl()

    # -- chaincode ------------------------------------------------------------------------

    def orderer_args(self) -> list[str]:
        """``peer`` CLI flags reaching the first healthy orderer over TLS."""
        for o in self.topology.orderers:
            if nodes.healthy(o.ops_port):
                return peercli.orderer_tls_args(self.layout, self.topology, o)
        raise NotRunning("no orderer is healthy")

    def serve_again(self, name: str, entry: ChaincodeEntry, alive: dict[str, int]) -> None:
        """A warm deploy: restart whichever of ``name``'s servers is down and wait for it."""
        started: list[Running] = []
        try:
            self.start(self.specs_for(name, entry), alive, started)
            self.readiness.chaincode(name, started)
        except BaseException:
            stop(started)
            raise

    def deploy_new(
        self,
        state: NetworkState,
        source: cc.ChaincodeSource,
        package: cc.Package,
        previous: ChaincodeEntry | None,
    ) -> int:
        """Install, approve, commit and serve ``package``; return its definition sequence."""
        t, lay = self.topology, self.layout
        used = {e.index for n, e in state.chaincodes.items() if n != source.name}
        index = previous.index if previous else min(set(range(64)) - used)
        sequence = previous.sequence + 1 if previous else 1
        entry = ChaincodeEntry(
            index=index,
            package_id=package.package_id,
            label=package.label,
            sequence=sequence,
            module=source.module,
            pythonpath=str(source.pythonpath),
        )
        specs = self.specs_for(source.name, entry)
        for i in range(len(t.peers)):
            self.write_connection(entry, i)
        if previous is not None:
            stop([Running(s.name, p) for s in specs if (p := read_pid(s.pid_file)) is not None])
        self.check_ports(specs, state)
        started: list[Running] = []
        try:
            self.start(specs, {}, started)
            self._define(source.name, package, sequence)
            state.chaincodes[source.name] = entry
            state.save(lay.state_file)
            self.readiness.chaincode(source.name, started)
        except BaseException:
            stop(started)
            raise
        return sequence

    def write_connection(self, entry: ChaincodeEntry, peer_index: int) -> None:
        """Where the peer's builder finds ``entry``'s server for it (address, TLS PEMs)."""
        t, lay = self.topology, self.layout
        peer = t.peers[peer_index]
        org = t.org(peer.org)
        tls = lay.node_identity(org.slug, peer.name) / "tls"
        details = cc.connection_details(
            f"{HOST}:{t.chaincode_port(entry.index, peer_index)}",
            lay.ca_cert(org.slug).read_text(),
            (tls / "server.crt").read_text(),
            (tls / "server.key").read_text(),
        )
        folder = lay.ccaas_dir(peer.name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{entry.label}.json").write_text(json.dumps(details))

    def _admin_env(self, org: OrgSpec) -> dict[str, str]:
        return peercli.admin_env(self.install, self.layout, self.topology, org.name, self.env_path)

    def install_on(self, org: OrgSpec, name: str, package_path: Path) -> None:
        """Install the package on ``org``'s peer (already installed is fine)."""
        peer_bin = str(self.install.binary("peer"))
        try:
            peercli.run(
                [peer_bin, "lifecycle", "chaincode", "install", str(package_path)],
                self._admin_env(org),
                f"install {name} on {self.topology.peer_of(org.name).name}",
            )
        except CommandFailed as exc:
            if "already successfully installed" not in exc.message:
                raise ChaincodeError(exc.message) from None

    def _definition(self, name: str, sequence: int) -> list[str]:
        return [
            "--channelID",
            self.topology.channel,
            "--name",
            name,
            "--version",
            str(sequence),
            "--sequence",
            str(sequence),
        ]

    def approved(self, org: OrgSpec, name: str, sequence: int) -> str | None:
        """The package id ``org`` approved for definition ``sequence`` of ``name``, if any."""
        try:
            out = peercli.run(
                [
                    str(self.install.binary("peer")),
                    "lifecycle",
                    "chaincode",
                    "queryapproved",
                    "--channelID",
                    self.topology.channel,
                    "--name",
                    name,
                    "--sequence",
                    str(sequence),
                    "--output",
                    "json",
                ],
                self._admin_env(org),
                f"query {org.name}'s approval of {name}",
            )
        except CommandFailed:
            return None  # not approved (or no answer): approving again is the way on
        try:
            source = json.loads(out[out.index("{") :]).get("source") or {}
        except ValueError:
            return None
        package = (source.get("Type") or {}).get("LocalPackage") or {}
        found = package.get("package_id")
        return str(found) if found else None

    def approve_for(
        self, org: OrgSpec, name: str, package_id: str, sequence: int, orderer: list[str]
    ) -> None:
        """Approve definition ``sequence`` of ``name`` for ``org``, served by ``package_id``.

        An org that joins after the definition was committed approves that same
        sequence: its peer then knows which installed package runs the chaincode.
        """
        peercli.run(
            [
                str(self.install.binary("peer")),
                "lifecycle",
                "chaincode",
                "approveformyorg",
                *orderer,
                *self._definition(name, sequence),
                "--package-id",
                package_id,
            ],
            self._admin_env(org),
            f"approve {name} for {org.name}",
        )

    def _define(self, name: str, package: cc.Package, sequence: int) -> None:
        """Fabric's chaincode lifecycle: install and approve in every org, then commit."""
        t, lay = self.topology, self.layout
        orderer = self.orderer_args()
        parallel(lambda org: self.install_on(org, name, package.path), list(t.peer_orgs))
        parallel(
            lambda org: self.approve_for(org, name, package.package_id, sequence, orderer),
            list(t.peer_orgs),
        )
        targets: list[str] = []
        for org in t.peer_orgs:
            targets += [
                "--peerAddresses",
                t.peer_of(org.name).address,
                "--tlsRootCertFiles",
                str(lay.ca_cert(org.slug)),
            ]
        peercli.run(
            [
                str(self.install.binary("peer")),
                "lifecycle",
                "chaincode",
                "commit",
                *orderer,
                *self._definition(name, sequence),
                *targets,
            ],
            self._admin_env(t.peer_orgs[0]),
            f"commit {name}",
        )
