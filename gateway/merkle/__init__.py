"""RFC 6962 / RFC 9162 Merkle trees: hashing, roots, proofs and their verification.

Pure functions with the hasher passed in; no I/O. The project's hasher is
:data:`RFC6962_SHA256`. See :mod:`gateway.merkle.reference` for the literal
RFC algorithms the fast code is tested against.
"""

from gateway.merkle.errors import (
    HashSizeError,
    IndexOutOfRange,
    InvalidTreeSizes,
    MerkleError,
    MerkleInputError,
    ProofSizeError,
    ProofVerificationError,
    RootMismatchError,
)
from gateway.merkle.hashing import RFC6962_SHA256, Hasher, RFC6962Hasher
from gateway.merkle.proofs import (
    AsyncLeafFetcher,
    AsyncLeafSource,
    LeafFetcher,
    LeafSource,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    range_root,
)
from gateway.merkle.tree import CompactRange, MerkleTree, root
from gateway.merkle.verify import (
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "RFC6962_SHA256",
    "AsyncLeafFetcher",
    "AsyncLeafSource",
    "CompactRange",
    "HashSizeError",
    "Hasher",
    "IndexOutOfRange",
    "InvalidTreeSizes",
    "LeafFetcher",
    "LeafSource",
    "MerkleError",
    "MerkleInputError",
    "MerkleTree",
    "ProofSizeError",
    "ProofVerificationError",
    "RFC6962Hasher",
    "RootMismatchError",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "range_root",
    "root",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]
