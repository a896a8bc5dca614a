"""Inclusion and consistency proof generation (RFC 6962 §2.1.1–2.1.2, RFC 9162 §2.1.3–2.1.4).

Proofs are lists of hashes, ordered as RFC 9162 specifies: an inclusion proof
from the leaf's sibling up to the root's child; a consistency proof as
``SUBPROOF(m, D[n], true)``. The leaves can be given as

- a sequence of leaf hashes (a batch in memory),
- a :class:`~gateway.merkle.tree.MerkleTree` (many proofs from one batch),
- or a ``fetch(start, end) -> Sequence[bytes]`` callable returning the leaf
  hashes ``[start, end)`` of a log too large to hold (a channel's whole log
  in the store), or an awaitable one through :class:`AsyncLeafSource`.
  Leaves are then fetched at most ``chunk`` at a time, and the roots of
  perfect subtrees can be kept in a ``cache`` mapping across calls: in an
  append-only log they never change.

Generation costs O(n) hashing for a sequence or a fetcher (every leaf outside
the path is hashed once) and O(log² n) lookups for a ``MerkleTree``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence

from gateway.merkle.errors import IndexOutOfRange, InvalidTreeSizes, LeafSourceError
from gateway.merkle.hashing import Hasher
from gateway.merkle.tree import MerkleTree, PerfectRoot, fold_right, perfect_pieces, root

#: ``fetch(start, end)`` returns the leaf hashes of indexes ``[start, end)``.
LeafFetcher = Callable[[int, int], Sequence[bytes]]
#: The same for a store read with ``await`` (the gateway's async database).
AsyncLeafFetcher = Callable[[int, int], Awaitable[Sequence[bytes]]]

DEFAULT_CHUNK = 1 << 16


def _chunk_height(chunk: int) -> int:
    """log2 of the largest power of two <= ``chunk``, so chunks line up with perfect subtrees."""
    if chunk < 1:
        raise InvalidTreeSizes(f"chunk must be >= 1, got {chunk}")
    return chunk.bit_length() - 1


def _exactly(got: Sequence[bytes], start: int, end: int) -> Sequence[bytes]:
    """``got``, if the source returned every leaf of ``[start, end)``."""
    if len(got) != end - start:
        raise LeafSourceError(
            f"asked the leaf source for leaves [{start}, {end}) and got {len(got)} "
            f"instead of {end - start}; the log is shorter than the tree size asked for",
            start=start,
            end=end,
            got=len(got),
        )
    return got


class LeafSource:
    """Subtree roots over leaf hashes held in a sequence or behind a fetcher.

    ``cache`` (optional) maps ``(start, height)`` to the root of the perfect
    subtree of ``2**height`` leaves from ``start``; it is read and filled.
    Share one per log: entries stay valid as the log grows.
    """

    def __init__(
        self,
        hasher: Hasher,
        leaves: Sequence[bytes] | LeafFetcher,
        *,
        cache: MutableMapping[tuple[int, int], bytes] | None = None,
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        self.hasher = hasher
        self._leaves = leaves
        self._cache = cache
        self._chunk_height = _chunk_height(chunk)

    def available(self) -> int | None:
        """How many leaves the source holds, when it can tell (a sequence can)."""
        return None if callable(self._leaves) else len(self._leaves)

    def _fetch(self, start: int, end: int) -> Sequence[bytes]:
        leaves = self._leaves
        got = leaves(start, end) if callable(leaves) else leaves[start:end]
        return _exactly(got, start, end)

    def perfect_root(self, start: int, height: int) -> bytes:
        """Root of the perfect subtree of ``2**height`` leaves from ``start``."""
        cache = self._cache
        if cache is not None:
            hit = cache.get((start, height))
            if hit is not None:
                return hit
        if height <= self._chunk_height:
            value = root(self.hasher, self._fetch(start, start + (1 << height)))
        else:
            half = 1 << (height - 1)
            value = self.hasher.hash_children(
                self.perfect_root(start, height - 1), self.perfect_root(start + half, height - 1)
            )
        if cache is not None:
            cache[(start, height)] = value
        return value


#: Anything proofs can be generated from.
Leaves = Sequence[bytes] | LeafFetcher | MerkleTree | LeafSource


def _perfect_root_of(hasher: Hasher, leaves: Leaves) -> tuple[PerfectRoot, int | None]:
    if isinstance(leaves, MerkleTree):
        return leaves.perfect_root, leaves.size
    source = leaves if isinstance(leaves, LeafSource) else LeafSource(hasher, leaves)
    return source.perfect_root, source.available()


def _range_root(perfect_root: PerfectRoot, hasher: Hasher, start: int, end: int) -> bytes:
    return fold_right(hasher, list(perfect_pieces(start, end, perfect_root)))


def _split(n: int) -> tuple[int, int]:
    """The largest power of two strictly below ``n`` (n > 1), and its log2."""
    height = (n - 1).bit_length() - 1
    return 1 << height, height


def _check_available(available: int | None, size: int) -> None:
    if available is not None and size > available:
        raise InvalidTreeSizes(
            f"tree size {size} is larger than the {available} leaves given",
            size=size,
            available=available,
        )


def inclusion_plan(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose roots make ``PATH(index, D[0:size])``, in order.

    Planning needs no hashes, so a caller can fetch what the ranges need
    (synchronously or not) before hashing anything.
    """
    if not 0 <= index < size:
        raise IndexOutOfRange(
            f"leaf index {index} is not in a tree of {size} leaves", index=index, size=size
        )
    top_down: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k, _ = _split(end - start)
        if m < k:
            top_down.append((start + k, end))
            end = start + k
        else:
            top_down.append((start, start + k))
            m -= k
            start += k
    top_down.reverse()
    return top_down


