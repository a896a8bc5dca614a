"""The self-contained event proof (``GET /events/{channel}/{seq}/proof``) and its offline check.

The JSON format is specified in docs/proof-format.md; this module is its
reference implementation. :class:`EventProof` round-trips that JSON exactly
(:meth:`EventProof.to_json` / :meth:`EventProof.from_json`);
:func:`build_event_proof` makes one from stored rows and the batch's leaf
hashes, and refuses to if the store's leaves do not lead to the batch root.
:func:`verify_offline` checks everything that needs no ledger: the sender's
certificate and signature, the leaf hash, the sequence arithmetic, the
inclusion proof against the batch root, and the gateway's certificate and
signature on the batch record. Whether that root is anchored in that block
is the ledger check, done by ``anchorline verify`` through the auditor's own
peer.

Signature checks use :func:`gateway.identity.signing.verify` (ECDSA P-256
over SHA-256, DER, low-S not required: browsers' WebCrypto signs high-S as
often as not);
certificate chains, validity and CRLs use
:meth:`gateway.identity.certificates.TrustStore.verify`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Collection, Mapping
from typing import Any, Final

import rfc8785
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.anchoring.leaf import (
    SIGNED_FIELDS,
    event_signing_bytes,
    leaf_hash,
    leaf_hash_from_canonical,
)
from gateway.errors import AnchorlineError, JsonTooLarge
from gateway.identity.certificates import (
    TrustStore,
    VerifiedIdentity,
    fingerprint,
    load_certificate,
)
from gateway.identity.signing import verify
from gateway.merkle.errors import ProofDocumentError
from gateway.merkle.hashing import RFC6962_SHA256, Hasher
from gateway.merkle.proofs import Leaves, inclusion_proof
from gateway.merkle.verify import verify_inclusion
from gateway.strict_json import EVENT_LIMITS, JsonLimits, check_limits, loads

PROOF_FORMAT: Final = "anchorline.event-proof/1"
BATCH_RECORD_TYPE: Final = "anchorline.batch/1"


def proof_limits(event_limits: JsonLimits) -> JsonLimits:
    """The bounds of a proof document around an event record within ``event_limits``.

    The record sits two levels down (document, ``event``); the rest is two
    certificates, at most 64 siblings and a few fields.
    """
    return event_limits.around(depth=2, keys=64, size=64 * 1024)


PROOF_LIMITS: Final = proof_limits(EVENT_LIMITS)
"""What :meth:`EventProof.from_json` accepts as a document (docs/proof-format.md)."""

_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "proof": frozenset(("format", "status", "event", "leaf_hash", "inclusion", "batch", "anchor")),
    "event": frozenset(("record", "seq", "signer", "signature", "certificate", "msp_id")),
    "event.record": frozenset(SIGNED_FIELDS),
    "inclusion": frozenset(("index", "batch_size", "siblings")),
    "batch": frozenset(
        (
            "batch_id",
            "channel",
            "root",
            "leaf_count",
            "first_seq",
            "last_seq",
            "prev_root",
            "signature",
            "certificate",
            "msp_id",
        )
    ),
    "anchor": frozenset(("tx_id", "block_number", "fabric_channel", "chaincode")),
}


# -- JSON field readers: every error names the field ---------------------------------------


def _only(obj: Mapping[str, Any], where: str, allowed: Collection[str] | None = None) -> None:
    """Refuse a field the format does not define: a reader would show it as if signed."""
    known = _FIELDS[where] if allowed is None else allowed
    extra = [k for k in obj if k not in known]
    if extra:
        names = ", ".join(repr(k if len(k) <= 40 else k[:40] + "…") for k in sorted(extra)[:5])
        raise ProofDocumentError(
            f"{where} has field(s) {names} that {PROOF_FORMAT} does not define; "
            "the proof may have been altered",
            field=f"{where}.{sorted(extra)[0]}",
        )


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise ProofDocumentError(f"{where}.{key} is missing", field=f"{where}.{key}")
    return obj[key]


def _obj(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = _get(obj, key, where)
    if not isinstance(value, dict):
        raise ProofDocumentError(f"{where}.{key} must be an object", field=f"{where}.{key}")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        raise ProofDocumentError(f"{where}.{key} must be a string", field=f"{where}.{key}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    value = obj.get(key) if optional else _get(obj, key, where)
    if optional and value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofDocumentError(
            f"{where}.{key} must be a non-negative integer", field=f"{where}.{key}"
        )
    return value


def _hex(obj: Mapping[str, Any], key: str, where: str) -> bytes:
    return _hex_value(_str(obj, key, where), f"{where}.{key}")


def _hex_value(value: object, field: str) -> bytes:
    if not isinstance(value, str) or value != value.lower():
        raise ProofDocumentError(f"{field} must be lower-case hex", field=field)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ProofDocumentError(f"{field} is not hex", field=field) from None


def _b64(obj: Mapping[str, Any], key: str, where: str) -> bytes:
    value = _str(obj, key, where)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProofDocumentError(
            f"{where}.{key} is not standard base64", field=f"{where}.{key}"
        ) from None


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProofDocumentError(f"{where}.{key} must be a string", field=f"{where}.{key}")
    return value


def _b64s(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# -- the document --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProvenEvent:
    """The event as the member signed it, with who signed and where the gateway put it."""

    id: str
    channel: str
    type: str
    payload: Any
    client_ts: int
    seq: int
    signer: str
    signature: bytes
    certificate_pem: str
    msp_id: str | None = None

    def record(self) -> dict[str, Any]:
        """The five signed fields."""
        return {f: getattr(self, f) for f in SIGNED_FIELDS}

    def signing_bytes(self) -> bytes:
        return event_signing_bytes(self.record())

    def leaf_hash(self, hasher: Hasher = RFC6962_SHA256) -> bytes:
        return leaf_hash(
            self.record(),
            seq=self.seq,
            signer=self.signer,
            signature=self.signature,
            hasher=hasher,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "record": self.record(),
            "seq": self.seq,
            "signer": self.signer,
            "signature": _b64s(self.signature),
            "certificate": self.certificate_pem,
        }
        if self.msp_id is not None:
            out["msp_id"] = self.msp_id
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: JsonLimits = EVENT_LIMITS) -> ProvenEvent:
        where = "event"
        _only(obj, where)
        rec = _obj(obj, "record", where)
        _only(rec, "event.record")
        for f in SIGNED_FIELDS:
            _get(rec, f, "event.record")
        # The same limits the gateway's intake applies: what it accepts, this reads.
        check_limits(rec, limits)
        size = len(event_signing_bytes(rec))
        if size > limits.max_bytes:
            raise JsonTooLarge(
                f"event.record is {size} bytes in canonical form; the limit is {limits.max_bytes}"
            )
        return cls(
            id=_str(rec, "id", "event.record"),
            channel=_str(rec, "channel", "event.record"),
            type=_str(rec, "type", "event.record"),
            payload=rec["payload"],
            client_ts=_int(rec, "client_ts", "event.record"),
            seq=_int(obj, "seq", where),
            signer=_hex(obj, "signer", where).hex(),
            signature=_b64(obj, "signature", where),
            certificate_pem=_str(obj, "certificate", where),
            msp_id=_opt_str(obj, "msp_id", where),
        )


@dataclasses.dataclass(frozen=True)
class InclusionProof:
    """Where the leaf sits in its batch's tree, and the sibling hashes up to the root."""

    index: int
    batch_size: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "batch_size": self.batch_size,
            "siblings": [s.hex() for s in self.siblings],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> InclusionProof:
        where = "inclusion"
        _only(obj, where)
        raw = _get(obj, "siblings", where)
        if not isinstance(raw, list):
            raise ProofDocumentError(
                "inclusion.siblings must be a list", field="inclusion.siblings"
            )
        return cls(
            index=_int(obj, "index", where),
            batch_size=_int(obj, "batch_size", where),
            siblings=tuple(_hex_value(s, f"inclusion.siblings[{i}]") for i, s in enumerate(raw)),
        )


