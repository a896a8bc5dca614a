"""Wire constants shared by the gateway's Socket.IO server and the client library.

Imports nothing: the client (:mod:`gateway.client.transport`) reads these
without loading the server.
"""

from __future__ import annotations

from typing import Final

SOCKETIO_PATH: Final = "socket.io"
"""The path Socket.IO is served on (``/socket.io/``)."""
