"""Errors of the Socket.IO adapter."""

from __future__ import annotations

from gateway.errors import AnchorlineError


class UnsupportedEngineIO(AnchorlineError):
    """The installed python-engineio is not the version the adapter's workarounds were
    written against; the gateway refuses to start rather than misbehave."""

    code = "AL1004"
    http_status = 500


class SlowConsumer(AnchorlineError):
    """A client did not read its events fast enough: its unsent output passed the
    gateway's bound, so it is disconnected (after a ``slow_consumer`` notice) and
    resumes from its last seq with ``resume``."""

    code = "AL1005"
    http_status = 503
