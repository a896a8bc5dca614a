"""Inclusion and consistency proof verification (RFC 9162 §2.1.3.2, §2.1.4.2).

Each ``verify_*`` returns ``None`` when the proof holds and raises otherwise:

- :class:`~gateway.merkle.errors.RootMismatchError` (AL1802) with the
  expected and the computed root when the hashes do not lead to the root,
- :class:`~gateway.merkle.errors.ProofSizeError` (AL1803) when the proof has
  the wrong number of hashes for its index and sizes,
- a :class:`~gateway.merkle.errors.MerkleInputError` (AL1804–AL1807) when the
  index, sizes or hash lengths cannot describe a proof.

The implementation splits a proof into its "inner" part (siblings below the
point where the leaf's path meets the tree's right border) and its "border"
part (left siblings along the right border), so the expected proof length is
known before any hashing. :mod:`gateway.merkle.reference` holds the RFC's own
step-by-step algorithm; tests check the two against each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.merkle.errors import (
    HashSizeError,
    IndexOutOfRange,
    InvalidTreeSizes,
    ProofSizeError,
    RootMismatchError,
)
from gateway.merkle.hashing import Hasher


def _check_hashes(hasher: Hasher, proof: Sequence[bytes]) -> None:
    size = hasher.size
    for i, node in enumerate(proof):
        if len(node) != size:
            raise HashSizeError(
                f"proof hash {i} is {len(node)} bytes; a {hasher!r} hash is {size} bytes",
                position=i,
                got=len(node),
                want=size,
            )


def _decompose(index: int, size: int) -> tuple[int, int]:
    """(inner, border): proof lengths below and along the right border for ``index``."""
    # The paths of `index` and of the last leaf part at the height of the
    # highest differing bit; above it, only the border's left siblings remain.
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(hasher: Hasher, seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    hc = hasher.hash_children
    for i, node in enumerate(proof):
        seed = hc(node, seed) if (index >> i) & 1 else hc(seed, node)
    return seed


def _chain_inner_right(hasher: Hasher, seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Only left siblings belong to the older, smaller tree.
    hc = hasher.hash_children
    for i, node in enumerate(proof):
        if (index >> i) & 1:
            seed = hc(node, seed)
    return seed


def _chain_border_right(hasher: Hasher, seed: bytes, proof: Sequence[bytes]) -> bytes:
    hc = hasher.hash_children
    for node in proof:
        seed = hc(node, seed)
    return seed


def _match(which: str, computed: bytes, expected: bytes) -> None:
    if computed != expected:
        raise RootMismatchError(which, expected=expected, computed=computed)


def root_from_inclusion_proof(
    hasher: Hasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` leads to from ``leaf_hash`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise IndexOutOfRange(
            f"leaf index {index} is not in a tree of {size} leaves", index=index, size=size
        )
    if len(leaf_hash) != hasher.size:
        raise HashSizeError(
            f"leaf hash is {len(leaf_hash)} bytes; a {hasher!r} hash is {hasher.size} bytes",
            got=len(leaf_hash),
            want=hasher.size,
        )
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofSizeError(
            f"an inclusion proof for leaf {index} of {size} has {inner + border} hashes, "
            f"this one has {len(proof)}",
            got=len(proof),
            want=inner + border,
        )
    _check_hashes(hasher, proof)
    res = _chain_inner(hasher, leaf_hash, proof[:inner], index)
    return _chain_border_right(hasher, res, proof[inner:])


def verify_inclusion(
    hasher: Hasher,
    index: int,
    size: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    root: bytes,
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``."""
    _match("root", root_from_inclusion_proof(hasher, index, size, leaf_hash, proof), root)


def root_from_consistency_proof(
    hasher: Hasher, size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """The new root ``proof`` leads to, after checking it against the old ``root1``.

    Raises :class:`RootMismatchError` (``which="root1"``) when the proof does
    not rebuild ``root1``.
    """
    if size2 < size1 or size1 < 0:
        raise InvalidTreeSizes(
            f"no consistency proof from size {size1} to the smaller size {size2}: "
            "a log never shrinks",
            size1=size1,
            size2=size2,
        )
    if size1 == 0:
        raise InvalidTreeSizes(
            "a consistency proof from the empty tree proves nothing: every tree extends it",
            size1=size1,
            size2=size2,
        )
    if size1 == size2:
        if proof:
            raise ProofSizeError(
                f"sizes are equal ({size1}) so the proof must be empty; it has {len(proof)} hashes",
                got=len(proof),
                want=0,
            )
        return root1
    if not proof:
        raise ProofSizeError(f"a consistency proof from {size1} to {size2} cannot be empty", got=0)
    _check_hashes(hasher, proof)

    inner, border = _decompose(size1 - 1, size2)
    # Below `shift`, the old tree's last perfect subtree is shared whole.
    shift = ((size1 & -size1).bit_length()) - 1
    inner -= shift
    if size1 == 1 << shift:
        # The old tree is perfect: the verifier knows its root; it is the seed.
        seed, rest = root1, proof
    else:
        seed, rest = proof[0], proof[1:]
    if len(rest) != inner + border:
        want = inner + border + (len(proof) - len(rest))
        raise ProofSizeError(
            f"a consistency proof from {size1} to {size2} has {want} hashes, "
            f"this one has {len(proof)}",
            got=len(proof),
            want=want,
        )
    mask = (size1 - 1) >> shift
    hash1 = _chain_inner_right(hasher, seed, rest[:inner], mask)
    hash1 = _chain_border_right(hasher, hash1, rest[inner:])
    _match("root1", hash1, root1)
    hash2 = _chain_inner(hasher, seed, rest[:inner], mask)
    return _chain_border_right(hasher, hash2, rest[inner:])


def verify_consistency(
    hasher: Hasher,
    size1: int,
    size2: int,
    proof: Sequence[bytes],
    root1: bytes,
    root2: bytes,
) -> None:
    """Check that the tree of ``size1``/``root1`` is a prefix of the tree of ``size2``/``root2``."""
    _match("root2", root_from_consistency_proof(hasher, size1, size2, proof, root1), root2)
