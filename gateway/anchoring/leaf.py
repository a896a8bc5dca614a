"""What one Merkle leaf of a batch is: the signed event record, byte for byte.

Everything a third party needs to recompute a leaf is in the event proof
(docs/proof-format.md). Version 1:

    leaf_data = JCS({"event": {id, channel, type, payload, client_ts},
                     "seq": <channel sequence>,
                     "signer": <hex SHA-256 of the sender certificate's DER>,
                     "signature": <standard base64 of the DER ECDSA signature>,
                     "v": 1})
    leaf_hash = SHA-256(0x00 || leaf_data)

where JCS is RFC 8785 canonical JSON. The leaf binds the member's exact
signed bytes, the signature over them, who signed (certificate fingerprint)
and where the gateway put the event (its sequence), so neither the event, its
attribution nor its order can change without changing the root.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

import rfc8785

from gateway.merkle.errors import ProofDocumentError
from gateway.merkle.hashing import RFC6962_SHA256, Hasher

LEAF_VERSION: Final = 1
#: The fields of an event the member signs, in the order the docs list them.
SIGNED_FIELDS: Final = ("id", "channel", "type", "payload", "client_ts")


def _canonical(value: Any) -> bytes:
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError) as exc:
        raise ProofDocumentError(f"value cannot be canonicalised (RFC 8785): {exc}") from None


def signed_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """The five signed fields of ``record`` (extra keys are not part of the signature)."""
    missing = [f for f in SIGNED_FIELDS if f not in record]
    if missing:
        raise ProofDocumentError(f"event record lacks field(s): {', '.join(missing)}")
    return {f: record[f] for f in SIGNED_FIELDS}


def event_signing_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes the member signed: RFC 8785 canonical JSON of the five fields."""
    return _canonical(signed_body(record))


def leaf_data(record: Mapping[str, Any], *, seq: int, signer: str, signature: bytes) -> bytes:
    """Version-1 leaf bytes of a stored event (before the 0x00 leaf prefix)."""
    return _canonical(
        {
            "event": signed_body(record),
            "seq": seq,
            "signer": signer,
            "signature": base64.b64encode(signature).decode("ascii"),
            "v": LEAF_VERSION,
        }
    )


def leaf_hash(
    record: Mapping[str, Any],
    *,
    seq: int,
    signer: str,
    signature: bytes,
    hasher: Hasher = RFC6962_SHA256,
) -> bytes:
    """``hasher.hash_leaf(leaf_data(...))``: the leaf the batch's tree holds for this event."""
    return hasher.hash_leaf(leaf_data(record, seq=seq, signer=signer, signature=signature))


def leaf_data_from_canonical(canonical: bytes, *, seq: int, signer: str, signature: bytes) -> bytes:
    """:func:`leaf_data` from the event's stored RFC 8785 bytes, without re-canonicalising.

    ``canonical`` must be the RFC 8785 form of the five signed fields (what the
    gateway stores and the member signed). A canonical object nested in a
    canonical object is unchanged, and the other members (sorted: ``event``,
    ``seq``, ``signature``, ``signer``, ``v``) are ASCII needing no escapes, so
    splicing gives the same bytes as :func:`leaf_data` at a fraction of the cost
    (the unit tests check the two against each other).
    """
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ProofDocumentError(f"seq must be a non-negative integer, got {seq!r}")
    if not signer.isascii() or not signer.isalnum():
        raise ProofDocumentError("signer must be a hex fingerprint")
    return b"".join(
        (
            b'{"event":',
            canonical,
            b',"seq":',
            str(seq).encode("ascii"),
            b',"signature":"',
            base64.b64encode(signature),
            b'","signer":"',
            signer.encode("ascii"),
            b'","v":',
            str(LEAF_VERSION).encode("ascii"),
            b"}",
        )
    )


def leaf_hash_from_canonical(
    canonical: bytes,
    *,
    seq: int,
    signer: str,
    signature: bytes,
    hasher: Hasher = RFC6962_SHA256,
) -> bytes:
    """The leaf hash of a stored event, from its canonical bytes (see above)."""
    return hasher.hash_leaf(
        leaf_data_from_canonical(canonical, seq=seq, signer=signer, signature=signature)
    )
