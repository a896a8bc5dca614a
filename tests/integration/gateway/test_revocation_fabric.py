"""Live revocation with Fabric CA on the native network: a member connected to two gateway
processes is kicked from both within a second of the org CA's new CRL, whether the CRL
reaches the gateways as a file in the org's MSP folder or only in the channel
configuration, and every later call is refused (the embedded CA's twin is
test_revocation.py)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.app import trust_store_from_settings
from gateway.client import GatewayRefused, MemberClient
from gateway.config import Settings
from gateway.identity.certificates import TrustStore
from gateway.ledger.profile import NetworkProfile
from tests.conftest import FabricSession
from tests.integration.gateway.support import (
    PgCluster,
    RunningGateway,
    make_settings,
    running_gateway,
)
from tests.integration.gateway.test_revocation import _wait_for

pytestmark = pytest.mark.fabric


def _settings(home: Path, url: str, key: str, profile: NetworkProfile) -> Settings:
    import dataclasses

    base = make_settings(home, url, token_secret=key)
    assert profile.network_dir is not None
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(base.ledger, kind="fabric"),
        anchoring=dataclasses.replace(
            base.anchoring, profile=str(profile.network_dir / "profile.json")
        ),
    )


def _trust_without_crls(profile: NetworkProfile, where: Path) -> TrustStore:
    """The orgs' MSP folders copied without crls/: a CRL reaches this trust store only
    through the channel configuration."""
    dirs = {}
    for org in profile.orgs:
        assert org.msp_dir is not None
        shutil.copytree(org.msp_dir, where / org.msp_id, ignore=shutil.ignore_patterns("crls"))
        dirs[org.msp_id] = where / org.msp_id
    return TrustStore.from_msp_dirs(dirs)


@contextlib.asynccontextmanager
async def _two_gateways(
    home: Path, profile: NetworkProfile, url: str, *, folder_crls: bool = True
) -> AsyncIterator[list[RunningGateway]]:
    # Two gateway processes share a store on PostgreSQL (SQLite serves one process).
    key = secrets.token_hex(32)
    async with contextlib.AsyncExitStack() as stack:
        gateways = []
        for name in ("gw1", "gw2"):
            settings = _settings(home / name, url, key, profile)
            # Each process trusts the orgs' MSP folders (cacerts/, crls/) on its own.
            trust = (
                trust_store_from_settings(settings)
                if folder_crls
                else _trust_without_crls(profile, home / name / "msps")
            )
            gateways.append(await stack.enter_async_context(running_gateway(settings, trust)))
        yield gateways


async def test_a_fabric_ca_revocation_kicks_the_member_from_both_gateways(
    tmp_path: Path,
    fabric_session: FabricSession,
    enroll_identity: Callable[..., Path],
    postgres_cluster: PgCluster,
) -> None:
    profile = fabric_session.profile
    name = f"rita-{uuid.uuid4().hex[:8]}"
    rita_msp = enroll_identity(profile, "Org2", name, "member")
    assert profile.orgs[1].msp_dir is not None
    crl = profile.orgs[1].msp_dir / "crls" / "crl.pem"
    async with _two_gateways(tmp_path, profile, postgres_cluster.new_database()) as (gw1, gw2):
        rita1 = MemberClient.from_msp(gw1.url, rita_msp, "Org2MSP")
        rita2 = MemberClient.from_msp(gw2.url, rita_msp, "Org2MSP")
        try:
            for c in (rita1, rita2):
                await c.connect()
                await c.join("board-1")
            old = rita1.session
            started = time.monotonic()
            # The CRL file only (the channel config update is not what the gateway reads).
            revoke = asyncio.get_running_loop().run_in_executor(
                None, lambda: fabric_session.network.revoke("Org2", name, channel=False)
            )
            kicks = await asyncio.gather(
                _wait_for(rita1, "session_expired", 15.0),
                _wait_for(rita2, "session_expired", 15.0),
            )
            kicked_at = time.time()
            await revoke
            total = time.monotonic() - started
            after_crl = kicked_at - crl.stat().st_mtime
            print(
                f"Fabric CA revoke command to kick: {total * 1000:.0f} ms; "
                f"CRL written to kick on both gateways: {after_crl * 1000:.0f} ms"
            )
            assert after_crl < 1.0
            assert all(k["reason"] == "certificate_revoked" for k in kicks)
            for gw in (gw1, gw2):
                rita1.url = gw.url
                rita1.session = old
                with pytest.raises(GatewayRefused) as rest:
                    await rita1.get("/events/board-1?after=0")
                assert rest.value.remote_code == "AL1509"
                with pytest.raises(GatewayRefused):
                    await rita1.refresh()
                rita1.session = None
                with pytest.raises(GatewayRefused) as login:
                    await rita1.login()
                assert login.value.remote_code == "AL1206"
        finally:
            for c in (rita1, rita2):
                await c.close()


async def test_a_crl_only_in_the_channel_configuration_kicks_the_member_from_both_gateways(
    tmp_path: Path,
    fabric_session: FabricSession,
    enroll_identity: Callable[..., Path],
    postgres_cluster: PgCluster,
) -> None:
    profile = fabric_session.profile
    name = f"rick-{uuid.uuid4().hex[:8]}"
    rick_msp = enroll_identity(profile, "Org2", name, "member")
    url = postgres_cluster.new_database()
    async with _two_gateways(tmp_path, profile, url, folder_crls=False) as (gw1, gw2):
        rick1 = MemberClient.from_msp(gw1.url, rick_msp, "Org2MSP")
        rick2 = MemberClient.from_msp(gw2.url, rick_msp, "Org2MSP")
        try:
            for c in (rick1, rick2):
                await c.connect()
                await c.join("board-1")
            old = rick1.session
            started = time.monotonic()

            def revoke_into_channel() -> float:
                # The CRL goes into Org2's MSP in the channel (a config update signed by
                # Org2's admin); the call returns once every peer has committed it.
                fabric_session.network.revoke("Org2", name, channel=True)
                return time.monotonic()

            revoke = asyncio.get_running_loop().run_in_executor(None, revoke_into_channel)
            kicks = await asyncio.gather(
                _wait_for(rick1, "session_expired", 60.0),
                _wait_for(rick2, "session_expired", 60.0),
            )
            kicked = time.monotonic()
            committed = await revoke
            print(
                f"channel-config revoke command to kick on both gateways: "
                f"{(kicked - started) * 1000:.0f} ms; kick {(kicked - committed) * 1000:.0f} ms "
                "after the command returned (every peer committed)"
            )
            # Kicked within a second of every peer having the configuration (the
            # gateways' own peer may have had it, and the kick come, before the return).
            assert kicked - committed < 1.0
            assert all(k["reason"] == "certificate_revoked" for k in kicks)
            for gw in (gw1, gw2):
                rick1.url = gw.url
                rick1.session = old
                with pytest.raises(GatewayRefused) as rest:
                    await rick1.get("/events/board-1?after=0")
                assert rest.value.remote_code == "AL1509"
                with pytest.raises(GatewayRefused):
                    await rick1.refresh()
                rick1.session = None
                with pytest.raises(GatewayRefused) as login:
                    await rick1.login()
                assert login.value.remote_code == "AL1206"
        finally:
            for c in (rick1, rick2):
                await c.close()