@dataclasses.dataclass(frozen=True)
class BatchRecord:
    """One batch as the gateway signed it and the anchor chaincode stores it."""

    batch_id: str
    channel: str
    root: bytes
    leaf_count: int
    first_seq: int
    last_seq: int
    prev_root: bytes
    signature: bytes
    certificate_pem: str
    msp_id: str | None = None

    def signed_fields(self) -> dict[str, Any]:
        """The object whose RFC 8785 bytes the gateway signs."""
        return {
            "type": BATCH_RECORD_TYPE,
            "batch_id": self.batch_id,
            "channel": self.channel,
            "root": self.root.hex(),
            "leaf_count": self.leaf_count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "prev_root": self.prev_root.hex(),
        }

    def signing_bytes(self) -> bytes:
        """What the gateway signs (ECDSA P-256 over SHA-256 of these bytes)."""
        return batch_signing_bytes(
            batch_id=self.batch_id,
            channel=self.channel,
            root=self.root,
            leaf_count=self.leaf_count,
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            prev_root=self.prev_root,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "batch_id": self.batch_id,
            "channel": self.channel,
            "root": self.root.hex(),
            "leaf_count": self.leaf_count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "prev_root": self.prev_root.hex(),
            "signature": _b64s(self.signature),
            "certificate": self.certificate_pem,
        }
        if self.msp_id is not None:
            out["msp_id"] = self.msp_id
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BatchRecord:
        where = "batch"
        _only(obj, where)
        return cls(
            batch_id=_str(obj, "batch_id", where),
            channel=_str(obj, "channel", where),
            root=_hex(obj, "root", where),
            leaf_count=_int(obj, "leaf_count", where),
            first_seq=_int(obj, "first_seq", where),
            last_seq=_int(obj, "last_seq", where),
            prev_root=_hex(obj, "prev_root", where),
            signature=_b64(obj, "signature", where),
            certificate_pem=_str(obj, "certificate", where),
            msp_id=_opt_str(obj, "msp_id", where),
        )


