"""What the trust path asks of the ledger, and its implementation over the Fabric client.

:class:`AnchorLedger` is the seam the batcher's worker, the follower, the
verifier and the audit use; :class:`FabricAnchorLedger` implements it with a
:class:`~gateway.ledger.gateway.Gateway` (a real Fabric network or the
embedded ledger: the client is the same). Unit tests fake the protocol.
:func:`trust_path_ledger` builds the gateway's over an opened
:class:`~gateway.ledger.connection.LedgerConnection` (reading back through
another org's peer), :func:`auditor_ledger` an auditor's.

The anchor chaincode's functions and JSON are documented in
``chaincode/contracts/anchor.py`` (contract ``anchor``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

from gateway.config import AnchoringSettings
from gateway.errors import ConfigError
from gateway.ledger.commit import Commit
from gateway.ledger.connection import LedgerConnection
from gateway.ledger.errors import EvaluateError
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.events import Checkpoint

CONTRACT: Final = "anchor"
EVENT_NAME: Final = "BatchAnchored"


@dataclasses.dataclass(frozen=True)
class CommitOutcome:
    """Where an anchor transaction ended up."""

    tx_id: str
    valid: bool
    block_number: int
    code_name: str


@dataclasses.dataclass(frozen=True)
class AnchoredEvent:
    """A ``BatchAnchored`` chaincode event: the anchored record, its block and transaction."""

    block_number: int
    tx_id: str
    record: dict[str, Any]


class AnchorLedger(Protocol):
    """The anchor chaincode, as the trust path uses it."""

    @property
    def fabric_channel(self) -> str: ...

    @property
    def chaincode(self) -> str: ...

    async def submit_batch(self, record: dict[str, Any]) -> str:
        """Endorse and submit ``AnchorBatch``; returns the transaction id once ordering
        accepted it. Raises a :class:`~gateway.ledger.errors.LedgerError` otherwise."""
        ...

    async def commit_status(self, tx_id: str, *, timeout: float | None = None) -> CommitOutcome:
        """Wait for ``tx_id``'s commit (resubmitting it when the handle still holds it)."""
        ...

    async def get_batch(self, batch_id: str, *, reader: bool = False) -> dict[str, Any] | None:
        """The anchored record of ``batch_id`` (None if not anchored); ``reader`` reads it
        through another org's peer."""
        ...

    async def list_batches(self, channel: str, start: int, limit: int) -> dict[str, Any]:
        """``ListBatches``: ``{"batches": [...], "next": int | None}``."""
        ...

    async def verify_inclusion(
        self, batch_id: str, leaf_hash: str, index: int, path: list[str]
    ) -> dict[str, Any]:
        """``VerifyInclusion``: the chaincode recomputes the batch root from a leaf."""
        ...

    def anchored_events(self, checkpoint: Checkpoint | None) -> AsyncIterator[AnchoredEvent]:
        """``BatchAnchored`` events after ``checkpoint`` (from the next block when None)."""
        ...

    async def close(self) -> None: ...


def _not_found(exc: EvaluateError) -> bool:
    message = exc.chaincode_message or exc.message
    return "not_found" in message


