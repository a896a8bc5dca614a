"""The batcher: cuts each channel's committed events into signed, chained Merkle batches.

A channel's batch closes when ``max_events`` events wait or the oldest of
them has waited ``max_ms``, whichever comes first. Closing reads the events
back from the store (the bytes the member signed, not an in-memory copy),
computes their leaf hashes (:mod:`gateway.anchoring.leaf`) and root, chains
the batch to the previous root, signs the record with the gateway's Fabric
identity and records it in the outbox (:class:`BatchStore`) before handing it
to the anchor worker. The store is the only state: after a crash
:meth:`Batcher.load` resumes from the last recorded batch and the highest
stored event, so nothing is lost, duplicated or reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from gateway.anchoring.errors import StoreDamaged
from gateway.anchoring.leaf import leaf_hash_from_canonical
from gateway.anchoring.outbox import BatchStore, StoredBatch, chaincode_batch_id
from gateway.anchoring.proof import BatchRecord, batch_signing_bytes
from gateway.clock import Clock
from gateway.identity.msp import Identity
from gateway.identity.signing import Signer, sign_message
from gateway.merkle.hashing import RFC6962_SHA256
from gateway.merkle.tree import root as merkle_root
from gateway.store.events import EventRepository
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)

ZERO_ROOT = bytes(32)


@dataclasses.dataclass(frozen=True)
class GatewayIdentity:
    """The gateway's Fabric identity: it signs batch records and anchor transactions."""

    identity: Identity
    signer: Signer

    def sign_record(
        self,
        *,
        batch_id: str,
        channel: str,
        root: bytes,
        first_seq: int,
        last_seq: int,
        prev_root: bytes,
    ) -> BatchRecord:
        count = last_seq - first_seq + 1
        message = batch_signing_bytes(
            batch_id=batch_id,
            channel=channel,
            root=root,
            leaf_count=count,
            first_seq=first_seq,
            last_seq=last_seq,
            prev_root=prev_root,
        )
        return BatchRecord(
            batch_id=batch_id,
            channel=channel,
            root=root,
            leaf_count=count,
            first_seq=first_seq,
            last_seq=last_seq,
            prev_root=prev_root,
            signature=sign_message(self.signer, message),
            certificate_pem=self.identity.certificate_pem.decode("ascii"),
            msp_id=self.identity.msp_id,
        )


@dataclasses.dataclass
class _Channel:
    batched_upto: int  # last_seq of the newest recorded batch
    last_root: bytes
    next_number: int
    known_upto: int  # highest committed seq this process knows of
    pending_since: float | None = None  # loop time the oldest unbatched event was noticed


