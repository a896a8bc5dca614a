"""The native network as one object: up, down, status, logs, enroll, revoke, deploy.

Everything runs under ``Settings.network_dir`` (see :mod:`network.layout`).
Guarantees a caller may rely on:

- :meth:`Network.up` starts only what is not already running and returns
  when the channel is ready: every node healthy, a Raft leader elected, every
  peer joined, and every peer's Gateway service able to endorse across orgs.
  On a network that is fully running it does nothing and says so. If any step
  fails, every process this call started is stopped before the error is raised.
- :meth:`Network.down` stops every process it finds a pid file for (by pid,
  SIGTERM then SIGKILL) and checks that none is alive afterwards.
- Commands on one network are serialised by a lock file in the state folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc
from fabric_protos.peer.lifecycle import lifecycle_pb2

from gateway.config import Settings
from network import ca as fabric_ca
from network import chaincode as cc
from network import configtx, nodes, peercli
from network.builder import install_builder
from network.channel import publish_crl
from network.errors import (
    ChaincodeError,
    CommandFailed,
    NetworkError,
    NodeFailed,
    NotRunning,
    PortInUse,
    UnknownOrg,
)
from network.install import FabricInstall
from network.layout import Layout
from network.probe import GatewayProbe, Signer
from network.processes import ProcessSpec, Running, is_alive, read_pid, running_in, spawn, stop
from network.profile import NetworkProfile, build_profile
from network.topology import HOST, OrgSpec, PeerNode, Topology, build_topology

Progress = Callable[[str], None]


class NodeRunner(Protocol):
    """Runs the nodes some other way than as native processes (see network.docker_mode)."""

    def __call__(self, spec: ProcessSpec) -> ProcessSpec: ...

    def cleanup(self) -> None: ...


T = TypeVar("T")

READY_TIMEOUT_S = 60.0
POLL_S = 0.05


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
class ProcessStatus:
    name: str
    kind: str  # ca | orderer | peer | chaincode
    pid: int | None
    healthy: bool | None
    height: int | None
    leader: bool = False


def _parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class Network:
    """The native network described by ``settings``, run from ``install``."""

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
        self.topology: Topology = build_topology(
            settings.network.base_port, settings.network.channel
        )
        self.layout = Layout(settings.network_dir)
        # PATH handed to the nodes: the peers run our builder programs with it.
        self.env_path = f"{install.bin_dir}:{env_path}"
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

    def _state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.layout.state_file.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault("identities", False)
        data.setdefault("channel", False)
        data.setdefault("chaincodes", {})
        return data

    def _save_state(self, state: dict[str, Any]) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        tmp = self.layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.layout.state_file)

    def chaincode_specs(self, state: dict[str, Any] | None = None) -> list[ProcessSpec]:
        state = self._state() if state is None else state
        specs = []
        for name, entry in sorted(state["chaincodes"].items()):
            for i, peer in enumerate(self.topology.peers):
                specs.append(self._chaincode_spec(name, entry, i, peer))
        return specs

    def _chaincode_spec(
        self, name: str, entry: dict[str, Any], peer_index: int, peer: PeerNode
    ) -> ProcessSpec:
        org = self.topology.org(peer.org)
        tls = self.layout.node_identity(org.slug, peer.name) / "tls"
        port = self.topology.chaincode_port(entry["index"], peer_index)
        proc = f"cc.{name}.{peer.name}"
        env = {
            "PATH": self.env_path,
            "PYTHONPATH": entry["pythonpath"],
            "PYTHONUNBUFFERED": "1",
            "CHAINCODE_SERVER_ADDRESS": f"{HOST}:{port}",
            "CHAINCODE_ID": entry["package_id"],
            "CHAINCODE_TLS_DISABLED": "false",
            # The peer's own TLS pair: issued by the org CA for 127.0.0.1.
            "CHAINCODE_TLS_KEY": str(tls / "server.key"),
            "CHAINCODE_TLS_CERT": str(tls / "server.crt"),
            "CHAINCODE_CLIENT_CA_CERT": str(self.layout.ca_cert(org.slug)),
        }
        argv = (self.python, "-m", "chaincode.runtime", entry["module"])
        return ProcessSpec(proc, argv, env, self.layout.log_file(proc), self.layout.pid_file(proc))

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

    # -- waiting ------------------------------------------------------------------------

    def _wait(
        self,
        what: str,
        check: Callable[[], bool],
        watch: Sequence[Running] = (),
        timeout: float = READY_TIMEOUT_S,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if check():
                return
            for r in watch:
                if not is_alive(r.pid):
                    raise NodeFailed(
                        f"{r.name} exited while waiting for {what}: {self._last_log_line(r.name)}"
                    )
            if time.monotonic() > deadline:
                raise NodeFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(POLL_S)

    def _last_log_line(self, name: str) -> str:
        try:
            lines = self.layout.log_file(name).read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        for line in reversed(lines):
            if any(w in line for w in ("ERRO", "FATA", "PANI", "Error", "error")):
                return line.strip()[-300:]
        return (
            lines[-1].strip()[-300:] if lines else "empty log"
        ) + f" (see {self.layout.log_file(name)})"

    # -- up -----------------------------------------------------------------------------

    def _journal(self, message: str) -> None:
        """Append to logs/network.log (what `up` did and waited for, with times)."""
        journal = self.layout.logs_dir / "network.log"
        journal.parent.mkdir(parents=True, exist_ok=True)
        with journal.open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message.strip()}\n")

    def _step(self, label: str) -> contextlib.AbstractContextManager[None]:
        progress = self._progress

        def note(message: str) -> None:
            progress(message)
            self._journal(message)

        @contextlib.contextmanager
        def timed() -> Iterator[None]:
            started = time.monotonic()
            note(f"  {label} ...")
            yield
            note(f"  {label}: done in {time.monotonic() - started:.2f} s")

        return timed()

    def _check_ports(self, specs: Sequence[ProcessSpec]) -> None:
        names = {s.name for s in specs}
        for owner, port in self.topology.all_ports():
            if owner.split(" ")[0] in names and not port_free(port):
                raise PortInUse(
                    f"port {port} ({owner}) on {HOST} is in use by another process; free it "
                    f"or set ANCHORLINE_NETWORK_BASE_PORT to move the network's ports"
                )
        state = self._state()
        for name, entry in state["chaincodes"].items():
            for i, peer in enumerate(self.topology.peers):
                port = self.topology.chaincode_port(entry["index"], i)
                if f"cc.{name}.{peer.name}" in names and not port_free(port):
                    raise PortInUse(f"port {port} (chaincode {name} for {peer.name}) is in use")

    def up(self) -> UpResult:
        started_at = time.monotonic()
        with self._lock():
            state = self._state()
            self._check_same_shape(state)
            node_specs = self.node_specs()
            cc_specs = self.chaincode_specs(state)
            alive = self.running()
            missing = [s for s in (*node_specs, *cc_specs) if s.name not in alive]
            if not missing and state["channel"] and self.layout.profile_file.exists():
                return UpResult(True, time.monotonic() - started_at, (), self.layout.profile_file)
            self._check_ports(missing)
            started: list[Running] = []
            try:
                self._up(state, node_specs, cc_specs, alive, started)
            except BaseException:
                stop(started)
                raise
            return UpResult(
                False,
                time.monotonic() - started_at,
                tuple(r.name for r in started),
                self.layout.profile_file,
            )

    def _check_same_shape(self, state: dict[str, Any]) -> None:
        """Refuse to restart a network made with other ports or another channel name.

        The genesis block and the certificates hold the ports and the channel of the
        first `up`; starting the nodes elsewhere would give a network that never forms.
        """
        made = state.get("shape")
        wanted = {"base_port": self.topology.base_port, "channel": self.topology.channel}
        if state["identities"] and made is not None and made != wanted:
            raise NetworkError(
                f"the network in {self.layout.root} was made with base port "
                f"{made['base_port']} and channel {made['channel']!r}; run `anchorline network "
                "down --purge` to start over, or set ANCHORLINE_NETWORK_BASE_PORT/CHANNEL back"
            )
        state["shape"] = wanted

    def _start(
        self, specs: Sequence[ProcessSpec], alive: dict[str, int], started: list[Running]
    ) -> list[Running]:
        new = []
        for spec in specs:
            if spec.name in alive:
                continue
            running = spawn(spec)
            started.append(running)
            new.append(running)
        return new

    def _up(
        self,
        state: dict[str, Any],
        node_specs: list[ProcessSpec],
        cc_specs: list[ProcessSpec],
        alive: dict[str, int],
        started: list[Running],
    ) -> None:
        t, lay = self.topology, self.layout
        by_name = {s.name: s for s in node_specs}
        with self._step("configuration"):
            if not state["identities"]:
                # A cold start: anything left from a half-finished earlier one goes.
                for leftover in ("orgs", "configtx", "nodes", "ccaas", "packages"):
                    shutil.rmtree(lay.root / leftover, ignore_errors=True)
                state.update(identities=False, channel=False, chaincodes={})
                self._save_state(state)
            lay.logs_dir.mkdir(parents=True, exist_ok=True)
            nodes.prepare_config(self.install, lay)
            install_builder(lay.builder_dir)
            node_specs[:] = self.node_specs(create=True)
            by_name = {s.name: s for s in node_specs}
        with self._step(f"{len(t.cas)} certificate authorities"):
            new = self._start([by_name[c.name] for c in t.cas], alive, started)
            self._wait(
                "the CAs' /healthz and API",
                lambda: all(nodes.healthy(c.ops_port) and nodes.listening(c.port) for c in t.cas),
                new,
            )
        if not state["identities"]:
            with self._step("identities from Fabric CA (nodes, TLS, admins)"):
                _parallel(self._issue_org, list(t.orgs))
                state["identities"] = True
                self._save_state(state)
        if not lay.genesis_block.exists():
            with self._step("genesis block"):
                configtx.write_configtx(
                    lay,
                    t,
                    self.settings.network.batch_timeout_ms,
                    self.settings.network.raft_tick_ms,
                )
                configtx.genesis_block(self.install, lay, t, self.env_path)
        with self._step(f"{len(t.orderers)} orderers and {len(t.peers)} peers"):
            specs = [by_name[o.name] for o in t.orderers] + [by_name[p.name] for p in t.peers]
            new = self._start(specs, alive, started)
            ops = [o.ops_port for o in t.orderers] + [p.ops_port for p in t.peers]
            ports = [o.port for o in t.orderers] + [o.admin_port for o in t.orderers]
            ports += [p.port for p in t.peers]

            def nodes_ready() -> bool:
                return all(nodes.healthy(p) for p in ops) and all(nodes.listening(p) for p in ports)

            self._wait("the nodes' /healthz and listeners", nodes_ready, new)
        if not state["channel"]:
            with self._step(f"channel '{t.channel}' (osnadmin join, peer join)"):
                _parallel(
                    lambda o: peercli.osnadmin_join(self.install, lay, t, o, self.env_path),
                    list(t.orderers),
                )
                _parallel(
                    lambda org: peercli.peer_join(self.install, lay, t, org.name, self.env_path),
                    list(t.peer_orgs),
                )
                state["channel"] = True
                self._save_state(state)
        with self._step("channel ready (Raft leader, peer heights)"):
            self._wait_channel_ready(started)
        if cc_specs:
            with self._step(f"{len(cc_specs)} chaincode servers"):
                self._start(cc_specs, alive, started)
        with self._step("Gateway endorsing across orgs on every peer"):
            self._wait_gateway(started)
            for name in state["chaincodes"]:
                self._wait_chaincode(name, started)
        build_profile(lay, t).save(lay.profile_file)

    def _issue_org(self, org: OrgSpec) -> None:
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
        _parallel(issue, jobs)
        fabric_ca.write_org_msp(self.layout, org)
        client.publish_crl()

    def _wait_channel_ready(self, started: Sequence[Running]) -> None:
        t = self.topology
        channel = t.channel

        def ready() -> bool:
            if not any(nodes.is_raft_leader(o.ops_port, channel) for o in t.orderers):
                return False
            heights = [nodes.height(p.ops_port, channel) for p in t.peers]
            return all(h is not None and h >= 1 for h in heights)

        self._wait(f"channel {channel} to be ready", ready, started)

    def _probe(self, org_name: str) -> GatewayProbe:
        org = self.topology.org(org_name)
        peer = self.topology.peer_of(org.name)
        signer = Signer.from_msp(
            org.msp_id, self.layout.user_identity(org.slug, peercli.ADMIN) / "msp"
        )
        return GatewayProbe(
            peer.address, self.layout.ca_cert(org.slug), peer.name, signer, self.topology.channel
        )

    def _retry_rpc(
        self,
        what: str,
        call: Callable[[], object],
        started: Sequence[Running],
        timeout: float = READY_TIMEOUT_S,
    ) -> None:
        last: list[str] = ["no answer"]

        def attempt() -> bool:
            try:
                call()
            except grpc.RpcError as exc:
                last[0] = f"{exc.code().name}: {exc.details()}"
                return False
            return True

        began = time.monotonic()
        try:
            self._wait(what, attempt, started, timeout)
        except NodeFailed as exc:
            raise NodeFailed(f"{exc.message} (last answer {last[0]})") from None
        if last[0] != "no answer":
            self._journal(
                f"  {what}: ready after {time.monotonic() - began:.2f} s; "
                f"until then: {last[0][:200]}"
            )

    def _wait_gateway(self, started: Sequence[Running]) -> None:
        """Until each peer's Gateway can plan and collect a cross-org endorsement.

        Right after a (re)start the Gateway answers FAILED_PRECONDITION until gossip
        has found the other orgs' peers; endorsing a read of ``_lifecycle`` (whose
        policy is MAJORITY) needs exactly that, and needs no chaincode.
        """
        args = [
            b"QueryChaincodeDefinitions",
            lifecycle_pb2.QueryChaincodeDefinitionsArgs().SerializeToString(),
        ]

        def check(org: OrgSpec) -> None:
            with self._probe(org.name) as probe:
                self._retry_rpc(
                    f"{org.name}'s Gateway to endorse across orgs",
                    lambda: probe.endorse("_lifecycle", args, timeout=5),
                    started,
                )

        _parallel(check, list(self.topology.peer_orgs))

    def _wait_chaincode(self, name: str, started: Sequence[Running]) -> None:
        """Until every peer's Gateway answers ``name`` and endorses it across orgs."""

        def check(org: OrgSpec) -> None:
            with self._probe(org.name) as probe:
                self._retry_rpc(
                    f"chaincode {name} to answer on {org.name}'s peer",
                    lambda: probe.evaluate(name, [cc.METADATA_FUNCTION], timeout=5),
                    started,
                )
                self._retry_rpc(
                    f"chaincode {name} to be endorsed across orgs from {org.name}",
                    lambda: probe.endorse(name, [cc.METADATA_FUNCTION], timeout=10),
                    started,
                )

        _parallel(check, list(self.topology.peer_orgs))

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
        if read_pid(self.layout.pid_file(org.ca.name)) is None or not self._state()["identities"]:
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
                self._orderer_args(),
                self.env_path,
            )
        return crl

    # -- chaincode --------------------------------------------------------------------------

    def _require_running(self) -> dict[str, Any]:
        state = self._state()
        alive = self.running()
        down = [s.name for s in self.node_specs() if s.name not in alive]
        if not state["channel"] or down:
            detail = f" ({', '.join(down)} not running)" if state["channel"] and down else ""
            raise NotRunning(f"the network is not running{detail}: run `anchorline network up`")
        return state

    def _orderer_args(self) -> list[str]:
        for o in self.topology.orderers:
            if nodes.healthy(o.ops_port):
                return peercli.orderer_tls_args(self.layout, self.topology, o)
        raise NotRunning("no orderer is healthy")

    def deploy(self, path: Path, name: str | None = None) -> DeployResult:
        """Package, install, approve, commit and serve the chaincode at ``path``."""
        started_at = time.monotonic()
        source = cc.resolve_source(path, name)
        with self._lock():
            state = self._require_running()
            package = cc.build_package(source, self.layout.packages_dir)
            entry = state["chaincodes"].get(source.name)
            if entry is not None and entry["package_id"] == package.package_id:
                started: list[Running] = []
                alive = self.running()
                try:
                    self._start(self._specs_for(source.name, entry), alive, started)
                    self._wait_chaincode(source.name, started)
                except BaseException:
                    stop(started)
                    raise
                return DeployResult(
                    source.name,
                    package.package_id,
                    entry["sequence"],
                    True,
                    time.monotonic() - started_at,
                )
            return self._deploy_new(state, source, package, entry, started_at)

    def _specs_for(self, name: str, entry: dict[str, Any]) -> list[ProcessSpec]:
        return [self._chaincode_spec(name, entry, i, p) for i, p in enumerate(self.topology.peers)]

    def _deploy_new(
        self,
        state: dict[str, Any],
        source: cc.ChaincodeSource,
        package: cc.Package,
        previous: dict[str, Any] | None,
        started_at: float,
    ) -> DeployResult:
        t, lay = self.topology, self.layout
        used = {e["index"] for n, e in state["chaincodes"].items() if n != source.name}
        index = previous["index"] if previous else min(set(range(64)) - used)
        sequence = previous["sequence"] + 1 if previous else 1
        entry = {
            "index": index,
            "package_id": package.package_id,
            "label": package.label,
            "sequence": sequence,
            "module": source.module,
            "pythonpath": str(source.pythonpath),
        }
        specs = self._specs_for(source.name, entry)
        for i, peer in enumerate(t.peers):
            org = t.org(peer.org)
            tls = lay.node_identity(org.slug, peer.name) / "tls"
            details = cc.connection_details(
                f"{HOST}:{t.chaincode_port(index, i)}",
                lay.ca_cert(org.slug).read_text(),
                (tls / "server.crt").read_text(),
                (tls / "server.key").read_text(),
            )
            folder = lay.ccaas_dir(peer.name)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{package.label}.json").write_text(json.dumps(details))
        if previous is not None:
            stop([Running(s.name, p) for s in specs if (p := read_pid(s.pid_file)) is not None])
        self._check_ports(specs)
        started: list[Running] = []
        try:
            self._start(specs, {}, started)
            self._lifecycle(source.name, package, sequence)
            state["chaincodes"][source.name] = entry
            self._save_state(state)
            self._wait_chaincode(source.name, started)
        except BaseException:
            stop(started)
            raise
        return DeployResult(
            source.name, package.package_id, sequence, False, time.monotonic() - started_at
        )

    def _lifecycle(self, name: str, package: cc.Package, sequence: int) -> None:
        t, lay = self.topology, self.layout
        peer_bin = str(self.install.binary("peer"))

        def env(org: OrgSpec) -> dict[str, str]:
            return peercli.admin_env(self.install, lay, t, org.name, self.env_path)

        def install(org: OrgSpec) -> None:
            try:
                peercli.run(
                    [peer_bin, "lifecycle", "chaincode", "install", str(package.path)],
                    env(org),
                    f"install {name} on {t.peer_of(org.name).name}",
                )
            except CommandFailed as exc:
                if "already successfully installed" not in exc.message:
                    raise ChaincodeError(exc.message) from None

        orderer = self._orderer_args()
        definition = [
            "--channelID",
            t.channel,
            "--name",
            name,
            "--version",
            str(sequence),
            "--sequence",
            str(sequence),
        ]

        def approve(org: OrgSpec) -> None:
            peercli.run(
                [
                    peer_bin,
                    "lifecycle",
                    "chaincode",
                    "approveformyorg",
                    *orderer,
                    *definition,
                    "--package-id",
                    package.package_id,
                ],
                env(org),
                f"approve {name} for {org.name}",
            )

        _parallel(install, list(t.peer_orgs))
        _parallel(approve, list(t.peer_orgs))
        targets: list[str] = []
        for org in t.peer_orgs:
            targets += [
                "--peerAddresses",
                t.peer_of(org.name).address,
                "--tlsRootCertFiles",
                str(lay.ca_cert(org.slug)),
            ]
        peercli.run(
            [peer_bin, "lifecycle", "chaincode", "commit", *orderer, *definition, *targets],
            env(t.peer_orgs[0]),
            f"commit {name}",
        )
