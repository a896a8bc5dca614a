"""Batcher and outbox against a real SQLite store: size/time cut, chaining, signing, resume."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError

from gateway.anchoring.batcher import ZERO_ROOT, Batcher
from gateway.anchoring.leaf import leaf_data, leaf_data_from_canonical, leaf_hash
from gateway.anchoring.outbox import BatchStore, StoredBatch
from gateway.anchoring.proof import batch_signing_bytes
from gateway.identity.signing import sha256
from gateway.merkle.hashing import RFC6962_SHA256
from gateway.merkle.tree import root
from tests.unit.anchoring.anchorfakes import Setup, add_events

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    payload=_json,
    seq=st.integers(0, 2**53 - 1),
    signature=st.binary(min_size=1, max_size=80),
    event_id=st.text(min_size=1, max_size=10),
)
def test_leaf_from_canonical_bytes_equals_the_reference_leaf(
    payload: object, seq: int, signature: bytes, event_id: str
) -> None:
    record = {"id": event_id, "channel": "c", "type": "t", "payload": payload, "client_ts": 5}
    canonical = bytes(rfc8785.dumps(record))
    signer = "ab" * 32
    assert leaf_data_from_canonical(
        canonical, seq=seq, signer=signer, signature=signature
    ) == leaf_data(record, seq=seq, signer=signer, signature=signature)


def _batcher(store: BatchStore, setup, out: list[StoredBatch], **kw: int) -> Batcher:  # type: ignore[no-untyped-def]
    return Batcher(
        store,
        setup.events,
        setup.gateway,
        max_events=kw.get("max_events", 10),
        max_ms=kw.get("max_ms", 50),
        on_recorded=out.append,
        clock=lambda: 1,
    )


async def test_batches_close_at_size_then_at_time_and_chain(setup: Setup) -> None:
    store = BatchStore(setup.engine)
    out: list[StoredBatch] = []
    batcher = _batcher(store, setup, out, max_events=10, max_ms=400)
    await batcher.load()
    await batcher.start()
    loop = asyncio.get_running_loop()
    try:
        seqs = await add_events(setup, "market", 25)
        started = loop.time()
        batcher.notify("market", seqs[-1])
        async with asyncio.timeout(5):
            while len(out) < 2:  # noqa: ASYNC110 - polling the store is the point
                await asyncio.sleep(0.005)
        # Two full batches at once; the 5 left wait for the timer.
        assert [b.size for b in out] == [10, 10] and loop.time() - started < 0.4
        async with asyncio.timeout(5):
            while len(out) < 3:  # noqa: ASYNC110 - polling the store is the point
                await asyncio.sleep(0.005)
        assert [b.size for b in out] == [10, 10, 5] and loop.time() - started >= 0.4
    finally:
        await batcher.stop()
    assert [b.number for b in out] == [1, 2, 3]
    assert [(b.first_seq, b.last_seq) for b in out] == [(1, 10), (11, 20), (21, 25)]
    assert out[0].record.prev_root == ZERO_ROOT
    assert out[1].record.prev_root == out[0].root and out[2].record.prev_root == out[1].root
    stored = await store.listing("market")
    assert [b.record for b in stored] == [b.record for b in out]
    events = await setup.events.after("market", 0, 100)
    for batch in stored:
        leaves = await store.leaves(batch)
        expected = [
            leaf_hash(
                {
                    "id": e.id,
                    "channel": e.channel,
                    "type": e.type,
                    "payload": e.payload,
                    "client_ts": e.client_ts,
                },
                seq=e.seq,
                signer=e.signer,
                signature=e.signature,
            )
            for e in events[batch.first_seq - 1 : batch.last_seq]
        ]
        assert leaves == expected
        assert root(RFC6962_SHA256, leaves) == batch.root
        rec = batch.record
        assert rec.batch_id == f"market/{batch.number}" and rec.msp_id == "Org1MSP"
        message = batch_signing_bytes(
            batch_id=rec.batch_id,
            channel=rec.channel,
            root=rec.root,
            leaf_count=rec.leaf_count,
            first_seq=rec.first_seq,
            last_seq=rec.last_seq,
            prev_root=rec.prev_root,
        )
        from gateway.identity.signing import verify

        assert verify(setup.gateway.identity.public_key, message, rec.signature)
        assert sha256(message)  # signed over the documented bytes
        assert (
            json.loads(json.dumps(rec.to_json()))["signature"]
            == base64.b64encode(rec.signature).decode()
        )


async def test_a_restarted_batcher_resumes_without_loss_duplicate_or_reorder(setup: Setup) -> None:
    store = BatchStore(setup.engine)
    out: list[StoredBatch] = []
    first = _batcher(store, setup, out, max_events=10, max_ms=10_000)
    await first.load()
    await first.start()
    await add_events(setup, "market", 13)
    first.notify("market", 13)
    async with asyncio.timeout(5):
        while not out:  # noqa: ASYNC110 - polling
            await asyncio.sleep(0.005)
    await first.stop()  # "crash": three events committed but not batched
    assert [(b.first_seq, b.last_seq) for b in out] == [(1, 10)]
    await add_events(setup, "market", 9, start=13)  # more events while it is down
    again: list[StoredBatch] = []
    second = _batcher(store, setup, again, max_events=10, max_ms=20)
    await second.load()
    assert second.unbatched() == {"market": 12}
    await second.start()
    async with asyncio.timeout(5):
        while len(again) < 2:  # noqa: ASYNC110 - polling
            await asyncio.sleep(0.005)
    await second.stop()
    assert [(b.number, b.first_seq, b.last_seq) for b in again] == [(2, 11, 20), (3, 21, 22)]
    assert again[0].record.prev_root == out[0].root
    # The store refuses a second writer's copy of a batch number (no fork).
    with pytest.raises(IntegrityError):
        await store.record(again[1].record, 3, await store.leaves(again[1]), now_ms=1)


async def test_channels_are_batched_independently(setup: Setup) -> None:
    store = BatchStore(setup.engine)
    out: list[StoredBatch] = []
    batcher = _batcher(store, setup, out, max_events=100, max_ms=20)
    await batcher.load()
    await batcher.start()
    try:
        await add_events(setup, "a", 3)
        batcher.notify("a", 3)
        await add_events(setup, "b", 4, start=100)
        batcher.notify("b", 4)
        async with asyncio.timeout(5):
            while len(out) < 2:  # noqa: ASYNC110 - polling
                await asyncio.sleep(0.005)
    finally:
        await batcher.stop()
    assert sorted((b.channel, b.number, b.size) for b in out) == [("a", 1, 3), ("b", 1, 4)]
