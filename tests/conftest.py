"""Shared fixtures: the real native Fabric network, once per test session.

Contract (other test suites rely on it):

- ``fabric_network`` (session): skips with ``no Fabric install found (FABRIC_HOME,
  PATH, /opt/fabric): <detail>`` when there is no install. Otherwise brings the
  native network up once, in a temporary ANCHORLINE_HOME (settings are passed
  explicitly; ``os.environ`` is never changed), yields its
  :class:`network.profile.NetworkProfile`, and at the end of the session stops
  it and checks that no process of ours is alive.
- ``deploy_chaincode`` (session): ``deploy(name, path)`` deploys the chaincode at
  ``path`` under ``name`` once per session and returns when it answers an invoke
  on every peer (endorsed across orgs).
- ``testcc`` (session): the test chaincode (tests/chaincode/testcc) deployed as
  ``"testcc"``; returns that name.
- ``enroll_identity`` (session): the :func:`enroll` helper,
  ``enroll(profile, org, name, role) -> Path`` (the new identity's MSP folder).
- Tests marked ``fabric`` are skipped with the same reason when Fabric is
  absent, whether or not they request these fixtures (``-ra`` lists them).

Ports: the session network listens from ``ANCHORLINE_TEST_BASE_PORT`` when set;
otherwise from the first free block of :data:`PORT_BLOCK` ports among 7400,
7800, ..., 13400 (searched from a block picked by the session's pid), so a
developer's own network (7100) and concurrent test sessions do not collide.
Tests that start extra networks use offsets inside that block
(:func:`extra_base_port`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from network.control import NativeNetwork, UpResult
from network.errors import FabricNotFound, PortInUse
from network.install import FabricInstall, find_fabric
from network.processes import is_alive
from network.profile import NetworkProfile
from network.readiness import port_free

# Databases (SQLite and a throwaway PostgreSQL), built-in-CA identities, a SoftHSM2 token.
pytest_plugins = ["tests.database_fixtures", "tests.softhsm_fixtures"]

REPO = Path(__file__).resolve().parent.parent
TESTCC_PATH = REPO / "tests" / "chaincode" / "testcc"
PORT_BLOCK = 400
# One network needs fewer than 100 ports (nodes, then chaincode servers).
_NETWORK_SPAN = 100


def _block_free(base: int) -> bool:
    return all(port_free(p) for p in range(base, base + PORT_BLOCK))


def _choose_base_port(exclude: frozenset[int] = frozenset()) -> int:
    if os.environ.get("ANCHORLINE_TEST_BASE_PORT"):
        return int(os.environ["ANCHORLINE_TEST_BASE_PORT"])
    # Start the search at a block picked by our pid, so that test sessions started
    # side by side (several developers on one machine) rarely pick the same block.
    blocks = [7400 + k * PORT_BLOCK for k in range(16)]
    first = os.getpid() % len(blocks)
    for base in blocks[first:] + blocks[:first]:
        if base not in exclude and _block_free(base):
            return base
    return 7400


# The session's block; moved by fabric_session if another session takes it first.
_BASE_PORT = [_choose_base_port()]


def session_base_port() -> int:
    """First port of this session's block (where the session network listens)."""
    return _BASE_PORT[0]


def extra_base_port(slot: int) -> int:
    """Base port of the ``slot``-th extra network of a test (1..3), inside the session block."""
    assert 1 <= slot < PORT_BLOCK // _NETWORK_SPAN
    return session_base_port() + slot * _NETWORK_SPAN


_SKIP_PREFIX = "no Fabric install found (FABRIC_HOME, PATH, /opt/fabric)"
_install_cache: list[FabricInstall | str] = []
# Networks started by this session, by state folder: enroll() finds its network here.
_NETWORKS: dict[Path, NativeNetwork] = {}


def fabric_install_or_reason() -> FabricInstall | str:
    """The Fabric install, or the skip reason; looked up once per session."""
    if not _install_cache:
        try:
            _install_cache.append(
                find_fabric(load_settings().fabric_home, os.environ.get("PATH", os.defpath))
            )
        except FabricNotFound as exc:
            _install_cache.append(f"{_SKIP_PREFIX}: {exc.message}")
    return _install_cache[0]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("fabric") is not None:
        found = fabric_install_or_reason()
        if isinstance(found, str):
            pytest.skip(found)


def network_settings(home: Path, base_port: int | None = None) -> Settings:
    """Settings for a network under ``home`` (default: the session's ports).

    The environment is read, never changed.
    """
    if base_port is None:
        base_port = session_base_port()
    base = load_settings()
    return dataclasses.replace(
        base, home=home, network=dataclasses.replace(base.network, base_port=base_port)
    )


@dataclasses.dataclass
class FabricSession:
    network: NativeNetwork
    up: UpResult
    profile: NetworkProfile


@pytest.fixture(scope="session")
def fabric_install() -> FabricInstall:
    found = fabric_install_or_reason()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def fabric_session(
    tmp_path_factory: pytest.TempPathFactory, fabric_install: FabricInstall
) -> Iterator[FabricSession]:
    """The session's network object, its cold ``up`` result and profile."""
    home = tmp_path_factory.mktemp("anchorline-home")
    path = os.environ.get("PATH", os.defpath)
    tried: set[int] = set()
    while True:
        network = NativeNetwork(network_settings(home), fabric_install, env_path=path)
        try:
            result = network.up()
            break
        except PortInUse:
            # Another session took our block between the check and now: nothing was
            # started (ports are checked first), so move to another block and retry.
            network.down(purge=True)
            tried.add(session_base_port())
            if os.environ.get("ANCHORLINE_TEST_BASE_PORT") or len(tried) >= 4:
                raise
            _BASE_PORT[0] = _choose_base_port(frozenset(tried))
        except BaseException:
            network.down()
            raise
    _NETWORKS[network.layout.root] = network
    try:
        yield FabricSession(network, result, network.profile())
    finally:
        pids = dict(network.running())
        network.down()
        left = {name: pid for name, pid in pids.items() if is_alive(pid)}
        # The ledgers (raft logs preallocate 64 MB per orderer) go; logs stay for debugging.
        shutil.rmtree(network.layout.root / "nodes", ignore_errors=True)
        assert not left, f"processes still alive after network down: {left}"


@pytest.fixture(scope="session")
def fabric_network(fabric_session: FabricSession) -> NetworkProfile:
    return fabric_session.profile


@pytest.fixture(scope="session")
def deploy_chaincode(fabric_session: FabricSession) -> Callable[[str, Path], None]:
    deployed: set[str] = set()

    def deploy(name: str, path: Path) -> None:
        if name not in deployed:
            fabric_session.network.deploy(Path(path), name)
            deployed.add(name)

    return deploy


@pytest.fixture(scope="session")
def testcc(deploy_chaincode: Callable[[str, Path], None]) -> str:
    deploy_chaincode("testcc", TESTCC_PATH)
    return "testcc"


def enroll(profile: NetworkProfile, org: str, name: str, role: str) -> Path:
    """Register and enrol ``name`` in ``org`` with ``role`` on the profile's network."""
    if profile.network_dir is None or profile.network_dir not in _NETWORKS:
        raise LookupError("enroll() only serves networks started by this test session")
    return _NETWORKS[profile.network_dir].enroll(org, name, role)


@pytest.fixture(scope="session")
def enroll_identity(
    fabric_network: NetworkProfile,
) -> Callable[[NetworkProfile, str, str, str], Path]:
    return enroll
