"""``anchorline network``: run the native Fabric network and manage its identities.

Subcommands: ``up``, ``down [--purge]``, ``status``, ``logs [node]``,
``add-org [NAME]`` (a new peer org with its own CA joins the running network),
``enroll --org --name --role``, ``revoke --org --name``,
``deploy-chaincode <path> [--name]``, ``connection-profile [-o file]`` (the running
network in the Fabric SDKs' connection profile format). Every failure is one line on stderr
(``error AL11xx: ...``) and a non-zero exit; ``up`` and ``deploy-chaincode``
stop whatever they started before reporting a failure.

``enroll`` and ``revoke`` go to Fabric CA when the ledger is Fabric, and to the
embedded ledger's built-in CA when ``ledger.kind`` is ``embedded`` (or ``auto``
with no Fabric install found).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import Settings, load_settings
from network.errors import EmbeddedCAUnavailable, FabricNotFound, NotRunning

if TYPE_CHECKING:
    from network.control import NativeNetwork


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "network", help="run the native Fabric network (up, down, status, logs, enroll, ...)"
    )
    docker_help = "run the nodes with Docker Compose (network/docker/compose.yaml)"
    parser.add_argument("--docker", action="store_true", help=docker_help)
    sub = parser.add_subparsers(dest="network_command", metavar="ACTION", required=True)

    up = sub.add_parser("up", help="start the network (no-op when it is running)")
    # Also accepted after the action: `anchorline network up --docker`.
    up.add_argument("--docker", action="store_true", default=argparse.SUPPRESS, help=docker_help)
    up.set_defaults(handler=_up)

    down = sub.add_parser("down", help="stop every process of the network")
    down.add_argument("--purge", action="store_true", help="also delete ledgers and crypto")
    down.set_defaults(handler=_down)

    status = sub.add_parser("status", help="each node: pid, health, block height")
    status.set_defaults(handler=_status)

    logs = sub.add_parser("logs", help="list the log files, or show one process's log")
    logs.add_argument("node", nargs="?", help="process name, e.g. peer0.org1 or orderer2")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines to show (default 50)")
    logs.set_defaults(handler=_logs)

    add_org = sub.add_parser(
        "add-org",
        help="add a peer org (its own Fabric CA and peer) to the running network's channel",
    )
    add_org.add_argument("name", nargs="?", default="Org4", help="org name (default Org4)")
    add_org.set_defaults(handler=_add_org)

    enroll = sub.add_parser("enroll", help="register and enrol a user with its org's CA")
    enroll.add_argument("--org", required=True, help="Org1, Org2, Org3 or an added org")
    enroll.add_argument("--name", required=True, help="enrolment id, e.g. alice")
    enroll.add_argument("--role", required=True, choices=("member", "auditor", "admin"))
    enroll.add_argument(
        "--pkcs11-key",
        metavar="LABEL",
        help="the identity's key is this key of the [pkcs11] token (the token signs the "
        "certificate request; no key file is written)",
    )
    enroll.add_argument(
        "--generate-key", action="store_true", help="with --pkcs11-key: generate the key first"
    )
    enroll.set_defaults(handler=_enroll)

    revoke = sub.add_parser("revoke", help="revoke a user and publish the org's CRL")
    revoke.add_argument("--org", required=True)
    revoke.add_argument("--name", required=True)
    revoke.add_argument(
        "--crl-only",
        dest="channel",
        action="store_false",
        help="only write the CRL file the gateway reads; by default the CRL also goes into "
        "the org's MSP in the channel, so the peers refuse the identity too",
    )
    revoke.set_defaults(handler=_revoke)

    export = sub.add_parser(
        "connection-profile",
        help="write the running network as a standard Fabric connection profile (YAML/JSON)",
    )
    export.add_argument("-o", "--output", type=Path, help="file (.yaml or .json; default stdout)")
    export.set_defaults(handler=_connection_profile)

    deploy = sub.add_parser(
        "deploy-chaincode", help="package, install, approve, commit and serve a Python chaincode"
    )
    deploy.add_argument("path", type=Path, help="chaincode package folder (defines CONTRACTS)")
    deploy.add_argument("--name", help="chaincode name (default: the folder name)")
    deploy.set_defaults(handler=_deploy)


def _say(message: str) -> None:
    print(message, flush=True)


def open_network(settings: Settings, progress: bool = False, docker: bool = False) -> NativeNetwork:
    """The network of ``settings``; FabricNotFound if there is no install.

    With ``docker`` (or when the state folder was made by ``--docker``) the nodes and
    tools run from the official images instead of a local install.
    """
    from network.control import NativeNetwork
    from network.install import find_fabric

    path = settings.search_path
    say = _say if progress else None
    if docker or (settings.network_dir / "docker-fabric").is_dir():
        from network import docker_mode

        binary = docker_mode.find_docker(path)
        runner = docker_mode.ComposeNodes(binary, docker_mode.compose_env(settings, binary))
        install = docker_mode.docker_install(settings, binary)
        return NativeNetwork(settings, install, env_path=path, progress=say, nodes_via=runner)
    install = find_fabric(settings.fabric_home, path)
    for warning in install.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return NativeNetwork(settings, install, env_path=path, progress=say)


def _up(args: argparse.Namespace) -> int:
    settings = load_settings()
    network = open_network(settings, progress=True, docker=args.docker)
    _say(
        f"network up: Fabric {network.install.fabric_version} from {network.install.root}, "
        f"state in {network.layout.root}"
    )
    result = network.up()
    if result.already_running:
        _say("the network is already running: nothing to do (see `anchorline network status`)")
        return 0
    _say(
        f"network ready in {result.seconds:.1f} s: channel {network.topology.channel}, "
        f"{len(network.topology.orderers)} orderers, {len(network.topology.peers)} peers; "
        f"profile {result.profile}"
    )
    return 0


def _add_org(args: argparse.Namespace) -> int:
    settings = load_settings()
    network = open_network(settings, progress=True, docker=args.docker)
    _say(
        f"network add-org {args.name}: channel {network.topology.channel}, "
        f"state in {network.layout.root}"
    )
    result = network.add_org(args.name)
    how = " (an earlier, interrupted run resumed)" if result.resumed else ""
    orgs = ", ".join(o.name for o in network.topology.peer_orgs)
    _say(
        f"{result.name} ({result.msp_id}) joined in {result.seconds:.1f} s{how}: peer "
        f"{result.peer}; orgs now {orgs}; enrol its members with `anchorline network enroll "
        f"--org {result.name} --name NAME --role member`"
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = load_settings()
    network = open_network(settings)
    stopped = network.down(purge=args.purge)
    what = f"stopped {len(stopped)} process(es)" if stopped else "nothing was running"
    _say(what + (f"; removed {network.layout.root}" if args.purge else ""))
    return 0


def _status(args: argparse.Namespace) -> int:
    network = open_network(load_settings())
    rows = network.status()
    _say(f"{'process':<24} {'kind':<9} {'pid':>7}  {'health':<7} {'height':>6}")
    for row in rows:
        health = "-" if row.healthy is None else ("ok" if row.healthy else "FAIL")
        height = "-" if row.height is None else str(row.height)
        pid = str(row.pid) if row.pid else "down"
        leader = "  (raft leader)" if row.leader else ""
        _say(f"{row.name:<24} {row.kind:<9} {pid:>7}  {health:<7} {height:>6}{leader}")
    running = sum(1 for r in rows if r.pid)
    _say(f"{running}/{len(rows)} running; state in {network.layout.root}")
    return 0 if running == len(rows) else 3


def _logs(args: argparse.Namespace) -> int:
    network = open_network(load_settings())
    try:
        if args.node is None:
            for name in network.process_names():
                path = network.layout.log_file(name)
                size = f"{path.stat().st_size:>10,d} B" if path.exists() else "    (none)"
                _say(f"{name:<28} {size}  {path}")
            return 0
        path = network.log_file(args.node)
        if not path.exists():
            raise NotRunning(f"{args.node} has no log yet ({path})")
        with path.open(errors="replace") as handle:
            for line in deque(handle, maxlen=max(args.lines, 1)):
                sys.stdout.write(line)
        sys.stdout.flush()
    except BrokenPipeError:
        # `anchorline network logs peer0.org1 | head`: the reader left; not an error.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
    return 0


def _embedded(settings: Settings) -> bool:
    """True when enrol/revoke go to the embedded ledger's built-in CA."""
    kind = settings.ledger.kind
    if kind == "embedded":
        return True
    if kind == "fabric":
        return False
    from network.install import find_fabric

    try:
        find_fabric(settings.fabric_home, settings.search_path)
    except FabricNotFound:
        return True
    return False


