"""The gateway's own HTTPS/WSS with the member client library, and the client address
behind a trusted proxy: separate rate-limit buckets per real client, a forged
X-Forwarded-For from an untrusted peer ignored."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.client import MemberClient
from gateway.identity.ca import EmbeddedCA
from gateway.web.proxies import TrustedProxies
from gateway.web.tls import server_ssl_context
from tests.integration.gateway.support import make_settings, running_gateway


def _tls_files(ca: EmbeddedCA) -> tuple[Path, Path, Path]:
    msp = ca.enroll("Org1", "gateway-tls", "peer", hosts=("localhost", "127.0.0.1"))
    cert = next((msp / "signcerts").iterdir())
    key = next(p for p in (msp / "keystore").iterdir() if p.name.endswith("_sk"))
    bundle = next((msp / "tlscacerts").iterdir())
    return cert, key, bundle


async def test_https_and_wss_end_to_end_with_the_member_client(tmp_path: Path) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    alice_msp = ca.enroll("Org1", "alice", "member")
    bob_msp = ca.enroll("Org2", "bob", "member")
    cert, key, bundle = _tls_files(ca)
    settings = make_settings(
        tmp_path / "gw",
        f"sqlite:///{tmp_path / 'events.db'}",
        tls_cert_file=str(cert),
        tls_key_file=str(key),
    )
    context = server_ssl_context(settings.gateway)
    assert context is not None
    async with running_gateway(settings, ca, ssl_context=context) as gw:
        assert gw.url.startswith("https://")
        alice = MemberClient.from_msp(gw.url, alice_msp, "Org1MSP", ca_bundle=bundle)
        bob = MemberClient.from_msp(gw.url, bob_msp, "Org2MSP", ca_bundle=bundle)
        stranger = MemberClient.from_msp(gw.url, bob_msp, "Org2MSP")  # system CAs only
        try:
            for c in (alice, bob):
                await c.connect()  # login over HTTPS, Socket.IO over WSS
                await c.join("board-1")
            ack = await alice.emit("board-1", "bid", {"amount": 7})
            assert ack.ok and ack.seq == 1
            name, event = await bob.next_event()
            assert name == "event" and event["payload"] == {"amount": 7}
            page = await bob.get("/events/board-1?after=0")
            assert [e["seq"] for e in page["events"]] == [1]
            # Without the CA bundle the gateway's certificate is not trusted.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await stranger.login()
            # Plain HTTP to the TLS port is refused as well.
            plain = gw.url.replace("https://", "http://")
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(plain + "/healthz") as response:
                        await response.read()
        finally:
            for c in (alice, bob, stranger):
                await c.close()


def test_forwarded_for_is_read_from_the_right_and_only_from_trusted_peers() -> None:
    proxies = TrustedProxies("127.0.0.1/32, 10.0.0.0/8")
    assert proxies.client_address("127.0.0.1", ["203.0.113.9"]) == "203.0.113.9"
    # A client's own (forged) entries are left of what the proxies appended.
    assert proxies.client_address("127.0.0.1", ["6.6.6.6, 203.0.113.9, 10.1.2.3"]) == (
        "203.0.113.9"
    )
    assert proxies.client_address("198.51.100.1", ["6.6.6.6"]) == "198.51.100.1"
    assert proxies.client_address("127.0.0.1", ["junk, 203.0.113.9"]) == "203.0.113.9"
    assert proxies.client_address("127.0.0.1", ["203.0.113.9, junk"]) == "127.0.0.1"
    assert not TrustedProxies("")
    assert TrustedProxies("").client_address("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"


@dataclasses.dataclass
class _Proxy:
    url: str


@contextlib.asynccontextmanager
async def _forwarding_proxy(upstream: str) -> AsyncIterator[_Proxy]:
    """A tiny reverse proxy on loopback that appends the peer to X-Forwarded-For."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        forwarded = [*request.headers.getall("X-Forwarded-For", []), request.remote or ""]
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        headers["X-Forwarded-For"] = ", ".join(filter(None, forwarded))
        async with session.request(
            request.method, upstream + request.path_qs, data=await request.read(), headers=headers
        ) as response:
            body = await response.read()
            return web.Response(body=body, status=response.status, headers=response.headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield _Proxy(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
        await session.close()


async def _challenge_statuses(
    url: str, source: str, count: int, forged: list[str] | None = None
) -> list[int]:
    """POST /auth/challenge ``count`` times from the loopback address ``source``."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    statuses = []
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(count):
            headers = {"X-Forwarded-For": forged[i % len(forged)]} if forged else {}
            async with http.post(
                url + "/auth/challenge", json={"certificate": "x"}, headers=headers
            ) as response:
                statuses.append(response.status)
    return statuses


def _loopback_aliases_work() -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.2", 0))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _loopback_aliases_work(), reason="cannot bind 127.0.0.2 here")
async def test_behind_a_trusted_proxy_each_client_gets_its_own_rate_limit_bucket(
    tmp_path: Path,
) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    ca.create_org("Org1")
    settings = make_settings(
        tmp_path / "gw",
        f"sqlite:///{tmp_path / 'events.db'}",
        trusted_proxies="127.0.0.1/32",
        rate_limit_address_per_min=3,
    )
    async with running_gateway(settings, ca) as gw, _forwarding_proxy(gw.url) as proxy:
        # Client A (127.0.0.2) uses up its bucket through the proxy...
        assert await _challenge_statuses(proxy.url, "127.0.0.2", 4) == [400, 400, 400, 429]
        # ...client B (127.0.0.3) behind the same proxy still has its own.
        assert await _challenge_statuses(proxy.url, "127.0.0.3", 1) == [400]
        # A's forged header is left of the proxy's entry: A is still A.
        assert await _challenge_statuses(proxy.url, "127.0.0.2", 1, ["198.51.100.7"]) == [429]
        # An untrusted peer talking to the gateway directly cannot pick its bucket
        # with X-Forwarded-For: every forged value lands in its own address's bucket.
        forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
        assert await _challenge_statuses(gw.url, "127.0.0.4", 4, forged) == [400, 400, 400, 429]


async def test_a_websocket_through_a_trusted_proxy_opens(tmp_path: Path) -> None:
    """The Socket.IO endpoint runs on the request the proxy middleware rewrote."""
    from gateway.stream.protocol import SOCKETIO_PATH

    ca = EmbeddedCA(tmp_path / "ca")
    ca.create_org("Org1")
    settings = make_settings(
        tmp_path / "gw", f"sqlite:///{tmp_path / 'events.db'}", trusted_proxies="127.0.0.1/32"
    )
    async with running_gateway(settings, ca) as gw, aiohttp.ClientSession() as http:
        path = "/" + SOCKETIO_PATH.strip("/") + "/?EIO=4&transport=websocket"
        async with http.ws_connect(gw.url + path, headers={"X-Forwarded-For": "203.0.113.5"}) as ws:
            opened = await ws.receive_str(timeout=5)
            assert opened.startswith("0{") and '"sid"' in opened