def consistency_plan(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make ``PROOF(size1, D[0:size2])``, in order."""
    if size1 < 1 or size2 < size1:
        raise InvalidTreeSizes(
            f"no consistency proof from size {size1} to size {size2}: it needs "
            "0 < size1 <= size2 (every tree extends the empty one; a log never shrinks)",
            size1=size1,
            size2=size2,
        )
    if size1 == size2:
        return []
    top_down: list[tuple[int, int]] = []
    start, end, m, whole_old_tree = 0, size2, size1, True
    while m != end - start:
        k, _ = _split(end - start)
        if m <= k:
            top_down.append((start + k, end))
            end = start + k
        else:
            top_down.append((start, start + k))
            m -= k
            start += k
            whole_old_tree = False
    if not whole_old_tree:
        # The old tree's rightmost subtree is not one the verifier knows: send its root.
        top_down.append((start, end))
    top_down.reverse()
    return top_down


def inclusion_path(hasher: Hasher, index: int, size: int, perfect_root: PerfectRoot) -> list[bytes]:
    """``PATH(index, D[0:size])`` over any source of perfect-subtree roots."""
    return [_range_root(perfect_root, hasher, s, e) for s, e in inclusion_plan(index, size)]


def consistency_path(
    hasher: Hasher, size1: int, size2: int, perfect_root: PerfectRoot
) -> list[bytes]:
    """``PROOF(size1, D[0:size2])`` = ``SUBPROOF(size1, D[0:size2], true)``."""
    return [_range_root(perfect_root, hasher, s, e) for s, e in consistency_plan(size1, size2)]


def inclusion_proof(hasher: Hasher, index: int, size: int, leaves: Leaves) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
    perfect_root, available = _perfect_root_of(hasher, leaves)
    _check_available(available, size)
    return inclusion_path(hasher, index, size, perfect_root)


def consistency_proof(hasher: Hasher, size1: int, size2: int, leaves: Leaves) -> list[bytes]:
    """Proof that the tree of the first ``size1`` leaves is a prefix of that of ``size2``."""
    perfect_root, available = _perfect_root_of(hasher, leaves)
    _check_available(available, size2)
    return consistency_path(hasher, size1, size2, perfect_root)


def range_root(hasher: Hasher, start: int, end: int, leaves: Leaves) -> bytes:
    """Root of the tree over leaves ``[start, end)`` only."""
    if not 0 <= start <= end:
        raise InvalidTreeSizes(f"bad leaf range [{start}, {end})")
    perfect_root, available = _perfect_root_of(hasher, leaves)
    _check_available(available, end)
    return _range_root(perfect_root, hasher, start, end)


class AsyncLeafSource:
    """:class:`LeafSource` for a fetcher that must be awaited (an async store).

    Proofs are planned first (:func:`inclusion_plan`, :func:`consistency_plan`),
    then each needed perfect subtree is fetched and hashed. Hashing runs on
    the caller's event loop between fetches, at most ``chunk`` leaves at a
    time (about 35 ms for 65,536 leaves); a shared ``cache`` makes repeated
    proofs over an append-only log cheap.
    """

    def __init__(
        self,
        hasher: Hasher,
        fetch: AsyncLeafFetcher,
        *,
        cache: MutableMapping[tuple[int, int], bytes] | None = None,
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        self.hasher = hasher
        self._fetch_fn = fetch
        self._cache = cache
        self._chunk_height = _chunk_height(chunk)

    async def _fetch(self, start: int, end: int) -> Sequence[bytes]:
        got = await self._fetch_fn(start, end)
        return _exactly(got, start, end)

    async def perfect_root(self, start: int, height: int) -> bytes:
        """Root of the perfect subtree of ``2**height`` leaves from ``start``."""
        cache = self._cache
        if cache is not None:
            hit = cache.get((start, height))
            if hit is not None:
                return hit
        if height <= self._chunk_height:
            value = root(self.hasher, await self._fetch(start, start + (1 << height)))
        else:
            half = 1 << (height - 1)
            left = await self.perfect_root(start, height - 1)
            right = await self.perfect_root(start + half, height - 1)
            value = self.hasher.hash_children(left, right)
        if cache is not None:
            cache[(start, height)] = value
        return value

    async def range_root(self, start: int, end: int) -> bytes:
        """Root of the tree over leaves ``[start, end)`` only."""
        if not 0 <= start <= end:
            raise InvalidTreeSizes(f"bad leaf range [{start}, {end})")
        pieces: list[bytes] = []
        pos, length = start, end - start
        for height in range(length.bit_length() - 1, -1, -1):
            if length >> height & 1:
                pieces.append(await self.perfect_root(pos, height))
                pos += 1 << height
        return fold_right(self.hasher, pieces)

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
        return [await self.range_root(s, e) for s, e in inclusion_plan(index, size)]

    async def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Consistency proof between the trees of the first ``size1`` and ``size2`` leaves."""
        return [await self.range_root(s, e) for s, e in consistency_plan(size1, size2)]

    async def root(self, size: int) -> bytes:
        """Root of the tree of the first ``size`` leaves."""
        return await self.range_root(0, size)
