"""Commit-time validation of a block's transactions, as Fabric's committer does it.

For each transaction, in block order, the first failing check sets its
``TxValidationCode`` (Fabric's names and numbers, from ``peer.TxValidationCode``):

1. envelope payload parses — else ``BAD_PAYLOAD``;
2. channel and signature headers parse, channel is ours — ``BAD_COMMON_HEADER`` /
   ``TARGET_CHAIN_NOT_FOUND``;
3. the creator is valid for the channel and signed the payload — ``BAD_CREATOR_SIGNATURE``;
4. it is an endorser transaction — ``UNSUPPORTED_TX_PAYLOAD``;
5. transaction id = SHA-256(nonce + creator) — ``BAD_PROPOSAL_TXID``;
6. one action whose proposal hash matches the header — ``INVALID_ENDORSER_TRANSACTION``;
7. the id was not committed before (nor earlier in this block) — ``DUPLICATE_TXID``;
8. the chaincode action and read/write set parse — ``BAD_RESPONSE_PAYLOAD`` / ``BAD_RWSET``;
   the chaincode is deployed — ``INVALID_CHAINCODE``;
9. endorsements: each a valid peer of a channel org whose signature covers the
   response payload + endorser; the orgs satisfy the endorsement policy —
   ``ENDORSEMENT_POLICY_FAILURE``;
10. every key read still has the version read, counting writes of earlier valid
    transactions in the same block — ``MVCC_READ_CONFLICT``; every range scan
    still returns the same keys and versions — ``PHANTOM_READ_CONFLICT``.

A VALID transaction's writes are applied to the block's pending updates, so
later transactions of the same block see them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf.message import DecodeError

from gateway.identity.certificates import TrustStore
from gateway.identity.signing import verify
from gateway.ledger.embedded.endorser import creator_is_valid, deserialize_creator
from gateway.ledger.embedded.store import BlockStore, TxEntry, Version, Write
from gateway.ledger.protocol.proposal import transaction_id

Code = transaction_pb2.TxValidationCode
PolicyKind = Literal["MAJORITY", "ANY", "ALL"]


@dataclasses.dataclass(frozen=True)
class EndorsementPolicy:
    """An implicit-meta policy over the orgs' peers (Fabric's ``Application/Endorsement``)."""

    kind: PolicyKind
    orgs: tuple[str, ...]

    @property
    def required(self) -> int:
        if self.kind == "ANY":
            return 1
        if self.kind == "ALL":
            return len(self.orgs)
        return len(self.orgs) // 2 + 1

    def satisfied_by(self, orgs: set[str]) -> bool:
        return len(orgs & set(self.orgs)) >= self.required


@dataclasses.dataclass
class ValidatedBlock:
    """What committing a block needs: codes, writes, index entries and events."""

    codes: list[int]
    writes: list[Write]
    transactions: list[TxEntry]
    events: list[tuple[int, str, bytes]]
    tx_ids: list[str]


def _node_ou(cert: x509.Certificate) -> set[str]:
    return {
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    }


class BlockValidator:
    """Validates one block's envelopes against committed state; see the module docstring."""

    def __init__(
        self,
        *,
        channel_id: str,
        trust: TrustStore,
        store: BlockStore,
        policy: EndorsementPolicy,
        is_deployed: Callable[[str], bool],
    ) -> None:
        self.channel_id = channel_id
        self.trust = trust
        self.store = store
        self.policy = policy
        self.is_deployed = is_deployed

    def validate(self, block_number: int, envelopes: Sequence[bytes]) -> ValidatedBlock:
        out = ValidatedBlock([], [], [], [], [])
        # The block's pending updates: (namespace, key) -> (value or None, version).
        updates: dict[tuple[str, str], tuple[bytes | None, Version]] = {}
        seen: set[str] = set()
        for index, raw in enumerate(envelopes):
            code, tx_id, ns, kv, event = self._validate_one(raw, seen, updates)
            if code == Code.VALID and kv is not None and ns is not None:
                version = (block_number, index)
                for w in kv.writes:
                    value = None if w.is_delete else bytes(w.value)
                    updates[(ns, w.key)] = (value, version)
                    out.writes.append(Write(ns, w.key, value, version))
                if event:
                    out.events.append((index, ns, event))
            if tx_id:
                if tx_id not in seen:
                    out.transactions.append(TxEntry(tx_id, index, int(code)))
                seen.add(tx_id)
            out.codes.append(int(code))
            out.tx_ids.append(tx_id)
        return out

    # -- one transaction ------------------------------------------------------------------

    def _validate_one(
        self,
        raw: bytes,
        seen: set[str],
        updates: dict[tuple[str, str], tuple[bytes | None, Version]],
    ) -> tuple[int, str, str | None, kv_rwset_pb2.KVRWSet | None, bytes]:
        try:
            envelope = common_pb2.Envelope.FromString(raw)
            payload = common_pb2.Payload.FromString(envelope.payload)
        except DecodeError:
            return Code.BAD_PAYLOAD, "", None, None, b""
        try:
            chdr = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            shdr = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        except DecodeError:
            return Code.BAD_COMMON_HEADER, "", None, None, b""
        tx_id = str(chdr.tx_id)
        if not shdr.nonce or not shdr.creator:
            return Code.BAD_COMMON_HEADER, tx_id, None, None, b""
        if chdr.channel_id != self.channel_id:
            return Code.TARGET_CHAIN_NOT_FOUND, tx_id, None, None, b""
        _, valid = creator_is_valid(
            bytes(shdr.creator), bytes(envelope.payload), bytes(envelope.signature), self.trust
        )
        if not valid:
            return Code.BAD_CREATOR_SIGNATURE, tx_id, None, None, b""
        if chdr.type != common_pb2.ENDORSER_TRANSACTION:
            return Code.UNSUPPORTED_TX_PAYLOAD, tx_id, None, None, b""
        if tx_id != transaction_id(bytes(shdr.nonce), bytes(shdr.creator)):
            return Code.BAD_PROPOSAL_TXID, tx_id, None, None, b""
        try:
            tx = transaction_pb2.Transaction.FromString(payload.data)
            if len(tx.actions) != 1:
                return Code.INVALID_ENDORSER_TRANSACTION, tx_id, None, None, b""
            action = tx.actions[0]
            cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
            prp = proposal_response_pb2.ProposalResponsePayload.FromString(
                cap.action.proposal_response_payload
            )
        except DecodeError:
            return Code.INVALID_ENDORSER_TRANSACTION, tx_id, None, None, b""
        expected_hash = hashlib.sha256(
            bytes(payload.header.channel_header)
            + bytes(action.header)
            + bytes(cap.chaincode_proposal_payload)
        ).digest()
        if bytes(prp.proposal_hash) != expected_hash:
            return Code.INVALID_ENDORSER_TRANSACTION, tx_id, None, None, b""
        if tx_id in seen or self.store.transaction(tx_id) is not None:
            return Code.DUPLICATE_TXID, tx_id, None, None, b""
        try:
            cc_action = proposal_pb2.ChaincodeAction.FromString(prp.extension)
        except DecodeError:
            return Code.BAD_RESPONSE_PAYLOAD, tx_id, None, None, b""
        namespace = str(cc_action.chaincode_id.name)
        if not self.is_deployed(namespace):
            return Code.INVALID_CHAINCODE, tx_id, None, None, b""
        try:
            kv = self._rwset(cc_action.results, namespace)
            if cc_action.events:
                event = chaincode_event_pb2.ChaincodeEvent.FromString(cc_action.events)
                if event.chaincode_id != namespace or event.tx_id != tx_id:
                    return Code.INVALID_OTHER_REASON, tx_id, None, None, b""
        except (DecodeError, ValueError):
            return Code.BAD_RWSET, tx_id, None, None, b""
        if cc_action.response.status >= 400 or not self._endorsed(
            bytes(cap.action.proposal_response_payload), cap.action.endorsements
        ):
            return Code.ENDORSEMENT_POLICY_FAILURE, tx_id, None, None, b""
        conflict = self._mvcc(namespace, kv, updates)
        if conflict != Code.VALID:
            return conflict, tx_id, None, None, b""
        return Code.VALID, tx_id, namespace, kv, bytes(cc_action.events)

    @staticmethod
    def _rwset(results: bytes, namespace: str) -> kv_rwset_pb2.KVRWSet:
        txrw = rwset_pb2.TxReadWriteSet.FromString(results)
        kv = kv_rwset_pb2.KVRWSet()
        for ns in txrw.ns_rwset:
            if ns.namespace != namespace:
                # Writes to another chaincode's namespace are never legitimate here.
                raise ValueError(f"read/write set touches namespace {ns.namespace!r}")
            kv.MergeFrom(kv_rwset_pb2.KVRWSet.FromString(ns.rwset))
        return kv

    def _endorsed(
        self, response_payload: bytes, endorsements: Sequence[proposal_response_pb2.Endorsement]
    ) -> bool:
        orgs: set[str] = set()
        for endorsement in endorsements:
            found = deserialize_creator(bytes(endorsement.endorser), self.trust)
            if found is None or not found.valid or "peer" not in _node_ou(found.certificate):
                continue
            key = found.certificate.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                continue
            message = response_payload + bytes(endorsement.endorser)
            if verify(key, message, bytes(endorsement.signature)):
                orgs.add(found.msp_id)
        return self.policy.satisfied_by(orgs)

    def _current(
        self,
        namespace: str,
        key: str,
        updates: dict[tuple[str, str], tuple[bytes | None, Version]],
    ) -> Version | None:
        pending = updates.get((namespace, key))
        if pending is not None:
            return None if pending[0] is None else pending[1]
        found = self.store.get(namespace, key)
        return None if found is None else found[1]

    def _mvcc(
        self,
        namespace: str,
        kv: kv_rwset_pb2.KVRWSet,
        updates: dict[tuple[str, str], tuple[bytes | None, Version]],
    ) -> int:
        for read in kv.reads:
            read_version = (
                (int(read.version.block_num), int(read.version.tx_num))
                if read.HasField("version")
                else None
            )
            if self._current(namespace, read.key, updates) != read_version:
                return int(Code.MVCC_READ_CONFLICT)
        for rq in kv.range_queries_info:
            if not self._range_unchanged(namespace, rq, updates):
                return int(Code.PHANTOM_READ_CONFLICT)
        return int(Code.VALID)

    def _range_unchanged(
        self,
        namespace: str,
        rq: kv_rwset_pb2.RangeQueryInfo,
        updates: dict[tuple[str, str], tuple[bytes | None, Version]],
    ) -> bool:
        recorded = [
            (r.key, (int(r.version.block_num), int(r.version.tx_num)))
            for r in rq.raw_reads.kv_reads
        ]
        # Re-run the scan over committed state merged with this block's updates.
        start, end = rq.start_key, rq.end_key
        if not rq.itr_exhausted:
            # The scan stopped early: only the part it covered must be unchanged.
            if not recorded:
                return True
            end = recorded[-1][0] + "\x00"
        current: dict[str, Version] = {k: v for k, _, v in self.store.scan(namespace, start, end)}
        for (ns, key), (value, version) in updates.items():
            if ns != namespace or key < start or (end and key >= end):
                continue
            if value is None:
                current.pop(key, None)
            else:
                current[key] = version
        return sorted(current.items()) == recorded
