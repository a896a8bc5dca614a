"""Hashers for RFC 6962 / RFC 9162 Merkle trees.

Every function of this package takes the hasher as its first argument, so a
tree's hash function is a choice of the caller, never a global. The project
uses :data:`RFC6962_SHA256`:

- a leaf hash is ``H(0x00 || data)``,
- an interior node is ``H(0x01 || left || right)``,
- the root of the empty tree is ``H("")`` (no prefix),

with the last node of an odd level carried up unchanged, never duplicated
(RFC 6962 §2.1; RFC 9162 §2.1.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


class _HashObject(Protocol):
    def digest(self) -> bytes: ...


@runtime_checkable
class Hasher(Protocol):
    """The hash function of one kind of Merkle tree.

    ``size`` is the length in bytes of every hash it returns. Implementations
    must be deterministic and side-effect free: trees, proofs and verifiers
    call them from any thread.
    """

    @property
    def size(self) -> int: ...

    def empty_root(self) -> bytes: ...

    def hash_leaf(self, data: bytes) -> bytes: ...

    def hash_children(self, left: bytes, right: bytes) -> bytes: ...


class RFC6962Hasher:
    """RFC 6962 hashing over one hashlib constructor (SHA-256 by default)."""

    __slots__ = ("_empty", "_new", "_size", "name")

    def __init__(
        self, new: Callable[..., _HashObject] = hashlib.sha256, name: str = "sha256"
    ) -> None:
        self._new = new
        self._empty = new(b"").digest()
        self._size = len(self._empty)
        self.name = name

    @property
    def size(self) -> int:
        return self._size

    def empty_root(self) -> bytes:
        return self._empty

    def hash_leaf(self, data: bytes) -> bytes:
        return self._new(LEAF_PREFIX + data).digest()

    def hash_children(self, left: bytes, right: bytes) -> bytes:
        return self._new(NODE_PREFIX + left + right).digest()

    def __repr__(self) -> str:
        return f"RFC6962Hasher({self.name})"


#: The hasher of every Anchorline tree: RFC 6962 with SHA-256.
RFC6962_SHA256 = RFC6962Hasher()