def batch_signing_bytes(
    *,
    batch_id: str,
    channel: str,
    root: bytes,
    leaf_count: int,
    first_seq: int,
    last_seq: int,
    prev_root: bytes,
) -> bytes:
    """RFC 8785 bytes of a batch record's signed fields (docs/proof-format.md §batch).

    The batcher signs exactly these bytes; the proof verifier and the audit
    recompute them from the record's fields.
    """
    return bytes(
        rfc8785.dumps(
            {
                "type": BATCH_RECORD_TYPE,
                "batch_id": batch_id,
                "channel": channel,
                "root": root.hex(),
                "leaf_count": leaf_count,
                "first_seq": first_seq,
                "last_seq": last_seq,
                "prev_root": prev_root.hex(),
            }
        )
    )


@dataclasses.dataclass(frozen=True)
class Anchor:
    """Where the batch root was anchored on Fabric."""

    tx_id: str
    block_number: int | None
    fabric_channel: str
    chaincode: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_id": self.tx_id,
            "block_number": self.block_number,
            "fabric_channel": self.fabric_channel,
            "chaincode": self.chaincode,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Anchor:
        where = "anchor"
        _only(obj, where)
        return cls(
            tx_id=_str(obj, "tx_id", where),
            block_number=_int(obj, "block_number", where, optional=True),
            fabric_channel=_str(obj, "fabric_channel", where),
            chaincode=_str(obj, "chaincode", where),
        )


