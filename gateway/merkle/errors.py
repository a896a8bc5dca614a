"""Errors of Merkle trees, proofs, checkpoints and offline proofs (codes AL18xx).

AL180x are tree and proof errors, AL182x signed notes and checkpoints, AL184x
the self-contained event proof document. A verification failure is always a
subclass of :class:`ProofVerificationError`, so a caller can catch "this proof
does not hold" apart from "this input is malformed" (:class:`MerkleInputError`).
"""

from __future__ import annotations

from gateway.errors import AnchorlineError


class MerkleError(AnchorlineError):
    """Base of the merkle package's errors."""

    code = "AL1800"
    http_status = 400


class ProofVerificationError(MerkleError):
    """A proof was well-formed enough to check, and it does not hold."""

    code = "AL1801"
    http_status = 422


class RootMismatchError(ProofVerificationError):
    """The root recomputed from a proof differs from the root it was checked against.

    ``expected`` is the root the caller trusts (from a batch record, a
    checkpoint, the ledger); ``computed`` is the root the proof leads to.
    ``which`` names the root ("root", "root1" for the old tree of a
    consistency proof, "root2" for the new one).
    """

    code = "AL1802"

    def __init__(self, which: str, expected: bytes, computed: bytes) -> None:
        super().__init__(
            f"{which} mismatch: the proof leads to {computed.hex() or '<empty>'} but "
            f"{expected.hex() or '<empty>'} was expected; the proof, the leaf or the root "
            "is wrong (do not trust this entry)",
            which=which,
            expected=expected.hex(),
            computed=computed.hex(),
        )
        self.which = which
        self.expected = expected
        self.computed = computed


class ProofSizeError(ProofVerificationError):
    """A proof has the wrong number of hashes for its index and tree size."""

    code = "AL1803"


class MerkleInputError(MerkleError):
    """An argument cannot describe a tree or a proof (sizes, indexes, hash lengths)."""

    code = "AL1804"


class IndexOutOfRange(MerkleInputError):
    """A leaf index is not below the tree size."""

    code = "AL1805"


class InvalidTreeSizes(MerkleInputError):
    """Two tree sizes that no consistency proof can relate (size2 < size1, size1 = 0…)."""

    code = "AL1806"


class HashSizeError(MerkleInputError):
    """A hash has a length other than the hasher's output size."""

    code = "AL1807"


class LeafSourceError(MerkleInputError):
    """A leaf source returned fewer or more leaf hashes than the range asked for."""

    code = "AL1808"


class CompactRangeError(MerkleInputError):
    """Stored compact-range nodes do not fit the tree size they were stored with."""

    code = "AL1809"


# -- signed notes and checkpoints (AL182x) -----------------------------------------------


class NoteFormatError(MerkleError):
    """Text that should be a C2SP signed note is not one."""

    code = "AL1820"


class CheckpointFormatError(MerkleError):
    """A signed note's text is not a C2SP tlog checkpoint."""

    code = "AL1821"


class NoteVerificationError(ProofVerificationError):
    """No trusted signature on a note verifies, or a trusted key's signature is bad."""

    code = "AL1822"


class NoteKeyError(MerkleError):
    """A note verifier key or signer is unusable (bad name, encoding or key type)."""

    code = "AL1823"


# -- the self-contained event proof (AL184x) ---------------------------------------------


class ProofDocumentError(MerkleError):
    """A proof document (JSON) is malformed: a field is missing or has the wrong type."""

    code = "AL1840"
