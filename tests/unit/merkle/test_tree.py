"""Fast trees and proof generation against the literal RFC reference, and error paths."""

from __future__ import annotations

import hashlib

import pytest

from gateway.merkle import (
    RFC6962_SHA256,
    AsyncLeafSource,
    CompactRange,
    HashSizeError,
    IndexOutOfRange,
    InvalidTreeSizes,
    LeafSource,
    MerkleTree,
    ProofSizeError,
    RFC6962Hasher,
    RootMismatchError,
    consistency_proof,
    inclusion_proof,
    range_root,
    root,
    root_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)
from gateway.merkle import reference as ref
from gateway.merkle.errors import CompactRangeError, LeafSourceError

H = RFC6962_SHA256


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [H.hash_leaf(salt + i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", range(0, 70))
def test_root_compact_range_and_tree_match_reference(n: int) -> None:
    ls = leaves(n)
    want = ref.mth(H, ls)
    assert root(H, ls) == want
    cr = CompactRange(H)
    for i, leaf in enumerate(ls):
        cr.append(leaf)
        # The root is right at every intermediate size, and memory stays at popcount(size).
        assert cr.root() == ref.mth(H, ls[: i + 1])
        assert len(cr.nodes) == (i + 1).bit_count()
    assert cr.size == n
    if n:
        tree = MerkleTree(H, ls)
        assert tree.root() == want
        assert all(tree.root(m) == ref.mth(H, ls[:m]) for m in range(n + 1))


@pytest.mark.parametrize("n", range(1, 40))
def test_every_inclusion_proof_matches_reference_from_every_source(n: int) -> None:
    ls = leaves(n)
    tree = MerkleTree(H, ls)
    cache: dict[tuple[int, int], bytes] = {}
    fetched = LeafSource(H, lambda s, e: ls[s:e], cache=cache, chunk=2)
    for i in range(n):
        want = ref.path(H, i, ls)
        assert inclusion_proof(H, i, n, ls) == want
        assert inclusion_proof(H, i, n, tree) == want
        assert inclusion_proof(H, i, n, fetched) == want
        assert inclusion_proof(H, i, n, lambda s, e: ls[s:e]) == want


@pytest.mark.parametrize("n", range(1, 34))
def test_every_consistency_proof_matches_reference(n: int) -> None:
    ls = leaves(n)
    tree = MerkleTree(H, ls)
    fetched = LeafSource(H, lambda s, e: ls[s:e], cache={}, chunk=4)
    for m in range(1, n + 1):
        want = ref.proof(H, m, ls)
        assert consistency_proof(H, m, n, ls) == want
        assert consistency_proof(H, m, n, tree) == want
        assert consistency_proof(H, m, n, fetched) == want


def test_proofs_on_a_prefix_of_a_longer_log() -> None:
    # A channel log keeps growing: proofs for an older size ignore later leaves.
    ls = leaves(100)
    for size in (1, 7, 64, 65, 99):
        for i in (0, size // 2, size - 1):
            assert inclusion_proof(H, i, size, ls) == ref.path(H, i, ls[:size])
        old = min(3, size)
        assert consistency_proof(H, old, size, ls) == ref.proof(H, old, ls[:size])


def test_range_root() -> None:
    ls = leaves(50)
    tree = MerkleTree(H, ls)
    for start, end in [(0, 0), (0, 50), (3, 17), (16, 32), (5, 6), (49, 50)]:
        want = ref.mth(H, ls[start:end])
        assert range_root(H, start, end, ls) == want
        assert tree.range_root(start, end) == want


def test_fetcher_is_asked_in_bounded_chunks_and_cache_is_reused() -> None:
    ls = leaves(1000)
    asked: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> list[bytes]:
        asked.append((start, end))
        return ls[start:end]

    cache: dict[tuple[int, int], bytes] = {}
    source = LeafSource(H, fetch, cache=cache, chunk=64)
    proof = inclusion_proof(H, 500, 1000, source)
    assert proof == ref.path(H, 500, ls)
    assert asked and max(e - s for s, e in asked) <= 64
    first_round = len(asked)
    # Perfect subtrees are cached: a second proof in the same half fetches far less.
    assert inclusion_proof(H, 501, 1000, source) == ref.path(H, 501, ls)
    assert len(asked) - first_round < first_round


def test_short_fetcher_is_an_error_not_a_wrong_proof() -> None:
    ls = leaves(10)
    with pytest.raises(LeafSourceError):
        inclusion_proof(H, 0, 20, lambda s, e: ls[s:e])
    with pytest.raises(InvalidTreeSizes):
        inclusion_proof(H, 0, 20, ls)


def test_generation_rejects_bad_indexes_and_sizes() -> None:
    ls = leaves(8)
    with pytest.raises(IndexOutOfRange):
        inclusion_proof(H, 8, 8, ls)
    with pytest.raises(IndexOutOfRange):
        inclusion_proof(H, -1, 8, ls)
    with pytest.raises(InvalidTreeSizes):
        consistency_proof(H, 0, 8, ls)
    with pytest.raises(InvalidTreeSizes):
        consistency_proof(H, 5, 4, ls)
    assert consistency_proof(H, 8, 8, ls) == []


def test_compact_range_restore_round_trip_and_corruption() -> None:
    ls = leaves(77)
    cr = CompactRange(H)
    cr.extend(ls[:45])
    resumed = CompactRange.restore(H, cr.size, cr.nodes)
    resumed.extend(ls[45:])
    assert resumed.root() == root(H, ls)
    assert cr.copy().root() == root(H, ls[:45])
    with pytest.raises(CompactRangeError):
        CompactRange.restore(H, 45, cr.nodes[:-1])
    with pytest.raises(HashSizeError):
        CompactRange.restore(H, 1, [b"short"])
    with pytest.raises(HashSizeError):
        CompactRange(H).append(b"\x00" * 31)


@pytest.mark.parametrize("n", [0, 1, 2, 45, 64, 1000])
def test_compact_range_encode_decode(n: int) -> None:
    ls = leaves(n + 5)
    cr = CompactRange(H)
    cr.extend(ls[:n])
    blob = cr.encode()
    assert len(blob) == 8 + 32 * n.bit_count()
    back = CompactRange.decode(H, blob)
    assert (back.size, back.nodes, back.root()) == (n, cr.nodes, root(H, ls[:n]))
    back.extend(ls[n:])
    assert back.root() == root(H, ls)
    with pytest.raises(CompactRangeError):
        CompactRange.decode(H, blob + b"\x00")
    with pytest.raises(CompactRangeError):
        CompactRange.decode(H, blob[:7])


def test_verify_reports_expected_and_computed_roots() -> None:
    ls = leaves(11)
    good = root(H, ls)
    proof = inclusion_proof(H, 4, 11, ls)
    wrong = hashlib.sha256(b"other").digest()
    with pytest.raises(RootMismatchError) as info:
        verify_inclusion(H, 4, 11, ls[4], proof, wrong)
    err = info.value
    assert err.code == "AL1802"
    assert err.expected == wrong and err.computed == good and err.which == "root"
    assert good.hex() in str(err) and wrong.hex() in str(err)

    cproof = consistency_proof(H, 5, 11, ls)
    with pytest.raises(RootMismatchError) as info:
        verify_consistency(H, 5, 11, cproof, wrong, good)
    assert info.value.which == "root1"
    with pytest.raises(RootMismatchError) as info:
        verify_consistency(H, 5, 11, cproof, root(H, ls[:5]), wrong)
    assert info.value.which == "root2" and info.value.computed == good


def test_verify_rejects_wrong_proof_lengths_and_hash_sizes() -> None:
    ls = leaves(11)
    r = root(H, ls)
    proof = inclusion_proof(H, 4, 11, ls)
    with pytest.raises(ProofSizeError):
        verify_inclusion(H, 4, 11, ls[4], proof[:-1], r)
    with pytest.raises(ProofSizeError):
        verify_inclusion(H, 4, 11, ls[4], [*proof, proof[0]], r)
    with pytest.raises(HashSizeError):
        verify_inclusion(H, 4, 11, ls[4], [proof[0][:-1], *proof[1:]], r)
    with pytest.raises(HashSizeError):
        verify_inclusion(H, 4, 11, ls[4][:16], proof, r)
    with pytest.raises(IndexOutOfRange):
        verify_inclusion(H, 11, 11, ls[4], proof, r)
    with pytest.raises(ProofSizeError):
        root_from_consistency_proof(H, 3, 3, [r], r)
    with pytest.raises(ProofSizeError):
        root_from_consistency_proof(H, 3, 5, [], r)
    with pytest.raises(InvalidTreeSizes):
        root_from_consistency_proof(H, 4, 3, [], r)


def test_hasher_is_a_parameter() -> None:
    sha512 = RFC6962Hasher(hashlib.sha512, "sha512")
    ls = [sha512.hash_leaf(bytes([i])) for i in range(13)]
    r = root(sha512, ls)
    assert len(r) == 64 and r == ref.mth(sha512, ls)
    for i in range(13):
        verify_inclusion(sha512, i, 13, ls[i], inclusion_proof(sha512, i, 13, ls), r)
    assert sha512.empty_root() == hashlib.sha512(b"").digest()
    # A SHA-256 proof does not verify under another hasher.
    ls256 = leaves(13)
    with pytest.raises(HashSizeError):
        verify_inclusion(sha512, 0, 13, ls256[0], inclusion_proof(H, 0, 13, ls256), r)


async def test_async_source_matches_reference_and_bounds_fetches() -> None:
    ls = leaves(300)
    asked: list[tuple[int, int]] = []

    async def fetch(start: int, end: int) -> list[bytes]:
        asked.append((start, end))
        return ls[start:end]

    cache: dict[tuple[int, int], bytes] = {}
    source = AsyncLeafSource(H, fetch, cache=cache, chunk=16)
    for size in (1, 2, 17, 128, 300):
        assert await source.root(size) == ref.mth(H, ls[:size])
        for i in {0, size // 2, size - 1}:
            assert await source.inclusion_proof(i, size) == ref.path(H, i, ls[:size])
        for m in {1, size // 3 or 1, size}:
            assert await source.consistency_proof(m, size) == ref.proof(H, m, ls[:size])
    assert max(e - s for s, e in asked) <= 16

    async def short(start: int, end: int) -> list[bytes]:
        return ls[start : min(end, 10)]

    with pytest.raises(LeafSourceError):
        await AsyncLeafSource(H, short).inclusion_proof(0, 20)
