"""What a member application imports: log in with an MSP folder, then stream signed events.

::

    client = MemberClient.from_msp("http://127.0.0.1:8080", msp_dir, "Org1MSP")
    # or, with the key in a PKCS#11 token (the folder holds only the certificate):
    # client = MemberClient.from_signer(url, msp_dir, "Org1MSP", pkcs11_signer)
    await client.login()
    await client.connect()
    await client.join("auction-1")
    ack = await client.emit("auction-1", "bid", {"amount": 10})
    async for event in client.events():   # events of joined channels, in order
        ...

After a dropped connection the client reconnects by itself, with a fresh
token when the old one expired, and re-joins every channel with the last
sequence it saw, so the gateway sends what was missed, in order.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ssl as ssl_module
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization

from gateway.client.errors import GatewayRefused
from gateway.client.transport import ConnectRefused, SocketTransport
from gateway.clock import now_ms
from gateway.events.signed import sign_event as sign_event
from gateway.identity.msp import MspFolder, load_msp
from gateway.identity.signing import Signer, sign_message
from gateway.strict_json import EVENT_LIMITS, loads

# Refresh the access token when less than this much of its life is left.
_REFRESH_MARGIN_MS = 30_000


@dataclasses.dataclass(frozen=True)
class Session:
    session_id: str
    token: str
    expires_ms: int
    refresh_token: str
    fingerprint: str
    msp_id: str
    role: str


@dataclasses.dataclass(frozen=True)
class Ack:
    """The gateway's answer to an emitted event."""

    id: str
    seq: int | None
    status: str | None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class MemberClient:
    """A member's connection to one gateway; see the module docstring."""

    def __init__(
        self,
        url: str,
        msp: MspFolder,
        signer: Signer | None = None,
        *,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.msp = msp
        # Verifies an https:// gateway (None: the system's CA store).
        self.ssl = ssl
        # A key kept elsewhere (a PKCS#11 token: gateway.identity.pkcs11) signs for
        # the folder's certificate; otherwise the folder's own keystore key.
        self.signer: Signer = signer if signer is not None else msp.signer()
        self.session: Session | None = None
        self.last_seq: dict[str, int] = {}
        # Seqs of our own acknowledged events not yet passed by last_seq.
        self._own: dict[str, set[int]] = {}
        self._joined: set[str] = set()
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._http: aiohttp.ClientSession | None = None
        self._socket: SocketTransport | None = None
        self._resumed = asyncio.Event()
        self.reconnects = 0

    @classmethod
    def from_msp(
        cls,
        url: str,
        msp_dir: str | Path,
        msp_id: str,
        *,
        ca_bundle: str | Path | None = None,
        ssl: ssl_module.SSLContext | None = None,
    ) -> MemberClient:
        """A client signing with the key of the MSP folder ``msp_dir``.

        For an ``https://`` gateway, ``ca_bundle`` (a PEM file of the CAs that issued
        the gateway's certificate) or a ready ``ssl`` context says whom to trust.
        """
        if ca_bundle is not None and ssl is None:
            ssl = ssl_module.create_default_context(cafile=str(ca_bundle))
        return cls(url, load_msp(msp_dir, msp_id, require_key=True), ssl=ssl)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(ssl=self.ssl) if self.ssl is not None else None
            self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    @classmethod
    def from_signer(
        cls,
        url: str,
        msp_dir: str | Path,
        msp_id: str,
        signer: Signer,
        *,
        ssl: ssl_module.SSLContext | None = None,
    ) -> MemberClient:
        """A client for the certificate in ``msp_dir`` whose key is held by ``signer``
        (e.g. ``open_signer(config, label, expect=...)`` for a key in a token); the
        folder needs no keystore."""
        return cls(url, load_msp(msp_dir, msp_id), signer, ssl=ssl)

    @property
    def certificate_pem(self) -> str:
        return self.msp.identity.certificate.public_bytes(serialization.Encoding.PEM).decode()

    # -- REST --------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._session().post(self.url + path, json=body, headers=headers) as response:
            data = await response.json(content_type=None) if response.status != 204 else None
            if response.status >= 400:
                raise GatewayRefused(
                    str(data.get("code")) if isinstance(data, dict) else str(response.status),
                    str(data.get("message")) if isinstance(data, dict) else response.reason or "",
                    status=response.status,
                )
            return data

    async def get(self, path: str) -> Any:
        """GET a REST path with this session's token; raises :class:`GatewayRefused`."""
        token = self.session.token if self.session else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._session().get(self.url + path, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise GatewayRefused(str(data.get("code")), str(data.get("message")))
            return data

    def _take_session(self, data: dict[str, Any]) -> Session:
        identity = data.get("identity") or {}
        self.session = Session(
            session_id=data["session_id"],
            token=data["token"],
            expires_ms=int(data["expires_at"]),
            refresh_token=data["refresh_token"],
            fingerprint=identity.get("fingerprint", ""),
            msp_id=identity.get("msp_id", ""),
            role=identity.get("role", ""),
        )
        return self.session

    async def login(self) -> Session:
        """Challenge, sign, open a session."""
        challenge = await self._post("/auth/challenge", {"certificate": self.certificate_pem})
        message: str = challenge["challenge"]
        signature = sign_message(self.signer, message.encode("utf-8"))
        data = await self._post(
            "/auth/session",
            {
                "certificate": self.certificate_pem,
                "challenge": message,
                "signature": base64.b64encode(signature).decode("ascii"),
            },
        )
        return self._take_session(data)

    async def refresh(self) -> Session:
        """New tokens from the refresh token; the connection is told about the new token."""
        if self.session is None:
            return await self.login()
        data = await self._post("/auth/refresh", {"refresh_token": self.session.refresh_token})
        session = self._take_session(data)
        if self._socket is not None and self._socket.connected:
            await self._call("refresh", {"token": session.token})
        return session

    # -- Socket.IO ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the live connection; raises :class:`GatewayRefused` when refused."""
        if self.session is None:
            await self.login()
        self._socket = SocketTransport(
            self.url,
            auth=lambda: {"token": self.session.token if self.session else ""},
            on_event=self._on_event,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            ssl=self.ssl,
        )
        try:
            await self._socket.connect()
        except ConnectRefused as exc:
            raise GatewayRefused(exc.code or "AL1500", str(exc)) from None

    async def _on_connect(self) -> None:
        if self._joined:
            # A reconnect: pick up every channel where we left it.
            self.reconnects += 1
            asyncio.get_running_loop().create_task(self._resume())

    async def _resume(self) -> None:
        channels = {c: self.last_seq.get(c, 0) for c in self._joined}
        result = await self._call("resume", {"channels": channels})
        for name, outcome in (result.get("channels") or {}).items():
            if isinstance(outcome, dict) and "last_seq" in outcome:
                self.last_seq[name] = max(self.last_seq.get(name, 0), int(outcome["last_seq"]))
        self._resumed.set()

    async def _on_disconnect(self) -> None:
        self._resumed.clear()
        if self.session is not None and self.session.expires_ms - _REFRESH_MARGIN_MS < (now_ms()):
            # The reconnect's auth callable reads self.session: make it fresh.
            data = await self._post("/auth/refresh", {"refresh_token": self.session.refresh_token})
            self._take_session(data)

    async def wait_resumed(self, timeout: float = 10.0) -> None:
        """After a reconnect, wait until every channel was re-joined and caught up."""
        await asyncio.wait_for(self._resumed.wait(), timeout)

    async def _on_event(self, name: str, data: Any) -> None:
        if name == "event" and isinstance(data, dict):
            channel, seq = data.get("channel"), data.get("seq")
            if isinstance(channel, str) and isinstance(seq, int):
                if seq <= self.last_seq.get(channel, 0):
                    return  # already seen (a catch-up overlapping a live event)
                self.last_seq[channel] = seq
                own = self._own.get(channel)
                if own:
                    if seq in own:
                        own.discard(seq)
                        return  # our own event, sent back by a catch-up
                    own.difference_update([s for s in own if s < seq])
        await self._events.put((name, data))

    async def _call(self, event: str, data: Any, timeout: float = 10.0) -> Any:
        if self._socket is None:
            raise GatewayRefused("AL1506", "not connected: call connect() first")
        result = await self._socket.call(event, data, timeout=timeout)
        if isinstance(result, dict) and isinstance(result.get("error"), dict):
            err = result["error"]
            raise GatewayRefused(str(err.get("code")), str(err.get("message")))
        return result

    async def join(self, channel: str, after: int | None = None) -> dict[str, Any]:
        """Join ``channel``; with ``after``, first receive every event with a higher seq."""
        if after is not None:
            self.last_seq[channel] = after
        result = await self._call("join", {"channel": channel, "after": after})
        self._joined.add(channel)
        if after is None:
            self.last_seq.setdefault(channel, int(result.get("last_seq", 0)))
        return dict(result)

    async def leave(self, channel: str) -> None:
        await self._call("leave", {"channel": channel})
        self._joined.discard(channel)

    async def emit(
        self, channel: str, type: str, payload: Any, *, event_id: str | None = None
    ) -> Ack:
        """Sign and send an event; returns once the gateway stored it (or refused it)."""
        event = sign_event(
            self.signer, channel=channel, type=type, payload=payload, event_id=event_id
        )
        return await self.emit_signed(event)

    async def emit_signed(self, event: dict[str, Any]) -> Ack:
        """Send an already signed event (see :func:`sign_event`)."""
        if self._socket is None:
            raise GatewayRefused("AL1506", "not connected: call connect() first")
        result = await self._socket.call("event", event)
        if not isinstance(result, dict):
            raise GatewayRefused("AL1000", f"unexpected acknowledgement {result!r}")
        seq = result.get("seq")
        if isinstance(seq, int) and seq > self.last_seq.get(event["channel"], 0):
            # Not last_seq: behind a balancer another gateway's event with a lower seq
            # may still be on its way; the own event is skipped when it comes back.
            self._own.setdefault(event["channel"], set()).add(seq)
        return Ack(
            id=str(result.get("id")),
            seq=seq if isinstance(seq, int) else None,
            status=result.get("status"),
            error=result.get("error"),
        )

    async def next_event(self, timeout: float = 10.0) -> tuple[str, Any]:
        """The next server event ``(name, data)``: ``event``, ``status``, ``kicked``…"""
        return await asyncio.wait_for(self._events.get(), timeout)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Stored events of joined channels, in order, forever."""
        while True:
            name, data = await self._events.get()
            if name == "event":
                yield data

    @property
    def connected(self) -> bool:
        return self._socket is not None and self._socket.connected

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._http is not None:
            await self._http.close()
            self._http = None


def event_from_json(raw: bytes) -> dict[str, Any]:
    """Parse a JSON event (a convenience for tools reading stored events)."""
    value = loads(raw, EVENT_LIMITS.around(depth=0, keys=16, size=64 * 1024))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