class Batcher:
    """Closes batches per channel; see the module docstring."""

    def __init__(
        self,
        store: BatchStore,
        events: EventRepository,
        identity: GatewayIdentity,
        *,
        max_events: int,
        max_ms: int,
        on_recorded: Callable[[StoredBatch], None],
        clock: Clock,
        before_sign: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        # Raises when the identity may no longer sign (its key was retired by a rotation).
        self._before_sign = before_sign
        self._events = events
        self._identity = identity
        self._max_events = max(1, max_events)
        self._max_s = max(0, max_ms) / 1000.0
        self._on_recorded = on_recorded
        self._clock = clock
        self._channels: dict[str, _Channel] = {}
        self._loading: set[str] = set()
        self._early: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches_recorded = 0

    # -- state -----------------------------------------------------------------------------

    async def _load_channel(self, channel: str) -> _Channel:
        last = await self._store.last(channel)
        top = await self._store.last_event_seq(channel)
        state = _Channel(
            batched_upto=last.last_seq if last else 0,
            last_root=last.root if last else ZERO_ROOT,
            next_number=last.number + 1 if last else 1,
            known_upto=top,
        )
        if state.known_upto > state.batched_upto:
            state.pending_since = asyncio.get_running_loop().time()
        return state

    async def load(self) -> None:
        """Resume every channel from the store (call once before :meth:`start`)."""
        for channel in await self._store.channels():
            self._channels[channel] = await self._load_channel(channel)

    def unbatched(self) -> dict[str, int]:
        """Committed events not yet in a recorded batch, per channel."""
        return {
            c: s.known_upto - s.batched_upto
            for c, s in self._channels.items()
            if s.known_upto > s.batched_upto
        }

    def known_upto(self, channel: str) -> int:
        """The highest committed seq of ``channel`` this process was told of."""
        state = self._channels.get(channel)
        return max(state.known_upto if state else 0, self._early.get(channel, 0))

    # -- input -----------------------------------------------------------------------------

    def notify(self, channel: str, seq: int) -> None:
        """Event ``seq`` of ``channel`` is committed (called from the pipeline listener)."""
        state = self._channels.get(channel)
        if state is None:
            # A channel new to this process: its batch state is read before batching;
            # seqs seen meanwhile are kept so none is lost while it loads.
            self._loading.add(channel)
            self._early[channel] = max(seq, self._early.get(channel, 0))
            self._wake.set()
            return
        if seq > state.known_upto:
            was_empty = state.known_upto <= state.batched_upto
            state.known_upto = seq
            if was_empty:
                # The first event of a new batch: the loop must arm its timer.
                state.pending_since = asyncio.get_running_loop().time()
                self._wake.set()
            elif state.known_upto - state.batched_upto >= self._max_events:
                self._wake.set()

    # -- loop ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="anchoring-batcher")

    async def stop(self) -> None:
        """Stop closing batches. Events not batched yet stay in the store: the next start
        batches them."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def flush(self) -> None:
        """Close every channel's open batch now (tests, benchmarks)."""
        await self._load_new(asyncio.get_running_loop().time())
        for channel, state in list(self._channels.items()):
            while state.known_upto > state.batched_upto:
                await self._close(
                    channel, min(self._max_events, state.known_upto - state.batched_upto)
                )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            # Cleared before the step, so a notify() during the step's awaits is not lost.
            self._wake.clear()
            try:
                timeout = await self._step(loop.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store may be briefly unavailable: nothing is lost (events are
                # durable), so retry after a pause rather than die.
                log.exception("batcher step failed; retrying")
                timeout = 1.0
            if timeout is None:
                await self._wake.wait()
            elif timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _load_new(self, now: float) -> None:
        for channel in list(self._loading):
            if channel not in self._channels:
                state = await self._load_channel(channel)
                state.known_upto = max(state.known_upto, self._early.pop(channel, 0))
                if state.known_upto > state.batched_upto and state.pending_since is None:
                    state.pending_since = now
                self._channels[channel] = state
            self._loading.discard(channel)

    async def _step(self, now: float) -> float | None:
        """Close whatever is due; returns seconds until the next deadline (None: none)."""
        await self._load_new(now)
        next_due: float | None = None
        for channel, state in list(self._channels.items()):
            while state.known_upto - state.batched_upto >= self._max_events:
                await self._close(channel, self._max_events)
            waiting = state.known_upto - state.batched_upto
            if waiting <= 0:
                state.pending_since = None
                continue
            if state.pending_since is None:
                state.pending_since = now
            due = state.pending_since + self._max_s
            if now >= due:
                await self._close(channel, waiting)
                # Events that arrived while the batch was being recorded start a new window.
                more = state.known_upto > state.batched_upto
                state.pending_since = asyncio.get_running_loop().time() if more else None
                left = self._max_s if more else None
            else:
                left = due - now
            if left is not None:
                next_due = left if next_due is None else min(next_due, left)
        return next_due

    async def _close(self, channel: str, count: int) -> StoredBatch:
        state = self._channels[channel]
        first = state.batched_upto + 1
        stored = await self._events.after(channel, state.batched_upto, count)
        if not stored:
            # The listener ran ahead of what this connection can read yet: retry later.
            raise StoreDamaged(f"{channel}: events from seq {first} are not readable yet")
        leaves: list[bytes] = []
        for offset, ev in enumerate(stored):
            if ev.seq != first + offset:
                raise StoreDamaged(
                    f"{channel}: expected event seq {first + offset}, found {ev.seq}; "
                    "the events table has a gap"
                )
            leaves.append(
                leaf_hash_from_canonical(
                    ev.canonical, seq=ev.seq, signer=ev.signer, signature=ev.signature
                )
            )
        last = first + len(leaves) - 1
        root = merkle_root(RFC6962_SHA256, leaves)
        if self._before_sign is not None:
            await self._before_sign()
        record = self._identity.sign_record(
            batch_id=chaincode_batch_id(channel, state.next_number),
            channel=channel,
            root=root,
            first_seq=first,
            last_seq=last,
            prev_root=state.last_root,
        )
        batch = await self._store.record(record, state.next_number, leaves, now_ms=self._clock())
        state.batched_upto = last
        state.last_root = root
        state.next_number += 1
        state.known_upto = max(state.known_upto, last)
        self.batches_recorded += 1
        self._on_recorded(batch)
        return batch
