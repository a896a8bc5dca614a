"""The trust path on several gateways: it runs on the anchor lease's holder only.

:class:`AnchorLeader` tries to take the :class:`~gateway.anchoring.lease.Lease`
every ``lease_retry_ms``. Once it holds it, it starts the trust path (its
``start`` callback: batcher, anchor workers and follower, over a fenced
outbox) and renews the lease every ``lease_renew_ms``. It steps down — stops
the trust path — when a renewal finds the lease taken over, or when renewals
have failed (the database unreachable) for longer than the TTL, by which
time another process may hold it. :meth:`stop` (graceful shutdown) stops
the trust path first and then releases the lease, so a successor starts at
once instead of waiting for the expiry.

A successor resumes from the store alone: the batcher from the last recorded
batch and the highest stored event, the workers from the unfinished batches
(each looked up on the ledger before any resubmission), so a takeover leaves
no gap, anchors no batch twice and never forks the batch chain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.anchoring.lease import Lease
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")


class AnchorLeader(Generic[T]):
    """See the module docstring. ``active`` is what ``start`` returned, while held."""

    def __init__(
        self,
        lease: Lease,
        *,
        start: Callable[[], Awaitable[T]],
        stop: Callable[[T], Awaitable[None]],
        renew_ms: int,
        retry_ms: int,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.lease = lease
        self._start = start
        self._stop = stop
        self._renew_s = renew_ms / 1000.0
        self._retry_s = retry_ms / 1000.0
        self._stop_timeout_s = stop_timeout_s
        self._task: asyncio.Task[None] | None = None
        self.active: T | None = None
        self.terms = 0  # how many times this process took the lease
        self.last_error: str | None = None
        self.held_since: float | None = None  # monotonic

    @property
    def holds(self) -> bool:
        return self.active is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="anchor-leader")

    async def stop(self) -> None:
        """Stop the trust path (if running here), then release the lease."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        try:
            while True:
                try:
                    grant = await self.lease.try_acquire()
                except Exception as exc:
                    self.last_error = f"taking the lease: {type(exc).__name__}: {exc}"
                    log.warning("anchor lease: %s", self.last_error)
                    grant = None
                if grant is None:
                    await asyncio.sleep(self._retry_s)
                    continue
                log.info("anchor lease taken (epoch %d): this gateway anchors", grant.epoch)
                try:
                    self.active = await self._start()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.last_error = f"starting the trust path: {type(exc).__name__}: {exc}"
                    log.exception("trust path did not start; giving the anchor lease back")
                    await self._release()
                    await asyncio.sleep(self._retry_s)
                    continue
                self.terms += 1
                self.held_since = time.monotonic()
                await self._hold()
                log.warning("anchor lease lost: this gateway stops anchoring")
                await self._step_down()
        finally:
            await self._step_down()
            await self._release()

    async def _hold(self) -> None:
        """Renew until the lease is lost (returns) or the task is cancelled."""
        last_ok = time.monotonic()
        ttl_s = self.lease.ttl_ms / 1000.0
        while True:
            await asyncio.sleep(self._renew_s)
            try:
                if not await self.lease.renew():
                    return
                last_ok = time.monotonic()
            except Exception as exc:
                self.last_error = f"renewing the lease: {type(exc).__name__}: {exc}"
                log.warning("anchor lease: %s", self.last_error)
                if time.monotonic() - last_ok > ttl_s:
                    # Another process may have taken it by now: writes would be
                    # fenced anyway, so stop before wasting ledger calls.
                    self.lease.drop()
                    return

    async def _step_down(self) -> None:
        active, self.active = self.active, None
        self.held_since = None
        if active is not None:
            try:
                # Bounded: a stop that hangs (a ledger call that never returns) must not
                # keep the process, and with it the lease's successor, waiting; writes
                # of a trust path left running are fenced.
                await asyncio.wait_for(self._stop(active), self._stop_timeout_s)
            except TimeoutError:
                log.error(
                    "the trust path did not stop within %.0f s; releasing the lease anyway",
                    self._stop_timeout_s,
                )
            except Exception:
                log.exception("stopping the trust path failed")

    async def _release(self) -> None:
        if not self.lease.held:
            return
        try:
            await self.lease.release()
        except Exception as exc:  # it runs out by itself after the TTL
            log.warning("releasing the anchor lease failed: %s", exc)
            self.lease.drop()
