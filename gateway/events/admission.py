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

Fair between identities. When the wait or the lag rule trips, an event is
refused only if its identity (a certificate fingerprint) has had at least
half its fair share of the events admitted lately, so the heaviest
identities are refused and a light one is still served: one member flooding
at its emit budget cannot get the others refused. "Lately" is an
exponentially decayed count ``c`` per identity (half-life
``fair_half_life_ms``); the fair share is ``1/N`` with
``N = (Σ c)² / Σ c²``, the effective number of active identities (``N``
identities at equal counts give ``N``; one dominating identity gives about
1). Identity *i* is refused when ``c_i · Σ c ≥ ½ Σ c²``, which always holds
for the heaviest one: with a single identity, or several at equal shares,
every event is refused exactly as without fairness. The hard
``queue_limit`` refuses everyone alike. Both sums are kept up to date per
admitted event (O(1)); at most ``fair_max_identities`` identities are
tracked.

This module knows nothing of sockets or Socket.IO; the pipeline asks it
(:meth:`EventPipeline.admit`) and the hub calls that before the intake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from gateway.events.errors import Overloaded

if TYPE_CHECKING:  # settings are read by the composition root
    from gateway.config import GatewaySettings

# An identity is spared only below this fraction of its fair share. Without a margin,
# identities at about equal shares would be served in turn (the ones a hair below,
# each admission lifting one above), and a tripped rule would refuse only about half
# of what they send; with it they are all refused, as without fairness. It also
# covers the few ulps the running sums drift from the exact ones.
_FAIR_FRACTION = 0.5
# A count below this (an event some 7 half-lives ago) is not worth keeping.
_NEGLIGIBLE = 0.01


@dataclasses.dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The bounds of :class:`Admission`; ``0`` turns a latency rule off."""

    queue_limit: int
    max_queue_wait_ms: int = 40
    max_loop_lag_ms: int = 30
    lag_period_ms: int = 10
    min_retry_after_ms: int = 100
    max_retry_after_ms: int = 5000
    # How fast an identity's recent count forgets (see RecentShares).
    fair_half_life_ms: int = 500
    fair_max_identities: int = 10_000

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> AdmissionLimits:
        """The ``gateway.commit_queue_limit`` and ``gateway.admission_*`` settings."""
        return cls(
            queue_limit=settings.commit_queue_limit,
            max_queue_wait_ms=settings.admission_max_queue_wait_ms,
            max_loop_lag_ms=settings.admission_max_loop_lag_ms,
            min_retry_after_ms=settings.admission_retry_after_ms,
        )


class RecentShares:
    """Exponentially decayed counts of the events admitted lately, per identity.

    :meth:`add` counts one event of an identity; :meth:`at_fair_share` says
    whether an identity has had at least half its fair share lately (see the
    module docstring). Both are O(1): each identity's count is decayed when it
    is touched, and the sums ``Σ c`` and ``Σ c²`` decay as a whole (every
    count decays by the same factor). At most ``max_identities`` are tracked:
    when full, the negligible counts are dropped (at most once per
    half-life); an identity that still finds no room is not counted, so it
    stays light. ``now`` is the monotonic clock (injectable for tests).
    """

    __slots__ = ("_counts", "_decay", "_max", "_now", "_pruned", "_squares", "_stamp", "_total")

    def __init__(
        self,
        half_life_s: float,
        max_identities: int,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._decay = math.log(2) / max(half_life_s, 1e-6)
        self._max = max(1, max_identities)
        self._now = now
        # identity -> [count, when it was last decayed]
        self._counts: dict[str, list[float]] = {}
        self._total = 0.0
        self._squares = 0.0
        self._stamp = now()
        self._pruned = -math.inf

    def __len__(self) -> int:
        """How many identities are tracked now."""
        return len(self._counts)

    def _sums_at(self, now: float) -> None:
        elapsed = now - self._stamp
        if elapsed > 0:
            factor = math.exp(-self._decay * elapsed)
            self._total *= factor
            self._squares *= factor * factor
            self._stamp = now

    def count(self, identity: str) -> float:
        """``identity``'s decayed count now (0 when it is not tracked)."""
        entry = self._counts.get(identity)
        if entry is None:
            return 0.0
        return entry[0] * math.exp(-self._decay * max(0.0, self._now() - entry[1]))

    def add(self, identity: str) -> None:
        """Count one admitted event of ``identity``."""
        now = self._now()
        self._sums_at(now)
        entry = self._counts.get(identity)
        if entry is None:
            if len(self._counts) >= self._max:
                self._prune(now)
                if len(self._counts) >= self._max:
                    return
            self._counts[identity] = [1.0, now]
            self._total += 1.0
            self._squares += 1.0
            return
        count = entry[0] * math.exp(-self._decay * max(0.0, now - entry[1]))
        entry[0] = count + 1.0
        entry[1] = now
        self._total += 1.0
        self._squares += 2.0 * count + 1.0

    def at_fair_share(self, identity: str) -> bool:
        """Whether ``identity``'s share of the events admitted lately is at least half
        of ``1/N`` (N the effective number of active identities): always true for the
        heaviest identity, and when nothing was admitted lately."""
        now = self._now()
        self._sums_at(now)
        entry = self._counts.get(identity)
        count = (
            0.0 if entry is None else entry[0] * math.exp(-self._decay * max(0.0, now - entry[1]))
        )
        return count * self._total >= _FAIR_FRACTION * self._squares

    def _prune(self, now: float) -> None:
        # Rate-limited, so a full table costs O(n) at most once per half-life.
        if now - self._pruned < math.log(2) / self._decay:
            return
        self._pruned = now
        for identity, (count, stamp) in list(self._counts.items()):
            current = count * math.exp(-self._decay * max(0.0, now - stamp))
            if current < _NEGLIGIBLE:
                del self._counts[identity]
                self._total = max(0.0, self._total - current)
                self._squares = max(0.0, self._squares - current * current)


