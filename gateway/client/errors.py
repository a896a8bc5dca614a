"""Errors the client library raises (it reuses the gateway's codes)."""

from __future__ import annotations

from typing import Any

from gateway.errors import AnchorlineError


class GatewayRefused(AnchorlineError):
    """The gateway answered with an error; ``code`` is the gateway's own code."""

    code = "AL1003"
    http_status = 502

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.remote_code = code

    def __str__(self) -> str:
        return f"{self.remote_code}: {self.message}"
