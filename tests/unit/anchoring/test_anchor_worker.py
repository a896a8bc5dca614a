"""Anchor worker, follower and service against a fake ledger with the chaincode's rules."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.anchoring.errors import BacklogFull
from gateway.anchoring.follower import Follower
from gateway.anchoring.outbox import CONFIRMED, FINALIZED, RECORDED, BatchStore, StoredBatch
from gateway.anchoring.service import AnchoringService
from gateway.anchoring.worker import ChannelWorker, backoff_s
from gateway.config import AnchoringSettings
from gateway.events.pipeline import Committed
from gateway.events.publisher import StatusChange
from gateway.ledger.protocol.events import Checkpoint
from tests.unit.anchoring.anchorfakes import FakeAnchorLedger, Setup, add_events, record_batches


async def _record(setup: Setup, count: int, per_batch: int):  # type: ignore[no-untyped-def]
    store, recorded = await record_batches(setup, count, per_batch)
    return setup, store, recorded


async def _run(worker: ChannelWorker, until, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    worker.start()
    try:
        async with asyncio.timeout(timeout):
            while not await until():  # noqa: ASYNC110 - polling the store is the point
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    samples = [backoff_s(a, 100, 2000, rng) for a in range(12) for _ in range(50)]
    assert all(0.01 <= s <= 2.0 for s in samples)
    early = [backoff_s(0, 100, 2000, rng) for _ in range(200)]
    late = [backoff_s(10, 100, 2000, rng) for _ in range(200)]
    assert max(early) <= 0.1 and max(late) > 1.0
    assert len({round(s, 6) for s in late}) > 150  # jittered, not a fixed schedule


async def test_batches_are_anchored_in_order_and_statuses_move_on(setup: Setup) -> None:
    setup, store, batches = await _record(setup, 30, 10)
    ledger = FakeAnchorLedger()
    ledger.unavailable = 2  # the orderers are down for the first two attempts
    ledger.lose_reads = 1  # and the reader org's peer is one block behind once
    changes: list[tuple[str, str]] = []
    worker = ChannelWorker(
        "market",
        store,
        ledger,
        on_change=lambda b: changes.append((b.batch_id, b.state)),
        clock=lambda: 5,
        retry_initial_ms=1,
        retry_max_ms=5,
    )
    for b in batches:
        worker.enqueue(b)

    async def done() -> bool:
        return not (await store.unfinished("market"))

    await _run(worker, done)
    assert [r["batch_id"] for r in sorted(ledger.records.values(), key=lambda r: r["height"])] == [
        "market/1",
        "market/2",
        "market/3",
    ]
    assert changes == [
        ("market/1", CONFIRMED),
        ("market/1", FINALIZED),
        ("market/2", CONFIRMED),
        ("market/2", FINALIZED),
        ("market/3", CONFIRMED),
        ("market/3", FINALIZED),
    ]
    # Two failed submits; the lagging reader was waited for, not counted as a failure.
    assert worker.attempts == 2 and worker.last_error is None and ledger.lose_reads == 0
    stored = await store.listing("market")
    assert all(b.state == FINALIZED and b.block_number is not None for b in stored)
    statuses = await setup.events.statuses("market", list(range(1, 31)))
    assert {s["status"] for s in statuses.values()} == {FINALIZED} and len(statuses) == 30
    assert statuses[15]["tx_id"] == ledger.records["market/2"]["tx_id"]


async def test_a_recovered_batch_already_on_the_ledger_is_not_submitted_again(setup: Setup) -> None:
    setup, store, batches = await _record(setup, 10, 10)
    ledger = FakeAnchorLedger()
    tx = await ledger.submit_batch(batches[0].record.to_json())  # anchored before a crash
    worker = ChannelWorker(
        "market",
        store,
        ledger,
        on_change=lambda b: None,
        clock=lambda: 5,
        retry_initial_ms=1,
        retry_max_ms=5,
    )
    worker.enqueue(batches[0], recovered=True)

    async def done() -> bool:
        return not (await store.unfinished("market"))

    await _run(worker, done)
    assert ledger.submits == 1
    (final,) = await store.listing("market")
    assert final.tx_id == tx and final.state == FINALIZED


async def test_a_resubmission_finalizes_with_the_original_anchor(setup: Setup) -> None:
    setup, store, batches = await _record(setup, 10, 10)
    ledger = FakeAnchorLedger()
    first_tx = await ledger.submit_batch(batches[0].record.to_json())
    # The store never learnt of it: state recorded, not a recovered batch.
    worker = ChannelWorker(
        "market",
        store,
        ledger,
        on_change=lambda b: None,
        clock=lambda: 5,
        retry_initial_ms=1,
        retry_max_ms=5,
    )
    worker.enqueue(batches[0])

    async def done() -> bool:
        return not (await store.unfinished("market"))

    await _run(worker, done)
    assert ledger.submits == 2  # the idempotent resubmission
    (final,) = await store.listing("market")
    assert final.tx_id == first_tx and final.block_number == ledger.blocks[first_tx]


async def test_a_permanent_refusal_is_reported_and_retried_not_skipped(setup: Setup) -> None:
    setup, store, batches = await _record(setup, 20, 10)
    ledger = FakeAnchorLedger()
    ledger.refuse = "forbidden: channel market is anchored by Org2MSP"
    worker = ChannelWorker(
        "market",
        store,
        ledger,
        on_change=lambda b: None,
        clock=lambda: 5,
        retry_initial_ms=1,
        retry_max_ms=2,
    )
    for b in batches:
        worker.enqueue(b)

    async def failed_a_few() -> bool:
        return worker.attempts >= 3

    await _run(worker, failed_a_few)
    assert worker.last_error is not None and "AL1703" in worker.last_error
    assert "forbidden" in worker.last_error
    states = [b.state for b in await store.listing("market")]
    assert states == [RECORDED, RECORDED]  # nothing skipped, nothing anchored out of order
    async with setup.engine.connect() as conn:
        from sqlalchemy import text

        row = (
            await conn.execute(
                text("SELECT attempts, last_error FROM anchors ORDER BY batch_id LIMIT 1")
            )
        ).first()
    assert row is not None and row[0] >= 2 and "forbidden" in row[1]


async def test_follower_finalizes_from_events_and_resumes_from_its_checkpoint(setup: Setup) -> None:
    setup, store, batches = await _record(setup, 20, 10)
    ledger = FakeAnchorLedger()
    for b in batches:
        await ledger.submit_batch(b.record.to_json())
    finalized: list[StoredBatch] = []
    follower = Follower(store, ledger, on_change=finalized.append, clock=lambda: 9)
    await follower.load()
    assert follower.position == Checkpoint(0)
    await follower.handle(ledger.events[0])
    assert [b.batch_id for b in finalized] == ["market/1"]
    assert (
        await store.cursor("follower:anchorline/anchorline")
        == Checkpoint(ledger.events[0].block_number, ledger.events[0].tx_id).to_json()
    )
    # Restart: a new follower resumes after the first event.
    again = Follower(store, ledger, on_change=finalized.append, clock=lambda: 9)
    await again.load()
    again.start()
    try:
        async with asyncio.timeout(5):
            while len(finalized) < 2:  # noqa: ASYNC110 - polling the store is the point
                await asyncio.sleep(0.01)
    finally:
        await again.stop()
    assert [b.batch_id for b in finalized] == ["market/1", "market/2"]
    assert again.events_seen == 1
    assert [b.state for b in await store.listing("market")] == [FINALIZED, FINALIZED]


async def test_follower_flags_a_batch_anchored_with_another_root(setup: Setup) -> None:
    setup, store, batches = await _record(setup, 10, 10)
    ledger = FakeAnchorLedger()
    forged = {**batches[0].record.to_json(), "root": "ee" * 32}
    await ledger.submit_batch(forged)
    follower = Follower(store, ledger, on_change=lambda b: None, clock=lambda: 9)
    await follower.load()
    await follower.handle(ledger.events[0])
    assert follower.mismatches == 1
    assert [b.state for b in await store.listing("market")] == [RECORDED]


class _Publisher:
    def __init__(self) -> None:
        self.changes: list[StatusChange] = []

    def publish_status(self, change: StatusChange) -> None:
        self.changes.append(change)


async def test_service_pushes_statuses_and_sheds_load_at_the_backlog_limit(setup: Setup) -> None:
    store = BatchStore(setup.engine)
    ledger = FakeAnchorLedger()
    ledger.unavailable = 10**9  # the ledger is down
    publisher = _Publisher()
    service = AnchoringService(
        AnchoringSettings(
            batch_max_events=5,
            batch_max_ms=10,
            backlog_limit_events=12,
            retry_initial_ms=1,
            retry_max_ms=5,
        ),
        store=store,
        events=setup.events,
        ledger=ledger,
        identity=setup.gateway,
        publisher=publisher,
        follow=False,
    )
    await service.start()
    try:
        stored = await setup.events.after("market", 0, 1)
        assert stored == []
        await add_events(setup, "market", 12)
        service.on_committed(
            [Committed(e, None) for e in await setup.events.after("market", 0, 100)]
        )
        assert service.backlog == 12
        with pytest.raises(BacklogFull) as info:
            service.admit(None)  # type: ignore[arg-type]
        assert info.value.code == "AL1701" and info.value.http_status == 503
        async with asyncio.timeout(5):
            while not service.status()["channels"].get("market", {}).get("last_error"):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        status = service.status()
        assert status["backlog_events"] == 12 and status["refused_events"] == 1
        assert "no orderers" in (status["channels"]["market"]["last_error"] or "")
        assert publisher.changes == []  # nothing confirmed while the ledger is down
        ledger.unavailable = 0
        async with asyncio.timeout(5):
            while service.backlog:  # noqa: ASYNC110 - polling the store is the point
                await asyncio.sleep(0.01)
        service.admit(None)  # type: ignore[arg-type]  # accepted again
    finally:
        await service.stop()
    finalized = [c for c in publisher.changes if c.status == FINALIZED]
    assert sorted(s for c in finalized for s in c.seqs) == list(range(1, 13))
    assert all(c.block_number is not None and c.tx_id for c in finalized)
    assert [c.status for c in publisher.changes][:2] == [CONFIRMED, FINALIZED]
