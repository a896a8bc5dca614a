"""Unit-test helpers: a migrated SQLite store with signed events, and an in-memory anchor
ledger with the anchor chaincode's rules (chain, idempotence) and switchable faults."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.anchoring.batcher import Batcher, GatewayIdentity
from gateway.anchoring.ledger import AnchoredEvent, CommitOutcome
from gateway.anchoring.outbox import BatchStore, StoredBatch
from gateway.clock import now_ms
from gateway.events.canonical import canonical_json
from gateway.events.model import SignedEvent
from gateway.identity.ca import EmbeddedCA
from gateway.identity.msp import MspFolder, load_msp
from gateway.identity.signing import sign_message
from gateway.ledger.errors import EndorseError, SubmitUnavailable
from gateway.ledger.protocol.events import Checkpoint
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository, NewEvent
from gateway.store.models import identities


@dataclasses.dataclass
class Setup:
    engine: AsyncEngine
    events: EventRepository
    ca: EmbeddedCA
    member: MspFolder
    gateway: GatewayIdentity


async def setup_store(tmp: Path, url: str | None = None) -> Setup:
    engine = create_engine(url or f"sqlite:///{tmp / 'events.db'}", "NORMAL")
    await migrate(engine)
    ca = EmbeddedCA(tmp / "ca")
    member = load_msp(ca.enroll("Org2", "m1", "member"), "Org2MSP", require_key=True)
    gw = load_msp(ca.enroll("Org1", "gw", "admin"), "Org1MSP", require_key=True)
    async with engine.begin() as conn:
        await conn.execute(
            insert(identities).values(
                fingerprint=member.identity.fingerprint,
                msp_id="Org2MSP",
                role="member",
                subject="m1",
                certificate=member.identity.certificate_pem.decode(),
                not_after_ms=0,
                first_seen_ms=0,
                last_seen_ms=0,
            )
        )
    return Setup(
        engine, EventRepository(engine), ca, member, GatewayIdentity(gw.identity, gw.signer())
    )


async def add_events(setup: Setup, channel: str, count: int, start: int = 0) -> list[int]:
    """Append ``count`` signed events; returns their seqs."""
    items = []
    for k in range(start, start + count):
        body = {
            "id": f"{channel}-{k}",
            "channel": channel,
            "type": "bid",
            "payload": {"n": k, "note": "café"},
            "client_ts": 1_764_000_000_000 + k,
        }
        canonical = canonical_json(body)
        signature = sign_message(setup.member.signer(), canonical)
        ev = SignedEvent(
            body["id"], channel, "bid", body["payload"], body["client_ts"], signature, canonical
        )
        items.append(NewEvent(ev, setup.member.identity.fingerprint, "Org2MSP", now_ms()))
    results = await setup.events.append(items)
    return [r.stored.seq for r in results]


async def record_batches(
    setup: Setup, count: int, per_batch: int, channel: str = "market"
) -> tuple[BatchStore, list[StoredBatch]]:
    """Append ``count`` events and let a real batcher record them, ``per_batch`` a batch."""
    store = BatchStore(setup.engine)
    recorded: list[StoredBatch] = []
    batcher = Batcher(
        store,
        setup.events,
        setup.gateway,
        max_events=per_batch,
        max_ms=10_000,
        on_recorded=recorded.append,
        clock=lambda: 1,
    )
    await batcher.load()
    await add_events(setup, channel, count)
    batcher.notify(channel, count)
    await batcher.flush()
    return store, recorded


class FakeAnchorLedger:
    """The anchor chaincode's rules in memory: one chain per channel, idempotent resubmission.

    ``unavailable`` makes the next N submits fail as with no orderer; ``lose_reads`` makes
    the reader org's peer miss the next N reads; ``refuse`` makes endorsement fail with a
    chaincode error.
    """

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.heads: dict[str, dict[str, Any]] = {}
        self.blocks: dict[str, int] = {}
        self.submits = 0
        self.unavailable = 0
        self.lose_reads = 0
        self.refuse: str | None = None
        self.events: list[AnchoredEvent] = []
        self._block = 0
        self._new = asyncio.Event()

    @property
    def fabric_channel(self) -> str:
        return "anchorline"

    @property
    def chaincode(self) -> str:
        return "anchorline"

    async def submit_batch(self, record: dict[str, Any]) -> str:
        self.submits += 1
        if self.unavailable > 0:
            self.unavailable -= 1
            raise SubmitUnavailable("no orderers could be reached")
        if self.refuse:
            raise _refusal(self.refuse)
        self._block += 1
        tx_id = f"tx{self.submits}"
        existing = self.records.get(record["batch_id"])
        if existing is not None:
            assert existing["root"] == record["root"]
            self.blocks[tx_id] = self._block  # a VALID transaction that writes nothing
            return tx_id
        head = self.heads.get(record["channel"])
        if head is None:
            assert record["prev_root"] in ("", "0" * 64)
            height = 0
        else:
            assert record["prev_root"] == head["root"], "fork"
            assert record["first_seq"] == head["last_seq"] + 1, "gap"
            height = head["height"] + 1
        stored = {**record, "height": height, "tx_id": tx_id}
        self.records[record["batch_id"]] = stored
        self.heads[record["channel"]] = stored
        self.blocks[tx_id] = self._block
        self.events.append(AnchoredEvent(self._block, tx_id, stored))
        self._new.set()
        return tx_id

    async def commit_status(self, tx_id: str, *, timeout: float | None = None) -> CommitOutcome:
        return CommitOutcome(tx_id, True, self.blocks[tx_id], "VALID")

    async def get_batch(self, batch_id: str, *, reader: bool = False) -> dict[str, Any] | None:
        if reader and self.lose_reads > 0:
            self.lose_reads -= 1
            return None
        return self.records.get(batch_id)

    async def list_batches(self, channel: str, start: int, limit: int) -> dict[str, Any]:
        chain = sorted(
            (r for r in self.records.values() if r["channel"] == channel), key=lambda r: r["height"]
        )
        page = chain[start : start + limit]
        following = start + len(page)
        return {"batches": page, "next": following if following < len(chain) else None}

    async def verify_inclusion(
        self, batch_id: str, leaf_hash: str, index: int, path: list[str]
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def anchored_events(self, checkpoint: Checkpoint | None) -> AsyncIterator[AnchoredEvent]:
        i = 0
        while True:
            while i < len(self.events):
                ev = self.events[i]
                i += 1
                if checkpoint is not None and (
                    ev.block_number < checkpoint.block_number
                    or (ev.block_number == checkpoint.block_number and checkpoint.transaction_id)
                ):
                    continue
                yield ev
            self._new.clear()
            await self._new.wait()

    async def close(self) -> None:
        return None


def _refusal(message: str) -> EndorseError:
    err = EndorseError(f"endorsement failed: chaincode response 500, {message}")
    err.details["chaincode_message"] = message
    return err


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
