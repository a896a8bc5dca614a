"""Merkle tree roots: all at once, streaming, and a full tree for many proofs.

- :func:`root` hashes a list of leaf hashes level by level (the fastest way
  when the leaves are in memory already).
- :class:`CompactRange` takes leaves one at a time and keeps only the roots of
  the perfect subtrees that make up the tree so far: at most ``log2(n) + 1``
  hashes, whatever ``n``. Its nodes can be stored and restored, so a channel's
  log root follows each append in O(log n) without re-reading the log.
- :class:`MerkleTree` keeps every level of one batch, for when many proofs are
  needed from the same leaves (each proof is then O(log² n) hash lookups).

All take leaf *hashes* (``hasher.hash_leaf(data)``), never raw data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from gateway.merkle.errors import CompactRangeError, HashSizeError, InvalidTreeSizes
from gateway.merkle.hashing import Hasher

#: ``perfect_root(start, height)``: root of the ``2**height`` leaves from ``start``.
PerfectRoot = Callable[[int, int], bytes]


def _check_hash(hasher: Hasher, value: bytes, what: str) -> None:
    if len(value) != hasher.size:
        raise HashSizeError(
            f"{what} is {len(value)} bytes; a {hasher!r} hash is {hasher.size} bytes",
            got=len(value),
            want=hasher.size,
        )


def _fold_levels(hasher: Hasher, level: Sequence[bytes]) -> bytes:
    """Root of a non-empty list, one level at a time (the last odd node moves up as is)."""
    hc = hasher.hash_children
    while len(level) > 1:
        n = len(level)
        # map over two strided slices keeps the per-node cost to one C-level call.
        nxt = list(map(hc, level[0 : n - 1 : 2], level[1::2]))
        if n & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root(hasher: Hasher, leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of ``leaf_hashes`` (``hasher.empty_root()`` for none).

    Memory beyond the input is one level: about half the input's size.
    """
    if not leaf_hashes:
        return hasher.empty_root()
    return _fold_levels(hasher, leaf_hashes)


def fold_right(hasher: Hasher, nodes: Sequence[bytes]) -> bytes:
    """Root of a tree given its perfect subtrees' roots, largest (leftmost) first."""
    if not nodes:
        return hasher.empty_root()
    acc = nodes[-1]
    hc = hasher.hash_children
    for node in reversed(nodes[:-1]):
        acc = hc(node, acc)
    return acc


