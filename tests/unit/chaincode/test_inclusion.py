"""RFC 6962 inclusion verification against published vectors.

Vectors: the leaves, roots (tree sizes 1-8) and inclusion proofs of
transparency-dev/merkle, ``proof/verify_test.go`` (variables ``leaves``,
``roots``, ``inclusionProofs``; leaf numbers there are 1-based), the data set
the Certificate Transparency implementations share. The corruption cases
follow that file's ``corruptInclusionProof``.
"""

from __future__ import annotations

import pytest

from chaincode.contracts.inclusion import ProofError, root_from_inclusion_proof
from tests.unit.chaincode.ccmerkle import leaf_hash, mth, path

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
# (0-based leaf index, tree size, proof)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def _holds(index, size, leaf, proof, root):
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) == root
    except ProofError:
        return False


def test_the_reference_tree_reproduces_the_published_roots():
    for n in range(1, 9):
        assert mth(LEAVES[:n]) == ROOTS[n - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_published_inclusion_proofs_verify(index, size, proof):
    hashes = [bytes.fromhex(h) for h in proof]
    leaf = leaf_hash(LEAVES[index])
    assert root_from_inclusion_proof(index, size, leaf, hashes) == ROOTS[size - 1]
    assert path(index, LEAVES[:size]) == hashes


def _corruptions(index, size, proof, root, leaf):
    yield index - 1, size, leaf, proof, root
    yield index + 1, size, leaf, proof, root
    yield index ^ 2, size, leaf, proof, root
    yield index, size * 2, leaf, proof, root
    yield index, size // 2, leaf, proof, root
    yield index, size, b"WrongLeaf", proof, root
    yield index, size, leaf, proof, EMPTY_ROOT
    yield index, size, leaf, proof, SOME_HASH
    yield index, size, leaf, [*proof, b""], root
    yield index, size, leaf, [*proof, root], root
    yield index, size, leaf, [b"", *proof], root
    yield index, size, leaf, [root, *proof], root
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        yield index, size, leaf, wrong, root
    if proof:
        yield index, size, leaf, proof[:-1], root
    if len(proof) > 1:
        yield index, size, leaf, [SOME_HASH, proof[0], *proof[1:]], root


@pytest.mark.parametrize(("index", "size", "proof"), [p for p in INCLUSION if p[1] > 1])
def test_corrupted_published_proofs_fail(index, size, proof):
    hashes = [bytes.fromhex(h) for h in proof]
    root, leaf = ROOTS[size - 1], leaf_hash(LEAVES[index])
    cases = list(_corruptions(index, size, hashes, root, leaf))
    assert len(cases) == 12 + len(hashes) + 1 + (len(hashes) > 1)
    for case in cases:
        assert not _holds(*case), case


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_degenerate_sizes_never_verify(index, size):
    assert not _holds(index, size, SOME_HASH, [], EMPTY_ROOT)


def test_every_leaf_of_trees_up_to_33_leaves_verifies_and_no_other_index_does():
    leaves = [i.to_bytes(2, "big") for i in range(33)]
    for size in range(1, 34):
        root = mth(leaves[:size])
        for index in range(size):
            proof = path(index, leaves[:size])
            leaf = leaf_hash(leaves[index])
            assert root_from_inclusion_proof(index, size, leaf, proof) == root
            for other in range(size):
                if other != index:
                    assert not _holds(other, size, leaf, proof, root)


def test_proof_errors_say_why():
    with pytest.raises(ProofError, match="outside a tree of 8 leaves"):
        root_from_inclusion_proof(8, 8, SOME_HASH, [])
    with pytest.raises(ProofError, match="32 bytes"):
        root_from_inclusion_proof(0, 2, SOME_HASH, [b"x"])
    with pytest.raises(ProofError, match="longer"):
        root_from_inclusion_proof(0, 1, SOME_HASH, [SOME_HASH])
    with pytest.raises(ProofError, match="shorter"):
        root_from_inclusion_proof(0, 8, SOME_HASH, [SOME_HASH])
