"""Property tests: every proof verifies, and any single tampering makes it fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.merkle import (
    RFC6962_SHA256,
    MerkleError,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)
from gateway.merkle import reference as ref

H = RFC6962_SHA256


def _leaves(n: int, salt: int) -> list[bytes]:
    return [H.hash_leaf(salt.to_bytes(4, "big") + i.to_bytes(4, "big")) for i in range(n)]


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _holds(fn: object, *args: object) -> bool:
    try:
        fn(*args)  # type: ignore[operator]
    except MerkleError:
        return False
    return True


trees = st.tuples(st.integers(1, 300), st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(trees)
def test_every_leaf_proof_verifies(tree: tuple[int, int]) -> None:
    n, salt = tree
    ls = _leaves(n, salt)
    t = MerkleTree(H, ls)
    r = t.root()
    for i in range(n):
        proof = inclusion_proof(H, i, n, t)
        verify_inclusion(H, i, n, ls[i], proof, r)
        assert ref.verify_inclusion(H, i, n, ls[i], proof, r)


@settings(max_examples=300, deadline=None)
@given(trees, st.data())
def test_tampered_inclusion_fails(tree: tuple[int, int], data: st.DataObject) -> None:
    n, salt = tree
    ls = _leaves(n, salt)
    r = root(H, ls)
    i = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(H, i, n, ls)
    assert _holds(verify_inclusion, H, i, n, ls[i], proof, r)

    bit = data.draw(st.integers(0, 255), label="bit")
    # A different leaf (a flipped bit, or another leaf of the same tree).
    assert not _holds(verify_inclusion, H, i, n, _flip(ls[i], bit), proof, r)
    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="other")
        assert not _holds(verify_inclusion, H, i, n, ls[other], proof, r)
        # The proof of one index is not the proof of another.
        assert not _holds(verify_inclusion, H, other, n, ls[i], proof, r)
    # The proof claimed for another tree size, against that tree's true root.
    # (RFC 6962 proofs bind the size through the root: with the *same* root,
    # sizes whose paths have the same shape verify alike, by design.)
    size = data.draw(st.integers(i + 1, 2 * n + 2).filter(lambda s: s != n), label="size")
    longer = _leaves(size, salt) if size > n else ls
    assert not _holds(verify_inclusion, H, i, size, ls[i], proof, root(H, longer[:size]))
    # Any sibling flipped, dropped or added.
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="sibling")
        bad = [*proof]
        bad[k] = _flip(bad[k], bit)
        assert not _holds(verify_inclusion, H, i, n, ls[i], bad, r)
        assert not _holds(verify_inclusion, H, i, n, ls[i], proof[:k] + proof[k + 1 :], r)
    assert not _holds(verify_inclusion, H, i, n, ls[i], [*proof, ls[0]], r)
    # A different root.
    assert not _holds(verify_inclusion, H, i, n, ls[i], proof, _flip(r, bit))


N = 48


@pytest.fixture(scope="module")
def log() -> tuple[list[bytes], list[bytes]]:
    ls = _leaves(N, 7)
    return ls, [root(H, ls[:m]) for m in range(N + 1)]


def test_consistency_between_every_pair_of_sizes(log: tuple[list[bytes], list[bytes]]) -> None:
    ls, roots = log
    tree = MerkleTree(H, ls)
    for n in range(1, N + 1):
        for m in range(1, n + 1):
            proof = consistency_proof(H, m, n, tree)
            verify_consistency(H, m, n, proof, roots[m], roots[n])
            assert ref.verify_consistency(H, m, n, proof, roots[m], roots[n])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_tampered_consistency_fails(
    log: tuple[list[bytes], list[bytes]], data: st.DataObject
) -> None:
    ls, roots = log
    n = data.draw(st.integers(2, N), label="size2")
    m = data.draw(st.integers(1, n - 1), label="size1")
    proof = consistency_proof(H, m, n, ls)
    assert _holds(verify_consistency, H, m, n, proof, roots[m], roots[n])
    bit = data.draw(st.integers(0, 255), label="bit")

    k = data.draw(st.integers(0, len(proof) - 1), label="node")
    bad = [*proof]
    bad[k] = _flip(bad[k], bit)
    assert not _holds(verify_consistency, H, m, n, bad, roots[m], roots[n])
    assert not ref.verify_consistency(H, m, n, bad, roots[m], roots[n])
    assert not _holds(verify_consistency, H, m, n, proof[:k] + proof[k + 1 :], roots[m], roots[n])
    assert not _holds(verify_consistency, H, m, n, [*proof, roots[0]], roots[m], roots[n])
    assert not _holds(verify_consistency, H, m, n, proof, _flip(roots[m], bit), roots[n])
    assert not _holds(verify_consistency, H, m, n, proof, roots[m], _flip(roots[n], bit))
    # The proof claimed for other sizes, against those trees' true roots.
    m2 = data.draw(st.integers(1, n).filter(lambda s: s != m), label="other size1")
    assert not _holds(verify_consistency, H, m2, n, proof, roots[m2], roots[n])
    n2 = data.draw(st.integers(m, N).filter(lambda s: s != n), label="other size2")
    assert not _holds(verify_consistency, H, m, n2, proof, roots[m], roots[n2])
    # A log that rewrote one old leaf is not an extension of the old one.
    j = data.draw(st.integers(0, m - 1), label="rewritten leaf")
    forged = [*ls[:n]]
    forged[j] = _flip(forged[j], bit)
    forged_proof = consistency_proof(H, m, n, forged)
    assert not _holds(verify_consistency, H, m, n, forged_proof, roots[m], root(H, forged))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.data())
def test_fast_and_reference_verifiers_agree_on_arbitrary_proofs(
    n: int, m: int, data: st.DataObject
) -> None:
    # Random garbage proofs: both verifiers must reach the same verdict.
    ls = _leaves(max(n, m), 3)
    i = data.draw(st.integers(0, n - 1))
    length = data.draw(st.integers(0, 10))
    proof = [H.hash_leaf(bytes([k])) for k in range(length)]
    r = root(H, ls[:n])
    assert _holds(verify_inclusion, H, i, n, ls[i], proof, r) == ref.verify_inclusion(
        H, i, n, ls[i], proof, r
    )
    lo, hi = min(n, m), max(n, m)
    r1, r2 = root(H, ls[:lo]), root(H, ls[:hi])
    assert _holds(verify_consistency, H, lo, hi, proof, r1, r2) == ref.verify_consistency(
        H, lo, hi, proof, r1, r2
    )