class FabricAnchorLedger:
    """:class:`AnchorLedger` over a Fabric Gateway connection.

    ``reader_msp`` is the org whose peer reads records back (a different org
    from the gateway's own); evaluate requests name it as their target.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        fabric_channel: str,
        chaincode: str,
        reader_msp: str | None = None,
        call_timeout_s: float = 15.0,
    ) -> None:
        self.gateway = gateway
        self._fabric_channel = fabric_channel
        self._chaincode = chaincode
        self.reader_msp = reader_msp
        self._network = gateway.network(fabric_channel)
        self._contract = self._network.contract(chaincode, CONTRACT)
        self._timeout = call_timeout_s
        # Handles of transactions submitted by this process: their status call can
        # resubmit a transaction the orderer lost.
        self._commits: dict[str, Commit] = {}

    @property
    def fabric_channel(self) -> str:
        return self._fabric_channel

    @property
    def chaincode(self) -> str:
        return self._chaincode

    async def submit_batch(self, record: dict[str, Any]) -> str:
        commit = await self._contract.submit_async(
            "AnchorBatch", json.dumps(record, sort_keys=True), timeout=self._timeout
        )
        self._commits[commit.transaction_id] = commit
        return commit.transaction_id

    async def commit_status(self, tx_id: str, *, timeout: float | None = None) -> CommitOutcome:
        commit = self._commits.get(tx_id) or self._network.commit(tx_id)
        status = await commit.status(timeout=timeout if timeout is not None else self._timeout)
        self._commits.pop(tx_id, None)
        return CommitOutcome(tx_id, status.successful, status.block_number, status.code_name)

    async def get_batch(self, batch_id: str, *, reader: bool = False) -> dict[str, Any] | None:
        targets = [self.reader_msp] if reader and self.reader_msp else []
        try:
            raw = await self._contract.evaluate(
                "GetBatch", batch_id, target_orgs=targets, timeout=self._timeout
            )
        except EvaluateError as exc:
            if _not_found(exc):
                return None
            raise
        value = json.loads(raw)
        return value if isinstance(value, dict) else None

    async def list_batches(self, channel: str, start: int, limit: int) -> dict[str, Any]:
        raw = await self._contract.evaluate(
            "ListBatches", channel, str(start), str(limit), timeout=self._timeout
        )
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("ListBatches did not return an object")
        return value

    async def verify_inclusion(
        self, batch_id: str, leaf_hash: str, index: int, path: list[str]
    ) -> dict[str, Any]:
        raw = await self._contract.evaluate(
            "VerifyInclusion",
            batch_id,
            leaf_hash,
            str(index),
            json.dumps(path),
            timeout=self._timeout,
        )
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("VerifyInclusion did not return an object")
        return value

    async def anchored_events(self, checkpoint: Checkpoint | None) -> AsyncIterator[AnchoredEvent]:
        stream = self._network.chaincode_events(self._chaincode, checkpoint=checkpoint)
        try:
            async for event in stream:
                if event.event_name != EVENT_NAME:
                    continue
                try:
                    record = json.loads(event.payload)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield AnchoredEvent(event.block_number, event.transaction_id, record)
        finally:
            await stream.aclose()

    async def close(self) -> None:
        await self.gateway.close()


def reader_msp(connection: LedgerConnection, reader_org: str) -> str:
    """The org whose peer reads anchors back: ``reader_org``, else the first other org.

    :class:`ConfigError` when it is not an org of the ledger, is the gateway's own
    org, or the ledger has no second org.
    """
    orgs = list(connection.msp_ids)
    own = connection.msp_id
    if reader_org:
        try:
            wanted = connection.org_msp(reader_org)
        except KeyError:
            raise ConfigError(
                f"anchoring.reader_org: {reader_org} is not an org of the network"
            ) from None
        if wanted not in orgs:
            raise ConfigError(f"anchoring.reader_org: {wanted} is not one of {', '.join(orgs)}")
        if wanted == own:
            raise ConfigError("anchoring.reader_org must be another org than the gateway's")
        return wanted
    others = [o for o in orgs if o != own]
    if not others:
        raise ConfigError(
            "finalizing an anchor needs a second org whose peer reads it back; the ledger has "
            f"only {own}"
        )
    return others[0]


def trust_path_ledger(
    connection: LedgerConnection, anchoring: AnchoringSettings, *, call_timeout_s: float
) -> FabricAnchorLedger:
    """The gateway's anchor ledger over its connection (which stays the one to close)."""
    return FabricAnchorLedger(
        connection.gateway,
        fabric_channel=connection.channel,
        chaincode=connection.chaincode,
        reader_msp=reader_msp(connection, anchoring.reader_org),
        call_timeout_s=call_timeout_s,
    )


def auditor_ledger(connection: LedgerConnection) -> FabricAnchorLedger:
    """An auditor's view over its own connection: reads through its own org's peer."""
    return FabricAnchorLedger(
        connection.gateway, fabric_channel=connection.channel, chaincode=connection.chaincode
    )


async def read_back(
    ledger: AnchorLedger, batch_id: str, *, attempts: int = 20, pause_s: float = 0.05
) -> dict[str, Any] | None:
    """The record as another org's peer has it, waiting briefly for that peer to catch up
    with the block (peers commit a block at slightly different times)."""
    for attempt in range(attempts):
        record = await ledger.get_batch(batch_id, reader=True)
        if record is not None or attempt == attempts - 1:
            return record
        await asyncio.sleep(pause_s)
    return None
