"""The slow, obviously correct reference: RFC 6962 §2.1 and RFC 9162 §2.1 as written.

Nothing in the gateway calls this module. Tests compare every fast function
against it (:mod:`gateway.merkle.tree`, :mod:`gateway.merkle.proofs`,
:mod:`gateway.merkle.verify`), so the fast code may be clever and this one
must stay literal: recursion on list slices for ``MTH``, ``PATH`` and
``PROOF``/``SUBPROOF`` (RFC 6962 §2.1, §2.1.1, §2.1.2), and the step-by-step
verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, which return a
bool instead of raising.

The RFC defines the tree over data entries; these functions take *leaf
hashes* (``MTH({d}) = hash_leaf(d)``) so they can be compared with the fast
ones. :func:`mth_of_entries` starts from the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.merkle.hashing import Hasher


def _k(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hasher: Hasher, leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hasher.empty_root()
    if n == 1:
        return leaves[0]
    k = _k(n)
    return hasher.hash_children(mth(hasher, leaves[:k]), mth(hasher, leaves[k:]))


def mth_of_entries(hasher: Hasher, entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over data entries, exactly as RFC 6962 §2.1 defines it."""
    n = len(entries)
    if n == 0:
        return hasher.empty_root()
    if n == 1:
        return hasher.hash_leaf(entries[0])
    k = _k(n)
    return hasher.hash_children(
        mth_of_entries(hasher, entries[:k]), mth_of_entries(hasher, entries[k:])
    )


def path(hasher: Hasher, m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``m``."""
    n = len(leaves)
    if not 0 <= m < n:
        raise ValueError(f"leaf {m} not in a tree of {n}")
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(hasher, m, leaves[:k]), mth(hasher, leaves[k:])]
    return [*path(hasher, m - k, leaves[k:]), mth(hasher, leaves[:k])]


def subproof(hasher: Hasher, m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(hasher, leaves)]
    k = _k(n)
    if m <= k:
        return [*subproof(hasher, m, leaves[:k], b), mth(hasher, leaves[k:])]
    return [*subproof(hasher, m - k, leaves[k:], False), mth(hasher, leaves[:k])]


def proof(hasher: Hasher, m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m <= n."""
    if not 0 < m <= len(leaves):
        raise ValueError(f"no consistency proof from {m} to {len(leaves)}")
    return subproof(hasher, m, leaves, True)


def verify_inclusion(
    hasher: Hasher,
    leaf_index: int,
    tree_size: int,
    leaf_hash: bytes,
    inclusion_path: Sequence[bytes],
    root_hash: bytes,
) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    # The RFC takes `hash` to be a hash value; say no to anything else.
    if len(leaf_hash) != hasher.size:
        return False
    # 1.
    if leaf_index >= tree_size or leaf_index < 0:
        return False
    # 2.
    fn, sn = leaf_index, tree_size - 1
    # 3.
    r = leaf_hash
    # 4.
    for p in inclusion_path:
        # a.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            r = hasher.hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hasher.hash_children(r, p)
        # c.
        fn >>= 1
        sn >>= 1
    # 5.
    return sn == 0 and r == root_hash


def verify_consistency(
    hasher: Hasher,
    first: int,
    second: int,
    consistency_path: Sequence[bytes],
    first_hash: bytes,
    second_hash: bytes,
) -> bool:
    """RFC 9162 §2.1.4.2, step by step, for 0 < first < second.

    The RFC's algorithm starts once both sizes are known to differ; equal
    sizes hold with an empty proof and equal roots, as RFC 9162 §2.1.4.2's
    preamble says.
    """
    if first == second:
        return not consistency_path and first_hash == second_hash and first > 0
    if not 0 < first < second:
        return False
    # 1.
    if not consistency_path:
        return False
    path_ = list(consistency_path)
    # 2.
    if first & (first - 1) == 0:
        path_.insert(0, first_hash)
    # 3.
    fn, sn = first - 1, second - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path_[0]
    # 6.
    for c in path_[1:]:
        # a.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            fr = hasher.hash_children(c, fr)
            sr = hasher.hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hasher.hash_children(sr, c)
        # c.
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == first_hash and sr == second_hash and sn == 0
