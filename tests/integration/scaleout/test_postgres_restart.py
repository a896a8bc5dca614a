"""PostgreSQL restarts under load: clear errors while it is down, nothing acknowledged is
lost, and the gateways resume by themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.bench.loopback import PG_BIN, PgCluster, missing_programs
from tests.integration.scaleout.support import (
    Load,
    acked_at_least,
    all_delivered,
    check_accounting,
    clients,
    finalized_view,
    make_world,
    run_load,
    wait_for,
    world_cluster,
)

pytestmark = [pytest.mark.postgres, pytest.mark.chaos, pytest.mark.slow]


@pytest.fixture
def own_postgres() -> Iterator[PgCluster]:
    """A cluster of this test's own: restarting the session's would disturb the others."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    if missing_programs():
        pytest.skip(missing_programs() or "")
    pg = PgCluster()
    pg.start()
    yield pg
    pg.stop()


async def test_a_postgresql_restart_under_load_loses_nothing_acknowledged(
    tmp_path: Path, own_postgres: PgCluster
) -> None:
    world = make_world(tmp_path / "home", own_postgres.new_database())
    channel = "pgrestart"
    with world_cluster(tmp_path / "c", world, 2) as c:
        async with clients(c.url, world, channel, 4) as members:
            load = Load()
            task = asyncio.create_task(
                run_load(members, channel, 100, rate_per_client=15, load=load, deadline_s=150)
            )
            await wait_for(lambda: acked_at_least(load, 40), 30, "40 acks")
            acked_before = dict(load.acked)
            await asyncio.to_thread(own_postgres.stop_server)
            down_at = time.monotonic()
            await asyncio.sleep(3.0)
            errors_while_down = dict(load.errors)
            await asyncio.to_thread(own_postgres.start_server)
            down_s = time.monotonic() - down_at
            await asyncio.wait_for(task, 160)
            total = len(load.acked)
            await wait_for(lambda: all_delivered(members, channel, total), 30, "deliveries")
        view = await wait_for(
            lambda: finalized_view(world.database_url, channel, total), 90, "finalized"
        )
    delivered = sum(len(m.raw.get(channel, [])) for m in members)
    print(
        f"\npostgres restart: sent={load.sent} acked={total} stored={view.stored} "
        f"delivered={delivered} finalized={view.finalized} down_s={down_s:.1f} "
        f"errors_while_down={errors_while_down} retries={load.retries}"
    )
    assert "AL1606" in errors_while_down  # "could not store events: retry", not silence
    assert all(acked_before[k] == v for k, v in load.acked.items() if k in acked_before)
    check_accounting(load, view)