class CompactRange:
    """A growing tree held as the roots of its perfect subtrees (RFC 6962 shape).

    After ``n`` appends, :attr:`nodes` holds one root per set bit of ``n``,
    largest subtree first; :meth:`root` folds them right to left. Appending
    costs amortised two hashes; memory stays at ``popcount(n)`` hashes.
    """

    __slots__ = ("_hasher", "_nodes", "_size")

    def __init__(self, hasher: Hasher) -> None:
        self._hasher = hasher
        self._nodes: list[bytes] = []
        self._size = 0

    @classmethod
    def restore(cls, hasher: Hasher, size: int, nodes: Sequence[bytes]) -> CompactRange:
        """A range resumed from ``size`` and the :attr:`nodes` it had at that size.

        Raises :class:`CompactRangeError` when the number of nodes does not
        match ``size`` (one per set bit) or a node has the wrong length.
        """
        if size < 0:
            raise InvalidTreeSizes(f"tree size must be >= 0, got {size}")
        want = size.bit_count()
        if len(nodes) != want:
            raise CompactRangeError(
                f"a tree of size {size} has {want} compact-range nodes, got {len(nodes)}; "
                "the stored state is corrupt: rebuild it from the leaves",
                size=size,
                got=len(nodes),
            )
        for i, node in enumerate(nodes):
            _check_hash(hasher, node, f"compact-range node {i}")
        out = cls(hasher)
        out._nodes = list(nodes)
        out._size = size
        return out

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The perfect subtrees' roots, largest first (what :meth:`restore` takes)."""
        return tuple(self._nodes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at index :attr:`size`."""
        _check_hash(self._hasher, leaf_hash, "leaf hash")
        self._push(leaf_hash)

    def _push(self, leaf_hash: bytes) -> None:
        nodes = self._nodes
        nodes.append(leaf_hash)
        # Each trailing 1-bit of the old size is a perfect subtree of the same
        # height as the one just completed: merge them pairwise.
        n = self._size
        hc = self._hasher.hash_children
        while n & 1:
            right = nodes.pop()
            nodes[-1] = hc(nodes[-1], right)
            n >>= 1
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        size = self._hasher.size
        for leaf in leaf_hashes:
            if len(leaf) != size:
                _check_hash(self._hasher, leaf, f"leaf hash {self._size}")
            self._push(leaf)

    def root(self) -> bytes:
        """Root of the tree of the leaves appended so far."""
        return fold_right(self._hasher, self._nodes)

    def encode(self) -> bytes:
        """``size`` (8 bytes, big-endian) followed by the nodes: what :meth:`decode` reads.

        A store keeps this per channel so the log's root survives restarts
        without re-reading the log.
        """
        return self._size.to_bytes(8, "big") + b"".join(self._nodes)

    @classmethod
    def decode(cls, hasher: Hasher, data: bytes) -> CompactRange:
        """The range :meth:`encode` wrote; :class:`CompactRangeError` if it is corrupt."""
        if len(data) < 8:
            raise CompactRangeError(
                f"encoded compact range is {len(data)} bytes; at least 8 are needed"
            )
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        width = hasher.size
        if len(body) != size.bit_count() * width:
            raise CompactRangeError(
                f"encoded compact range of size {size} should hold {size.bit_count()} "
                f"hashes of {width} bytes, not {len(body)} bytes; rebuild it from the leaves",
                size=size,
            )
        nodes = [body[i : i + width] for i in range(0, len(body), width)]
        return cls.restore(hasher, size, nodes)

    def copy(self) -> CompactRange:
        """An independent range with the same leaves."""
        return CompactRange.restore(self._hasher, self._size, self._nodes)


class MerkleTree:
    """Every level of one tree, for proofs in O(log² n) without re-hashing.

    ``levels[0]`` is the leaf hashes; ``levels[h][i]`` is the root of the
    perfect subtree over leaves ``[i·2^h, (i+1)·2^h)``. Only complete subtrees
    are stored; the ragged right edge is folded when needed. Memory is about
    twice the leaves'.
    """

    __slots__ = ("_levels", "hasher")

    def __init__(self, hasher: Hasher, leaf_hashes: Sequence[bytes]) -> None:
        self.hasher = hasher
        for i, leaf in enumerate(leaf_hashes):
            if len(leaf) != hasher.size:
                _check_hash(hasher, leaf, f"leaf hash {i}")
        levels: list[list[bytes]] = [list(leaf_hashes)]
        hc = hasher.hash_children
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(list(map(hc, below[0 : len(below) - 1 : 2], below[1::2])))
        self._levels = levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    @property
    def leaves(self) -> Sequence[bytes]:
        return self._levels[0]

    def perfect_root(self, start: int, height: int) -> bytes:
        """Root of the perfect subtree of ``2**height`` leaves starting at ``start``."""
        if start % (1 << height) == 0:
            return self._levels[height][start >> height]
        # Not aligned: not a node of this tree, but still a well-defined root.
        return root(self.hasher, self._levels[0][start : start + (1 << height)])

    def range_root(self, start: int, end: int) -> bytes:
        """Root of the tree over leaves ``[start, end)`` (as if they were a tree alone)."""
        return fold_right(self.hasher, list(perfect_pieces(start, end, self.perfect_root)))

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (all of them by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise InvalidTreeSizes(f"size {size} is outside this tree of {self.size} leaves")
        return self.range_root(0, size)


def perfect_pieces(start: int, end: int, perfect_root: PerfectRoot) -> Iterable[bytes]:
    """Roots of the perfect subtrees that make up ``[start, end)``, largest first.

    RFC 6962 splits ``n`` leaves at the largest power of two below ``n``, so a
    range's tree is its perfect pieces by the set bits of its length, folded
    right to left.
    """
    pos = start
    length = end - start
    for height in range(length.bit_length() - 1, -1, -1):
        if length >> height & 1:
            yield perfect_root(pos, height)
            pos += 1 << height
