"""The trust path end to end on the embedded ledger: batches, anchors, statuses, proofs,
the auditor's verify and audit, a stalled ordering stage, the backlog limit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.anchoring.audit import audit_channel, verify_on_ledger
from gateway.anchoring.checkpoint import EcdsaNoteVerifier, verify_checkpoint
from gateway.anchoring.outbox import BatchStore
from gateway.anchoring.proof import EventProof, verify_offline
from gateway.client.errors import GatewayRefused
from gateway.context import CONTEXT
from gateway.merkle.hashing import RFC6962_SHA256
from gateway.merkle.verify import verify_consistency
from gateway.store.events import EventRepository
from tests.integration.anchoring.faults import OrderingFault
from tests.integration.anchoring.support import (
    EmbeddedWorld,
    clients,
    emit_many,
    open_world,
    running_gateway,
    status_counts,
    wait_finalized,
)

REPO = Path(__file__).resolve().parents[3]


async def _verify_all(world: EmbeddedWorld, gw_app: object, channel: str, count: int) -> int:
    """Every proof of the channel verifies offline; the ledger checks (done by
    ``anchorline verify``) pass for each batch, through the Org3 auditor's own peer."""
    from aiohttp import web

    assert isinstance(gw_app, web.Application)
    from gateway.context import ANCHORING

    evidence = gw_app[ANCHORING].evidence
    trust = world.trust()
    auditor = world.auditor_ledger()
    checked_batches: set[str] = set()
    try:
        for seq in range(1, count + 1):
            proof = EventProof.from_json(
                json.dumps((await evidence.event_proof(channel, seq)).to_json())
            )
            verdict = verify_offline(proof, trust, gateway_msp="Org1MSP")
            assert verdict.ok, f"seq {seq}:\n{verdict.summary()}"
            if proof.batch.batch_id not in checked_batches:
                checks = await verify_on_ledger(proof, auditor)
                assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
                checked_batches.add(proof.batch.batch_id)
    finally:
        await auditor.close()
    return len(checked_batches)


@pytest.mark.slow
async def test_ten_thousand_events_from_several_clients_all_finalize_and_verify(
    tmp_path: Path,
) -> None:
    world = open_world(tmp_path, members=4, batch_max_events=1000, batch_max_ms=100)
    total = 10_000
    try:
        async with (
            running_gateway(world.settings, world.trust(), lambda _s: world.connection()) as gw,
            clients(gw.url, world.members, "market") as members,
        ):
            seqs = await emit_many(members, "market", total, window=128)
            assert sorted(seqs) == list(range(1, total + 1))
            await wait_finalized(gw.app, "market", total, timeout=120)
            assert await status_counts(gw.app, "market") == {"pending": 0, "finalized": total}

            # Proofs over HTTP, as an auditor gets them.
            for seq in (1, 2, 999, 1000, 1001, 5000, total):
                doc = await members[1].get(f"/events/market/{seq}/proof")
                verdict = verify_offline(EventProof.from_json(doc), world.trust())
                assert verdict.ok, verdict.summary()

            batches = await _verify_all(world, gw.app, "market", total)
            assert batches >= total // 1000

            ck = await members[0].get("/channels/market/checkpoint?format=json")
            assert ck["size"] == total
            verifier = EcdsaNoteVerifier.from_key_string(ck["verifier_key"])
            checkpoint = verify_checkpoint(ck["checkpoint"], [verifier], origin=ck["origin"])
            cons = await members[0].get(f"/channels/market/consistency?from=1234&to={total}")
            verify_consistency(
                RFC6962_SHA256,
                1234,
                total,
                [bytes.fromhex(h) for h in cons["proof"]],
                bytes.fromhex(cons["root1"]),
                checkpoint.root_hash,
            )
            status = await members[0].get("/anchoring/status")
            assert status["backlog_events"] == 0
            assert status["channels"]["market"]["finalized_upto"] == total
    finally:
        await world.ledger.close()


async def _seed(world: EmbeddedWorld, channel: str, count: int) -> None:
    connect = lambda _s: world.connection()  # noqa: E731
    async with (
        running_gateway(world.settings, world.trust(), connect) as gw,
        clients(gw.url, world.members, channel) as members,
    ):
        await emit_many(members, channel, count)
        await wait_finalized(gw.app, channel, count, timeout=30)


def _sqlite(world: EmbeddedWorld, *statements: str) -> None:
    import sqlite3

    db = sqlite3.connect(world.settings.home / "events.db")
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


async def _audit(world: EmbeddedWorld, channel: str) -> object:
    from gateway.store.engine import create_engine

    engine = create_engine(f"sqlite:///{world.settings.home / 'events.db'}")
    auditor = world.auditor_ledger()
    try:
        return await audit_channel(channel, BatchStore(engine), EventRepository(engine), auditor)
    finally:
        await auditor.close()
        await engine.dispose()


