"""SIGTERM: a gateway drains, tells its clients to reconnect, hands the lease over, exits 0."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.scaleout.support import (
    Load,
    World,
    check_accounting,
    clients,
    finalized_view,
    run_load,
    wait_for,
    world_cluster,
)

pytestmark = [pytest.mark.postgres, pytest.mark.chaos, pytest.mark.slow]


async def test_sigterm_rolling_restart_of_every_gateway_under_load_loses_nothing(
    tmp_path: Path, world: World
) -> None:
    channel = "rolling"
    handovers: list[float] = []
    exits: list[int | None] = []
    with world_cluster(tmp_path / "cluster", world, 3, redis=False) as c:
        async with clients(c.url, world, channel, 6) as members:
            load = Load()
            task = asyncio.create_task(
                run_load(members, channel, 250, rate_per_client=12, load=load, deadline_s=150)
            )
            for gw in c.gateways:
                # Every stop happens under load (the load outlasts the three restarts).
                assert not task.done(), "the load ended before every gateway restarted"
                await wait_for(lambda: _some(load), 20, "events flowing")
                was_holder = (gw.health() or {}).get("anchor_lease") == "held"
                stopped_at = time.monotonic()
                exits.append(await asyncio.to_thread(gw.stop, 20.0))
                if was_holder:
                    await asyncio.to_thread(c.holder, 10.0)
                    handovers.append(time.monotonic() - stopped_at)
                await asyncio.to_thread(gw.start)
            await asyncio.wait_for(task, 160)
            told = sum(m.kinds.get("reconnect", 0) for m in members)
            reconnects = sum(m.reconnects for m in members)
        view = await wait_for(
            lambda: finalized_view(world.database_url, channel, len(load.acked)), 60, "finalized"
        )
    print(
        f"\nsent={load.sent} acked={len(load.acked)} stored={view.stored} "
        f"finalized={view.finalized} retries={load.retries} errors={load.errors} "
        f"exits={exits} lease_handover_s={[round(h, 2) for h in handovers]} "
        f"told_to_reconnect={told} reconnects={reconnects}"
    )
    assert exits == [0, 0, 0]
    assert load.sent == 6 * 250
    check_accounting(load, view)
    assert reconnects >= 1 and told >= 1
    # The lease moves on: released at SIGTERM (usually well under a second), at worst
    # taken over when it runs out. How fast is measured by scripts/bench/scaleout.py,
    # not here: a loaded CI machine once gave 5.18 s for a first handover.
    assert all(h <= 15.0 for h in handovers)


async def _some(load: Load) -> bool:
    before = len(load.acked)
    await asyncio.sleep(0.5)
    return len(load.acked) > before
