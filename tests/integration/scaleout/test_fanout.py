"""Several gateways behind HAProxy, fan-out through Redis: every client sees every event of
its channel once and in order, whichever process stored it; kills and Redis restarts
lose, duplicate and reorder nothing."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from scripts.bench.loopback import Cluster, http_json
from tests.integration.scaleout.support import (
    CountingClient,
    Load,
    World,
    acked_at_least,
    all_delivered,
    check_accounting,
    clients,
    finalized_view,
    run_load,
    wait_for,
    world_cluster,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _delivery_problems(members: list[CountingClient], channel: str, total: int) -> list[str]:
    """What is wrong with what each client saw (empty: all well)."""
    problems = []
    for i, m in enumerate(members):
        raw = m.raw.get(channel, [])
        own = m.own.get(channel, set())
        if raw != sorted(set(raw)):
            problems.append(f"client {i}: out of order or twice: {_first_bad(raw)}")
        missing = set(range(1, total + 1)) - set(raw) - own
        if missing:
            problems.append(f"client {i}: missing {len(missing)}, e.g. {sorted(missing)[:5]}")
    return problems


def _first_bad(raw: list[int]) -> str:
    for a, b in itertools.pairwise(raw):
        if b <= a:
            return f"{a} then {b}"
    return "?"


def _spread(c: Cluster) -> list[int]:
    return [int((gw.health() or {}).get("connected_clients", 0)) for gw in c.gateways]


def _report(
    what: str, load: Load, view: object, members: list[CountingClient], **extra: object
) -> None:
    delivered = sum(len(m.raw.get(load_channel(members), [])) for m in members)
    statuses = sum(m.kinds.get("status", 0) for m in members)
    print(
        f"\n{what}: sent={load.sent} acked={len(load.acked)} stored={view.stored} "  # type: ignore[attr-defined]
        f"delivered={delivered} finalized={view.finalized} status_packets={statuses} "  # type: ignore[attr-defined]
        f"retries={load.retries} errors={load.errors} "
        + " ".join(f"{k}={v}" for k, v in extra.items())
    )


def load_channel(members: list[CountingClient]) -> str:
    return next(iter(members[0].raw), "")


@pytest.mark.parametrize("processes", [2, 3])
async def test_clients_spread_over_gateways_see_every_event_once_in_order(
    tmp_path: Path, world: World, processes: int
) -> None:
    channel = f"spread{processes}"
    with world_cluster(tmp_path / "c", world, processes) as c:
        async with clients(c.url, world, channel, 2 * processes) as members:
            spread = _spread(c)
            polling, _ = http_json(f"{c.url}/socket.io/?EIO=4&transport=polling")
            load = Load()
            await run_load(members, channel, 40, rate_per_client=50, load=load, deadline_s=60)
            total = len(load.acked)
            await wait_for(lambda: all_delivered(members, channel, total), 20, "deliveries")
            view = await wait_for(
                lambda: finalized_view(world.database_url, channel, total), 60, "finalized"
            )
            # Statuses from the anchoring process reach clients on every process.
            await wait_for(lambda: _statuses_everywhere(members), 20, "status packets")
            problems = _delivery_problems(members, channel, total)
            health = [gw.health() or {} for gw in c.gateways]
        _report(f"{processes} gateways", load, view, members, clients_per_gateway=spread)
    assert polling == 400  # the balancer lets WebSocket Socket.IO through only
    assert all(n >= 1 for n in spread), spread  # no sticky sessions needed: spread out
    check_accounting(load, view)
    assert problems == []
    assert [h.get("redis") for h in health] == ["up"] * processes
    assert sum(1 for h in health if h.get("anchor_lease") == "held") == 1


async def test_sigkill_of_a_gateway_that_does_not_anchor_and_a_redis_restart_lose_nothing(
    tmp_path: Path, world: World
) -> None:
    channel = "chaos"
    with world_cluster(tmp_path / "c", world, 2) as c:
        holder = c.holder()
        other = next(gw for gw in c.gateways if gw is not holder)
        async with clients(c.url, world, channel, 6) as members:
            sessions = [m.session.session_id if m.session else None for m in members]
            load = Load()
            task = asyncio.create_task(
                run_load(members, channel, 150, rate_per_client=20, load=load, deadline_s=120)
            )
            await wait_for(lambda: acked_at_least(load, 60), 30, "60 acks")
            other.kill()  # its clients reconnect through the balancer to the holder
            await wait_for(lambda: acked_at_least(load, 150), 40, "150 acks")
            await asyncio.to_thread(other.start)
            assert c.redis is not None
            c.redis.stop()
            redis_down_at = time.monotonic()
            at_stop = len(load.acked)
            await wait_for(lambda: acked_at_least(load, at_stop + 60), 40, "60 acks without Redis")
            await asyncio.to_thread(c.redis.start)
            redis_down_s = time.monotonic() - redis_down_at
            await asyncio.wait_for(task, 150)
            total = len(load.acked)
            await wait_for(lambda: all_delivered(members, channel, total), 30, "deliveries")
            problems = _delivery_problems(members, channel, total)
            reconnects = sum(m.reconnects for m in members)
            same_sessions = [m.session.session_id if m.session else None for m in members]
        view = await wait_for(
            lambda: finalized_view(world.database_url, channel, total), 60, "finalized"
        )
        filled = sum(int((gw.health() or {}).get("redis_gaps_filled", 0)) for gw in c.gateways)
        _report(
            "chaos",
            load,
            view,
            members,
            reconnects=reconnects,
            redis_down_s=round(redis_down_s, 1),
            gaps_filled_from_store=filled,
        )
    check_accounting(load, view)
    assert problems == []
    assert reconnects >= 1
    assert same_sessions == sessions  # resumed without logging in again


async def _statuses_everywhere(members: list[CountingClient]) -> bool:
    return all(m.kinds.get("status", 0) > 0 for m in members)
