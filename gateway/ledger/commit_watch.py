"""Commit statuses from one stream of filtered blocks, instead of one call each.

Fabric's Gateway answers a ``CommitStatus`` call per transaction: the client
signs a request, the peer verifies that signature against the channel's
Readers policy, looks the transaction up and answers. Under load that is one
ECDSA signature, one verification and one round trip per transaction, on the
busiest peer. :class:`CommitWatcher` opens one ``Deliver.DeliverFiltered``
stream per channel instead (signed once, checked once) and resolves every
waiting transaction from the filtered blocks as they are committed.

It is an optimisation with the ``CommitStatus`` call as its fallback, never a
replacement:

- a transaction is answered from the stream only when its submission started
  after the stream had delivered its first block (:meth:`covers`): a block is
  delivered only once committed, so a later submission lands in a later block
  and cannot be missed;
- a broken stream resumes on any peer from the block after the last one it
  saw, so it never skips a block; while it is down, :meth:`covers` is false
  and callers ask ``CommitStatus``;
- a caller whose wait runs out (a lost transaction, a peer behind) goes back to
  the client's usual deadline, resubmission and ``CommitStatus`` logic;
- a transport without filtered blocks (the embedded ledger) or an identity the
  peer refuses turns the watcher off for good, and every status comes from
  ``CommitStatus`` as before.

The statuses of the most recent transactions are kept (``recent``) so that a
caller who starts waiting after its block went by still finds it; a
transaction older than what is kept is not covered, and goes to
``CommitStatus``. A resubmitted transaction shows up again, marked
``DUPLICATE_TXID``: such entries are ignored, since the status that counts is
the first one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from fabric_protos.common import common_pb2
from fabric_protos.peer import events_pb2, transaction_pb2

from gateway.identity.signing import Signer
from gateway.ledger.endpoints import Failover
from gateway.ledger.protocol.deliver import build_seek_envelope, filtered_statuses
from gateway.ledger.transport import RpcError, StatusCode
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Deliver answers a refused identity or channel with these statuses: no point retrying.
DELIVER_REFUSALS = frozenset({common_pb2.FORBIDDEN, common_pb2.NOT_FOUND, common_pb2.BAD_REQUEST})


@runtime_checkable
class FilteredBlockSource(Protocol):
    """A transport that can stream filtered blocks (a Fabric peer's Deliver service)."""

    @property
    def endpoint(self) -> str: ...

    def deliver_filtered(
        self, envelope: common_pb2.Envelope
    ) -> AsyncIterator[events_pb2.DeliverResponse]: ...


@dataclasses.dataclass(frozen=True)
class Seen:
    """A transaction's validation code and block, the peer that delivered it, and when."""

    code: int
    block_number: int
    endpoint: str
    at: float


class CommitWatcher:
    """One channel's filtered-block stream, shared by every transaction awaiting its commit."""

    def __init__(
        self,
        failover: Failover,
        channel_id: str,
        creator: bytes,
        signer: Signer,
        *,
        recent: int = 20_000,
        retry_delay_s: float = 0.2,
    ) -> None:
        self._failover = failover
        self._channel_id = channel_id
        self._creator = creator
        self._signer = signer
        self._recent: collections.OrderedDict[str, Seen] = collections.OrderedDict()
        self._recent_max = recent
        self._retry_delay_s = retry_delay_s
        self._waiters: dict[str, list[asyncio.Future[Seen]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._next_block: int | None = None
        # Loop time at which the stream first delivered a block (None until then).
        # Every later stream resumes from the block after the last one seen, so
        # coverage holds from this moment on.
        self._live_since: float | None = None
        self._connected = False
        # Loop time at which the newest status no longer kept was recorded.
        self._forgotten_until = float("-inf")
        self.disabled_reason = ""
        self.endpoint = ""

    @property
    def enabled(self) -> bool:
        return not self.disabled_reason

    def start(self) -> None:
        """Open the stream in the background (idempotent)."""
        if self._task is None and self.enabled:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"commit-watch:{self._channel_id}"
            )

    def covers(self, submit_started_at: float) -> bool:
        """True when a transaction submitted at that loop time cannot be missed by the stream.

        Its block comes after the stream went live (a block is delivered only once
        committed), and its status, once recorded, is still kept.
        """
        return (
            self.enabled
            and self._connected
            and self._live_since is not None
            and submit_started_at >= self._live_since
            and submit_started_at > self._forgotten_until
        )

    async def wait(self, tx_id: str, timeout: float) -> Seen | None:
        """The transaction's status once its block arrives; None if ``timeout`` passes first."""
        seen = self._recent.get(tx_id)
        if seen is not None:
            return seen
        future: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_id, []).append(future)
        try:
            return await asyncio.wait_for(future, max(timeout, 0.0))
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(tx_id)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(future)
                if not waiting:
                    del self._waiters[tx_id]

    def _record(self, block: events_pb2.FilteredBlock, endpoint: str, at: float) -> None:
        number = int(block.number)
        for tx_id, code in filtered_statuses(block):
            # A resubmitted transaction appears again, marked DUPLICATE_TXID: the first
            # appearance is the status that counts (recorded, or asked of CommitStatus).
            if code == transaction_pb2.DUPLICATE_TXID or tx_id in self._recent:
                continue
            seen = Seen(code, number, endpoint, at)
            self._recent[tx_id] = seen
            for future in self._waiters.pop(tx_id, ()):
                if not future.done():
                    future.set_result(seen)
        while len(self._recent) > self._recent_max:
            _, forgotten = self._recent.popitem(last=False)
            self._forgotten_until = forgotten.at

    async def _stream_from(self, source: FilteredBlockSource) -> None:
        envelope = build_seek_envelope(
            self._channel_id, self._creator, self._signer, self._next_block
        )
        loop = asyncio.get_running_loop()
        async for response in source.deliver_filtered(envelope):
            kind = response.WhichOneof("Type")
            if kind == "status":
                if response.status in DELIVER_REFUSALS:
                    self.disabled_reason = (
                        f"{source.endpoint} refused filtered blocks of channel "
                        f"{self._channel_id}: {common_pb2.Status.Name(response.status)}"
                    )
                return
            if kind != "filtered_block":
                continue
            block = response.filtered_block
            if self._next_block is not None and block.number < self._next_block:
                continue
            self._record(block, source.endpoint, loop.time())
            self._next_block = int(block.number) + 1
            self.endpoint = source.endpoint
            self._connected = True
            if self._live_since is None:
                self._live_since = loop.time()

    async def _run(self) -> None:
        while self.enabled:
            sources = [t for t in self._failover.candidates() if isinstance(t, FilteredBlockSource)]
            if not sources:
                self.disabled_reason = "no transport offers filtered blocks"
                break
            for source in sources:
                try:
                    await self._stream_from(source)
                except RpcError as exc:
                    if exc.status in (StatusCode.PERMISSION_DENIED, StatusCode.UNIMPLEMENTED):
                        self.disabled_reason = f"{source.endpoint}: {exc.message}"
                    elif exc.status == StatusCode.UNAVAILABLE:
                        # This peer is down: resume from the next block on another one.
                        self._failover.mark_down(source)
                        log.debug("filtered blocks: %s is down, trying another", source.endpoint)
                        continue
                    log.debug("filtered block stream from %s ended: %s", source.endpoint, exc)
                except Exception as exc:  # a defect here must not take commit statuses down
                    log.exception("filtered block stream from %s failed", source.endpoint)
                    self.disabled_reason = f"{source.endpoint}: {type(exc).__name__}: {exc}"
                finally:
                    self._connected = False
                break
            if self.enabled:
                await asyncio.sleep(self._retry_delay_s)
        log.info("commit statuses come from CommitStatus calls: %s", self.disabled_reason)

    async def close(self) -> None:
        """Stop the stream. Callers still waiting see their wait run out, as if no block came."""
        task, self._task = self._task, None
        self._connected = False
        await cancel_and_wait(task)
