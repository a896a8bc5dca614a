"""A stock python-socketio client, long-polling first then upgrading (its default), and
long-polling only: both get acks and broadcasts, in order, like WebSocket clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import socketio

from gateway.client import MemberClient, sign_event
from tests.integration.gateway.support import Identities, make_settings, running_gateway


@pytest.mark.parametrize("transports", [None, ["polling"]], ids=["upgrade", "polling"])
async def test_stock_client(tmp_path: Path, identities: Identities, transports: Any) -> None:
    # A short heartbeat: a polling client's last long-poll is held that long at most.
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'e.db'}", ping_interval_s=1, ping_timeout_s=1
    )
    async with running_gateway(settings, identities.ca) as gw:
        alice = MemberClient.from_msp(gw.url, identities.alice, "Org1MSP")
        bob = MemberClient.from_msp(gw.url, identities.bob, "Org2MSP")
        stock = socketio.AsyncClient(reconnection=False)
        received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        stock.on("event", received.put)
        try:
            await alice.connect()
            await alice.join("wire")
            session = await bob.login()
            await stock.connect(gw.url, auth={"token": session.token}, transports=transports)
            joined = await stock.call("join", {"channel": "wire"}, timeout=5)
            assert joined["joined"] is True
            for n in range(5):
                await alice.emit("wire", "note", {"n": n})
            got = [(await asyncio.wait_for(received.get(), 5))["seq"] for _ in range(5)]
            assert got == [1, 2, 3, 4, 5]
            event = sign_event(bob.signer, channel="wire", type="note", payload={"from": "bob"})
            ack = await stock.call("event", event, timeout=5)
            assert ack == {"id": event["id"], "seq": 6, "status": "pending"}
            name, data = await alice.next_event()
            assert name == "event" and data["seq"] == 6 and data["msp_id"] == "Org2MSP"
        finally:
            await stock.disconnect()
            await alice.close()
            await bob.close()
