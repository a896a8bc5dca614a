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
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from report import Section, Table
from stats import percentile

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
    p50 = percentile(samples, 0.5)
    assert p50 is not None
    return p50 / 1000


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


def proof_times(
    tree: MerkleTree, leaves: list[bytes], r: bytes, repeat: int = 200
) -> tuple[float, ...]:
    """Median µs to generate and to verify one inclusion and one consistency proof."""
    n = tree.size
    i, m = n // 3, n // 2 + 1
    proof = inclusion_proof(H, i, n, tree)
    cproof = consistency_proof(H, m, n, tree)
    r1 = tree.root(m)
    return (
        median_us(lambda: inclusion_proof(H, i, n, tree), repeat),
        median_us(lambda: verify_inclusion(H, i, n, leaves[i], proof, r), 10 * repeat),
        median_us(lambda: consistency_proof(H, m, n, tree), repeat),
        median_us(lambda: verify_consistency(H, m, n, cproof, r1, r), 10 * repeat),
    )


COLUMNS = [
    "leaves",
    "root s",
    "stream s",
    "stream peak KiB",
    "tree s",
    "incl gen µs",
    "incl ver µs",
    "cons gen µs",
    "cons ver µs",
]


def measure(sizes: list[int], repeat: int = 1) -> list[list[float]]:
    """One row of COLUMNS per size, printed as it is measured."""
    print(f"hasher {H!r}")
    print(" ".join(f"{c:>12}" for c in COLUMNS))
    rows = []
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
        row = [n, t_root, t_stream, peak / 1024, t_tree, *proof_times(tree, leaves, r, repeat)]
        print(" ".join(f"{x:>12.3f}" if isinstance(x, float) else f"{x:>12}" for x in row))
        rows.append(row)
        del leaves, tree
    return rows


def bench(smoke: bool, progress: Callable[[str], None]) -> Section:
    sizes = [1000] if smoke else [10**4, 10**5, 10**6]
    progress(f"merkle: roots and proofs over {', '.join(map(str, sizes))} leaves")
    rows = measure(sizes, repeat=10 if smoke else 200)
    table = Table(
        "RFC 6962 SHA-256 (pure Python), one core",
        COLUMNS,
        rows,
        [
            "targets (issue 8): root over 10^6 leaves ≤ 2 s, one verification ≤ 1 ms",
            "µs figures: median (nearest-rank p50) of repeated calls; bound: this process's CPU",
        ],
    )
    return Section("Merkle trees", [table], {"columns": COLUMNS, "rows": rows})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=10**6)
    args = ap.parse_args()
    sizes = [n for n in (10**4, 10**5, 10**6) if n <= args.max]
    measure(sizes, repeat=200)
    # Generation straight from a list (no prebuilt tree) hashes every leaf once.
    n = sizes[-1]
    leaves = list(leaf_stream(n))
    t_gen, _ = timed(lambda: inclusion_proof(H, n // 3, n, leaves))
    print(f"one inclusion proof from a plain list of {n} leaves (O(n) hashing): {t_gen:.3f} s")


if __name__ == "__main__":
    main()