@dataclasses.dataclass(frozen=True)
class EventProof:
    """Everything a third party needs to check one event (docs/proof-format.md)."""

    event: ProvenEvent
    leaf_hash: bytes
    inclusion: InclusionProof
    batch: BatchRecord
    anchor: Anchor | None
    status: str = "finalized"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROOF_FORMAT,
            "status": self.status,
            "event": self.event.to_json(),
            "leaf_hash": self.leaf_hash.hex(),
            "inclusion": self.inclusion.to_json(),
            "batch": self.batch.to_json(),
            "anchor": self.anchor.to_json() if self.anchor is not None else None,
        }

    def to_json_text(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any] | str | bytes, limits: JsonLimits = EVENT_LIMITS
    ) -> EventProof:
        """Parse a proof document.

        Text is read by :func:`gateway.strict_json.loads` (duplicate keys,
        NaN, big integers, lone surrogates, invalid UTF-8 and excess depth
        raise its :class:`~gateway.errors.JsonRefused` codes); a field the
        format does not define, at any level, or a missing or ill-typed one
        raises :class:`ProofDocumentError` naming it. ``limits`` bound the
        event record, as the gateway's intake does.
        """
        if isinstance(data, str | bytes):
            data = loads(data, proof_limits(limits))
        if not isinstance(data, dict):
            raise ProofDocumentError("proof must be a JSON object")
        _only(data, "proof")
        fmt = data.get("format")
        if fmt != PROOF_FORMAT:
            raise ProofDocumentError(
                f"proof format {fmt!r} is not {PROOF_FORMAT!r}; use a verifier for that format",
                field="format",
            )
        anchor_raw = data.get("anchor")
        if anchor_raw is not None and not isinstance(anchor_raw, dict):
            raise ProofDocumentError("anchor must be an object or null", field="anchor")
        return cls(
            event=ProvenEvent.from_json(_obj(data, "event", "proof"), limits),
            leaf_hash=_hex(data, "leaf_hash", "proof"),
            inclusion=InclusionProof.from_json(_obj(data, "inclusion", "proof")),
            batch=BatchRecord.from_json(_obj(data, "batch", "proof")),
            anchor=Anchor.from_json(anchor_raw) if anchor_raw is not None else None,
            status=_str(data, "status", "proof"),
        )


def build_event_proof(
    *,
    event: ProvenEvent,
    batch: BatchRecord,
    batch_leaves: Leaves,
    anchor: Anchor | None,
    status: str,
    hasher: Hasher = RFC6962_SHA256,
) -> EventProof:
    """The proof of ``event`` in ``batch``, checked before it is returned.

    ``batch_leaves`` are the batch's leaf hashes in ``seq`` order (a list, a
    :class:`~gateway.merkle.tree.MerkleTree` or a range fetcher). The leaf's
    index is ``event.seq - batch.first_seq``. Raises
    :class:`~gateway.merkle.errors.RootMismatchError` when the stored leaves
    do not lead to the stored root (a damaged store: never serve that proof),
    :class:`ProofDocumentError` when the event is not in the batch, and a
    :class:`~gateway.errors.JsonRefused` subclass when the event breaks the
    protocol's limits (a damaged store: the intake refuses such events).
    """
    # What the intake accepted and every verifier reads: never prove beyond it.
    check_limits(event.record(), EVENT_LIMITS)
    index = event.seq - batch.first_seq
    if not 0 <= index < batch.leaf_count or event.channel != batch.channel:
        raise ProofDocumentError(
            f"event {event.channel}/{event.seq} is not in batch {batch.batch_id} "
            f"({batch.channel} {batch.first_seq}..{batch.last_seq})"
        )
    leaf = event.leaf_hash(hasher)
    siblings = inclusion_proof(hasher, index, batch.leaf_count, batch_leaves)
    verify_inclusion(hasher, index, batch.leaf_count, leaf, siblings, batch.root)
    return EventProof(
        event=event,
        leaf_hash=leaf,
        inclusion=InclusionProof(index, batch.leaf_count, tuple(siblings)),
        batch=batch,
        anchor=anchor,
        status=status,
    )


