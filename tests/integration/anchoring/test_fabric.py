"""The trust path on the real native Fabric network (3 Raft orderers, 3 orgs): the same
scenarios as on the embedded ledger, plus all orderers stopped for 60 s."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.anchoring.audit import audit_channel, chain, chain_problems, verify_on_ledger
from gateway.anchoring.outbox import BatchStore
from gateway.anchoring.proof import EventProof, verify_offline
from gateway.context import ANCHORING
from gateway.store.engine import create_engine
from gateway.store.events import EventRepository
from network.processes import is_alive, read_pid
from network.profile import NetworkProfile
from tests.conftest import FabricSession
from tests.integration.anchoring.support import (
    FabricWorld,
    clients,
    emit_many,
    fabric_world,
    running_gateway,
    status_counts,
    wait_finalized,
)

pytestmark = pytest.mark.fabric
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def anchorline_cc(deploy_chaincode: Callable[[str, Path], None]) -> str:
    deploy_chaincode("anchorline", REPO / "chaincode")
    return "anchorline"


@pytest.fixture
def world(
    tmp_path: Path,
    fabric_network: NetworkProfile,
    enroll_identity: Callable[..., Path],
    anchorline_cc: str,
) -> FabricWorld:
    return fabric_world(tmp_path, fabric_network, enroll_identity, uuid.uuid4().hex[:8])


def _channel(name: str) -> str:
    # Anchored chains live as long as the session's network: one fresh channel per test.
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.mark.slow
async def test_ten_thousand_events_finalize_and_every_proof_verifies(world: FabricWorld) -> None:
    channel = _channel("market")
    total = 10_000
    connect = lambda _s: world.connection()  # noqa: E731
    async with (
        running_gateway(world.settings, world.trust(), connect) as gw,
        clients(gw.url, world.members, channel) as members,
    ):
        seqs = await emit_many(members, channel, total, window=128)
        assert sorted(seqs) == list(range(1, total + 1))
        await wait_finalized(gw.app, channel, total, timeout=180)
        assert await status_counts(gw.app, channel) == {"pending": 0, "finalized": total}
        evidence = gw.app[ANCHORING].evidence
        auditor = world.auditor_ledger()
        seen: set[str] = set()
        try:
            for seq in range(1, total + 1):
                proof = await evidence.event_proof(channel, seq)
                verdict = verify_offline(proof, world.trust(), gateway_msp="Org1MSP")
                assert verdict.ok, verdict.summary()
                if proof.batch.batch_id not in seen:
                    checks = await verify_on_ledger(proof, auditor)
                    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
                    seen.add(proof.batch.batch_id)
        finally:
            await auditor.close()
        doc = await members[0].get(f"/events/{channel}/4321/proof")
    # The CLI, as an auditor runs it: its own identity, its own org's peer.
    proof_file = world.settings.home / "proof.json"
    proof_file.write_text(json.dumps(doc))
    run = _verify_cli(world, proof_file)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED: every check holds (fabric ledger as Org3MSP)" in run.stdout
    assert EventProof.from_json(doc).anchor is not None


def _verify_cli(world: FabricWorld, proof_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli.main",
            "verify",
            str(proof_file),
            "--msp",
            str(world.auditor),
            "--peer",
            str(world.profile_path),
        ],
        cwd=REPO,
        env={**os.environ, "ANCHORLINE_HOME": str(world.settings.home)},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _audit(world: FabricWorld, channel: str) -> object:
    engine = create_engine(f"sqlite:///{world.settings.home / 'events.db'}")
    auditor = world.auditor_ledger()
    try:
        return await audit_channel(channel, BatchStore(engine), EventRepository(engine), auditor)
    finally:
        await auditor.close()
        await engine.dispose()


def _sqlite(world: FabricWorld, *statements: str) -> None:
    import sqlite3

    db = sqlite3.connect(world.settings.home / "events.db")
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


async def test_audit_catches_an_altered_event_and_a_deleted_batch(world: FabricWorld) -> None:
    channel = _channel("audit")
    world.settings = dataclasses.replace(
        world.settings,
        anchoring=dataclasses.replace(world.settings.anchoring, batch_max_events=40),
    )
    connect = lambda _s: world.connection()  # noqa: E731
    async with (
        running_gateway(world.settings, world.trust(), connect) as gw,
        clients(gw.url, world.members, channel) as members,
    ):
        await emit_many(members, channel, 200)
        await wait_finalized(gw.app, channel, 200, timeout=60)
    report = await _audit(world, channel)
    assert report.ok, report.summary()  # type: ignore[attr-defined]
    _sqlite(
        world,
        "DROP TRIGGER events_no_update",
        "UPDATE events SET body = CAST(replace(body, '\"n\":', '\"n\":9') AS BLOB) "
        f"WHERE channel = '{channel}' AND seq = 77",
    )
    report = await _audit(world, channel)
    assert report.altered_events == [77], report.summary()  # type: ignore[attr-defined]
    number = f"(SELECT id FROM batches WHERE channel = '{channel}' AND number = 3)"
    _sqlite(
        world,
        f"DELETE FROM event_statuses WHERE batch_id = {number}",
        f"DELETE FROM batch_leaves WHERE batch_id = {number}",
        f"DELETE FROM anchors WHERE batch_id = {number}",
        f"DELETE FROM batches WHERE channel = '{channel}' AND number = 3",
    )
    report = await _audit(world, channel)
    assert [b.split(" ")[0] for b in report.missing_batches] == [f"{channel}/3"]  # type: ignore[attr-defined]


@pytest.mark.chaos
@pytest.mark.slow
async def test_all_orderers_stopped_60s_fast_path_keeps_accepting_then_all_finalize(
    world: FabricWorld, fabric_session: FabricSession
) -> None:
    channel = _channel("stall")
    network = fabric_session.network
    connect = lambda _s: world.connection()  # noqa: E731
    async with (
        running_gateway(world.settings, world.trust(), connect) as gw,
        clients(gw.url, world.members, channel) as members,
    ):
        await emit_many(members, channel, 200)
        await wait_finalized(gw.app, channel, 200, timeout=60)
        pids = {}
        for orderer in network.topology.orderers:
            pid = read_pid(network.layout.pid_file(orderer.name))
            assert pid is not None
            os.kill(pid, signal.SIGTERM)
            pids[orderer.name] = pid
        deadline = time.monotonic() + 30
        while any(is_alive(p) for p in pids.values()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        stopped_at = time.monotonic()
        try:
            seqs = await emit_many(members, channel, 1000)
            assert sorted(seqs) == list(range(201, 1201))  # the fast path keeps accepting
            while time.monotonic() - stopped_at < 60:
                counts = await status_counts(gw.app, channel)
                assert counts == {"pending": 1000, "finalized": 200}, counts
                await asyncio.sleep(2)
            status = await members[0].get("/anchoring/status")
            assert status["backlog_events"] == 1000
        finally:
            result = network.up()
        assert set(result.started) == set(pids)
        await wait_finalized(gw.app, channel, 1200, timeout=120)
        assert await status_counts(gw.app, channel) == {"pending": 0, "finalized": 1200}
    auditor = world.auditor_ledger()
    try:
        records = await chain(auditor, channel)
    finally:
        await auditor.close()
    assert not chain_problems(records)
    assert records[0]["first_seq"] == 1 and records[-1]["last_seq"] == 1200
