"""The group-commit writer: events are acknowledged only after their batch commits.

Producers call :meth:`EventPipeline.submit` (synchronous, no task per event).
One writer task takes everything queued, up to ``max_batch`` events, stores
it in one transaction, then calls each event's ``on_done`` with its result
(this is where acks are written) and afterwards the committed listeners
(broadcast, the trust path's batcher). While a commit is in flight the next
batch accumulates, so the commit rate adapts to the load.

:meth:`EventPipeline.admit` is the one door a member's event passes before
its costly steps, whichever way it came in: the identity's emit budget, then
admission (capacity, fair between identities). :meth:`EventPipeline.withdraw`
refuses queued events that no commit has taken yet (a revoked member's emits
in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from gateway.errors import AnchorlineError
from gateway.events.admission import Admission, AdmissionLimits
from gateway.events.budget import EmitBudget
from gateway.events.errors import StoreUnavailable
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import AppendResult, NewEvent, StoredEvent

if TYPE_CHECKING:  # the store (SQLAlchemy) is the caller's; the pipeline only calls it
    from gateway.store.events import EventRepository

log = logging.getLogger(__name__)

# Called with the stored result, StoreUnavailable, or the refusal given to withdraw().
DoneCallback = Callable[[AppendResult | AnchorlineError], None]


@dataclasses.dataclass(frozen=True, slots=True)
class Committed:
    """A newly stored event and the opaque origin its producer gave (e.g. a connection)."""

    event: StoredEvent
    origin: object


CommittedListener = Callable[[Sequence[Committed]], None]


class Upstream(Protocol):
    """A step admitted events pass before the commit queue (the signature verifier)."""

    @property
    def waiting(self) -> int: ...

    def oldest_wait_s(self) -> float: ...


@dataclasses.dataclass(slots=True)
class _Entry:
    item: NewEvent
    on_done: DoneCallback
    origin: object
    queued: float


class EventPipeline:
    """Single writer of the event store for this process."""

    def __init__(
        self,
        repo: EventRepository,
        *,
        max_batch: int,
        queue_limit: int,
        metrics: GatewayMetrics,
        admission: Admission | None = None,
        identity_budget: EmitBudget | None = None,
    ) -> None:
        self._repo = repo
        self._max_batch = max(1, max_batch)
        # Without an explicit admission policy only the queue bound applies.
        self._admission_policy = (
            admission
            if admission is not None
            else Admission(AdmissionLimits(queue_limit, max_queue_wait_ms=0, max_loop_lag_ms=0))
        )
        # Without one, no emit budget applies (tests of the pipeline alone).
        self._identity_budget = (
            identity_budget if identity_budget is not None else EmitBudget(0, 1, "identity")
        )
        self._metrics = metrics
        self._queue: deque[_Entry] = deque()
        self._wake = asyncio.Event()
        self._listeners: list[CommittedListener] = []
        self._admission: list[Callable[[NewEvent], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._busy = False
        self._inflight_since = 0.0
        self._idle = asyncio.Event()
        self._upstream: Upstream | None = None

    @property
    def depth(self) -> int:
        """Events waiting for a commit."""
        return len(self._queue)

    def add_listener(self, listener: CommittedListener) -> None:
        """Call ``listener`` with each committed batch's new events, after the acks."""
        self._listeners.append(listener)

    def set_upstream(self, upstream: Upstream) -> None:
        """Count the events admitted but still in a step before this queue (the
        signature check on the worker) in admission's depth and wait: they wait for
        their ack as much as the queued ones."""
        self._upstream = upstream

    def add_admission_check(self, check: Callable[[NewEvent], None]) -> None:
        """Call ``check(item)`` before queueing each event; it refuses one by raising an
        :class:`~gateway.errors.AnchorlineError` (the trust path's backlog limit)."""
        self._admission.append(check)

    @property
    def admission(self) -> Admission:
        """The admission policy (its limits and refusal counts)."""
        return self._admission_policy

    @property
    def identity_budget(self) -> EmitBudget:
        """The per-identity emit budget :meth:`admit` spends (off when none was given)."""
        return self._identity_budget

    def _oldest_wait_s(self) -> float:
        queue = self._queue
        # The oldest event not yet acknowledged: in the commit in flight, or queued.
        since = self._inflight_since if self._busy else (queue[0].queued if queue else None)
        return time.perf_counter() - since if since is not None else 0.0

    def admit(self, identity: str) -> None:
        """The door of every member's event, asked before it costs anything (a parse,
        the signature check, the commit), whichever way it came in (a Socket.IO emit,
        a REST call). ``identity`` is the sender's certificate fingerprint.

        Spends one event of ``identity``'s emit budget — raises
        :class:`~gateway.events.errors.EmitRateLimited` (AL1610) when it is used
        up — then refuses the event when the gateway is over its capacity and
        ``identity`` has had at least half its fair share lately (or the commit
        queue is full): raises :class:`~gateway.events.errors.Overloaded` (AL1607).
        Both carry ``details["retry_after"]`` in ms (see
        :mod:`gateway.events.budget`, :mod:`gateway.events.admission`). On return
        the event counts as admitted for ``identity``.
        """
        self._identity_budget.take(identity)
        depth, oldest = self._backlog()
        self._admission_policy.check(depth, oldest, identity)

    def behind(self) -> bool:
        """Whether admission's wait or lag rule trips now: the gateway runs behind."""
        return self._admission_policy.behind(self._backlog()[1])

    def _backlog(self) -> tuple[int, float]:
        """Events admitted and not yet acknowledged, and the oldest one's wait (s)."""
        depth, oldest = len(self._queue), self._oldest_wait_s()
        upstream = self._upstream
        if upstream is not None:
            depth += upstream.waiting
            oldest = max(oldest, upstream.oldest_wait_s())
        return depth, oldest

    def submit(self, item: NewEvent, on_done: DoneCallback, origin: object = None) -> None:
        """Queue ``item``; ``on_done`` is called once, after its commit or its failure.

        Raises :class:`Overloaded` at once when the commit queue is full. The rest of
        admission (budget, capacity, fairness) is :meth:`admit`'s, which a member's
        event passed before its costly steps; the gateway's own events skip it.
        """
        if self._closing:
            raise StoreUnavailable("the gateway is shutting down: retry on another gateway")
        self._admission_policy.check_queue(len(self._queue), self._oldest_wait_s())
        for check in self._admission:
            check(item)
        self._queue.append(_Entry(item, on_done, origin, time.perf_counter()))
        self._wake.set()

    def withdraw(
        self, predicate: Callable[[NewEvent, object], bool], refusal: AnchorlineError
    ) -> int:
        """Take out every queued event for which ``predicate(item, origin)`` holds and
        call its ``on_done`` with ``refusal``; returns how many.

        Events already in the commit under way are not affected: they are stored.
        """
        kept: deque[_Entry] = deque()
        withdrawn: list[_Entry] = []
        for entry in self._queue:
            (withdrawn if predicate(entry.item, entry.origin) else kept).append(entry)
        if not withdrawn:
            return 0
        self._queue = kept
        self._metrics.commit_queue_depth = len(kept)
        for entry in withdrawn:
            self._safe(entry.on_done, refusal)
        return len(withdrawn)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-pipeline")
        self._admission_policy.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._admission_policy.stop()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (tests, shutdown)."""
        while self._queue or self._busy:
            self._idle.clear()
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
            self._metrics.commit_queue_depth = len(self._queue)
            self._busy = True
            self._inflight_since = batch[0].queued
            try:
                await self._commit(batch)
            finally:
                self._busy = False
                self._idle.set()

    async def _commit(self, batch: list[_Entry]) -> None:
        started = time.perf_counter()
        try:
            results = await self._repo.append([e.item for e in batch])
        except StoreUnavailable as exc:
            self._metrics.commit_failures += 1
            log.warning("commit of %d events failed: %s", len(batch), exc)
            for entry in batch:
                self._safe(entry.on_done, exc)
            return
        except Exception as exc:  # a bug must not kill the writer: fail the batch
            self._metrics.commit_failures += 1
            log.exception("commit of %d events failed unexpectedly", len(batch))
            failure = StoreUnavailable(f"could not store events: {type(exc).__name__}")
            for entry in batch:
                self._safe(entry.on_done, failure)
            return
        self._metrics.commits += 1
        self._metrics.commit_latency.observe(time.perf_counter() - started)
        fresh: list[Committed] = []
        for entry, result in zip(batch, results, strict=True):
            if result.duplicate:
                self._metrics.events_duplicate += 1
            else:
                fresh.append(Committed(result.stored, entry.origin))
            self._safe(entry.on_done, result)
        self._metrics.events_accepted += len(fresh)
        if fresh:
            for listener in self._listeners:
                try:
                    listener(fresh)
                except Exception:
                    log.exception("committed-events listener failed")

    @staticmethod
    def _safe(callback: DoneCallback, value: AppendResult | AnchorlineError) -> None:
        try:
            callback(value)
        except Exception:
            log.exception("event completion callback failed")