# -- offline verification ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One named check of a verdict (names are stable; see docs/proof-format.md)."""

    name: str
    ok: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The result of :func:`verify_offline`: every check, in order, and the identities."""

    checks: tuple[Check, ...]
    sender: VerifiedIdentity | None = None
    gateway: VerifiedIdentity | None = None

    @property
    def ok(self) -> bool:
        """True only when every check holds."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def check(self, name: str) -> Check:
        """The check called ``name`` (KeyError if the verifier did not run it)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def summary(self) -> str:
        """Human-readable lines: ``ok   name: detail`` / ``FAIL name: detail``."""
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        lines.append("VERIFIED (offline checks)" if self.ok else "NOT VERIFIED")
        return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def _parsed(cert_pem: str) -> x509.Certificate:
    # A verifier checks many proofs signed by few certificates: parse each once.
    return load_certificate(cert_pem)


def _verify_sig(cert_pem: str, message: bytes, signature: bytes) -> bool:
    try:
        key = _parsed(cert_pem).public_key()
    except (ValueError, UnsupportedAlgorithm):
        # cryptography parses a certificate's parts lazily: a damaged key, or a key
        # of a type it does not know, shows here.
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    return verify(key, message, signature, require_low_s=False)


def _verify_identity(
    trust: TrustStore,
    cert_pem: str,
    claimed_msp: str | None,
    pinned_msp: str | None,
    at: dt.datetime | None,
) -> tuple[VerifiedIdentity | None, str]:
    try:
        ident = trust.verify(_parsed(cert_pem), at=at, msp_id=pinned_msp)
    except AnchorlineError as exc:
        return None, exc.message
    except ValueError as exc:  # a damaged extension or key, parsed lazily
        return None, f"certificate cannot be read: {exc}"
    if claimed_msp is not None and ident.msp_id != claimed_msp:
        return None, f"certificate belongs to {ident.msp_id}, but the proof says {claimed_msp}"
    return ident, f"{ident.subject} of {ident.msp_id} (role {ident.role or 'none'})"


def verify_offline(
    proof: EventProof,
    trust: TrustStore,
    *,
    at: dt.datetime | None = None,
    gateway_msp: str | None = None,
    hasher: Hasher = RFC6962_SHA256,
) -> Verdict:
    """Check a proof without the ledger; every check runs and is reported.

    ``trust`` holds the channel's MSPs (CA certificates and CRLs).
    Certificates are checked at ``at`` (default: now; an auditor checking an
    old proof passes the anchoring block's timestamp). ``gateway_msp`` pins
    the MSP the batch signer must belong to. The verdict is ``ok`` only when
    all of: sender certificate, sender fingerprint, event signature, leaf
    hash, sequence, inclusion, gateway certificate, batch signature and anchor
    record hold.
    """
    checks: list[Check] = []
    ev, batch, inc = proof.event, proof.batch, proof.inclusion

    # 1. The sender's certificate chains to a trusted MSP and is the one named.
    sender, detail = _verify_identity(trust, ev.certificate_pem, ev.msp_id, None, at)
    checks.append(Check("sender-certificate", sender is not None, detail))
    try:
        actual_fp = fingerprint(_parsed(ev.certificate_pem))
    except AnchorlineError as exc:
        actual_fp = ""
        checks.append(Check("sender-fingerprint", False, exc.message))
    else:
        checks.append(
            Check(
                "sender-fingerprint",
                actual_fp == ev.signer,
                f"certificate SHA-256 {actual_fp}"
                + ("" if actual_fp == ev.signer else f" but the event names {ev.signer}"),
            )
        )

    # 2. The member's signature over the canonical event.
    signing: bytes | None = None
    try:
        signing_bytes = ev.signing_bytes()
        signing = signing_bytes
        sig_ok = bool(actual_fp) and _verify_sig(ev.certificate_pem, signing_bytes, ev.signature)
        checks.append(
            Check(
                "event-signature",
                sig_ok,
                "ECDSA P-256 signature over the RFC 8785 event verifies"
                if sig_ok
                else "the signature does not match the event and the sender's key",
            )
        )
    except AnchorlineError as exc:
        checks.append(Check("event-signature", False, exc.message))

    # 3. The leaf hash is the hash of this signed record.
    try:
        # The signed bytes are already canonical: splice them into the leaf (same bytes
        # as leaf.leaf_data, without canonicalising the event a second time).
        computed_leaf = leaf_hash_from_canonical(
            ev.signing_bytes() if signing is None else signing,
            seq=ev.seq,
            signer=ev.signer,
            signature=ev.signature,
            hasher=hasher,
        )
    except AnchorlineError as exc:
        checks.append(Check("leaf-hash", False, exc.message))
        computed_leaf = b""
    else:
        checks.append(
            Check(
                "leaf-hash",
                computed_leaf == proof.leaf_hash,
                f"leaf {computed_leaf.hex()}"
                + (
                    ""
                    if computed_leaf == proof.leaf_hash
                    else f" != stated {proof.leaf_hash.hex()}"
                ),
            )
        )

    # 4. The batch, the channel and the sequence numbers agree with the leaf's place.
    problems = []
    if ev.channel != batch.channel:
        problems.append(f"event channel {ev.channel!r} is not batch channel {batch.channel!r}")
    if batch.last_seq - batch.first_seq + 1 != batch.leaf_count:
        problems.append(
            f"batch seqs {batch.first_seq}..{batch.last_seq} do not make {batch.leaf_count} leaves"
        )
    if inc.batch_size != batch.leaf_count:
        problems.append(f"proof batch size {inc.batch_size} != leaf count {batch.leaf_count}")
    if ev.seq != batch.first_seq + inc.index:
        problems.append(f"seq {ev.seq} is not first_seq {batch.first_seq} + index {inc.index}")
    checks.append(
        Check(
            "sequence",
            not problems,
            "; ".join(problems)
            or f"seq {ev.seq} is leaf {inc.index} of {batch.leaf_count} in {batch.batch_id}",
        )
    )

    # 5. The leaf is in the batch's tree.
    try:
        verify_inclusion(
            hasher, inc.index, inc.batch_size, computed_leaf, list(inc.siblings), batch.root
        )
    except AnchorlineError as exc:
        checks.append(Check("inclusion", False, exc.message))
    else:
        checks.append(
            Check("inclusion", True, f"{len(inc.siblings)} siblings lead to {batch.root.hex()}")
        )

    # 6. The gateway signed this batch record.
    gateway, detail = _verify_identity(trust, batch.certificate_pem, batch.msp_id, gateway_msp, at)
    checks.append(Check("gateway-certificate", gateway is not None, detail))
    try:
        batch_ok = _verify_sig(batch.certificate_pem, batch.signing_bytes(), batch.signature)
    except AnchorlineError as exc:
        checks.append(Check("batch-signature", False, exc.message))
    else:
        checks.append(
            Check(
                "batch-signature",
                batch_ok,
                "the gateway's signature over the batch record verifies"
                if batch_ok
                else "the batch record's signature does not verify with the gateway's key",
            )
        )

    # 7. The proof says where the root was anchored (the ledger check confirms it).
    a = proof.anchor
    if a is None:
        checks.append(Check("anchor-record", False, f"not anchored yet (status {proof.status})"))
    elif a.block_number is None:
        checks.append(
            Check("anchor-record", False, f"transaction {a.tx_id} not yet committed in a block")
        )
    else:
        checks.append(
            Check(
                "anchor-record",
                True,
                f"tx {a.tx_id} in block {a.block_number} of {a.fabric_channel} ({a.chaincode})",
            )
        )
    return Verdict(tuple(checks), sender=sender, gateway=gateway)
