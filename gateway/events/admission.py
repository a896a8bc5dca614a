"""Admission to the fast path: refuse the excess at once instead of queueing it.

Above its capacity a gateway that queues everything collapses: every event
waits behind all the earlier ones, so acks grow without bound while the work
done per second stays the same. :class:`Admission` keeps the fast path at
its capacity instead, by refusing a new event with :class:`Overloaded`
(AL1607, with ``retry_after`` in milliseconds) before any costly step (the
signature check, the commit) when one of these holds:

- the commit queue holds ``queue_limit`` events (a hard bound on memory);
- the oldest event not yet acknowledged (queued, or in the commit in
  flight) has waited ``max_queue_wait_ms`` (the store is the bound);
- the event loop runs ``max_loop_lag_ms`` late (the CPU is the bound: the
  excess then waits unread in the sockets, where no queue limit sees it).

The loop's lateness is measured by a timer that re-arms itself every
``lag_period_ms`` (no task); once the overload ends it falls back within a
period, so admission reopens at once. Refusing costs a fraction of accepting
(no verify, no commit, no fan-out), which is what lets the accepted rate
stay near the capacity.

This module knows nothing of sockets or Socket.IO; the pipeline asks it
(:meth:`EventPipeline.admit`) and the hub calls that before the intake.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from gateway.events.errors import Overloaded

if TYPE_CHECKING:  # settings are read by the composition root
    from gateway.config import GatewaySettings


@dataclasses.dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The bounds of :class:`Admission`; ``0`` turns a latency rule off."""

    queue_limit: int
    max_queue_wait_ms: int = 40
    max_loop_lag_ms: int = 30
    lag_period_ms: int = 10
    min_retry_after_ms: int = 100
    max_retry_after_ms: int = 5000

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> AdmissionLimits:
        """The ``gateway.commit_queue_limit`` and ``gateway.admission_*`` settings."""
        return cls(
            queue_limit=settings.commit_queue_limit,
            max_queue_wait_ms=settings.admission_max_queue_wait_ms,
            max_loop_lag_ms=settings.admission_max_loop_lag_ms,
            min_retry_after_ms=settings.admission_retry_after_ms,
        )


class Admission:
    """Decides, per event and in O(1), whether the fast path takes it now."""

    __slots__ = ("_due", "_handle", "_lag_s", "_limits", "refused")

    # Refusals so far by rule ("queue", "wait", "lag"), for /metrics and benchmarks.
    refused: dict[str, int]

    def __init__(self, limits: AdmissionLimits) -> None:
        self._limits = limits
        self._lag_s = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.refused = {"queue": 0, "wait": 0, "lag": 0}

    @property
    def limits(self) -> AdmissionLimits:
        return self._limits

    @property
    def loop_lag_ms(self) -> float:
        """How late the loop ran the last lag timer (0 before :meth:`start`)."""
        return self._lag_s * 1000

    def start(self) -> None:
        """Start measuring the running loop's lateness (needs a running loop)."""
        if self._limits.max_loop_lag_ms <= 0 or self._handle is not None:
            return
        self._arm(asyncio.get_running_loop())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._lag_s = 0.0

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        period = self._limits.lag_period_ms / 1000
        self._due = loop.time() + period
        self._handle = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._lag_s = max(0.0, loop.time() - self._due)
        self._arm(loop)

    def check(self, depth: int, oldest_wait_s: float) -> None:
        """Return when one more event may be taken; raise :class:`Overloaded` otherwise.

        ``depth`` is the commit queue's length and ``oldest_wait_s`` how long
        the oldest event not yet acknowledged has waited (0 when none). The refusal's
        ``details["retry_after"]`` (ms) is at least ``min_retry_after_ms`` and
        grows with the backlog, up to ``max_retry_after_ms``.
        """
        limits = self._limits
        if depth >= limits.queue_limit:
            self._refuse("queue", f"{depth} events wait for a commit", oldest_wait_s)
        wait_ms = oldest_wait_s * 1000
        if limits.max_queue_wait_ms > 0 and wait_ms >= limits.max_queue_wait_ms:
            self._refuse(
                "wait", f"an event has waited {wait_ms:.0f} ms for its commit", oldest_wait_s
            )
        lag_ms = self._lag_s * 1000
        if limits.max_loop_lag_ms > 0 and lag_ms >= limits.max_loop_lag_ms:
            self._refuse("lag", f"the gateway runs {lag_ms:.0f} ms behind", self._lag_s)

    def _refuse(self, rule: str, why: str, backlog_s: float) -> None:
        self.refused[rule] += 1
        limits = self._limits
        # Twice the backlog: by then what is queued now has been worked off.
        retry = int(
            min(limits.max_retry_after_ms, max(limits.min_retry_after_ms, 2000 * backlog_s))
        )
        raise Overloaded(
            f"the gateway is overloaded ({why}): retry after {retry} ms", retry_after=retry
        )


__all__ = ["Admission", "AdmissionLimits"]
