"""Proofs, checkpoints and consistency proofs served from the store; chain link checks."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gateway.anchoring.audit import chain_problems
from gateway.anchoring.batcher import Batcher
from gateway.anchoring.checkpoint import EcdsaNoteSigner, EcdsaNoteVerifier, verify_checkpoint
from gateway.anchoring.errors import BadLogRange, ProofNotReady, StoreDamaged
from gateway.anchoring.evidence import Evidence
from gateway.anchoring.outbox import BatchStore, StoredBatch
from gateway.anchoring.proof import EventProof, verify_offline
from gateway.events.errors import EventNotFound
from gateway.merkle.hashing import RFC6962_SHA256
from gateway.merkle.verify import verify_consistency
from tests.unit.anchoring.anchorfakes import Setup, add_events, record_batches


async def _evidence(
    setup: Setup, events: int, per_batch: int
) -> tuple[Evidence, list[StoredBatch]]:
    store, out = await record_batches(setup, events, per_batch)
    evidence = Evidence(
        store,
        setup.events,
        fabric_channel="anchorline",
        chaincode="anchorline",
        note_signer=EcdsaNoteSigner("gw", setup.gateway.identity.public_key, setup.gateway.signer),
        origin_prefix="anchorline.test",
    )
    return evidence, out


async def test_proofs_follow_the_batch_lifecycle_and_verify_offline(setup: Setup) -> None:
    evidence, batches = await _evidence(setup, 23, 10)
    store = BatchStore(setup.engine)
    proof = await evidence.event_proof("market", 14)
    assert proof.status == "pending" and proof.anchor is None
    assert proof.batch.batch_id == "market/2" and proof.inclusion.index == 3
    trust = setup.ca.trust_store()
    verdict = verify_offline(proof, trust, gateway_msp="Org1MSP")
    assert [c.name for c in verdict.failures] == ["anchor-record"]  # not anchored yet
    confirmed = await store.mark_confirmed(batches[1], "tx-9", now_ms=2)
    assert (await evidence.event_proof("market", 14)).anchor.block_number is None  # type: ignore[union-attr]
    await store.mark_finalized(confirmed, "tx-9", 42, now_ms=3)
    proof = EventProof.from_json((await evidence.event_proof("market", 14)).to_json_text())
    assert proof.status == "finalized"
    assert proof.anchor is not None and (proof.anchor.tx_id, proof.anchor.block_number) == (
        "tx-9",
        42,
    )
    verdict = verify_offline(proof, trust, gateway_msp="Org1MSP")
    assert verdict.ok, verdict.summary()
    with pytest.raises(EventNotFound):
        await evidence.event_proof("market", 99)


async def test_an_unbatched_event_has_no_proof_and_an_altered_one_is_refused(
    setup: Setup,
) -> None:
    evidence, _ = await _evidence(setup, 10, 10)
    await add_events(setup, "market", 1, start=10)
    with pytest.raises(ProofNotReady):
        await evidence.event_proof("market", 11)
    async with setup.engine.begin() as conn:
        if setup.engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER events_no_update"))
        else:
            await conn.execute(text("DROP TRIGGER events_append_only ON events"))
        await conn.exec_driver_sql(
            "UPDATE events SET body = "
            + (
                "CAST(replace(body, '\"n\":4', '\"n\":5') AS BLOB) "
                if setup.engine.dialect.name == "sqlite"
                else "convert_to(replace(convert_from(body, 'UTF8'), '\"n\":4', '\"n\":5'), "
                "'UTF8') "
            )
            + "WHERE seq = 5"
        )
    with pytest.raises(StoreDamaged) as info:
        await evidence.event_proof("market", 5)
    assert "anchorline audit market" in info.value.message


async def test_checkpoints_are_signed_and_consistent_as_the_log_grows(setup: Setup) -> None:
    evidence, _ = await _evidence(setup, 37, 10)
    first = await evidence.checkpoint("market")
    assert first.size == 37 and first.origin == "anchorline.test/market"
    verifier = EcdsaNoteVerifier.from_key_string(evidence.verifier_key("market"))
    assert verify_checkpoint(first.note, [verifier], origin=first.origin).root_hash == first.root
    store = BatchStore(setup.engine)
    batcher = Batcher(
        store,
        setup.events,
        setup.gateway,
        max_events=10,
        max_ms=10_000,
        on_recorded=lambda b: None,
        clock=lambda: 1,
    )
    await batcher.load()
    await add_events(setup, "market", 30, start=37)
    batcher.notify("market", 67)
    await batcher.flush()
    second = await evidence.checkpoint("market")
    assert second.size == 67
    body = await evidence.consistency("market", 37, 67)
    verify_consistency(
        RFC6962_SHA256,
        37,
        67,
        [bytes.fromhex(h) for h in body["proof"]],
        first.root,
        second.root,
    )
    with pytest.raises(BadLogRange):
        await evidence.consistency("market", 10, 68)
    with pytest.raises(BadLogRange):
        await evidence.consistency("market", 0, 5)


def test_chain_problems_name_gaps_forks_and_heights() -> None:
    z = "0" * 64
    good = [
        {
            "batch_id": "c/1",
            "height": 0,
            "prev_root": "",
            "root": "a" * 64,
            "first_seq": 1,
            "last_seq": 5,
        },
        {
            "batch_id": "c/2",
            "height": 1,
            "prev_root": "a" * 64,
            "root": "b" * 64,
            "first_seq": 6,
            "last_seq": 9,
        },
    ]
    assert chain_problems(good) == []
    assert chain_problems([{**good[0], "prev_root": z}, good[1]]) == []
    forked = [good[0], {**good[1], "prev_root": "c" * 64}]
    assert "links to" in chain_problems(forked)[0]
    gapped = [good[0], {**good[1], "first_seq": 7}]
    assert "starts at seq 7" in chain_problems(gapped)[0]
    assert "height" in chain_problems([{**good[0], "height": 1}])[0]
