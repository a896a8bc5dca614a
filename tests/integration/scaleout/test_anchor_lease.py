"""One anchorer at a time across gateway processes: takeover after SIGKILL, chain intact."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.scaleout.support import (
    Load,
    World,
    acked_at_least,
    check_accounting,
    clients,
    finalized_view,
    run_load,
    wait_for,
    world_cluster,
)

pytestmark = [pytest.mark.postgres, pytest.mark.chaos, pytest.mark.slow]


async def test_sigkill_of_the_lease_holder_under_load_is_taken_over_without_gap_or_fork(
    tmp_path: Path, world: World
) -> None:
    channel = "lease"
    with world_cluster(tmp_path / "cluster", world, 2, redis=False) as c:
        holder = c.holder()
        async with clients(c.url, world, channel, 4) as members:
            load = Load()
            task = asyncio.create_task(
                run_load(members, channel, 60, rate_per_client=40, load=load, deadline_s=90)
            )
            await wait_for(lambda: acked_at_least(load, 60), 30, "60 acknowledged events")
            killed_at = time.monotonic()
            holder.kill()
            successor = await asyncio.to_thread(c.holder, 15.0)
            takeover_s = time.monotonic() - killed_at
            await asyncio.wait_for(task, 120)
        view = await wait_for(
            lambda: finalized_view(world.database_url, channel, len(load.acked)),
            60,
            "every acknowledged event finalized",
        )
    print(
        f"\nsent={load.sent} acked={len(load.acked)} stored={view.stored} "
        f"finalized={view.finalized} batches={len(view.batches)} retries={load.retries} "
        f"errors={load.errors} takeover_s={takeover_s:.2f} "
        f"holder={holder.name}->{successor.name}"
    )
    assert successor is not holder
    assert takeover_s <= 5.0
    check_accounting(load, view)
    # Each batch anchored by one transaction, and no two batches share one.
    txs = [t for t in view.anchor_tx if t]
    assert len(txs) == len(view.batches) == len(set(txs))
