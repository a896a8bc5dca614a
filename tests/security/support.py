"""The arena every security test runs in: a live gateway, a witness, an attacker.

Each test plays one hostile move and then calls :func:`assert_unharmed`,
which checks the three things the suite promises for every threat:
nothing the attacker sent was stored or broadcast, the gateway answers its
health check, and another member (the witness) is still served within its
normal latency (measured before the attack, in the same arena).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from gateway.client import MemberClient
from gateway.context import CONTEXT
from tests.integration.gateway.support import (
    Identities,
    RunningGateway,
    make_settings,
    running_gateway,
)

CHANNEL = "sec"
# "Normal latency" on a loaded 2-core machine: the witness's ack may be this
# many times slower than its median before the attack, and never needs to be
# faster than the floor.
LATENCY_FACTOR = 10.0
LATENCY_FLOOR_S = 0.5


@dataclasses.dataclass
class Arena:
    gw: RunningGateway
    ids: Identities
    witness: MemberClient  # alice, Org1 member
    attacker: MemberClient  # bob, Org2 member
    baseline_s: float
    stored: int = 0  # events stored by the witness (the attacker stores none)
    overloaded: int = 0  # the witness's emits refused as Overloaded (AL1607), then retried

    @property
    def url(self) -> str:
        return self.gw.url

    async def count(self) -> int:
        return int(await self.gw.app[CONTEXT].events.count())

    async def witness_emit(self, channel: str = CHANNEL) -> float:
        """One witness event: its ack latency in seconds (it must be accepted)."""
        started = time.perf_counter()
        body = {"n": self.stored}
        ack = await self.witness.emit(channel, "probe", body)
        for _ in range(20):
            if (ack.error or {}).get("code") != "AL1607":
                break
            # Overloaded says when to come back; a member that does is served. The
            # wait counts in the latency, and the refusals are counted.
            self.overloaded += 1
            await asyncio.sleep(ack.error["retry_after"] / 1000)  # type: ignore[index]
            ack = await self.witness.emit(channel, "probe", body)
        elapsed = time.perf_counter() - started
        assert ack.error is None and ack.status == "pending", ack
        self.stored += 1
        return elapsed


@contextlib.asynccontextmanager
async def arena(tmp_path: Path, ids: Identities, **gateway: Any) -> AsyncIterator[Arena]:
    """A gateway on loopback with ``gateway`` settings, both members joined to ``sec``."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'events.db'}", **gateway)
    # As `anchorline gateway run` sets it: with the default 5 ms a busy event loop makes
    # the store's commit thread wait that long for the GIL at each step, and every
    # member's ack waits for the slow commits (not what a deployed gateway does).
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        async with running_gateway(settings, ids.ca) as gw:
            witness = MemberClient.from_msp(gw.url, ids.alice, "Org1MSP")
            attacker = MemberClient.from_msp(gw.url, ids.bob, "Org2MSP")
            try:
                for member in (witness, attacker):
                    await member.login()
                    await member.connect()
                    await member.join(CHANNEL)
                a = Arena(gw, ids, witness, attacker, baseline_s=0.0)
                a.baseline_s = statistics.median([await a.witness_emit() for _ in range(10)])
                await drain(attacker)
                yield a
            finally:
                await witness.close()
                await attacker.close()
    finally:
        sys.setswitchinterval(switch_interval)


async def drain(member: MemberClient, quiet_s: float = 0.05) -> list[tuple[str, Any]]:
    """Everything the member received until ``quiet_s`` passes without a packet."""
    got: list[tuple[str, Any]] = []
    while True:
        try:
            got.append(await member.next_event(timeout=quiet_s))
        except TimeoutError:
            return got


async def assert_unharmed(a: Arena) -> None:
    """Nothing of the attack stored or broadcast; healthy; the witness served in time."""
    assert await a.count() == a.stored, "the attacker's input was stored"
    seen = await drain(a.witness, quiet_s=0.2)
    broadcast = [d for name, d in seen if name == "event"]
    assert not broadcast, f"the attacker's input was broadcast: {broadcast[:2]}"
    async with aiohttp.ClientSession() as http, http.get(a.url + "/healthz") as health:
        assert health.status == 200, await health.text()
    latency = await a.witness_emit()
    allowed = max(LATENCY_FACTOR * a.baseline_s, LATENCY_FLOOR_S)
    assert latency <= allowed, f"witness ack took {latency:.3f}s (baseline {a.baseline_s:.4f}s)"
    # The witness's own event reached the attacker's connection, if it is still open.
    await drain(a.attacker)


class RawSocket:
    """Socket.IO v5 spoken by hand over a WebSocket, to send what no library would."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.token = token
        self.http = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.next_ack = 100

    async def open(self) -> str:
        """Engine.IO open, Socket.IO connect with the token; returns the connect answer."""
        self.ws = await self.http.ws_connect(self.url)
        opened = await self.ws.receive_str(timeout=5)
        assert opened.startswith("0{"), opened
        await self.ws.send_str("40" + json.dumps({"token": self.token}))
        return await self.text()

    async def text(self, timeout: float = 5.0) -> str:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed ({msg.type})")
            if msg.data == "2":  # Engine.IO ping
                await self.ws.send_str("3")
                continue
            return str(msg.data)

    async def call(self, name: str, args_json: str, timeout: float = 5.0) -> Any:
        """Send ``42<id>["name",<args_json>]`` as written; return the ack's first value."""
        assert self.ws is not None
        self.next_ack += 1
        prefix = f"43{self.next_ack}["
        await self.ws.send_str(f'42{self.next_ack}["{name}",{args_json}]')
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no acknowledgement of {name} within {timeout}s")
            text = await self.text(timeout=left)
            if text.startswith(prefix):
                return json.loads(text[len(prefix) - 1 :])[0]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()
