"""A logout is shared across gateway processes within a second: two real gateway
processes on one PostgreSQL (embedded ledger), with Redis (the fan-out's kick) and
without it (the store follower alone). One member, one session, a connection on
each process; the logout on the first kicks the second's connection with the
reason, and every later call with the session's tokens is refused on both."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.client import GatewayRefused, MemberClient
from scripts.bench.loopback import cluster, missing_programs
from tests.integration.gateway.support import PgCluster
from tests.integration.scaleout.support import make_world

pytestmark = pytest.mark.postgres


async def _wait_for(client: MemberClient, name: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {name!r} event within {timeout} s")
        got, data = await client.next_event(timeout=left)
        if got == name:
            return data


async def _logout(url: str, token: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/auth/logout", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 204, await r.text()


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "store-only"])
async def test_a_logout_on_one_process_kicks_and_refuses_on_the_other_within_a_second(
    tmp_path: Path, postgres_cluster: PgCluster, redis: bool
) -> None:
    reason = missing_programs()
    if reason:
        pytest.skip(reason)
    world = make_world(tmp_path / "home", postgres_cluster.new_database(), members=2)
    (rita_msp, rita_org), (alice_msp, alice_org) = world.members
    with cluster(
        tmp_path / "c",
        database_url=world.database_url,
        home=world.home,
        processes=2,
        redis=redis,
        settings=world.settings_env(),
    ) as c:
        gw_a, gw_b = c.gateways
        on_a = MemberClient.from_msp(gw_a.url, rita_msp, rita_org)
        on_b = MemberClient.from_msp(gw_b.url, rita_msp, rita_org)
        alice = MemberClient.from_msp(gw_b.url, alice_msp, alice_org)
        clients = (on_a, on_b, alice)
        try:
            session = await on_a.login()
            on_b.session = session  # the same session, connected to the other process
            for client in clients:
                await client.connect()
                await client.join("board-1")
            # Process B has seen the session alive (connect, join, emit, REST).
            assert (await on_b.emit("board-1", "bid", {"amount": 1})).ok
            await on_b.get("/events/board-1?after=0")

            started = time.monotonic()
            await _logout(gw_a.url, session.token)
            kick = await _wait_for(on_b, "session_expired", 3.0)
            elapsed = time.monotonic() - started
            print(f"\nlogout on A to kick on B ({'redis' if redis else 'store only'}): "
                  f"{elapsed * 1000:.0f} ms")  # fmt: skip
            assert elapsed < 1.0, f"kicked after {elapsed:.2f} s"
            assert kick["reason"] == "revoked" and kick["code"] == "AL1509"
            a_kick = await _wait_for(on_a, "session_expired", 1.0)
            assert a_kick["reason"] == "revoked"
            for _ in range(100):
                if not on_a.connected and not on_b.connected:
                    break
                await asyncio.sleep(0.02)
            assert not on_a.connected and not on_b.connected

            for gw in (gw_a, gw_b):
                on_a.url = gw.url
                on_a.session = session
                with pytest.raises(GatewayRefused) as rest:
                    await on_a.get("/events/board-1?after=0")
                assert rest.value.remote_code == "AL1509"
                with pytest.raises(GatewayRefused) as reconnect:
                    await on_a.connect()
                assert reconnect.value.remote_code == "AL1509"
                with pytest.raises(GatewayRefused) as refresh:
                    await on_a.refresh()
                assert refresh.value.remote_code == "AL1509"
            # The other member carries on, on the process that did not log anyone out.
            assert (await alice.emit("board-1", "bid", {"amount": 2})).ok
        finally:
            for client in clients:
                await client.close()