def embedded_enroll(
    settings: Settings, org: str, name: str, role: str, request: bytes | None = None
) -> Path:
    """Enrol with the embedded ledger's built-in CA (gateway.identity.ca)."""
    try:
        from gateway.identity.ca import EmbeddedCA
    except ImportError as exc:
        raise EmbeddedCAUnavailable(f"the built-in CA is not available: {exc}") from None
    return EmbeddedCA(settings.embedded_dir / "ca").enroll(org, name, role, request=request)


def embedded_revoke(settings: Settings, org: str, name: str) -> Path:
    """Revoke with the embedded ledger's built-in CA; returns the CRL path."""
    try:
        from gateway.identity.ca import EmbeddedCA
    except ImportError as exc:
        raise EmbeddedCAUnavailable(f"the built-in CA is not available: {exc}") from None
    return EmbeddedCA(settings.embedded_dir / "ca").revoke(org, name)


def _enroll(args: argparse.Namespace) -> int:
    settings = load_settings()
    request = None
    key = ""
    if args.pkcs11_key:
        from gateway.identity.keysource import token_request

        request = token_request(
            settings.pkcs11, args.pkcs11_key, args.name, generate=args.generate_key
        )
        key = f", key {args.pkcs11_key!r} in token {settings.pkcs11.token_label!r}"
    if _embedded(settings):
        msp = embedded_enroll(settings, args.org, args.name, args.role, request)
        _say(f"enrolled {args.name} ({args.role}) in {args.org} [embedded CA{key}]: {msp}")
        return 0
    msp = open_network(settings).enroll(args.org, args.name, args.role, request=request)
    _say(f"enrolled {args.name} ({args.role}) in {args.org}{key}: {msp}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    settings = load_settings()
    if _embedded(settings):
        crl = embedded_revoke(settings, args.org, args.name)
        _say(f"revoked {args.name} in {args.org} [embedded CA]; CRL: {crl}")
        return 0
    crl = open_network(settings).revoke(args.org, args.name, channel=args.channel)
    where = " and in the channel configuration" if args.channel else ""
    _say(f"revoked {args.name} in {args.org}; CRL: {crl}{where}")
    return 0


def _connection_profile(args: argparse.Namespace) -> int:
    """The network's profile.json in the SDKs' format, for members who did not start it."""
    import json

    import yaml

    from gateway.ledger.connection_profile import to_connection_profile
    from network.profile import NetworkProfile

    settings = load_settings()
    source = settings.network_dir / "profile.json"
    if not source.is_file():
        raise NotRunning(f"no network profile at {source}: run `anchorline network up` first")
    doc = to_connection_profile(NetworkProfile.load(source), settings.network.channel)
    as_json = args.output is not None and args.output.suffix == ".json"
    text = json.dumps(doc, indent=2) + "\n" if as_json else yaml.safe_dump(doc, sort_keys=False)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        _say(f"connection profile written to {args.output}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    network = open_network(load_settings())
    started = time.monotonic()
    result = network.deploy(args.path, args.name)
    how = "already committed; servers checked" if result.warm else f"sequence {result.sequence}"
    _say(
        f"chaincode {result.name} ready in {time.monotonic() - started:.1f} s ({how}); "
        f"package id {result.package_id}"
    )
    return 0
