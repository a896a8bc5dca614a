"""Errors of the Socket.IO adapter."""

from __future__ import annotations

from gateway.errors import AnchorlineError


class UnsupportedEngineIO(AnchorlineError):
    """The installed python-engineio is not the version the adapter's workarounds were
    written against; the gateway refuses to start rather than misbehave."""

    code = "AL1004"
    http_status = 500
