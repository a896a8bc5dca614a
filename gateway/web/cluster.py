"""This process among the others: health fields, metrics and the graceful stop.

``install(app)`` (the app factory) adds:

- the fields ``/healthz`` shows beside its own — ``pid``, ``draining``,
  ``anchor_lease`` (``held``, ``standby``, or ``single`` when the store is not
  shared), the lease's ``epoch``, and the PostgreSQL pool — and the same as
  gauges on ``/metrics``; ``/healthz`` answers 503 while draining, so a
  balancer stops sending clients here;
- the graceful stop, on the app's shutdown (SIGTERM in ``anchorline gateway
  run``; aiohttp has stopped listening by then): the commit queue is drained
  (queued events are stored and acknowledged; new ones are refused with
  AL1606 "retry on another gateway"), each client gets a ``reconnect`` event
  ``{reason, code}`` and is disconnected, so it reconnects through the
  balancer to another process and resumes. The trust path then stops and the
  anchor lease is released (``gateway.web.proofs``), so another process takes
  over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.anchoring.leader import AnchorLeader
from gateway.clock import now_ms
from gateway.context import CONTEXT
from gateway.stream.frames import event_packet

log = logging.getLogger(__name__)

#: Several gateways on one PostgreSQL: the trust path runs while this process holds
#: the anchor lease; ``leader.active`` is its runtime then (set by gateway.web.proofs).
ANCHOR_LEADER: web.AppKey[AnchorLeader[Any]] = web.AppKey("anchorline_anchor_leader", AnchorLeader)


@dataclasses.dataclass
class ProcessState:
    pid: int = dataclasses.field(default_factory=os.getpid)
    started_ms: int = dataclasses.field(default_factory=now_ms)
    draining: bool = False
    # Extra health fields and gauges from other parts (the Redis fan-out's lag).
    probes: list[Callable[[], dict[str, float | int | str | None]]] = dataclasses.field(
        default_factory=list
    )


PROCESS: web.AppKey[ProcessState] = web.AppKey("anchorline_process", ProcessState)


def install(app: web.Application) -> None:
    app[PROCESS] = ProcessState()
    app.on_shutdown.append(_drain)


def _lease(app: web.Application) -> dict[str, Any]:
    leader = app.get(ANCHOR_LEADER)
    if leader is None:
        return {"anchor_lease": "single"}
    grant = leader.lease.grant
    return {
        "anchor_lease": "held" if leader.holds else "standby",
        "lease_epoch": grant.epoch if grant is not None and leader.holds else None,
        "lease_terms": leader.terms,
    }


def _pool(app: web.Application) -> dict[str, Any]:
    engine = app[CONTEXT].engine
    pool = engine.pool
    if engine.dialect.name != "postgresql":
        return {}
    size = getattr(pool, "size", None)
    checked = getattr(pool, "checkedout", None)
    return {
        "db_pool_size": size() if callable(size) else None,
        "db_pool_in_use": checked() if callable(checked) else None,
    }


def health(app: web.Application) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, fields)`` this module adds to ``/healthz``."""
    state = app[PROCESS]
    fields: dict[str, Any] = {"pid": state.pid, "draining": state.draining}
    fields.update(_lease(app))
    fields.update(_pool(app))
    for probe in state.probes:
        fields.update(probe())
    return (503 if state.draining else 200), fields


def metrics_lines(app: web.Application) -> list[str]:
    """Prometheus lines for the same facts (numbers only)."""
    _, fields = health(app)
    lease = fields.get("anchor_lease")
    values: dict[str, float] = {
        "anchorline_process_pid": float(fields["pid"]),
        "anchorline_draining": 1.0 if fields["draining"] else 0.0,
        "anchorline_anchor_lease_held": 1.0 if lease in ("held", "single") else 0.0,
    }
    for key, value in fields.items():
        if key.startswith(("db_pool_", "redis_")) and isinstance(value, int | float):
            values[f"anchorline_{key}"] = float(value)
    lines: list[str] = []
    for name, value in values.items():
        lines += [f"# TYPE {name} gauge", f"{name} {value:g}"]
    return lines


async def _drain(app: web.Application) -> None:
    ctx = app[CONTEXT]
    state = app[PROCESS]
    state.draining = True
    started = time.monotonic()
    queued = ctx.pipeline.depth
    await ctx.pipeline.stop()
    await asyncio.sleep(0)  # the last commit's acks are written on the next loop turn
    packet = event_packet(
        "reconnect",
        {
            "reason": "this gateway is stopping: reconnect (to another one) and resume",
            "code": "AL1606",
        },
    )
    from gateway.app import SOCKET_SERVER  # the app module imports this one

    server = app[SOCKET_SERVER]
    clients = list(ctx.hub.connections.values())
    # Engine.IO sessions the hub does not know yet (caught in their handshake) would
    # otherwise hold the stop until the heartbeat timeout.
    pending = [
        sock
        for eio_sid, sock in list(getattr(server.eio, "sockets", {}).items())
        if eio_sid not in ctx.hub.connections
    ]
    for conn in clients:
        if not conn.closed:
            conn.write(packet)
            # The connection is cut (after what is buffered), not ended by a Socket.IO
            # disconnect: a client ended by the server would not reconnect by itself.
            if conn.transport is not None:
                conn.transport.close()
    for conn in clients:
        # The server's side of each connection ends now, not at the heartbeat timeout.
        with contextlib.suppress(KeyError, ValueError, OSError):
            await server.disconnect(conn.sid)
    for sock in pending:
        with contextlib.suppress(Exception):
            await sock.close(wait=False, abort=True)
    log.info(
        "stopping: %d queued event(s) committed, %d client(s) told to reconnect, %d "
        "half-open session(s) closed, in %.0f ms",
        queued,
        len(clients),
        len(pending),
        (time.monotonic() - started) * 1000,
    )
