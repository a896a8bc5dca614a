"""Merkle benchmarks: roots, streaming memory, proof generation and verification.

Run: .venv/bin/python scripts/bench/merkle.py [--max 1000000]

Prints, for 10^4, 10^5 and 10^6 leaves: the root by levels (all leaves in
memory), the streaming root (CompactRange, leaves generated one at a time so
none are held) with its peak traced memory, the MerkleTree build, and the time
to generate and to verify one inclusion and one consistency proof (median of
many). Targets (issue 8): root over 10^6 leaves <= 2 s, one verification <= 1 ms.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator

from gateway.merkle import (
    RFC6962_SHA256,
    CompactRange,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)

H = RFC6962_SHA256


def leaf_stream(n: int) -> Iterator[bytes]:
    for i in range(n):
        yield H.hash_leaf(i.to_bytes(8, "big"))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def median_us(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1000


def streaming_peak(n: int) -> tuple[int, bytes]:
    """Peak traced memory while a CompactRange eats n generated leaves (none kept)."""
    cr = CompactRange(H)
    tracemalloc.start()
    cr.extend(leaf_stream(n))
    r = cr.root()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, r


def stream_root(leaves: list[bytes]) -> bytes:
    cr = CompactRange(H)
    cr.extend(leaves)
    return cr.root()


def proof_times(tree: MerkleTree, leaves: list[bytes], r: bytes) -> tuple[float, ...]:
    """Median µs to generate and to verify one inclusion and one consistency proof."""
    n = tree.size
    i, m = n // 3, n // 2 + 1
    proof = inclusion_proof(H, i, n, tree)
    cproof = consistency_proof(H, m, n, tree)
    r1 = tree.root(m)
    return (
        median_us(lambda: inclusion_proof(H, i, n, tree), 200),
        median_us(lambda: verify_inclusion(H, i, n, leaves[i], proof, r), 2000),
        median_us(lambda: consistency_proof(H, m, n, tree), 200),
        median_us(lambda: verify_consistency(H, m, n, cproof, r1, r), 2000),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=10**6)
    args = ap.parse_args()
    sizes = [n for n in (10**4, 10**5, 10**6) if n <= args.max]
    print(f"hasher {H!r}")
    header = (
        f"{'leaves':>9} {'root s':>8} {'stream s':>9} {'stream peak':>12} {'tree s':>7} "
        f"{'incl gen µs':>12} {'incl ver µs':>12} {'cons gen µs':>12} {'cons ver µs':>12}"
    )
    print(header)
    for n in sizes:
        leaves = list(leaf_stream(n))
        t_root, r = timed(lambda leaves=leaves: root(H, leaves))
        t_stream, r_stream = timed(lambda leaves=leaves: stream_root(leaves))
        # Traced peak of every allocation while the range grows from generated
        # leaves (none kept): the working set of the streaming path.
        peak, r_traced = streaming_peak(n)
        assert r_stream == r == r_traced
        t_tree, tree = timed(lambda leaves=leaves: MerkleTree(H, leaves))
        assert isinstance(tree, MerkleTree) and tree.root() == r
        gen_i, ver_i, gen_c, ver_c = proof_times(tree, leaves, r)
        print(
            f"{n:>9} {t_root:>8.3f} {t_stream:>9.3f} {peak / 1024:>9.1f} KiB {t_tree:>7.3f} "
            f"{gen_i:>12.1f} {ver_i:>12.1f} {gen_c:>12.1f} {ver_c:>12.1f}"
        )
        del leaves, tree
    # Generation straight from a list (no prebuilt tree) hashes every leaf once.
    n = sizes[-1]
    leaves = list(leaf_stream(n))
    t_gen, _ = timed(lambda: inclusion_proof(H, n // 3, n, leaves))
    print(f"one inclusion proof from a plain list of {n} leaves (O(n) hashing): {t_gen:.3f} s")


if __name__ == "__main__":
    main()
