"""A member client leaves no HTTP session open once closed: after a connect that failed, and
after closing while it reconnects to a gateway that has gone (python-engineio closes a
session it made itself only when a connection ends, so these two were left for the
garbage collector to warn about inside some later test)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import aiohttp
import pytest

from gateway.client import MemberClient
from gateway.client.transport import ConnectRefused, SocketTransport
from tests.integration.gateway.support import (
    free_port,
    issue_identities,
    make_settings,
    running_gateway,
)


def _open_sessions() -> list[aiohttp.ClientSession]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed]


async def test_closed_while_reconnecting_to_a_gateway_that_is_gone(tmp_path: Path) -> None:
    ids = issue_identities(tmp_path / "ca")
    before = len(_open_sessions())
    async with running_gateway(make_settings(tmp_path, f"sqlite:///{tmp_path}/e.db"), ids.ca) as gw:
        client = MemberClient.from_msp(gw.url, ids.alice, "Org1MSP")
        await client.login()
        await client.connect()
        assert client.connected
    try:
        # The gateway is gone: give the client time for reconnect attempts that fail.
        for _ in range(50):
            if not client.connected:
                break
            await asyncio.sleep(0.05)
        assert not client.connected
        await asyncio.sleep(1.0)
    finally:
        await client.close()
    assert len(_open_sessions()) == before


async def test_a_connect_that_fails_then_close() -> None:
    before = len(_open_sessions())

    async def ignore(*_args: object) -> None:
        pass

    # Nothing listens there: the WebSocket handshake itself fails.
    transport = SocketTransport(
        f"http://127.0.0.1:{free_port()}",
        auth=lambda: {"token": "t"},
        on_event=ignore,
        on_connect=ignore,
        on_disconnect=ignore,
        reconnect=False,
    )
    try:
        with pytest.raises(ConnectRefused):
            await transport.connect()
    finally:
        await transport.close()
    assert len(_open_sessions()) == before
