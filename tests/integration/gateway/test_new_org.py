"""An organization added while the gateway runs (here: a new org CA of the built-in CA,
as `network add-org` adds one to the profile on Fabric) is trusted within a second:
its members log in and emit without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from aiohttp import web

from gateway.app import REVOCATION, create_app
from gateway.client import GatewayRefused, MemberClient
from gateway.identity.ca import EmbeddedCA
from tests.integration.gateway.support import make_settings


async def test_members_of_an_org_created_after_start_can_log_in(tmp_path: Path) -> None:
    base = make_settings(tmp_path, f"sqlite:///{tmp_path / 'events.db'}")
    settings = dataclasses.replace(base, ledger=dataclasses.replace(base.ledger, kind="embedded"))
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    alice_msp = ca.enroll("Org1", "alice", "member")
    app = create_app(settings)  # trust from the settings: the built-in CA's orgs
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    alice = MemberClient.from_msp(url, alice_msp, "Org1MSP")
    dora: MemberClient | None = None
    try:
        assert app[REVOCATION] is not None
        await alice.connect()
        await alice.join("lobby")
        started = time.monotonic()
        dora_msp = ca.enroll("Org4", "dora", "member")  # creates Org4's CA first
        dora = MemberClient.from_msp(url, dora_msp, "Org4MSP")
        while True:
            try:
                await dora.login()
                break
            except GatewayRefused:
                assert time.monotonic() - started < 2.0, "Org4 not trusted within 2 s"
                await asyncio.sleep(0.05)
        print(f"new org trusted after {(time.monotonic() - started) * 1000:.0f} ms")
        await dora.connect()
        await dora.join("lobby")
        ack = await dora.emit("lobby", "hello", {"from": "Org4"})
        assert ack.ok
        name, event = await alice.next_event()
        assert name == "event" and event["msp_id"] == "Org4MSP"
    finally:
        await alice.close()
        if dora is not None:
            await dora.close()
        await runner.cleanup()
