"""What the gateway publishes for third parties: event proofs, signed checkpoints,
consistency proofs (formats in docs/proof-format.md).

:class:`Evidence` reads only the store; a proof is checked (its leaf leads to
the stored root) before it is returned, so a damaged store yields an error,
never a proof that does not verify.
"""

from __future__ import annotations

import dataclasses
from collections.abc import MutableMapping, Sequence
from typing import Any

from gateway.anchoring.checkpoint import Checkpoint, EcdsaNoteSigner, sign_checkpoint
from gateway.anchoring.errors import BadLogRange, ProofNotReady, StoreDamaged
from gateway.anchoring.outbox import FINALIZED, RECORDED, BatchStore
from gateway.anchoring.proof import Anchor, EventProof, ProvenEvent, build_event_proof
from gateway.events.errors import EventNotFound
from gateway.merkle.errors import MerkleError
from gateway.merkle.hashing import RFC6962_SHA256
from gateway.merkle.proofs import AsyncLeafSource
from gateway.merkle.tree import MerkleTree
from gateway.store.events import EventRepository

_TREE_CACHE = 8


@dataclasses.dataclass(frozen=True)
class SignedCheckpoint:
    origin: str
    size: int
    root: bytes
    note: str


class Evidence:
    """Proofs and checkpoints from the store."""

    def __init__(
        self,
        store: BatchStore,
        events: EventRepository,
        *,
        fabric_channel: str,
        chaincode: str,
        note_signer: EcdsaNoteSigner,
        origin_prefix: str,
    ) -> None:
        self._store = store
        self._events = events
        self._fabric_channel = fabric_channel
        self._chaincode = chaincode
        self._signer = note_signer
        self._origin_prefix = origin_prefix.rstrip("/")
        # Perfect-subtree roots of each channel log: append-only, so they never go stale.
        self._caches: dict[str, MutableMapping[tuple[int, int], bytes]] = {}
        self._trees: dict[int, MerkleTree] = {}

    def origin(self, channel: str) -> str:
        """The checkpoint origin of ``channel``'s log."""
        return f"{self._origin_prefix}/{channel}"

    def verifier_key(self, channel: str) -> str:
        """The note verifier key (``<origin>+<id>+<key>``) of ``channel``'s checkpoints."""
        return self._signer.renamed(self.origin(channel)).verifier.to_key_string()

    async def event_proof(self, channel: str, seq: int) -> EventProof:
        """The proof of event ``seq`` of ``channel`` (whatever its status; ``status`` and
        ``anchor`` say how far it got). Raises :class:`EventNotFound`, :class:`ProofNotReady`
        or :class:`StoreDamaged`."""
        event = await self._events.get(channel, seq)
        if event is None:
            raise EventNotFound(f"channel {channel!r} has no event with seq {seq}")
        batch = await self._store.containing(channel, seq)
        if batch is None:
            raise ProofNotReady(
                f"event {channel}/{seq} is not in a batch yet (status pending); retry in a moment"
            )
        certificate = await self._store.certificate(event.signer)
        if certificate is None:
            raise StoreDamaged(f"the certificate of signer {event.signer} is not in the store")
        proven = ProvenEvent(
            id=event.id,
            channel=event.channel,
            type=event.type,
            payload=event.payload,
            client_ts=event.client_ts,
            seq=event.seq,
            signer=event.signer,
            signature=event.signature,
            certificate_pem=certificate,
            msp_id=event.msp_id,
        )
        anchor = None
        if batch.state != RECORDED and batch.tx_id is not None:
            anchor = Anchor(
                tx_id=batch.tx_id,
                block_number=batch.block_number if batch.state == FINALIZED else None,
                fabric_channel=self._fabric_channel,
                chaincode=self._chaincode,
            )
        tree = self._trees.get(batch.row_id)
        if tree is None:
            tree = MerkleTree(RFC6962_SHA256, await self._store.leaves(batch))
            # A batch's leaves never change once recorded: keep the last few trees.
            self._trees[batch.row_id] = tree
            while len(self._trees) > _TREE_CACHE:
                self._trees.pop(next(iter(self._trees)))
        try:
            return build_event_proof(
                event=proven,
                batch=batch.record,
                batch_leaves=tree,
                anchor=anchor,
                status=batch.state if batch.state != RECORDED else "pending",
            )
        except MerkleError as exc:
            raise StoreDamaged(
                f"event {channel}/{seq} does not lead to the stored root of {batch.batch_id} "
                f"({exc.message}): the store was altered; run `anchorline audit {channel}`"
            ) from None

    def _source(self, channel: str) -> AsyncLeafSource:
        async def fetch(start: int, end: int) -> Sequence[bytes]:
            return await self._store.log_leaves(channel, start, end)

        cache = self._caches.setdefault(channel, {})
        return AsyncLeafSource(RFC6962_SHA256, fetch, cache=cache)

    async def checkpoint(self, channel: str) -> SignedCheckpoint:
        """The channel log's size and root (every batched event), signed as a C2SP note."""
        size = await self._store.log_size(channel)
        root = await self._source(channel).root(size)
        checkpoint = Checkpoint(self.origin(channel), size, root)
        return SignedCheckpoint(
            checkpoint.origin, size, root, sign_checkpoint(checkpoint, self._signer)
        )

    async def consistency(self, channel: str, size1: int, size2: int) -> dict[str, Any]:
        """A consistency proof between the log's sizes ``size1`` and ``size2``."""
        size = await self._store.log_size(channel)
        if not 0 < size1 <= size2 <= size:
            raise BadLogRange(
                f"consistency needs 0 < from <= to <= {size} (the log's size); "
                f"got from={size1}, to={size2}"
            )
        source = self._source(channel)
        proof = await source.consistency_proof(size1, size2)
        return {
            "channel": channel,
            "origin": self.origin(channel),
            "from": size1,
            "to": size2,
            "root1": (await source.root(size1)).hex(),
            "root2": (await source.root(size2)).hex(),
            "proof": [h.hex() for h in proof],
        }
