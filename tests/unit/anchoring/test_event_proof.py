"""The self-contained event proof: JSON round trip and offline verification.

Identities come from the built-in CA (the same MSP layout as Fabric CA);
nothing is mocked: real ECDSA keys, real certificates, real CRLs.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gateway.anchoring.leaf import event_signing_bytes, leaf_data, leaf_hash
from gateway.anchoring.proof import (
    PROOF_FORMAT,
    Anchor,
    BatchRecord,
    EventProof,
    InclusionProof,
    ProvenEvent,
    batch_signing_bytes,
    build_event_proof,
    verify_offline,
)
from gateway.errors import JsonSyntaxError
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore, fingerprint, load_certificate
from gateway.identity.signing import P256_ORDER, EcdsaSigner, sign_message
from gateway.merkle import RFC6962_SHA256, MerkleTree, inclusion_proof
from gateway.merkle.errors import ProofDocumentError, RootMismatchError

H = RFC6962_SHA256


@dataclasses.dataclass
class Identity:
    pem: str
    key: ec.EllipticCurvePrivateKey
    msp_id: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(load_certificate(self.pem))


def _identity(ca: EmbeddedCA, org: str, name: str, role: str) -> Identity:
    folder = ca.enroll(org, name, role)
    pem = next((folder / "signcerts").iterdir()).read_text()
    key = serialization.load_pem_private_key(
        next((folder / "keystore").iterdir()).read_bytes(), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Identity(pem, key, ca.msp_id(org))


@dataclasses.dataclass
class World:
    ca: EmbeddedCA
    trust: TrustStore
    alice: Identity
    bob: Identity
    gateway: Identity
    proofs: list[EventProof]


def _sign(ident: Identity, message: bytes) -> bytes:
    return sign_message(EcdsaSigner(ident.key), message)


def _build(
    alice: Identity, bob: Identity, gateway: Identity, n: int = 13, first_seq: int = 101
) -> list[EventProof]:
    events = []
    for k in range(n):
        sender = alice if k % 2 else bob
        record = {
            "id": f"ev-{k}",
            "channel": "market",
            "type": "bid",
            "payload": {"amount": 10 + k, "item": "lot-7", "note": "café ☕"},
            "client_ts": 1_764_000_000_000 + k,
        }
        signature = _sign(sender, event_signing_bytes(record))
        events.append(
            ProvenEvent(
                **record,
                seq=first_seq + k,
                signer=sender.fingerprint,
                signature=signature,
                certificate_pem=sender.pem,
                msp_id=sender.msp_id,
            )
        )
    leaves = [e.leaf_hash() for e in events]
    tree = MerkleTree(H, leaves)
    prev_root = bytes(32)
    fields = {
        "batch_id": "market/7",
        "channel": "market",
        "root": tree.root(),
        "leaf_count": n,
        "first_seq": first_seq,
        "last_seq": first_seq + n - 1,
        "prev_root": prev_root,
    }
    batch = BatchRecord(
        **fields,
        signature=_sign(gateway, batch_signing_bytes(**fields)),
        certificate_pem=gateway.pem,
        msp_id=gateway.msp_id,
    )
    anchor = Anchor("a1b2c3", 42, "anchorline", "anchorline")
    return [
        EventProof(
            event=e,
            leaf_hash=leaves[i],
            inclusion=InclusionProof(i, n, tuple(inclusion_proof(H, i, n, tree))),
            batch=batch,
            anchor=anchor,
        )
        for i, e in enumerate(events)
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    alice = _identity(ca, "Org1", "alice", "member")
    bob = _identity(ca, "Org2", "bob", "member")
    gateway = _identity(ca, "Org3", "gateway", "admin")
    return World(ca, ca.trust_store(), alice, bob, gateway, _build(alice, bob, gateway))


def test_every_event_of_the_batch_verifies(world: World) -> None:
    for proof in world.proofs:
        verdict = verify_offline(proof, world.trust)
        assert verdict.ok, verdict.summary()
        assert verdict.sender is not None and verdict.sender.msp_id == proof.event.msp_id
        assert verdict.gateway is not None and verdict.gateway.msp_id == "Org3MSP"
        assert [c.name for c in verdict.checks] == [
            "sender-certificate",
            "sender-fingerprint",
            "event-signature",
            "leaf-hash",
            "sequence",
            "inclusion",
            "gateway-certificate",
            "batch-signature",
            "anchor-record",
        ]


def test_json_round_trip_is_exact(world: World) -> None:
    proof = world.proofs[5]
    text = proof.to_json_text()
    doc = json.loads(text)
    assert doc["format"] == PROOF_FORMAT
    assert EventProof.from_json(text) == proof
    assert EventProof.from_json(text.encode()) == proof
    assert EventProof.from_json(doc).to_json() == doc
    assert verify_offline(EventProof.from_json(text), world.trust).ok


def test_leaf_definition_is_the_documented_bytes(world: World) -> None:
    # Recompute the leaf exactly as docs/proof-format.md tells a third party to.
    proof = world.proofs[3]
    doc = proof.to_json()
    data = rfc8785.dumps(
        {
            "event": doc["event"]["record"],
            "seq": doc["event"]["seq"],
            "signer": doc["event"]["signer"],
            "signature": doc["event"]["signature"],
            "v": 1,
        }
    )
    ev = proof.event
    assert data == leaf_data(ev.record(), seq=ev.seq, signer=ev.signer, signature=ev.signature)
    assert hashlib.sha256(b"\x00" + data).hexdigest() == doc["leaf_hash"]
    assert (
        leaf_hash(ev.record(), seq=ev.seq, signer=ev.signer, signature=ev.signature).hex()
        == (doc["leaf_hash"])
    )


def _tamper(proof: EventProof, path: str, value: Any) -> EventProof:
    doc = proof.to_json()
    target = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return EventProof.from_json(doc)


def _failed(world: World, proof: EventProof) -> set[str]:
    return {c.name for c in verify_offline(proof, world.trust).failures}


def test_altered_payload_fails_signature_leaf_and_inclusion(world: World) -> None:
    p = world.proofs[4]
    forged = _tamper(p, "event.record.payload", {**p.event.payload, "amount": 9999})
    assert _failed(world, forged) == {"event-signature", "leaf-hash", "inclusion"}


def test_altered_seq_fails_sequence_and_inclusion(world: World) -> None:
    p = world.proofs[4]
    assert _failed(world, _tamper(p, "event.seq", p.event.seq + 1)) == {
        "leaf-hash",
        "sequence",
        "inclusion",
    }


def test_other_senders_certificate_fails(world: World) -> None:
    p = world.proofs[1]  # alice's
    forged = _tamper(p, "event.certificate", world.bob.pem)
    failed = _failed(world, forged)
    assert {"sender-fingerprint", "event-signature"} <= failed
    # Also claiming bob's fingerprint changes the leaf.
    forged2 = _tamper(forged, "event.signer", world.bob.fingerprint)
    assert {"event-signature", "leaf-hash", "inclusion"} <= _failed(world, forged2)


def test_tampered_sibling_index_or_root_fails(world: World) -> None:
    p = world.proofs[6]
    sib = [s.hex() for s in p.inclusion.siblings]
    sib[1] = bytes(32).hex()
    assert _failed(world, _tamper(p, "inclusion.siblings", sib)) == {"inclusion"}
    assert "inclusion" in _failed(world, _tamper(p, "inclusion.index", 7))
    assert _failed(world, _tamper(p, "batch.root", bytes(32).hex())) == {
        "inclusion",
        "batch-signature",
    }
    assert _failed(world, _tamper(p, "leaf_hash", bytes(32).hex())) == {"leaf-hash"}


def test_batch_record_fields_are_signed(world: World) -> None:
    p = world.proofs[0]
    assert _failed(world, _tamper(p, "batch.prev_root", "11" * 32)) == {"batch-signature"}
    assert _failed(world, _tamper(p, "batch.batch_id", "market/8")) == {"batch-signature"}
    # A batch re-signed by a member (not the gateway) is caught when the gateway MSP is pinned.
    fields = {
        k: getattr(p.batch, k)
        for k in ("batch_id", "channel", "root", "leaf_count", "first_seq", "last_seq", "prev_root")
    }
    by_alice = dataclasses.replace(
        p.batch,
        signature=_sign(world.alice, batch_signing_bytes(**fields)),
        certificate_pem=world.alice.pem,
        msp_id=world.alice.msp_id,
    )
    forged = dataclasses.replace(p, batch=by_alice)
    assert verify_offline(forged, world.trust).ok
    verdict = verify_offline(forged, world.trust, gateway_msp="Org3MSP")
    assert {c.name for c in verdict.failures} == {"gateway-certificate"}


def test_pending_or_uncommitted_anchor_is_not_verified(world: World) -> None:
    p = world.proofs[2]
    pending = dataclasses.replace(p, anchor=None, status="pending")
    verdict = verify_offline(pending, world.trust)
    assert not verdict.ok and {c.name for c in verdict.failures} == {"anchor-record"}
    assert "pending" in verdict.check("anchor-record").detail
    confirmed = dataclasses.replace(
        p, anchor=Anchor("tx9", None, "anchorline", "anchorline"), status="confirmed"
    )
    assert {c.name for c in verify_offline(confirmed, world.trust).failures} == {"anchor-record"}
    assert EventProof.from_json(pending.to_json_text()) == pending


def test_untrusted_ca_and_revoked_member(world: World, tmp_path: Path) -> None:
    p = world.proofs[1]  # alice, Org1
    only_org2_org3 = TrustStore()
    for org in ("Org2", "Org3"):
        only_org2_org3.add_msp_dir(f"{org}MSP", world.ca.org_msp_dir(org))
    verdict = verify_offline(p, only_org2_org3)
    assert {c.name for c in verdict.failures} == {"sender-certificate"}
    assert "unknown CA" in verdict.check("sender-certificate").detail

    # A separate CA so revocation does not touch the shared module fixture.
    ca = EmbeddedCA(tmp_path / "ca")
    carol = _identity(ca, "Org1", "carol", "member")
    gw = _identity(ca, "Org3", "gateway", "admin")
    proof = _build(carol, carol, gw, n=3)[0]
    trust = ca.trust_store()
    assert verify_offline(proof, trust).ok
    ca.revoke("Org1", "carol")
    trust.reload()
    verdict = verify_offline(proof, trust)
    assert {c.name for c in verdict.failures} == {"sender-certificate"}


def test_claimed_msp_must_match_the_certificate(world: World) -> None:
    p = world.proofs[1]
    forged = _tamper(p, "event.msp_id", "Org2MSP")
    assert _failed(world, forged) == {"sender-certificate"}


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("format", "anchorline.event-proof/0", "format"),
        ("leaf_hash", "XYZ", "proof.leaf_hash"),
        ("leaf_hash", "AB" * 32, "proof.leaf_hash"),
        ("inclusion.index", -1, "inclusion.index"),
        ("inclusion.siblings", "00", "inclusion.siblings"),
        ("event.seq", "7", "event.seq"),
        ("event.signature", "not base64!", "event.signature"),
        ("batch.leaf_count", True, "batch.leaf_count"),
        ("anchor", "tx", "anchor"),
    ],
)
def test_malformed_documents_name_the_field(
    world: World, path: str, value: Any, field: str
) -> None:
    doc = world.proofs[0].to_json()
    target = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    with pytest.raises(ProofDocumentError) as info:
        EventProof.from_json(doc)
    assert info.value.details.get("field") == field


def test_missing_fields_and_non_json(world: World) -> None:
    doc = world.proofs[0].to_json()
    del doc["event"]["record"]["client_ts"]
    with pytest.raises(ProofDocumentError, match="client_ts"):
        EventProof.from_json(doc)
    with pytest.raises(JsonSyntaxError):
        EventProof.from_json("{not json")
    with pytest.raises(ProofDocumentError):
        EventProof.from_json("[]")


def test_high_s_member_signatures_are_accepted(world: World) -> None:
    # Browsers' WebCrypto does not normalise S; the event signature is not a Fabric one.
    p = world.proofs[0]
    r, s = decode_dss_signature(p.event.signature)
    high = encode_dss_signature(r, P256_ORDER - s)
    assert verify_offline(p, world.trust).ok
    ev = dataclasses.replace(p.event, signature=high)
    # A different signature encoding is a different leaf: rebuild the batch for it.
    assert base64.b64encode(high) != base64.b64encode(p.event.signature)
    leaf = ev.leaf_hash()
    assert (
        verify_offline(dataclasses.replace(p, event=ev, leaf_hash=leaf), world.trust)
        .check("event-signature")
        .ok
    )


def test_known_answers_of_docs_proof_format() -> None:
    # docs/proof-format.md gives these values to third-party implementers.
    record = {
        "id": "ev-1",
        "channel": "market",
        "type": "bid",
        "payload": {"amount": 12, "item": "lot-7"},
        "client_ts": 1764000000000,
    }
    assert event_signing_bytes(record) == (
        b'{"channel":"market","client_ts":1764000000000,"id":"ev-1",'
        b'"payload":{"amount":12,"item":"lot-7"},"type":"bid"}'
    )
    sig = bytes.fromhex("3006020101020101")
    assert leaf_hash(record, seq=7, signer="ab" * 32, signature=sig).hex() == (
        "9210736244e640abc5107e20316ab3cf41650833ad018ce7f18691d7dd4d11ad"
    )
    batch = batch_signing_bytes(
        batch_id="market/1",
        channel="market",
        root=bytes([0x11]) * 32,
        leaf_count=3,
        first_seq=7,
        last_seq=9,
        prev_root=bytes(32),
    )
    assert hashlib.sha256(batch).hexdigest() == (
        "20334b9231fb049bdfdb74add06d04050d30ce9b23256317ddddcff35883893d"
    )


def test_build_event_proof_from_stored_leaves(world: World) -> None:
    proofs = world.proofs
    leaves = [p.leaf_hash for p in proofs]
    batch = proofs[0].batch
    for p in proofs:
        for source in (leaves, MerkleTree(H, leaves), lambda s, e: leaves[s:e]):
            built = build_event_proof(
                event=p.event, batch=batch, batch_leaves=source, anchor=p.anchor, status="finalized"
            )
            assert built == p
    # A damaged store (one stored leaf altered) is refused, not served.
    damaged = [*leaves]
    damaged[0] = bytes(32)
    with pytest.raises(RootMismatchError):
        build_event_proof(
            event=proofs[5].event, batch=batch, batch_leaves=damaged, anchor=None, status="pending"
        )
    outside = dataclasses.replace(proofs[0].event, seq=batch.last_seq + 1)
    with pytest.raises(ProofDocumentError):
        build_event_proof(event=outside, batch=batch, batch_leaves=leaves, anchor=None, status="x")
