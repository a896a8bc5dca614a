"""Keys in a PKCS#11 token (SoftHSM2): the gateway's identity anchors batches on the
embedded ledger (Fabric CA enrols a token key where Fabric is installed) and the proofs
verify; a member whose key is in the token logs in,
emits and signs a settlement; no PEM of either key exists on disk."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.anchoring.audit import verify_on_ledger
from gateway.anchoring.ledger import auditor_ledger
from gateway.anchoring.proof import EventProof, verify_offline
from gateway.cli.scenario import wait_finalized as wait_proof_finalized
from gateway.cli.scenario import wait_for
from gateway.client.marketplace import auction_channel, bid, open_auction
from gateway.client.member import MemberClient
from gateway.client.settlement import LedgerSigner
from gateway.config import Settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.csr import certificate_request
from gateway.identity.keysource import close_signer, enroll_in_token, load_identity
from gateway.identity.msp import load_msp
from gateway.identity.pkcs11 import Pkcs11Signer, Token, TokenConfig, open_signer
from gateway.ledger.connection import EMBEDDED_GATEWAY_NAME, open_ledger, trust_from_profile
from gateway.web.proofs import ANCHORING
from network.profile import NetworkProfile
from tests.integration.anchoring.support import anchoring_settings, wait_finalized
from tests.integration.gateway.support import running_gateway
from tests.softhsm_fixtures import SoftHsm

pytestmark = pytest.mark.softhsm
REPO = Path(__file__).resolve().parents[3]


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem_keys_on_disk(*roots: Path) -> list[bytes]:
    """The public keys of every PEM private key file under ``roots``."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or b"PRIVATE KEY-----" not in path.read_bytes()[:4096]:
                continue
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            found.append(_spki(key.public_key()))
    return found


def _token_settings(home: Path, softhsm: SoftHsm, gateway_label: str) -> Settings:
    base = anchoring_settings(home)
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(base.ledger, kind="embedded"),
        pkcs11=softhsm.settings(key_label=gateway_label),
    )


async def test_gateway_and_member_keys_in_the_token(tmp_path: Path, softhsm: SoftHsm) -> None:
    settings = _token_settings(tmp_path, softhsm, "gateway-key")
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    token = Token.open(TokenConfig.from_settings(settings.pkcs11))
    try:
        # The operator makes the gateway's key in the token; the gateway enrols it itself.
        gateway_key = token.generate_key("gateway-key").public_key
        buyer_msp = enroll_in_token(
            ca, token, org="Org2", name="hsm-buyer", role="member", key_label="buyer-key"
        )
        assert token.key_attributes("gateway-key")["extractable"] is False
        assert token.key_attributes("buyer-key") == {
            "extractable": False,
            "sensitive": True,
            "never_extractable": True,
        }
    finally:
        token.close()
    seller_msp = ca.enroll("Org1", "seller", "member")
    auditor_msp = ca.enroll("Org3", "audrey", "auditor")
    buyer_key = load_msp(buyer_msp, "Org2MSP").identity.public_key
    buyer_signer = open_signer(
        TokenConfig.from_settings(settings.pkcs11), "buyer-key", expect=buyer_key
    )
    proofs: list[EventProof] = []
    try:
        async with running_gateway(settings, ca) as gw:
            connection = gw.app[ANCHORING].connection
            assert _spki(connection.identity.public_key) == _spki(gateway_key)
            assert isinstance(connection.signer, Pkcs11Signer)
            buyer = MemberClient.from_signer(gw.url, buyer_msp, "Org2MSP", buyer_signer)
            seller = MemberClient.from_msp(gw.url, seller_msp, "Org1MSP")
            try:
                for client in (buyer, seller):
                    await client.login()
                    await client.connect()
                assert buyer.session is not None
                assert buyer.session.role == "member" and buyer.session.msp_id == "Org2MSP"

                # Plain events from the token member, anchored by the token gateway.
                await buyer.join("hsm")
                for k in range(20):
                    ack = await buyer.emit("hsm", "note", {"k": k})
                    assert ack.ok, ack.error
                await wait_finalized(gw.app, "hsm", 20, timeout=30)
                for seq in (1, 7, 20):
                    doc = await buyer.get(f"/events/hsm/{seq}/proof")
                    proofs.append(EventProof.from_json(json.dumps(doc)))

                # An auction won by the token member, settled with transactions it signs.
                auction_id = f"hsm{int(time.time() * 1000) % 10**9}"
                channel = auction_channel(auction_id)
                await open_auction(
                    seller,
                    auction_id,
                    item="Lot 9",
                    closes_at_ms=int(time.time() * 1000) + 1500,
                    reserve=5,
                )
                for client in (seller, buyer):
                    await client.join(channel)
                won = await bid(buyer, channel, 40)
                assert won.ok and won.seq is not None, won.error
                await wait_for(
                    seller,
                    lambda n, d: n == "event" and d.get("type") == "auction.closed",
                    timeout=20,
                )
                await wait_proof_finalized(buyer, channel, won.seq)
                buyer_ledger, seller_ledger = LedgerSigner(buyer), LedgerSigner(seller)
                proposed = await buyer_ledger.settle(auction_id, "propose")
                await seller_ledger.settle(auction_id, "accept")
                settled = await buyer_ledger.settle(auction_id, "settle")
                assert isinstance(settled["block_number"], int), settled
                assert proposed["tx_id"] != settled["tx_id"]
                record = await buyer.get(f"/marketplace/auctions/{auction_id}")
                assert record["state"] in ("closed", "settled"), record
            finally:
                await buyer.close()
                await seller.close()
    finally:
        buyer_signer.close()

    # Offline and on the ledger (through the Org3 auditor's own peer), every proof holds,
    # and the batches are signed by the gateway's token key.
    trust = ca.trust_store()
    conn = open_ledger(settings, peer="embedded", msp_dir=auditor_msp)
    reader = auditor_ledger(conn)
    try:
        for proof in proofs:
            verdict = verify_offline(proof, trust, gateway_msp="Org1MSP")
            assert verdict.ok, verdict.summary()
            gateway_cert = load_msp(ca.identity_dir("Org1", EMBEDDED_GATEWAY_NAME), "Org1MSP")
            assert proof.batch.certificate_pem.encode() == gateway_cert.identity.certificate_pem
            checks = await verify_on_ledger(proof, reader)
            assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    finally:
        await conn.close()

    # Neither token key exists as a file: no keystore, no PEM with their public keys.
    for folder in (buyer_msp, ca.identity_dir("Org1", EMBEDDED_GATEWAY_NAME)):
        assert not (folder / "keystore").exists()
    on_disk = _pem_keys_on_disk(tmp_path, softhsm.token_dir)
    assert on_disk, "the file-key identities should be found (the check would be vacuous)"
    assert _spki(gateway_key) not in on_disk and _spki(buyer_key) not in on_disk
    await asyncio.sleep(0)


