"""Fuzz the Socket.IO handler over a raw WebSocket: no crash, no 500, nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.client import MemberClient
from gateway.context import CONTEXT
from tests.integration.gateway.support import (
    Identities,
    RunningGateway,
    make_settings,
    running_gateway,
)


class RawSocket:
    """A Socket.IO v5 client spoken by hand, to send what a library never would."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        self.token = token
        self.http = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.next_ack = 1000

    async def open(self) -> None:
        self.ws = await self.http.ws_connect(self.url)
        opened = await self.ws.receive_str(timeout=5)
        assert opened.startswith("0{")
        await self.ws.send_str("40" + json.dumps({"token": self.token}))
        connected = await self._next_text()
        assert connected.startswith("40{"), connected

    async def _next_text(self) -> str:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed ({msg.type})")
            if msg.data == "2":  # Engine.IO ping
                await self.ws.send_str("3")
                continue
            return str(msg.data)

    async def send(self, frame: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def alive(self) -> bool:
        """Does the gateway still answer a join on this connection?"""
        self.next_ack += 1
        try:
            await self.send(f'42{self.next_ack}["join",{{"channel":"probe"}}]')
            while True:
                text = await self._next_text()
                if text.startswith(f"43{self.next_ack}["):
                    return bool(json.loads(text[len(f"43{self.next_ack}") :])[0]["joined"])
        except (ConnectionError, TimeoutError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()


@pytest.fixture
async def gateway(
    tmp_path: Path, identities: Identities
) -> AsyncIterator[tuple[RunningGateway, str]]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", max_payload_bytes=2048)
    async with running_gateway(settings, identities.ca) as gw:
        client = MemberClient.from_msp(gw.url, identities.alice, "Org1MSP")
        session = await client.login()
        await client.close()
        yield gw, session.token


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=12,
)
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=20), _values),
        "channel": st.one_of(st.just("probe"), st.text(max_size=10), _values),
        "type": st.one_of(st.just("bid"), _values),
        "payload": _values,
        "client_ts": st.one_of(st.integers(min_value=-5, max_value=2**60), _values),
        "signature": st.one_of(st.just("MEUCIQ" + "A" * 90), st.text(max_size=100), _values),
    },
)


def _packet(name: str, args: list[Any], ack: int | None) -> str:
    try:
        body = json.dumps([name, *args])
    except ValueError:
        body = "[]"
    return "42" + ("" if ack is None else str(ack)) + body


_frames = st.one_of(
    st.builds(
        _packet,
        st.sampled_from(["event", "join", "leave", "resume", "refresh", "other", ""]),
        st.lists(st.one_of(_event_like, _values), max_size=3),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
    ),
    st.text(max_size=60).map(lambda t: "42" + t),
    st.text(max_size=60).map(lambda t: "4" + t),
    st.text(max_size=30),
    st.binary(max_size=60),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(_frames, min_size=1, max_size=5))
async def test_fuzzed_socket_frames(gateway: tuple[RunningGateway, str], frames: list[Any]) -> None:
    gw, token = gateway
    raw = RawSocket(gw.url, token)
    try:
        await raw.open()
        for frame in frames:
            await raw.send(frame)
        closes = any(
            isinstance(f, str) and (f[:1] in ("1", "6") or f[:2] in ("41", "44")) for f in frames
        )
        alive = await raw.alive()
        # Only a client's own close or disconnect packet may end its connection.
        assert alive or closes or any(isinstance(f, bytes) for f in frames), frames
    finally:
        await raw.close()
    assert await gw.app[CONTEXT].events.count() == 0
    async with aiohttp.ClientSession() as http, http.get(gw.url + "/healthz") as health:
        assert health.status == 200
