"""The gateway with identities enrolled by the real network's Fabric CAs (marked ``fabric``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.app import trust_store_from_settings
from gateway.client import MemberClient
from gateway.client.errors import GatewayRefused
from gateway.identity.certificates import TrustStore
from network.profile import NetworkProfile
from tests.conftest import FabricSession
from tests.integration.gateway.support import make_settings, running_gateway

pytestmark = pytest.mark.fabric


def _trust(profile: NetworkProfile) -> TrustStore:
    store = TrustStore()
    for org in profile.orgs:
        crls = [org.crl_path] if org.crl_path is not None and org.crl_path.exists() else []
        for ca_file in org.msp_ca_certs:
            store.add_ca(org.msp_id, ca_file.read_bytes(), crls=crls)
    return store


async def test_fabric_ca_members_log_in_and_exchange_events(
    tmp_path: Path,
    fabric_network: NetworkProfile,
    enroll_identity: Callable[[NetworkProfile, str, str, str], Path],
) -> None:
    alice_msp = enroll_identity(fabric_network, "Org1", "gw-alice", "member")
    bob_msp = enroll_identity(fabric_network, "Org2", "gw-bob", "member")
    audrey_msp = enroll_identity(fabric_network, "Org3", "gw-audrey", "auditor")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}")
    async with running_gateway(settings, _trust(fabric_network)) as gw:
        alice = MemberClient.from_msp(gw.url, alice_msp, "Org1MSP")
        bob = MemberClient.from_msp(gw.url, bob_msp, "Org2MSP")
        audrey = MemberClient.from_msp(gw.url, audrey_msp, "Org3MSP")
        try:
            for client in (alice, bob, audrey):
                await client.connect()
                await client.join("fabric-board")
            assert audrey.session is not None and audrey.session.role == "auditor"
            ack = await alice.emit("fabric-board", "note", {"hello": "fabric"})
            assert ack.status == "pending" and ack.seq == 1
            for receiver in (bob, audrey):
                name, event = await receiver.next_event()
                assert name == "event" and event["msp_id"] == "Org1MSP"
            refused = await audrey.emit("fabric-board", "note", {})
            assert refused.error is not None and refused.error["code"] == "AL1511"
        finally:
            for client in (alice, bob, audrey):
                await client.close()


async def test_default_trust_on_fabric_honours_a_revocation(
    tmp_path: Path,
    fabric_session: FabricSession,
    fabric_network: NetworkProfile,
    enroll_identity: Callable[[NetworkProfile, str, str, str], Path],
) -> None:
    """With no trust setting the gateway trusts the network's org MSP folders, CRLs included."""
    rex_msp = enroll_identity(fabric_network, "Org2", "gw-rex", "member")
    base = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}")
    settings = dataclasses.replace(
        base,
        ledger=dataclasses.replace(base.ledger, kind="fabric"),
        anchoring=dataclasses.replace(
            base.anchoring, profile=str(fabric_session.network.layout.profile_file)
        ),
    )
    async with running_gateway(settings, trust_store_from_settings(settings)) as gw:
        rex = MemberClient.from_msp(gw.url, rex_msp, "Org2MSP")
        try:
            await rex.login()
        finally:
            await rex.close()
        fabric_session.network.revoke("Org2", "gw-rex", channel=False)
        rex_again = MemberClient.from_msp(gw.url, rex_msp, "Org2MSP")
        try:
            with pytest.raises(GatewayRefused) as refused:
                await rex_again.login()
            assert refused.value.remote_code == "AL1206"
        finally:
            await rex_again.close()
