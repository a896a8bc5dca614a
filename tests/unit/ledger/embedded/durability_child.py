"""Child process for the SIGKILL durability test: writes to an embedded ledger until killed.

Usage: ``python durability_child.py ROOT ROUND [kill-mid-block BLOCK]``. Prints one line
``<tx_id> <block> <key>`` per committed transaction (flushed), so the parent knows what
was acknowledged before it killed us. With ``kill-mid-block BLOCK`` it kills itself with
SIGKILL inside the SQLite transaction that commits block BLOCK, after the block row was
written and before the state writes and the COMMIT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from gateway.identity.errors import IdentityNotFound
from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from gateway.ledger.embedded_client import embedded_gateway

WORKERS = 8
# Bounded even if the parent never kills us.
MAX_SECONDS = 30.0


async def main() -> None:
    root, round_no = Path(sys.argv[1]), sys.argv[2]
    ledger = EmbeddedLedger.open(
        EmbeddedConfig(
            root=root,
            chaincodes={"testcc": "tests.chaincode.testcc:CONTRACTS"},
            batch_max_tx=5,
            batch_timeout_s=0.005,
        )
    )
    if len(sys.argv) > 3 and sys.argv[3] == "kill-mid-block":
        target = int(sys.argv[4])

        def trace(statement: str) -> None:
            if statement.startswith("INSERT OR REPLACE INTO state") and ledger.height >= target:
                print(f"DYING {ledger.height}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

        ledger.store._db.set_trace_callback(trace)
    try:
        msp = ledger.ca.identity_dir("Org1", "writer")
    except IdentityNotFound:
        msp = ledger.ca.enroll("Org1", "writer", "member")
    contract = embedded_gateway(ledger, msp, org="Org1").network("anchorline").contract("testcc")
    stop = time.monotonic() + MAX_SECONDS

    async def worker(w: int) -> None:
        i = 0
        while time.monotonic() < stop:
            key = f"r{round_no}-w{w}-{i}"
            result = await contract.submit("Put", key, key)
            print(f"{result.transaction_id} {result.block_number} {key}", flush=True)
            i += 1

    await asyncio.gather(*(worker(w) for w in range(WORKERS)))
    await ledger.close()


if __name__ == "__main__":
    asyncio.run(main())
