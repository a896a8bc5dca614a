"""Readiness by polling, never by sleeping a fixed time: nodes, channel, Gateway, chaincode.

Every wait is bounded (``READY_TIMEOUT_S`` unless told) and watches the
processes just started: one that exits ends the wait at once with the last
error line of its log, rather than after the timeout.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from fabric_protos.peer.lifecycle import lifecycle_pb2

from network import chaincode as cc
from network import nodes, peercli
from network.errors import NodeFailed
from network.layout import Layout
from network.probe import GatewayProbe, Signer
from network.processes import Running, is_alive
from network.topology import HOST, OrgSpec, Topology

T = TypeVar("T")

READY_TIMEOUT_S = 60.0
POLL_S = 0.05


def parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``fn`` over ``items`` in threads (one per item), results in order; errors propagate."""
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


def journal(layout: Layout, message: str) -> None:
    """Append to logs/network.log (what `up` did and waited for, with times)."""
    path = layout.logs_dir / "network.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message.strip()}\n")


class Readiness:
    """The waits of one network (its layout and topology)."""

    def __init__(self, layout: Layout, topology: Topology) -> None:
        self.layout = layout
        self.topology = topology

    def wait(
        self,
        what: str,
        check: Callable[[], bool],
        watch: Sequence[Running] = (),
        timeout: float = READY_TIMEOUT_S,
    ) -> None:
        """Return once ``check()`` is true; :class:`NodeFailed` on timeout or a watched exit."""
        deadline = time.monotonic() + timeout
        while True:
            if check():
                return
            for r in watch:
                if not is_alive(r.pid):
                    raise NodeFailed(
                        f"{r.name} exited while waiting for {what}: {self.last_log_line(r.name)}"
                    )
            if time.monotonic() > deadline:
                raise NodeFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(POLL_S)

    def last_log_line(self, name: str) -> str:
        """The last error-looking line of process ``name``'s log, else its last line."""
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

    def nodes(self, started: Sequence[Running]) -> None:
        """Until every orderer and peer answers /healthz and listens on its ports."""
        t = self.topology
        ops = [o.ops_port for o in t.orderers] + [p.ops_port for p in t.peers]
        ports = [o.port for o in t.orderers] + [o.admin_port for o in t.orderers]
        ports += [p.port for p in t.peers]

        def ready() -> bool:
            return all(nodes.healthy(p) for p in ops) and all(nodes.listening(p) for p in ports)

        self.wait("the nodes' /healthz and listeners", ready, started)

    def cas(self, started: Sequence[Running]) -> None:
        """Until every CA answers /healthz and listens on its API port."""
        cas = self.topology.cas
        self.wait(
            "the CAs' /healthz and API",
            lambda: all(nodes.healthy(c.ops_port) and nodes.listening(c.port) for c in cas),
            started,
        )

    def channel(self, started: Sequence[Running]) -> None:
        """Until the channel has a Raft leader and every peer has at least its genesis block."""
        t = self.topology
        channel = t.channel

        def ready() -> bool:
            if not any(nodes.is_raft_leader(o.ops_port, channel) for o in t.orderers):
                return False
            heights = [nodes.height(p.ops_port, channel) for p in t.peers]
            return all(h is not None and h >= 1 for h in heights)

        self.wait(f"channel {channel} to be ready", ready, started)

    def gateway(self, started: Sequence[Running]) -> None:
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

        parallel(check, list(self.topology.peer_orgs))

    def chaincode(self, name: str, started: Sequence[Running]) -> None:
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

        parallel(check, list(self.topology.peer_orgs))

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
            self.wait(what, attempt, started, timeout)
        except NodeFailed as exc:
            raise NodeFailed(f"{exc.message} (last answer {last[0]})") from None
        if last[0] != "no answer":
            journal(
                self.layout,
                f"  {what}: ready after {time.monotonic() - began:.2f} s; "
                f"until then: {last[0][:200]}",
            )