async def test_audit_passes_then_catches_an_event_altered_in_the_database(
    tmp_path: Path,
) -> None:
    world = open_world(tmp_path, batch_max_events=40)
    try:
        await _seed(world, "audit", 200)
        report = await _audit(world, "audit")
        assert report.ok, report.summary()  # type: ignore[attr-defined]
        assert report.checked_events == 200  # type: ignore[attr-defined]
        # Someone with database access changes one stored event (the table refuses
        # UPDATE, so they drop the guard first).
        _sqlite(
            world,
            "DROP TRIGGER events_no_update",
            "UPDATE events SET body = CAST(replace(body, '\"n\":', '\"n\":9') AS BLOB) "
            "WHERE channel = 'audit' AND seq = 77",
        )
        report = await _audit(world, "audit")
        assert not report.ok  # type: ignore[attr-defined]
        assert report.altered_events == [77], report.summary()  # type: ignore[attr-defined]
        assert "ALTERED events (seq): 77" in report.summary()  # type: ignore[attr-defined]
    finally:
        await world.ledger.close()


async def test_audit_catches_a_batch_deleted_from_the_database(tmp_path: Path) -> None:
    world = open_world(tmp_path, batch_max_events=40)
    try:
        await _seed(world, "audit", 200)
        _sqlite(
            world,
            "DELETE FROM event_statuses WHERE batch_id = "
            "(SELECT id FROM batches WHERE channel = 'audit' AND number = 3)",
            "DELETE FROM batch_leaves WHERE batch_id = "
            "(SELECT id FROM batches WHERE channel = 'audit' AND number = 3)",
            "DELETE FROM anchors WHERE batch_id = "
            "(SELECT id FROM batches WHERE channel = 'audit' AND number = 3)",
            "DELETE FROM batches WHERE channel = 'audit' AND number = 3",
        )
        report = await _audit(world, "audit")
        assert not report.ok  # type: ignore[attr-defined]
        assert [b.split(" ")[0] for b in report.missing_batches] == ["audit/3"]  # type: ignore[attr-defined]
        assert "MISSING from the store" in report.summary()  # type: ignore[attr-defined]
    finally:
        await world.ledger.close()


def _cli(world: EmbeddedWorld, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANCHORLINE_HOME": str(world.settings.home),
        "ANCHORLINE_LEDGER_EMBEDDED_CONTRACTS": "chaincode.anchorline:CONTRACTS",
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_verify_and_audit_against_the_embedded_ledger(tmp_path: Path) -> None:
    world = open_world(tmp_path, batch_max_events=25)
    try:
        async with (
            running_gateway(world.settings, world.trust(), lambda _s: world.connection()) as gw,
            clients(gw.url, world.members, "cli") as members,
        ):
            await emit_many(members, "cli", 60)
            await wait_finalized(gw.app, "cli", 60, timeout=30)
            good = await members[0].get("/events/cli/30/proof")
            pending_doc = None
    finally:
        await world.ledger.close()
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(good))
    peer = f"embedded:{world.settings.embedded_dir}"
    run = _cli(world, "verify", str(proof_file), "--msp", str(world.auditor), "--peer", peer)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED: every check holds" in run.stdout
    assert "ok   ledger-chain" in run.stdout and "ok   ledger-block" in run.stdout

    # A proof whose anchor names another block fails the ledger check only.
    moved = json.loads(json.dumps(good))
    moved["anchor"]["block_number"] += 1
    proof_file.write_text(json.dumps(moved))
    run = _cli(world, "verify", str(proof_file), "--msp", str(world.auditor), "--peer", peer)
    assert run.returncode == 1
    assert "FAIL ledger-block" in run.stdout and "NOT VERIFIED" in run.stdout

    # A proof of another payload fails offline.
    forged = json.loads(json.dumps(good))
    forged["event"]["record"]["payload"]["n"] = 12345
    proof_file.write_text(json.dumps(forged))
    run = _cli(world, "verify", str(proof_file), "--msp", str(world.auditor), "--peer", peer)
    assert run.returncode == 1 and "FAIL event-signature" in run.stdout
    assert pending_doc is None

    db = f"sqlite:///{world.settings.home / 'events.db'}"
    audit = ("audit", "cli", "--database-url", db, "--msp", str(world.auditor), "--peer", peer)
    run = _cli(world, *audit)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "AUDIT OK" in run.stdout
    _sqlite(
        world,
        "DROP TRIGGER events_no_update",
        "UPDATE events SET body = CAST(replace(body, '\"n\":', '\"n\":7') AS BLOB) "
        "WHERE channel = 'cli' AND seq = 41",
    )
    run = _cli(world, *audit)
    assert run.returncode == 1
    assert "ALTERED events (seq): 41" in run.stdout and "AUDIT FAILED" in run.stdout


