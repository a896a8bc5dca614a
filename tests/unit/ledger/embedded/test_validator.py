"""Commit-time validation codes, on envelopes the engine endorsed (then altered)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import transaction_pb2

from gateway.identity.msp import load_msp
from gateway.identity.signing import sha256
from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from gateway.ledger.embedded.validator import EndorsementPolicy
from gateway.ledger.embedded_client import embedded_gateway

from .kv_contract import CONTRACTS

Code = transaction_pb2.TxValidationCode


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[EmbeddedLedger]:
    led = EmbeddedLedger.open(
        EmbeddedConfig(
            root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, batch_max_tx=10, batch_timeout_s=5
        )
    )
    yield led
    await led.close()


@pytest.fixture
async def signed_envelope(ledger: EmbeddedLedger):  # type: ignore[no-untyped-def]
    msp_dir = ledger.ca.enroll("Org1", "alice", "member")
    folder = load_msp(msp_dir, "Org1MSP", require_key=True)
    gw = embedded_gateway(ledger, msp_dir, org="Org1")
    contract = gw.network("anchorline").contract("kv")

    async def make(*args: str, resign: bool = True, alter=None) -> bytes:  # type: ignore[no-untyped-def]
        tx = await contract.new_proposal(*args).endorse()
        payload = tx.envelope.payload if alter is None else alter(tx.envelope.payload)
        signature = folder.signer().sign(sha256(payload))
        return bytes(common_pb2.Envelope(payload=payload, signature=signature).SerializeToString())

    yield make
    await gw.close()


def test_policy_thresholds() -> None:
    orgs = ("A", "B", "C", "D")
    assert EndorsementPolicy("MAJORITY", orgs).required == 3
    assert EndorsementPolicy("MAJORITY", orgs[:3]).required == 2
    assert EndorsementPolicy("ANY", orgs).required == 1
    assert EndorsementPolicy("ALL", orgs).required == 4
    assert not EndorsementPolicy("MAJORITY", orgs[:3]).satisfied_by({"A", "X"})
    assert EndorsementPolicy("MAJORITY", orgs[:3]).satisfied_by({"A", "C"})


async def test_in_block_conflicts_and_duplicates(ledger: EmbeddedLedger, signed_envelope) -> None:  # type: ignore[no-untyped-def]
    first = await signed_envelope("PutThenGet", "k", "1")
    second = await signed_envelope("PutThenGet", "k", "2")  # reads the same version of k
    blind = await signed_envelope("Put", "k", "3")  # a blind write never conflicts
    result = ledger.validator.validate(ledger.height, [first, second, first, blind])
    assert result.codes == [Code.VALID, Code.MVCC_READ_CONFLICT, Code.DUPLICATE_TXID, Code.VALID]
    # Only the first occurrence of an id is indexed; the valid writes are the block's updates.
    assert [t.code for t in result.transactions] == [
        Code.VALID,
        Code.MVCC_READ_CONFLICT,
        Code.VALID,
    ]
    assert [(w.key, w.value) for w in result.writes] == [("k", b"1"), ("k", b"3")]


def _mutate_action(payload: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    p = common_pb2.Payload.FromString(payload)
    tx = transaction_pb2.Transaction.FromString(p.data)
    change(tx, p)
    p.data = tx.SerializeToString()
    return bytes(p.SerializeToString())


async def test_structural_failures(ledger: EmbeddedLedger, signed_envelope) -> None:  # type: ignore[no-untyped-def]
    def two_actions(tx, _p):  # type: ignore[no-untyped-def]
        tx.actions.append(tx.actions[0])

    def other_header(tx, _p):  # type: ignore[no-untyped-def]
        # The action's signature header no longer matches the proposal hash.
        tx.actions[0].header = common_pb2.SignatureHeader(
            creator=common_pb2.SignatureHeader.FromString(tx.actions[0].header).creator,
            nonce=b"another nonce",
        ).SerializeToString()

    def wrong_txid(tx, p):  # type: ignore[no-untyped-def]
        header = common_pb2.ChannelHeader.FromString(p.header.channel_header)
        header.tx_id = "0" * 64
        p.header.channel_header = header.SerializeToString()

    envelopes = [
        await signed_envelope("Put", "a", "1", alter=lambda b: _mutate_action(b, two_actions)),
        await signed_envelope("Put", "b", "1", alter=lambda b: _mutate_action(b, other_header)),
        await signed_envelope("Put", "c", "1", alter=lambda b: _mutate_action(b, wrong_txid)),
        b"\x0a\xff\xff",
        common_pb2.Envelope(
            payload=common_pb2.Payload(
                header=common_pb2.Header(channel_header=b"\x0a\xff")
            ).SerializeToString()
        ).SerializeToString(),
    ]
    good = common_pb2.Envelope.FromString(await signed_envelope("Put", "d", "1"))
    bad_signature = common_pb2.Envelope(payload=good.payload, signature=b"\x30\x00")
    envelopes.append(bad_signature.SerializeToString())
    codes = ledger.validator.validate(ledger.height, envelopes).codes
    assert codes == [
        Code.INVALID_ENDORSER_TRANSACTION,
        Code.INVALID_ENDORSER_TRANSACTION,
        Code.BAD_PROPOSAL_TXID,
        Code.BAD_PAYLOAD,
        Code.BAD_COMMON_HEADER,
        Code.BAD_CREATOR_SIGNATURE,
    ]


async def test_revoked_endorser_does_not_count(ledger: EmbeddedLedger, signed_envelope) -> None:  # type: ignore[no-untyped-def]
    envelope = await signed_envelope("Put", "k", "v")
    # The gateway asked Org1 and Org2; once Org2's peer is revoked only one org remains.
    ledger.ca.revoke("Org2", "peer0")
    assert ledger.validator.validate(ledger.height, [envelope]).codes == [
        Code.ENDORSEMENT_POLICY_FAILURE
    ]
