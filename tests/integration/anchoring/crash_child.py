"""Child process of the crash test: a gateway that dies between recording and anchoring.

``python -m tests.integration.anchoring.crash_child HOME MODE COUNT``

- ``hang``: Submit never answers; once a batch is recorded in the outbox the
  child prints ``RECORDED`` and waits to be SIGKILLed by the test.
- ``after-submit``: the first Submit reaches the ledger, its block is cut and
  committed, and the child SIGKILLs itself before it can store the
  transaction id (the resubmission case).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.anchoring.outbox import BatchStore
from gateway.context import CONTEXT
from tests.integration.anchoring.faults import OrderingFault, kill_self
from tests.integration.anchoring.support import clients, emit_many, open_world, running_gateway


async def main(home: Path, mode: str, count: int) -> None:
    world = open_world(home, batch_max_ms=20)
    fault = OrderingFault()
    if mode == "hang":
        fault.hang = True
    else:

        async def die() -> None:
            await world.ledger.flush()
            kill_self()

        fault.after_submit = die
    async with (
        running_gateway(
            world.settings, world.trust(), lambda _s: world.connection(fault.wrap)
        ) as gw,
        clients(gw.url, world.members[:2], "crash") as members,
    ):
        await emit_many(members, "crash", count)
        store = BatchStore(gw.app[CONTEXT].engine)
        for _ in range(500):
            if await store.unfinished("crash"):
                break
            await asyncio.sleep(0.01)
        print("RECORDED", flush=True)
        await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