class Admission:
    """Decides, per event and in O(1), whether the fast path takes it now."""

    __slots__ = ("_due", "_handle", "_lag_s", "_limits", "_shares", "refused", "spared")

    # Refusals so far by rule ("queue", "wait", "lag"), for /metrics and benchmarks.
    refused: dict[str, int]
    # Events a tripped wait or lag rule let through: their identity was below its
    # fair share (so one flooding identity does not get the others refused).
    spared: int

    def __init__(self, limits: AdmissionLimits, now: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._lag_s = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._shares = RecentShares(
            limits.fair_half_life_ms / 1000, limits.fair_max_identities, now
        )
        self.refused = {"queue": 0, "wait": 0, "lag": 0}
        self.spared = 0

    @property
    def limits(self) -> AdmissionLimits:
        return self._limits

    @property
    def shares(self) -> RecentShares:
        """The recent counts per identity that the fairness rule reads."""
        return self._shares

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

    def check_queue(self, depth: int, oldest_wait_s: float) -> None:
        """The hard bound alone: raise :class:`Overloaded` when ``depth`` (the commit
        queue's length) is at ``queue_limit``, whoever sends (arguments as :meth:`check`)."""
        if depth >= self._limits.queue_limit:
            self._refuse("queue", f"{depth} events wait for a commit", oldest_wait_s)

    def _tripped(self, oldest_wait_s: float) -> tuple[bool, bool]:
        """Whether the wait rule and the lag rule trip now (0 turns a rule off)."""
        limits = self._limits
        waits = limits.max_queue_wait_ms > 0 and oldest_wait_s * 1000 >= limits.max_queue_wait_ms
        lags = limits.max_loop_lag_ms > 0 and self._lag_s * 1000 >= limits.max_loop_lag_ms
        return waits, lags

    def behind(self, oldest_wait_s: float) -> bool:
        """Whether the wait or the lag rule trips now (``oldest_wait_s`` as for
        :meth:`check`): the gateway runs behind its load."""
        waits, lags = self._tripped(oldest_wait_s)
        return waits or lags

    def check(self, depth: int, oldest_wait_s: float, identity: str) -> None:
        """Return when one more event of ``identity`` may be taken, and count it as
        admitted; raise :class:`Overloaded` otherwise.

        ``depth`` is the commit queue's length and ``oldest_wait_s`` how long
        the oldest event not yet acknowledged has waited (0 when none). The
        wait and lag rules refuse only an identity at or above half its fair
        share (module docstring); the queue bound refuses every identity. The refusal's
        ``details["retry_after"]`` (ms) is at least ``min_retry_after_ms`` and
        grows with the backlog, up to ``max_retry_after_ms``.
        """
        self.check_queue(depth, oldest_wait_s)
        waits, lags = self._tripped(oldest_wait_s)
        if waits or lags:
            if self._shares.at_fair_share(identity):
                if waits:
                    self._refuse(
                        "wait",
                        f"an event has waited {oldest_wait_s * 1000:.0f} ms for its commit",
                        oldest_wait_s,
                    )
                self._refuse(
                    "lag", f"the gateway runs {self._lag_s * 1000:.0f} ms behind", self._lag_s
                )
            self.spared += 1
        self._shares.add(identity)

    def _refuse(self, rule: str, why: str, backlog_s: float) -> NoReturn:
        self.refused[rule] += 1
        limits = self._limits
        # Twice the backlog: by then what is queued now has been worked off.
        retry = int(
            min(limits.max_retry_after_ms, max(limits.min_retry_after_ms, 2000 * backlog_s))
        )
        raise Overloaded(
            f"the gateway is overloaded ({why}): retry after {retry} ms", retry_after=retry
        )


__all__ = ["Admission", "AdmissionLimits", "RecentShares"]
