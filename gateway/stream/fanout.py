"""The seam between the hub and the writes to its subscribers' connections.

The hub decides *what* a channel's subscribers receive (a commit's new
events, a status change) and hands it to a :class:`FanOut`, which decides
*how* it reaches them. :class:`LocalFanOut` is the one-process
implementation: it writes to the connections of this process's rooms,
synchronously, each packet's bytes encoded once. A broker implementation
(several gateway processes) publishes the packets and has its subscriber
call a :class:`LocalFanOut` in every process; it is chosen by the
``gateway.fanout`` setting through :func:`select_fanout`.

Kicks go through the same seam: :meth:`FanOut.kick` ends connections of
one session (a logout) or of one identity (a revoked certificate). The
local fan-out hands the :class:`Kick` to the hub of this process; a broker
publishes it so that every process's hub ends its own connections.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from gateway.errors import ConfigError
from gateway.events.metrics import GatewayMetrics
from gateway.stream.frames import Outgoing

if TYPE_CHECKING:  # the hub owns connections; the fan-out only writes to them
    from gateway.stream.hub import Connection
    from gateway.stream.redis_fanout import EventSource

log = logging.getLogger(__name__)

FANOUT_KINDS = ("local", "redis")


@dataclasses.dataclass(frozen=True, slots=True)
class RoomPacket:
    """One packet for a channel's subscribers.

    ``seq`` is the event's channel sequence, or -1 for a packet outside the
    sequence (a status change), which a subscriber in catch-up receives
    whatever its position. ``origin`` is the local connection that sent the
    event (it gets no copy), or ``None``.
    """

    seq: int
    packet: Outgoing
    origin: object | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Kick:
    """End the connections of ``session_id`` or, when it is None, every connection of
    the identity ``fingerprint``. Subscribers receive ``session_expired`` with
    ``{reason, code, message}`` and are disconnected.

    ``reason`` is ``"revoked"`` (the session was ended: logout) or
    ``"certificate_revoked"`` (the certificate is on its CA's CRL).
    """

    reason: str
    code: str
    message: str
    session_id: str | None = None
    fingerprint: str | None = None


class FanOut(Protocol):
    """Delivers packets to the subscribers of a channel."""

    def wants(self, channel: str) -> bool:
        """Whether packets for ``channel`` may reach anyone: the hub encodes nothing for
        a channel that is not wanted (local: no room here; a broker: always)."""
        ...

    def deliver(self, channel: str, packets: Sequence[RoomPacket]) -> None:
        """Write ``packets``, in order, to every subscriber of ``channel`` but each
        packet's origin. Never blocks and never waits for a subscriber."""
        ...

    def kick(self, kick: Kick) -> None:
        """End the connections ``kick`` names, in every process this fan-out reaches."""
        ...


class LocalFanOut:
    """Writes to the connections of this process's rooms.

    A subscriber still in catch-up for the channel gets the packets held
    back (the hub sends them after the stored ones); one whose socket buffer
    grows past ``buffer_limit`` bytes, or that has more than ``held_limit``
    packets held back, is handed to ``on_slow``.
    """

    def __init__(
        self,
        rooms: Mapping[str, Mapping[str, Connection]],
        *,
        buffer_limit: int,
        metrics: GatewayMetrics,
        on_slow: Callable[[Connection], None],
        held_limit: int = 20000,
        on_kick: Callable[[Kick], object] | None = None,
    ) -> None:
        self._rooms = rooms
        self._limit = buffer_limit
        self._held_limit = held_limit
        self._metrics = metrics
        self._on_slow = on_slow
        self._on_kick = on_kick

    def kick(self, kick: Kick) -> None:
        """Hand ``kick`` to this process's hub (``on_kick``), which ends the connections."""
        if self._on_kick is not None:
            self._on_kick(kick)

    def wants(self, channel: str) -> bool:
        return bool(self._rooms.get(channel))

    def deliver(self, channel: str, packets: Sequence[RoomPacket]) -> None:
        room = self._rooms.get(channel)
        if not room or not packets:
            return
        origins = {id(p.origin) for p in packets if p.origin is not None}
        everything = [p.packet for p in packets]
        joined = b"".join(p.frame for p in everything)
        delivered = 0
        slow: list[Connection] = []
        first = packets[0].seq
        top = max(p.seq for p in packets)
        for conn in room.values():
            # The senders among the members get the others' events only; a member
            # whose catch-up went past some of these gets the newer ones only.
            position = conn.positions.get(channel, -1) if top >= 0 else -1
            if position >= first:
                mine: list[tuple[int, Outgoing]] | None = [
                    (p.seq, p.packet)
                    for p in packets
                    if p.origin is not conn and (p.seq < 0 or p.seq > position)
                ]
            elif id(conn) in origins:
                mine = [(p.seq, p.packet) for p in packets if p.origin is not conn]
            else:
                mine = None
            if top >= 0 and channel in conn.positions and top > position:
                conn.positions[channel] = top
            if conn.buffering is not None and channel in conn.buffering:
                held = conn.buffering[channel]
                held.extend(mine if mine is not None else ((p.seq, p.packet) for p in packets))
                if len(held) > self._held_limit:
                    slow.append(conn)
                continue
            if mine is None:
                backlog = conn.write_many(everything, joined)
                delivered += len(everything)
            elif mine:
                backlog = conn.write_many([p for _, p in mine])
                delivered += len(mine)
            else:
                continue
            if backlog > self._limit:
                slow.append(conn)
        self._metrics.deliveries += delivered
        for conn in slow:
            self._on_slow(conn)


def select_fanout(
    kind: str, local: LocalFanOut, *, redis_url: str = "", events: EventSource | None = None
) -> FanOut:
    """The fan-out named by the ``gateway.fanout`` setting, built over ``local``.

    ``redis`` (several gateway processes, :mod:`gateway.stream.redis_fanout`)
    needs ``redis_url`` and the event store (``events``) to fill gaps from.
    Raises :class:`~gateway.errors.ConfigError` (AL1001) for a kind this
    build does not have, so a misconfigured process fails at start.
    """
    if kind == "local":
        return local
    if kind == "redis":
        from gateway.stream.redis_fanout import RedisFanOut

        if events is None:
            raise ConfigError('gateway.fanout "redis" needs the event store to fill gaps from')
        return RedisFanOut(local, url=redis_url, events=events)
    raise ConfigError(
        f"gateway.fanout: {kind!r} is not available; use one of {', '.join(FANOUT_KINDS)}"
    )


__all__ = ["FANOUT_KINDS", "FanOut", "Kick", "LocalFanOut", "RoomPacket", "select_fanout"]