async def test_stalled_ordering_keeps_the_fast_path_then_finalizes_without_gap(
    tmp_path: Path,
) -> None:
    world = open_world(tmp_path, batch_max_events=50, batch_max_ms=30, retry_max_ms=300)
    fault = OrderingFault()
    try:
        async with (
            running_gateway(
                world.settings, world.trust(), lambda _s: world.connection(fault.wrap)
            ) as gw,
            clients(gw.url, world.members, "stall") as members,
        ):
            await emit_many(members, "stall", 100)
            await wait_finalized(gw.app, "stall", 100, timeout=30)
            fault.stalled = True
            seqs = await emit_many(members, "stall", 400)
            assert sorted(seqs) == list(range(101, 501))  # the fast path kept accepting
            await asyncio.sleep(3.0)
            counts = await status_counts(gw.app, "stall")
            assert counts == {"pending": 400, "finalized": 100}, counts
            assert fault.refused >= 2  # the worker kept retrying
            status = await members[0].get("/anchoring/status")
            assert status["backlog_events"] == 400
            stalled = status["channels"]["stall"]
            assert stalled["anchoring_batch"] and stalled["anchoring_for_s"] > 2
            metrics = gw.anchoring.service.metrics_text()
            assert "anchorline_anchoring_backlog_events 400" in metrics
            fault.stalled = False
            await wait_finalized(gw.app, "stall", 500, timeout=30)
            assert await status_counts(gw.app, "stall") == {"pending": 0, "finalized": 500}
        auditor = world.auditor_ledger()
        try:
            from gateway.anchoring.audit import chain, chain_problems

            records = await chain(auditor, "stall")
        finally:
            await auditor.close()
        assert not chain_problems(records)
        assert records[0]["first_seq"] == 1 and records[-1]["last_seq"] == 500
    finally:
        await world.ledger.close()


async def test_backlog_limit_refuses_events_with_a_clear_error(tmp_path: Path) -> None:
    world = open_world(tmp_path, backlog_limit_events=60, batch_max_ms=20)
    fault = OrderingFault()
    fault.stalled = True
    try:
        async with (
            running_gateway(
                world.settings, world.trust(), lambda _s: world.connection(fault.wrap)
            ) as gw,
            clients(gw.url, world.members[:1], "limit") as (member,),
        ):
            accepted = refused = 0
            for k in range(100):
                ack = await member.emit("limit", "bid", {"n": k})
                if ack.ok:
                    accepted += 1
                else:
                    refused += 1
                    assert ack.error is not None and ack.error["code"] == "AL1701"
                    assert "not yet anchored" in ack.error["message"]
            assert accepted == 60 and refused == 40
            fault.stalled = False
            await wait_finalized(gw.app, "limit", 60, timeout=30)
            ack = await member.emit("limit", "bid", {"n": "after"})
            assert ack.ok and ack.seq == 61
    finally:
        await world.ledger.close()


async def test_proof_of_an_unbatched_event_is_refused_until_batched(tmp_path: Path) -> None:
    world = open_world(tmp_path, batch_max_ms=60_000, batch_max_events=1000)
    try:
        async with (
            running_gateway(world.settings, world.trust(), lambda _s: world.connection()) as gw,
            clients(gw.url, world.members[:1], "slow") as (member,),
        ):
            ack = await member.emit("slow", "bid", {"n": 1})
            assert ack.ok
            with pytest.raises(GatewayRefused) as info:
                await member.get("/events/slow/1/proof")
            assert "AL1702" in str(info.value)
            with pytest.raises(GatewayRefused):
                await member.get("/events/slow/2/proof")
            await gw.anchoring.service.batcher.flush()
            await wait_finalized(gw.app, "slow", 1, timeout=30)
            doc = await member.get("/events/slow/1/proof")
            assert doc["status"] == "finalized"
            # Each change was pushed to the channel's subscribers, in order...
            pushed = []
            async with asyncio.timeout(10):
                while not pushed or pushed[-1]["status"] != "finalized":
                    name, data = await member.next_event()
                    if name == "status":
                        pushed.append(data)
            assert [p["status"] for p in pushed] == ["confirmed", "finalized"]
            assert pushed[-1]["seqs"] == [1]
            assert pushed[-1]["block_number"] == doc["anchor"]["block_number"]
            assert pushed[-1]["tx_id"] == doc["anchor"]["tx_id"]
            # ...and a client that comes back reads the current one.
            event = await member.get("/events/slow/1")
            assert event["status"] == "finalized" and event["tx_id"] == doc["anchor"]["tx_id"]
            engine = gw.app[CONTEXT].engine
            async with engine.connect() as conn:
                rows = (await conn.execute(text("SELECT number FROM batches"))).all()
            assert rows == [(1,)]
    finally:
        await world.ledger.close()
