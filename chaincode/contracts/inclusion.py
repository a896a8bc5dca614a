"""RFC 6962 / RFC 9162 inclusion proof verification, for the contracts.

Hashing: a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)``, the last node of an odd level is carried up
unchanged (never duplicated). The chaincode never sees leaf data, only leaf
hashes. :func:`root_from_inclusion_proof` follows RFC 9162 §2.1.3.2 step by
step; the chaincode cannot import the gateway's Merkle package (it runs on
peers of every org with nothing but the contract API), so this is its own copy,
tested against the same published vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class ProofError(ValueError):
    """The proof cannot describe a path for this index and tree size."""


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for leaf ``index`` of a tree of ``size`` leaves.

    Raises :class:`ProofError` when the index is outside the tree, a hash has
    the wrong length, or the proof is too short or too long for the tree.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    if len(leaf_hash) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("every hash must be 32 bytes")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"the proof is longer than a tree of {size} leaves allows")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof is shorter than a tree of {size} leaves needs")
    return r