@pytest.mark.fabric
def test_fabric_ca_enrols_a_token_key(
    fabric_network: NetworkProfile, softhsm: SoftHsm, tmp_path: Path
) -> None:
    from tests.conftest import _NETWORKS

    assert fabric_network.network_dir is not None
    network = _NETWORKS[fabric_network.network_dir]
    token = Token.open(TokenConfig.from_settings(softhsm.settings()))
    try:
        signer = token.generate_key("fabric-ca-member")
        request = certificate_request(signer, signer.public_key, "hsm-fabric-member")
        msp = network.enroll("Org2", "hsm-fabric-member", "member", request=request)
    finally:
        token.close()
    assert not (msp / "keystore").exists()
    found, member = load_identity(
        msp, "Org2MSP", pkcs11=softhsm.settings(), key_label="fabric-ca-member"
    )
    try:
        assert trust_from_profile(fabric_network).verify(found.identity.certificate_pem).role == (
            "member"
        )
        assert _spki(found.identity.public_key) == _spki(signer.public_key)
    finally:
        close_signer(member)


@pytest.mark.fabric
async def test_a_token_gateway_anchors_on_fabric(
    tmp_path: Path,
    softhsm: SoftHsm,
    fabric_network: NetworkProfile,
    enroll_identity: Callable[..., Path],
    deploy_chaincode: Callable[[str, Path], None],
) -> None:
    from tests.conftest import _NETWORKS
    from tests.integration.anchoring.support import (
        clients,
        emit_many,
        fabric_world,
    )
    from tests.integration.anchoring.support import (
        running_gateway as anchoring_gateway,
    )

    deploy_chaincode("anchorline", REPO / "chaincode")
    tag = uuid.uuid4().hex[:8]
    world = fabric_world(tmp_path, fabric_network, enroll_identity, tag)
    assert fabric_network.network_dir is not None
    label = f"fabric-gw-{tag}"
    token = Token.open(TokenConfig.from_settings(softhsm.settings()))
    try:
        signer = token.generate_key(label)
        request = certificate_request(signer, signer.public_key, f"hsm-gw-{tag}")
    finally:
        token.close()
    gateway_msp = _NETWORKS[fabric_network.network_dir].enroll(
        "Org1", f"hsm-gw-{tag}", "admin", request=request
    )
    settings = dataclasses.replace(
        world.settings,
        ledger=dataclasses.replace(world.settings.ledger, kind="fabric", msp_dir=str(gateway_msp)),
        anchoring=dataclasses.replace(world.settings.anchoring, profile=str(world.profile_path)),
        pkcs11=softhsm.settings(key_label=label),
    )
    channel = f"hsm-{tag}"
    async with (
        anchoring_gateway(settings, world.trust(), open_ledger) as gw,
        clients(gw.url, world.members, channel) as members,
    ):
        await emit_many(members, channel, 40)
        await wait_finalized(gw.app, channel, 40, timeout=60)
        proofs = [await gw.app[ANCHORING].evidence.event_proof(channel, s) for s in (1, 40)]
    auditor = world.auditor_ledger()
    try:
        for proof in proofs:
            assert _spki(load_msp(gateway_msp, "Org1MSP").identity.public_key) == _spki(
                signer.public_key
            )
            verdict = verify_offline(proof, world.trust(), gateway_msp="Org1MSP")
            assert verdict.ok, verdict.summary()
            checks = await verify_on_ledger(proof, auditor)
            assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    finally:
        await auditor.close()
