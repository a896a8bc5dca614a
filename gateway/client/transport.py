"""The client's Socket.IO connection (python-socketio's AsyncClient), typed.

The member client library talks to the gateway through this small wrapper
only, so python-socketio stays in one module of the client. python-socketio's
package imports its server classes too (``import socketio`` loads
``socketio.async_server`` and Engine.IO's server), so it is imported when a
connection is made, not when ``gateway.client`` is: an auditor tool that only
verifies proofs loads no Socket.IO code at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from gateway.stream.protocol import SOCKETIO_PATH

if TYPE_CHECKING:
    import socketio

EventHandler = Callable[[str, Any], Awaitable[None]]
StateHandler = Callable[[], Awaitable[None]]


class ConnectRefused(Exception):
    """The gateway refused the Socket.IO connection; ``code`` is its error code."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class SocketTransport:
    """One Socket.IO connection over WebSocket, with automatic reconnection."""

    def __init__(
        self,
        url: str,
        *,
        auth: Callable[[], dict[str, Any]],
        on_event: EventHandler,
        on_connect: StateHandler,
        on_disconnect: StateHandler,
        reconnect: bool = True,
        ssl: SSLContext | None = None,
    ) -> None:
        import socketio  # see the module docstring: not at import time

        self._url = url
        self._auth = auth
        self._client: socketio.AsyncClient = socketio.AsyncClient(
            reconnection=reconnect,
            reconnection_delay=0.2,
            reconnection_delay_max=2,
            logger=False,
            engineio_logger=False,
            # A wss:// gateway verified with the caller's context (its CA bundle).
            websocket_extra_options={"ssl": ssl} if ssl is not None else None,
        )
        self._on_event = on_event
        self._refusal: Any = None

        async def _catch_all(event: str, *args: Any) -> None:
            await on_event(event, args[0] if args else None)

        async def _connect() -> None:
            await on_connect()

        async def _disconnect(*_args: Any) -> None:
            await on_disconnect()

        async def _connect_error(data: Any = None) -> None:
            self._refusal = data

        self._client.on("connect_error", _connect_error)
        self._client.on("*", _catch_all)
        self._client.on("connect", _connect)
        self._client.on("disconnect", _disconnect)

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect (WebSocket only); raises :class:`ConnectRefused` if the gateway says no."""
        import socketio

        self._refusal = None
        try:
            await self._client.connect(
                self._url,
                auth=lambda: self._auth(),
                transports=["websocket"],
                socketio_path=SOCKETIO_PATH,
                wait_timeout=timeout,
                retry=False,
            )
        except socketio.exceptions.ConnectionError as exc:
            refusal = self._refusal if isinstance(self._refusal, dict) else {}
            details = refusal.get("data")
            code = details.get("code") if isinstance(details, dict) else None
            message = str(refusal.get("message") or exc)
            raise ConnectRefused(message, code) from None

    async def call(self, event: str, data: Any, timeout: float = 10.0) -> Any:
        """Emit ``event`` and wait for its acknowledgement."""
        return await self._client.call(event, data, timeout=timeout)

    async def emit(self, event: str, data: Any) -> None:
        """Emit without waiting for an acknowledgement."""
        await self._client.emit(event, data)

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        await self._client.shutdown()
