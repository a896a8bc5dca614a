"""SIGKILL at any point: committed blocks and state intact, no half block, height continues."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import transaction_pb2

from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from gateway.ledger.embedded.store import BlockStore
from gateway.ledger.embedded_client import embedded_gateway

REPO = Path(__file__).resolve().parents[4]
CHILD = Path(__file__).with_name("durability_child.py")
VALID = transaction_pb2.TxValidationCode.VALID

pytestmark = pytest.mark.slow


def _start(root: Path, round_no: int, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(root), str(round_no), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _read_acks(child: subprocess.Popen[str], wanted: int, limit_s: float = 30.0) -> list[str]:
    """Lines the child printed, until ``wanted`` acknowledgements or it died."""
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + limit_s
    while len([x for x in lines if not x.startswith("DYING")]) < wanted:
        if time.monotonic() > deadline:
            break
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    return lines


def _kill(child: subprocess.Popen[str]) -> list[str]:
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err[-2000:]
    return [x for x in out.splitlines() if x.strip()]


def _audit(root: Path, acked: list[str]) -> int:
    """Every invariant a reader may rely on after a crash; returns the height."""
    store = BlockStore(root / "ledger.sqlite")
    try:
        height = store.verify_chain()
        # Every acknowledged transaction is there, VALID, in the block it was reported in.
        for line in acked:
            tx_id, block, key = line.split()
            assert store.transaction(tx_id) == (int(block), store.transaction(tx_id)[1], VALID)
            value = store.get("testcc", key)
            assert value is not None and value[0] == key.encode()
        # No trace of a block beyond the height: every index entry, event and state
        # version points into a whole block, at a VALID transaction of it.
        filters: dict[int, bytes] = {}
        for number in range(height):
            block = store.block(number)
            assert block is not None
            filters[number] = bytes(block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
            assert len(filters[number]) == len(block.data.data)
        for key, _, (block_no, tx_no) in store.scan("testcc", "", ""):
            assert block_no < height, key
            assert filters[block_no][tx_no] == VALID, key
        for event in store.events(0, limit_blocks=height + 1):
            assert event.block < height
        return height
    finally:
        store.close()


async def _one_more(root: Path) -> tuple[int, int]:
    ledger = EmbeddedLedger.open(
        EmbeddedConfig(root=root, chaincodes={"testcc": "tests.chaincode.testcc:CONTRACTS"})
    )
    try:
        height = ledger.height
        msp = ledger.ca.identity_dir("Org1", "writer")
        async with embedded_gateway(ledger, msp, org="Org1") as gw:
            result = await gw.network("anchorline").contract("testcc").submit("Put", "after", "1")
        return height, result.block_number
    finally:
        await ledger.close()


def test_sigkill_at_random_moments_keeps_every_acknowledged_block(tmp_path: Path) -> None:
    root = tmp_path / "ledger"
    all_acked: list[str] = []
    heights = []
    for round_no, wanted in enumerate((25, 40, 60)):
        child = _start(root, round_no)
        lines = _read_acks(child, wanted)
        # Kill while the workers are mid-flight (some submissions accepted, not yet committed).
        acked = lines + _kill(child)
        assert len(acked) >= wanted, "the child stopped before being killed"
        all_acked += acked
        heights.append(_audit(root, all_acked))
    assert heights == sorted(heights) and heights[-1] > heights[0]
    height, block = asyncio.run(_one_more(root))
    assert block == height, "the first block after a restart continues the height"


def test_sigkill_inside_the_block_commit_leaves_no_half_block(tmp_path: Path) -> None:
    root = tmp_path / "ledger"
    child = _start(root, 0, "kill-mid-block", "4")
    child.wait(timeout=60)
    lines = _kill(child)
    dying = [x for x in lines if x.startswith("DYING")]
    assert dying, "the child was expected to die inside a block commit"
    half_block = int(dying[0].split()[1])
    acked = [x for x in lines if not x.startswith("DYING")]
    height = _audit(root, acked)
    # The block being written when the process died is not visible at all.
    assert height == half_block
    store = BlockStore(root / "ledger.sqlite")
    try:
        assert store.block(half_block) is None
    finally:
        store.close()
    before, block = asyncio.run(_one_more(root))
    assert before == half_block and block == half_block
