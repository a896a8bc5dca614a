"""The trust path of one gateway process: batcher, anchor workers, follower, statuses.

:class:`AnchoringService` is started and stopped with the app. It learns of
committed events through the pipeline's listener (:meth:`on_committed`, a
synchronous call that only records numbers: the fast path never waits on
it) and refuses new events through :meth:`admit` once the backlog — events
accepted but not yet finalized — reaches ``anchoring.backlog_limit_events``.
Every status change is stored first, then pushed through the
:class:`~gateway.events.publisher.StatusPublisher`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gateway.anchoring.batcher import Batcher, GatewayIdentity
from gateway.anchoring.errors import BacklogFull
from gateway.anchoring.follower import Follower
from gateway.anchoring.keyhistory import ensure_current
from gateway.anchoring.ledger import AnchorLedger
from gateway.anchoring.outbox import BatchStore, StoredBatch
from gateway.anchoring.worker import ChannelWorker
from gateway.clock import Clock, now_ms
from gateway.config import AnchoringSettings
from gateway.events.pipeline import Committed
from gateway.events.publisher import StatusChange, StatusPublisher
from gateway.store.events import EventRepository, NewEvent

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Progress:
    finalized_upto: int = 0  # every seq up to here is finalized


class AnchoringService:
    """See the module docstring."""

    def __init__(
        self,
        settings: AnchoringSettings,
        *,
        store: BatchStore,
        events: EventRepository,
        ledger: AnchorLedger,
        identity: GatewayIdentity,
        publisher: StatusPublisher | None = None,
        clock: Clock = now_ms,
        rng: random.Random | None = None,
        follow: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.identity = identity
        self._publisher = publisher
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._follow = follow
        self.batcher = Batcher(
            store,
            events,
            identity,
            max_events=settings.batch_max_events,
            max_ms=settings.batch_max_ms,
            on_recorded=self._recorded,
            clock=clock,
            before_sign=self._key_is_current,
        )
        self.follower = Follower(store, ledger, on_change=self._changed, clock=clock)
        self.workers: dict[str, ChannelWorker] = {}
        self._progress: dict[str, _Progress] = {}
        self._started = False
        self.refused = 0
        self.status_changes = 0

    async def _key_is_current(self) -> None:
        # A rotation recorded while this process runs retires its key: stop signing
        # batches at once (the batcher retries and logs) rather than past the marks.
        await ensure_current(self.store, self.identity.identity, now_ms=self._clock())

    def set_publisher(self, publisher: StatusPublisher | None) -> None:
        self._publisher = publisher

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume from the store (unfinished batches, unbatched events) and start the tasks."""
        # Never sign with a key the key history does not name as current (rotation).
        await ensure_current(self.store, self.identity.identity, now_ms=self._clock())
        await self.batcher.load()
        for channel in await self.store.channels():
            last = await self.store.last(channel)
            progress = self._progress.setdefault(channel, _Progress())
            progress.finalized_upto = last.last_seq if last else 0
        unfinished = await self.store.unfinished()
        for batch in unfinished:
            progress = self._progress.setdefault(batch.channel, _Progress())
            progress.finalized_upto = min(progress.finalized_upto, batch.first_seq - 1)
            self._worker(batch.channel).enqueue(batch, recovered=True)
        if unfinished:
            log.info("anchoring resumes %d unfinished batch(es)", len(unfinished))
        await self.batcher.start()
        if self._follow:
            await self.follower.load()
            self.follower.start()
        self._started = True

    async def stop(self) -> None:
        """Stop the tasks. Nothing is lost: the outbox and the events table are the state."""
        self._started = False
        await self.batcher.stop()
        await self.follower.stop()
        for worker in self.workers.values():
            await worker.stop()

    def _worker(self, channel: str) -> ChannelWorker:
        worker = self.workers.get(channel)
        if worker is None:
            worker = ChannelWorker(
                channel,
                self.store,
                self.ledger,
                on_change=self._changed,
                clock=self._clock,
                retry_initial_ms=self.settings.retry_initial_ms,
                retry_max_ms=self.settings.retry_max_ms,
                rng=self._rng,
            )
            self.workers[channel] = worker
            worker.start()
        return worker

    # -- the fast path's side --------------------------------------------------------------

    def on_committed(self, committed: Sequence[Committed]) -> None:
        """Pipeline listener: note the highest committed seq per channel (no I/O)."""
        top: dict[str, int] = {}
        for item in committed:
            ev = item.event
            if ev.seq > top.get(ev.channel, 0):
                top[ev.channel] = ev.seq
        for channel, seq in top.items():
            self._progress.setdefault(channel, _Progress())
            self.batcher.notify(channel, seq)

    def on_heads(self, heads: Mapping[str, int]) -> None:
        """The channels' committed heads, read from the shared store: events other
        gateway processes stored reach the batcher this way (no I/O here)."""
        for channel, seq in heads.items():
            if seq > self.batcher.known_upto(channel):
                self._progress.setdefault(channel, _Progress())
                self.batcher.notify(channel, seq)

    async def follow_heads(
        self, read: Callable[[], Awaitable[Mapping[str, int]]], period_s: float
    ) -> None:
        """Background loop: :meth:`on_heads` with ``read()`` every ``period_s``."""
        while True:
            try:
                self.on_heads(await read())
            except Exception:  # the store is briefly unreachable: nothing is lost
                log.warning("reading the channels' heads failed; retrying", exc_info=True)
            await asyncio.sleep(period_s)

    @property
    def backlog(self) -> int:
        """Events accepted but not yet finalized (all channels)."""
        total = 0
        for channel, progress in self._progress.items():
            total += max(0, self.batcher.known_upto(channel) - progress.finalized_upto)
        return total

    def admit(self, item: NewEvent) -> None:
        """Pipeline admission check: refuse the event when the backlog is at its limit."""
        limit = self.settings.backlog_limit_events
        if limit > 0 and self.backlog >= limit:
            self.refused += 1
            raise BacklogFull(
                f"{self.backlog} accepted events are not yet anchored (limit {limit}): the "
                "ledger is slow or unreachable; retry after a pause",
                backlog=self.backlog,
                limit=limit,
            )

    # -- status changes --------------------------------------------------------------------

    def _recorded(self, batch: StoredBatch) -> None:
        self._worker(batch.channel).enqueue(batch)

    def _changed(self, batch: StoredBatch) -> None:
        self.status_changes += 1
        if batch.state == "finalized":
            progress = self._progress.setdefault(batch.channel, _Progress())
            if batch.first_seq <= progress.finalized_upto + 1:
                progress.finalized_upto = max(progress.finalized_upto, batch.last_seq)
        if self._publisher is not None:
            try:
                self._publisher.publish_status(
                    StatusChange(
                        channel=batch.channel,
                        seqs=range(batch.first_seq, batch.last_seq + 1),
                        status=batch.state,
                        tx_id=batch.tx_id,
                        block_number=batch.block_number,
                        batch_id=batch.row_id,
                    )
                )
            except Exception:
                log.exception("status publisher failed")

    # -- visibility ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``GET /anchoring/status`` shows: backlog, per-channel progress, errors."""
        unbatched = self.batcher.unbatched()
        channels = {}
        for channel in sorted(set(self._progress) | set(self.workers)):
            worker = self.workers.get(channel)
            channels[channel] = {
                "committed_upto": self.batcher.known_upto(channel),
                "finalized_upto": self._progress.get(channel, _Progress()).finalized_upto,
                "unbatched_events": unbatched.get(channel, 0),
                "queued_batches": worker.queued if worker else 0,
                "anchored_batches": worker.anchored if worker else 0,
                "failed_attempts": worker.attempts if worker else 0,
                "last_error": worker.last_error if worker else None,
                "anchoring_batch": worker.current[0] if worker and worker.current else None,
                "anchoring_for_s": round(time.monotonic() - worker.current[1], 3)
                if worker and worker.current
                else None,
            }
        follower = self.follower
        return {
            "running": self._started,
            "fabric_channel": self.ledger.fabric_channel,
            "chaincode": self.ledger.chaincode,
            "gateway_msp": self.identity.identity.msp_id,
            "backlog_events": self.backlog,
            "backlog_limit_events": self.settings.backlog_limit_events,
            "refused_events": self.refused,
            "batches_recorded": self.batcher.batches_recorded,
            "channels": channels,
            "follower": {
                "position": None
                if follower.position is None
                else {
                    "block_number": follower.position.block_number,
                    "transaction_id": follower.position.transaction_id,
                },
                "events_seen": follower.events_seen,
                "finalized": follower.finalized,
                "mismatches": follower.mismatches,
                "last_error": follower.last_error,
            },
        }

    def metrics_text(self) -> str:
        """Prometheus text of the trust path's gauges and counters."""
        s = self.status()
        lines = [
            "# HELP anchorline_anchoring_backlog_events Accepted events not yet finalized.",
            "# TYPE anchorline_anchoring_backlog_events gauge",
            f"anchorline_anchoring_backlog_events {s['backlog_events']}",
            "# HELP anchorline_anchoring_backlog_limit_events Backlog at which events are refused.",
            "# TYPE anchorline_anchoring_backlog_limit_events gauge",
            f"anchorline_anchoring_backlog_limit_events {s['backlog_limit_events']}",
            "# HELP anchorline_anchoring_refused_total Events refused: the backlog was full.",
            "# TYPE anchorline_anchoring_refused_total counter",
            f"anchorline_anchoring_refused_total {s['refused_events']}",
            "# HELP anchorline_anchoring_batches_total Batches recorded by this process.",
            "# TYPE anchorline_anchoring_batches_total counter",
            f"anchorline_anchoring_batches_total {s['batches_recorded']}",
            "# HELP anchorline_anchoring_failed_attempts_total Anchoring attempts that failed.",
            "# TYPE anchorline_anchoring_failed_attempts_total counter",
        ]
        for channel, c in s["channels"].items():
            lines.append(
                f'anchorline_anchoring_failed_attempts_total{{channel="{channel}"}} '
                f"{c['failed_attempts']}"
            )
        lines += [
            "# HELP anchorline_anchoring_channel_backlog_events Unfinalized events per channel.",
            "# TYPE anchorline_anchoring_channel_backlog_events gauge",
        ]
        for channel, c in s["channels"].items():
            lines.append(
                f'anchorline_anchoring_channel_backlog_events{{channel="{channel}"}} '
                f"{max(0, c['committed_upto'] - c['finalized_upto'])}"
            )
        return "\n".join(lines) + "\n"
