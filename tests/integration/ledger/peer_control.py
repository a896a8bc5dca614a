"""Stop one node of the running native network and start it again, by pid.

The node is restarted with exactly the command line and environment it was
running with (read from /proc before stopping it), through the network
package's own ``spawn`` so its pid file stays in the format ``network status``
and ``network down`` expect. Only that one process is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from network import nodes
from network.processes import ProcessSpec, is_alive, read_pid, spawn
from network.profile import NetworkProfile


def _proc_strings(pid: int, what: str) -> list[str]:
    raw = Path(f"/proc/{pid}/{what}").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@contextlib.contextmanager
def node_stopped(
    profile: NetworkProfile,
    name: str,
    ops_address: str,
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 30.0,
) -> Iterator[int]:
    """Stop node ``name`` (e.g. "peer0.org1", "orderer2") for the block; yields its pid."""
    assert profile.network_dir is not None, "the profile does not say where the network runs"
    pid_file = profile.network_dir / "run" / f"{name}.pid"
    pid = read_pid(pid_file)
    assert pid is not None, f"{name} is not running (no live pid in {pid_file})"
    argv = _proc_strings(pid, "cmdline")
    env = dict(item.split("=", 1) for item in _proc_strings(pid, "environ") if "=" in item)
    log = profile.network_dir / "logs" / f"{name}.log"
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while is_alive(pid):  # after a kill, the pid lingers until reaped: poll
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    try:
        yield pid
    finally:
        spawn(ProcessSpec(name=name, argv=tuple(argv), env=env, log=log, pid_file=pid_file))
        deadline = time.monotonic() + timeout
        while not nodes.healthy(_port(ops_address)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy again within {timeout} s")
            time.sleep(0.1)


def peer_stopped(profile: NetworkProfile, org_name: str) -> contextlib.AbstractContextManager[int]:
    """Stop ``org_name``'s peer for the duration of the block."""
    org = profile.org(org_name)
    return node_stopped(profile, org.peer_name or org.peer_host_override, org.peer_ops_address)


def raft_leader(profile: NetworkProfile) -> tuple[str, str]:
    """``(name, ops_address)`` of the orderer that leads the channel's Raft cluster now."""
    for orderer in profile.orderers:
        if orderer.ops_address and nodes.is_raft_leader(
            _port(orderer.ops_address), profile.channel
        ):
            return orderer.name, orderer.ops_address
    raise LookupError("no orderer reports itself Raft leader")
