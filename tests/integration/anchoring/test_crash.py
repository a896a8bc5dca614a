"""A gateway SIGKILLed between recording a batch and anchoring it resumes and anchors each
batch exactly once (subprocess; embedded ledger)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.anchoring.audit import chain, chain_problems
from gateway.anchoring.outbox import BatchStore
from gateway.context import CONTEXT
from tests.integration.anchoring.support import (
    clients,
    emit_many,
    open_world,
    running_gateway,
    status_counts,
    wait_finalized,
)

REPO = Path(__file__).resolve().parents[3]


def _child(home: Path, mode: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.anchoring.crash_child",
            str(home),
            mode,
            str(count),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_line(proc: subprocess.Popen[str], line: str, timeout: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = proc.stdout.readline()
        if got.strip() == line:
            return
        if not got and proc.poll() is not None:
            raise AssertionError(
                f"child exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
    raise AssertionError(f"child did not print {line!r} in {timeout}s")


@pytest.mark.chaos
@pytest.mark.parametrize("mode", ["hang", "after-submit"])
async def test_sigkill_between_recording_and_anchoring_anchors_exactly_once(
    tmp_path: Path, mode: str
) -> None:
    count = 120
    proc = _child(tmp_path, mode, count)
    try:
        if mode == "hang":
            _wait_line(proc, "RECORDED", 60)
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL

    world = open_world(tmp_path, batch_max_ms=20)
    try:
        auditor = world.auditor_ledger()
        before = await chain(auditor, "crash")
        if mode == "hang":
            assert before == []  # recorded, never anchored
        else:
            assert len(before) == 1  # the submit reached the ledger before the kill
        async with running_gateway(
            world.settings, world.trust(), lambda _s: world.connection()
        ) as gw:
            store = BatchStore(gw.app[CONTEXT].engine)
            batches = await store.listing("crash")
            assert batches and batches[0].number == 1
            await wait_finalized(gw.app, "crash", count, timeout=30)
            async with clients(gw.url, world.members[:1], "crash") as members:
                await emit_many(members, "crash", 30)
                await wait_finalized(gw.app, "crash", count + 30, timeout=30)
            assert await status_counts(gw.app, "crash") == {"pending": 0, "finalized": count + 30}
            stored = await store.listing("crash")
            if mode == "after-submit":
                # The batch anchored before the kill kept its transaction: no second anchor.
                assert stored[0].tx_id == before[0]["tx_id"]
        records = await chain(auditor, "crash")
        await auditor.close()
        assert not chain_problems(records)
        ids = [r["batch_id"] for r in records]
        assert ids == [b.batch_id for b in stored]  # each batch once, in order
        assert len(set(ids)) == len(ids)
        assert records[-1]["last_seq"] == count + 30
        assert [r["root"] for r in records] == [b.root.hex() for b in stored]
    finally:
        await world.ledger.close()
