"""Golden vectors: the RFC 6962 reference trees and transparency-dev's proof probes.

Leaf inputs and roots: the certificate-transparency reference test data, as
published in https://github.com/transparency-dev/merkle/blob/417fb0c314750d94e53942e9f92e79b6d35915db/testonly/constants.go
(LeafInputs, NodeHashes, RootHashes; Apache-2.0, Google LLC).
Proof probes: tests/unit/merkle/vectors/ (see its README for source and licence).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.merkle import (
    RFC6962_SHA256,
    CompactRange,
    MerkleError,
    consistency_proof,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)
from gateway.merkle import reference as ref

H = RFC6962_SHA256
VECTORS = Path(__file__).parent / "vectors"

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAF_HASHES = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
# RootHashes()[n] is the root of the tree of the first n leaf inputs.
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# NodeHashes()[1] and [2]: the perfect subtrees of two and four leaves.
LEVEL1 = [
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
]
LEVEL2 = [
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def _leaf_hashes() -> list[bytes]:
    return [H.hash_leaf(d) for d in LEAF_INPUTS]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root(H, []).hex() == ROOTS[0]
    assert CompactRange(H).root().hex() == ROOTS[0]
    assert ref.mth_of_entries(H, []).hex() == ROOTS[0]


def test_leaf_hashes_use_the_zero_prefix() -> None:
    assert [h.hex() for h in _leaf_hashes()] == LEAF_HASHES


@pytest.mark.parametrize("n", range(len(ROOTS)))
def test_roots_of_every_prefix(n: int) -> None:
    leaves = _leaf_hashes()[:n]
    assert root(H, leaves).hex() == ROOTS[n]
    assert ref.mth_of_entries(H, LEAF_INPUTS[:n]).hex() == ROOTS[n]
    cr = CompactRange(H)
    cr.extend(leaves)
    assert cr.root().hex() == ROOTS[n]


def test_interior_nodes_use_the_one_prefix() -> None:
    leaves = _leaf_hashes()
    level1 = [H.hash_children(leaves[i], leaves[i + 1]).hex() for i in range(0, 8, 2)]
    assert level1 == LEVEL1
    level2 = [
        H.hash_children(bytes.fromhex(LEVEL1[i]), bytes.fromhex(LEVEL1[i + 1])).hex()
        for i in (0, 2)
    ]
    assert level2 == LEVEL2


def test_generated_proofs_verify_against_golden_roots() -> None:
    leaves = _leaf_hashes()
    for n in range(1, 9):
        golden = bytes.fromhex(ROOTS[n])
        for i in range(n):
            verify_inclusion(H, i, n, leaves[i], inclusion_proof(H, i, n, leaves), golden)
        for m in range(1, n + 1):
            proof = consistency_proof(H, m, n, leaves)
            verify_consistency(H, m, n, proof, bytes.fromhex(ROOTS[m]), golden)


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _probes(kind: str) -> list[dict[str, Any]]:
    doc = json.loads((VECTORS / f"transparency-dev-{kind}.json").read_text())
    probes: list[dict[str, Any]] = doc["probes"]
    return probes


INCLUSION = _probes("inclusion")
CONSISTENCY = _probes("consistency")


def test_vector_files_hold_both_outcomes() -> None:
    # Guards against an emptied or truncated vector file making the probes vacuous.
    for probes in (INCLUSION, CONSISTENCY):
        assert len(probes) >= 90
        assert sum(not p["wantErr"] for p in probes) >= 5
        assert sum(p["wantErr"] for p in probes) >= 80


@pytest.mark.parametrize("probe", INCLUSION, ids=[p["source"] for p in INCLUSION])
def test_inclusion_probe(probe: dict[str, Any]) -> None:
    args = (
        probe["leafIdx"],
        probe["treeSize"],
        _b64(probe["leafHash"]),
        [_b64(p) for p in probe["proof"] or []],
        _b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(MerkleError):
            verify_inclusion(H, *args)
        assert not ref.verify_inclusion(H, *args)
    else:
        verify_inclusion(H, *args)
        assert ref.verify_inclusion(H, *args)


@pytest.mark.parametrize("probe", CONSISTENCY, ids=[p["source"] for p in CONSISTENCY])
def test_consistency_probe(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        [_b64(p) for p in probe["proof"] or []],
        _b64(probe["root1"]),
        _b64(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(MerkleError):
            verify_consistency(H, *args)
        assert not ref.verify_consistency(H, *args)
    else:
        verify_consistency(H, *args)
        assert ref.verify_consistency(H, *args)


def test_happy_probes_match_generated_proofs() -> None:
    # The published happy paths over the reference leaves are exactly what our
    # generator emits for those trees.
    leaves = _leaf_hashes()
    checked = 0
    for probe in INCLUSION:
        n, i = probe["treeSize"], probe["leafIdx"]
        if probe["wantErr"] or not 0 <= i < n <= 8 or _b64(probe["leafHash"]) != leaves[i]:
            continue
        assert _b64(probe["root"]) == bytes.fromhex(ROOTS[n])
        assert inclusion_proof(H, i, n, leaves) == [_b64(p) for p in probe["proof"] or []]
        checked += 1
    for probe in CONSISTENCY:
        m, n = probe["size1"], probe["size2"]
        if probe["wantErr"] or _b64(probe["root2"]) != bytes.fromhex(ROOTS[n]):
            continue
        assert consistency_proof(H, m, n, leaves) == [_b64(p) for p in probe["proof"] or []]
        checked += 1
    assert checked >= 8
