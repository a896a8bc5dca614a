"""An idle WebSocket costs the gateway aiohttp's two tasks only: Engine.IO's packets go
out without a writer task, and its pings are timers (not tasks) that keep firing."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from gateway.client import MemberClient
from scripts.bench.rawsocket import RawSocketIO
from tests.integration.gateway.support import issue_identities, make_settings, running_gateway

CONNECTIONS = 20


async def _token(url: str, msp: Path, msp_id: str) -> str:
    client = MemberClient.from_msp(url, msp, msp_id)
    try:
        return (await client.login()).token
    finally:
        await client.close()


async def _raw_frame(client: RawSocketIO, timeout: float) -> bytes:
    """The next text frame's payload, pings included (RawSocketIO.frame answers those)."""
    _, b1 = await asyncio.wait_for(client.reader.readexactly(2), timeout)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await client.reader.readexactly(2))
    assert n < 127
    return await client.reader.readexactly(n)


async def test_idle_websockets_need_one_task_each_and_keep_being_pinged(tmp_path: Path) -> None:
    ids = issue_identities(tmp_path / "ca")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", ping_interval_s=1)
    async with running_gateway(settings, ids.ca) as gw:
        token = await _token(gw.url, ids.bob, "Org2MSP")
        await asyncio.sleep(0.2)
        tasks = len(asyncio.all_tasks())
        clients = [await RawSocketIO.connect(gw.url, token) for _ in range(CONNECTIONS)]
        try:
            # Three pings in a row, each answered: the timer re-arms on every pong.
            watched = clients[0]
            for _ in range(3):
                assert await _raw_frame(watched, timeout=5) == b"2"
                watched.send_text("3")
            # Past the first ping, each connection has aiohttp's two tasks (its
            # connection's and its request's) and nothing of Engine.IO's (which had two
            # more each); a few of the gateway's own may come and go meanwhile.
            assert len(asyncio.all_tasks()) - tasks <= 2 * CONNECTIONS + 5
            # And the connection still carries the hub's answers.
            watched.emit("join", {"channel": "idle"}, ack_id=1)
            _, body = await watched.until_ack(1)
            assert body["joined"] is True
        finally:
            for client in clients:
                client.writer.close()
