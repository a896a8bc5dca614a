"""``anchorline doctor``: what was found, which versions, what is missing, on one screen.

Exit code 0 when the native network can run here, 1 when it cannot (no Fabric
install, or ports held by another program); the last lines say exactly what
to do.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import platform
import sys

from gateway.config import Settings, load_settings
from gateway.errors import AnchorlineError
from network.errors import FabricNotFound
from network.install import (
    REQUIRED_BINARIES,
    REQUIRED_CONFIG,
    TESTED_FABRIC,
    TESTED_FABRIC_CA,
    binary_version,
    find_fabric,
)

PACKAGES = (
    "grpcio",
    "hyperledger-fabric-protos",
    "fabric-chaincode-python",
    "cryptography",
    "aiohttp",
    "python-socketio",
    "sqlalchemy",
    "redis",
    "python-pkcs11",
)

HOW_TO_GET_FABRIC = (
    "get Fabric 2.5 + Fabric CA 1.5 binaries in the release layout (bin/ and config/): "
    "`curl -sSLO https://raw.githubusercontent.com/hyperledger/fabric/main/scripts/"
    "install-fabric.sh && bash install-fabric.sh --fabric-version "
    f"{TESTED_FABRIC} --ca-version {TESTED_FABRIC_CA} binary`, or build them from source; "
    "then set FABRIC_HOME to that folder (or put its bin/ on PATH)"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check the Fabric install, versions and ports; say what is missing"
    )
    parser.set_defaults(handler=_doctor)


def _line(label: str, value: str) -> None:
    print(f"  {label:<22} {value}")


def _doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    problems: list[str] = []
    notes: list[str] = []
    print("Fabric")
    install = None
    try:
        install = find_fabric(settings.fabric_home, settings.search_path)
    except FabricNotFound as exc:
        _line("install", "NOT FOUND")
        problems.append(exc.message)
        problems.append(HOW_TO_GET_FABRIC)
    if install is not None:
        _line("install", f"{install.root} (found via {install.source})")
        for name in REQUIRED_BINARIES:
            path = install.binary(name)
            _line(name, f"{binary_version(path):<10} {path}")
        for name in REQUIRED_CONFIG:
            _line(name, str(install.config_dir / name))
        notes.extend(install.warnings)
    print("Python")
    _line("python", f"{platform.python_version()} ({sys.executable})")
    for package in PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "MISSING"
            problems.append(f"Python package {package} is missing: run `pip install -e .[dev]`")
        _line(package, version)
    token_problems = _pkcs11(settings)
    print("Network")
    _line("state folder", str(settings.network_dir))
    _line("ledger", settings.ledger.kind)
    from network.layout import Layout
    from network.processes import read_pid
    from network.readiness import port_free
    from network.topology import build_topology

    topology = build_topology(settings.network.base_port, settings.network.channel)
    layout = Layout(settings.network_dir)
    busy = []
    ours = 0
    ports = list(topology.all_ports())
    for owner, port in ports:
        if port_free(port):
            continue
        if read_pid(layout.pid_file(owner.split(" ")[0])) is not None:
            ours += 1
        else:
            busy.append(f"{port} ({owner})")
    span = f"{min(p for _, p in ports)}-{max(p for _, p in ports)}"
    if busy:
        _line("ports", f"{len(busy)} of {len(ports)} in {span} taken by other programs")
        problems.append(
            "ports in use by another program: "
            + ", ".join(busy[:6])
            + ("..." if len(busy) > 6 else "")
            + "; free them or set ANCHORLINE_NETWORK_BASE_PORT"
        )
    else:
        detail = f", {ours} held by the running network" if ours else ""
        _line("ports", f"{span} free on 127.0.0.1{detail}")
    store_problems = _store(settings)
    for note in notes:
        print(f"warning: {note}")
    for problem in store_problems:
        print(f"error: {problem}")
    if token_problems:
        print("PKCS#11 token")
        for problem in token_problems:
            print(f"  - {problem}")
    if problems:
        print("Missing")
        for problem in problems:
            print(f"  - {problem}")
        print("the native network cannot run here; the embedded ledger still works")
        return 1
    print("ok: the native network can run (`anchorline network up`)")
    return 1 if store_problems or token_problems else 0


def _store(settings: Settings) -> list[str]:
    """Print the gateway's store and fan-out; the problems found reaching them."""
    from gateway.app import database_url

    print("Gateway store")
    url = database_url(settings)
    gs = settings.gateway
    problems: list[str] = []
    try:
        shown, reached = asyncio.run(_reach_database(url))
        _line("database", shown)
        _line("reachable", reached)
    except AnchorlineError as exc:
        _line("database", "UNREACHABLE")
        problems.append(exc.message)
    if gs.fanout == "redis" or gs.redis_url:
        try:
            _line("redis", asyncio.run(_reach_redis(gs.redis_url)))
        except AnchorlineError as exc:
            _line("redis", "UNREACHABLE")
            problems.append(exc.message)
    _line("fan-out", gs.fanout)
    return problems


async def _reach_database(url: str) -> tuple[str, str]:
    from sqlalchemy import text

    from gateway.cluster import reach_store, where
    from gateway.store.engine import create_engine

    engine = create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            return where(engine), "a file (one gateway process)"
        version: list[str] = []

        async def _query() -> None:
            async with engine.connect() as conn:
                value = (await conn.execute(text("SHOW server_version"))).scalar()
                version.append(str(value))

        await asyncio.wait_for(reach_store(engine, _query), 10)
        return where(engine), f"yes, PostgreSQL {version[0]}"
    finally:
        await engine.dispose()


async def _reach_redis(url: str) -> str:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from gateway.errors import ConfigError

    if not url:
        raise ConfigError('gateway.redis_url: not set, but gateway.fanout is "redis"')
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = await client.info("server")
        return f"yes, Redis {info.get('redis_version', '?')}"
    except (RedisError, OSError) as exc:
        from gateway.stream.redis_fanout import safe_url

        raise ConfigError(
            f"gateway.redis_url: cannot reach Redis at {safe_url(url)}: {exc}"
        ) from None
    finally:
        await client.aclose()


def _pkcs11(settings: Settings) -> list[str]:
    """Show the ``[pkcs11]`` token (library, token, keys, the gateway's key); the problems."""
    print("PKCS#11")
    p11 = settings.pkcs11
    if not p11.configured:
        _line("token", "not configured: keys are read from MSP folders")
        return []
    from gateway.errors import AnchorlineError
    from gateway.identity.pkcs11 import Token, TokenConfig

    _line("module", p11.module)
    try:
        token = Token.open(TokenConfig.from_settings(p11))
    except AnchorlineError as exc:
        _line("token", f"{p11.token_label!r}: FAILED ({exc.code})")
        return [f"{exc.code}: {exc.message}"]
    try:
        info = token.describe()
        _line("library", info["library"])
        _line(
            "token",
            f"{info['token']!r} ({info['manufacturer']} {info['model']}, serial {info['serial']})",
        )
        _line("keys", info["keys"])
        if p11.key_label:
            try:
                token.signer(p11.key_label)
            except AnchorlineError as exc:
                _line("gateway key", f"{p11.key_label!r}: FAILED ({exc.code})")
                return [f"{exc.code}: {exc.message}"]
            _line("gateway key", f"{p11.key_label!r}: P-256, non-extractable")
    finally:
        token.close()
    return []
