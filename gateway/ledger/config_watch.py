"""The channel configuration followed live on a Fabric peer: its MSPs' CRLs.

``anchorline network revoke`` (and any org admin's channel update) can put a
CRL into an org's MSP definition in the channel configuration, where Fabric
peers honour it; :class:`ChannelConfigWatch` makes the gateway see it too,
within a block's delivery:

- at start, and after every broken stream, it reads the newest block, then
  the config block that block names (:func:`last_config_number`), so a change
  made while it was away is never missed;
- then it follows the filtered blocks from the next one on (one
  ``Deliver.DeliverFiltered`` stream, the peer's cheapest) and, when one of
  them holds a CONFIG transaction, reads that block in full
  (``Deliver.Deliver`` for one block) and its configuration;
- each configuration read bumps :attr:`ChannelConfigWatch.version` and
  replaces :meth:`~ChannelConfigWatch.revocation_lists`, which the
  :class:`~gateway.auth.revocation.RevocationWatcher` polls, like the MSP
  folders' ``crls/``, and applies through the same path.

A broken stream resumes on another peer; a peer that refuses the identity
(FORBIDDEN, NOT_FOUND, PERMISSION_DENIED) or a transport without Deliver (the
embedded ledger, whose channel configuration never changes) turns the watch
off, said in :attr:`~ChannelConfigWatch.disabled_reason` and the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from fabric_protos.common import common_pb2
from fabric_protos.peer import events_pb2

from gateway.identity.signing import Signer
from gateway.ledger.commit_watch import DELIVER_REFUSALS, FilteredBlockSource
from gateway.ledger.endpoints import Failover
from gateway.ledger.protocol.config import config_of, last_config_number, revocation_lists
from gateway.ledger.protocol.deliver import build_seek_envelope
from gateway.ledger.transport import RpcError, StatusCode
from gateway.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class _Refused(Exception):
    """The peer refused this identity or channel: no point retrying."""


@runtime_checkable
class BlockSource(FilteredBlockSource, Protocol):
    """A transport that streams full blocks too (a Fabric peer's Deliver)."""

    def deliver_blocks(
        self, envelope: common_pb2.Envelope
    ) -> AsyncIterator[events_pb2.DeliverResponse]: ...


class ChannelConfigWatch:
    """One channel's configuration, kept current from its config blocks."""

    def __init__(
        self,
        failover: Failover,
        channel_id: str,
        creator: bytes,
        signer: Signer,
        *,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._failover = failover
        self._channel_id = channel_id
        self._creator = creator
        self._signer = signer
        self._retry_delay_s = retry_delay_s
        self._lists: dict[str, list[bytes]] = {}
        self._task: asyncio.Task[None] | None = None
        #: Grows by one with every configuration read (0: none read yet).
        self.version = 0
        #: The number of the config block read last (None until one is).
        self.config_block: int | None = None
        self.disabled_reason = ""

    def revocation_lists(self) -> tuple[int, Mapping[str, Sequence[bytes]]]:
        """``(version, {msp_id: [CRL, ...]})`` of the configuration read last."""
        return self.version, self._lists

    def start(self) -> None:
        """Follow the channel in the background (idempotent)."""
        if self._task is None and not self.disabled_reason:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"config-watch:{self._channel_id}"
            )

    async def close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def _seek(self, start: int | None, stop: int | None) -> common_pb2.Envelope:
        return build_seek_envelope(
            self._channel_id, self._creator, self._signer, start, stop_block=stop
        )

    async def _block(self, source: BlockSource, number: int | None) -> common_pb2.Block:
        """One full block (None: the newest)."""
        async for response in source.deliver_blocks(self._seek(number, number)):
            kind = response.WhichOneof("Type")
            if kind == "block":
                return response.block
            if kind == "status":
                if response.status in DELIVER_REFUSALS:
                    raise _Refused(common_pb2.Status.Name(response.status))
                break
        raise RpcError(StatusCode.UNAVAILABLE, f"no block {number} from {source.endpoint}")

    async def _read_config(self, source: BlockSource, number: int) -> None:
        block = await self._block(source, number)
        config = config_of(block)
        if config is None:
            log.warning("block %d of %s holds no configuration", number, self._channel_id)
            return
        self._lists = revocation_lists(config)
        self.config_block = number
        self.version += 1
        log.debug(
            "channel %s configuration (block %d, sequence %d): CRLs of %s",
            self._channel_id,
            number,
            config.sequence,
            ", ".join(f"{m}={len(c)}" for m, c in sorted(self._lists.items())) or "none",
        )

    async def _follow(self, source: BlockSource) -> None:
        newest = await self._block(source, None)
        await self._read_config(source, last_config_number(newest))
        start = int(newest.header.number) + 1
        async for response in source.deliver_filtered(self._seek(start, 2**64 - 1)):
            kind = response.WhichOneof("Type")
            if kind == "status":
                if response.status in DELIVER_REFUSALS:
                    raise _Refused(common_pb2.Status.Name(response.status))
                return
            if kind != "filtered_block":
                continue
            block = response.filtered_block
            if any(tx.type == common_pb2.CONFIG for tx in block.filtered_transactions):
                await self._read_config(source, int(block.number))

    async def _run(self) -> None:
        while not self.disabled_reason:
            sources = [t for t in self._failover.candidates() if isinstance(t, BlockSource)]
            if not sources:
                self.disabled_reason = "no transport offers blocks"
                break
            source = sources[0]
            try:
                await self._follow(source)
            except _Refused as exc:
                self.disabled_reason = f"{source.endpoint} refused blocks: {exc}"
            except RpcError as exc:
                if exc.status in (StatusCode.PERMISSION_DENIED, StatusCode.UNIMPLEMENTED):
                    self.disabled_reason = f"{source.endpoint}: {exc.message}"
                elif exc.status == StatusCode.UNAVAILABLE:
                    self._failover.mark_down(source)
                log.debug("config blocks from %s: %s", source.endpoint, exc)
            except Exception:  # a defect here must not take the gateway down; retried
                log.exception("following the configuration of %s failed", self._channel_id)
            if not self.disabled_reason:
                await asyncio.sleep(self._retry_delay_s)
        log.error(
            "the channel configuration's CRLs are not followed (%s): only the MSP folders' "
            "crls/ revoke certificates live",
            self.disabled_reason,
        )


__all__ = ["BlockSource", "ChannelConfigWatch"]
