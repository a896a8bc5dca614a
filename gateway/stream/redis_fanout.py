"""Fan-out between gateway processes through Redis pub/sub; the store stays the truth.

:class:`RedisFanOut` is the :class:`~gateway.stream.fanout.FanOut` of
``gateway.fanout = "redis"``. A packet the hub delivers here (an event this
process committed, a status change) is written to this process's rooms at
once, through :class:`~gateway.stream.fanout.LocalFanOut`, and published on
``anchorline:c:<channel>``; every other process receives it from its pattern
subscription and writes it to its own rooms.

Why pub/sub and not streams: Redis is only the fast path. Every event is in
PostgreSQL with its channel sequence before anyone is told of it, so what a
subscriber needs from the broker is speed, not retention: a stream would
keep a second copy of the log to trim and to resume from, while the store
already answers "what comes after seq n" for any n. Pub/sub costs one
``PUBLISH`` per commit and channel and no memory in Redis.

Order and completeness per channel, whatever Redis does: this process keeps
the last sequence it delivered to each channel (read from the store's heads
at start). An event at exactly the next sequence is delivered; an older one
(a copy) is dropped; a newer one is held, and when the gap has not closed
within ``gap_grace_s`` (publishers on different processes may arrive out of
order) the missing events are read from the store by sequence, delivered,
and then what was held. A Redis restart or a dropped message therefore
costs a short delay, never a loss, a duplicate or a reorder; and once a
second (``tail_check_s``) the channels with subscribers here are compared
with the store's heads, so a lost *last* message is noticed too. While
Redis is unreachable the subscriber reconnects with backoff and the tail
check keeps delivering from the store alone.

Status packets (outside the sequence) are delivered as they come. Kicks (a
session ended, a certificate revoked) and access invalidations (a revoked
grant, a closed auction) are relayed on
``anchorline:ctl`` to every process's authorizer (:meth:`RedisFanOut.relay_invalidations`),
so a member who lost access is kicked from the rooms of every gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.clock import Clock, now_ms
from gateway.errors import ConfigError
from gateway.events.model import StoredEvent
from gateway.stream.fanout import Kick, LocalFanOut, RoomPacket
from gateway.stream.frames import Outgoing, ws_text_frame

log = logging.getLogger(__name__)

PREFIX = "anchorline:c:"
CONTROL = "anchorline:ctl"
# A message on a channel: b"p|<process>|<ms>|<seq> <bytes> <seq> <bytes>…|<packets>", the
# Socket.IO texts of the packets one after the other; seq -1 is a status packet.
_PACKETS = b"p"
_FILL_PAGE = 1000


class EventSource(Protocol):
    """What the fan-out reads from the store (``gateway.store.events.EventRepository``)."""

    async def heads(self) -> dict[str, int]: ...

    async def after(self, channel: str, after_seq: int, limit: int) -> list[StoredEvent]: ...

    async def statuses(self, channel: str, seqs: Sequence[int]) -> dict[int, dict[str, Any]]: ...


def _outgoing(sio: bytes) -> Outgoing:
    return Outgoing(sio.decode("utf-8"), ws_text_frame(b"4" + sio))


def _event_packet(event: StoredEvent, status: str) -> Outgoing:
    body = orjson.dumps(event.to_wire(status))
    return _outgoing(b'2["event",' + body + b"]")


@dataclasses.dataclass
class _Channel:
    delivered: int  # last seq written to this process's room
    held: dict[int, RoomPacket] = dataclasses.field(default_factory=dict)
    filling: asyncio.Task[None] | None = None


@dataclasses.dataclass
class FanOutStats:
    published: int = 0
    received: int = 0
    copies_dropped: int = 0
    gaps_filled: int = 0  # events read from the store because Redis did not bring them
    publish_failures: int = 0
    redis_up: bool = False
    lag_ms: float = 0.0  # commit → delivery here, of the last event from another process


class Invalidator(Protocol):
    """What the relay needs of ``gateway.auth.authorizer.Authorizer``."""

    def on_invalidate(
        self, listener: Callable[[str | None, str | None], Awaitable[None]]
    ) -> None: ...

    async def invalidate(
        self, *, fingerprint: str | None = None, channel: str | None = None
    ) -> None: ...


class RedisFanOut:
    """See the module docstring."""

    def __init__(
        self,
        local: LocalFanOut,
        *,
        url: str,
        events: EventSource,
        gap_grace_s: float = 0.05,
        tail_check_s: float = 1.0,
        clock: Clock = now_ms,
    ) -> None:
        if not url:
            raise ConfigError(
                'gateway.redis_url: set it (redis://host:port/db) to use fanout "redis"'
            )
        self._local = local
        self._url = url
        self._events = events
        self._grace = gap_grace_s
        self._tail_s = tail_check_s
        self._clock = clock
        self.process = secrets.token_hex(6).encode()
        self._channels: dict[str, _Channel] = {}
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: aioredis.Redis | None = None
        self._authorizer: Invalidator | None = None
        # Invalidations from other processes being applied here: not published again.
        self._relayed: list[tuple[str | None, str | None]] = []
        self.stats = FanOutStats()

    def relay_invalidations(self, authorizer: Invalidator) -> None:
        """Publish this process's access invalidations and apply the others'."""
        self._authorizer = authorizer

        async def publish(fingerprint: str | None, channel: str | None) -> None:
            if (fingerprint, channel) in self._relayed:
                self._relayed.remove((fingerprint, channel))
            else:
                body = orjson.dumps({"f": fingerprint, "c": channel})
                self._outbox.put_nowait((CONTROL, b"i|" + self.process + b"|" + body))

        authorizer.on_invalidate(publish)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (a :class:`ConfigError` naming ``gateway.redis_url`` when Redis cannot
        be reached), read where each channel is, start publishing and subscribing."""
        client = aioredis.Redis.from_url(self._url, socket_connect_timeout=3, socket_timeout=5)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise ConfigError(
                f"gateway.redis_url: cannot reach Redis at {safe_url(self._url)}: {exc}"
            ) from None
        self._redis = client
        self.stats.redis_up = True
        for channel, seq in (await self._events.heads()).items():
            self._channels[channel] = _Channel(seq)
        self._tasks = [
            asyncio.create_task(self._publisher(), name="fanout-publish"),
            asyncio.create_task(self._subscriber(), name="fanout-subscribe"),
            asyncio.create_task(self._tail_checks(), name="fanout-tail"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for channel in self._channels.values():
            if channel.filling is not None:
                channel.filling.cancel()
        for task in [*self._tasks, *(c.filling for c in self._channels.values() if c.filling)]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def probe(self) -> dict[str, float | int | str | None]:
        """Fields for ``/healthz`` and ``/metrics``."""
        s = self.stats
        return {
            "redis": "up" if s.redis_up else "down",
            "redis_lag_ms": round(s.lag_ms, 1),
            "redis_published": s.published,
            "redis_received": s.received,
            "redis_gaps_filled": s.gaps_filled,
        }

    # -- the FanOut seam -------------------------------------------------------------------

    def wants(self, channel: str) -> bool:
        return True  # other processes may have subscribers

    def kick(self, kick: Kick) -> None:
        """End the named connections here and, through ``anchorline:ctl``, everywhere."""
        self._local.kick(kick)
        body = orjson.dumps(dataclasses.asdict(kick))
        self._outbox.put_nowait((CONTROL, b"k|" + self.process + b"|" + body))

    def deliver(self, channel: str, packets: Sequence[RoomPacket]) -> None:
        if not packets:
            return
        # One message for all of them (a commit's events in this channel): a PUBLISH
        # per event cost every process, this one included, a message to parse per event.
        self._publish(channel, packets)
        events = [p for p in packets if p.seq >= 0]
        for packet in packets:
            if packet.seq < 0:
                self._local.deliver(channel, [packet])
        if events:
            self._arrive(channel, events)

    # -- ordering --------------------------------------------------------------------------

    def _state(self, channel: str) -> _Channel:
        state = self._channels.get(channel)
        if state is None:
            # A channel new since start: every one of its events came after our heads.
            state = self._channels[channel] = _Channel(0)
        return state

    def _arrive(self, channel: str, packets: Sequence[RoomPacket]) -> None:
        state = self._state(channel)
        if not self._local.wants(channel):
            # Nobody here: nothing to order; a later subscriber catches up from the store.
            state.delivered = max(state.delivered, max(p.seq for p in packets))
            state.held.clear()
            return
        for packet in packets:
            if packet.seq <= state.delivered or packet.seq in state.held:
                self.stats.copies_dropped += 1
            else:
                state.held[packet.seq] = packet
        self._release(channel, state)
        if state.held and state.filling is None:
            state.filling = asyncio.get_running_loop().create_task(self._fill(channel, state))

    def _release(self, channel: str, state: _Channel) -> None:
        ready: list[RoomPacket] = []
        while state.delivered + 1 in state.held:
            state.delivered += 1
            ready.append(state.held.pop(state.delivered))
        if ready:
            self._local.deliver(channel, ready)

    async def _fill(self, channel: str, state: _Channel) -> None:
        """Close the gap before the held packets from the store, after a grace period."""
        try:
            await asyncio.sleep(self._grace)
            while state.held:
                upto = min(state.held) - 1
                if upto <= state.delivered:
                    self._release(channel, state)
                    continue
                before = state.delivered
                await self._from_store(channel, state, upto)
                self._release(channel, state)
                if state.delivered == before:
                    # Not in the store yet (its commit is not visible here): ask again
                    # after a grace period, not in a loop that holds the event loop.
                    await asyncio.sleep(self._grace)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("filling %s from the store failed; retrying", channel, exc_info=True)
            await asyncio.sleep(0.5)
            state.filling = None
            if state.held:
                state.filling = asyncio.get_running_loop().create_task(self._fill(channel, state))
            return
        state.filling = None

    async def _from_store(self, channel: str, state: _Channel, upto: int) -> None:
        if state.held:
            # Held packets are delivered as they are (a local one knows its sender).
            upto = min(upto, min(state.held) - 1)
        while state.delivered < upto:
            page = await self._events.after(
                channel, state.delivered, min(_FILL_PAGE, upto - state.delivered)
            )
            if not page:
                return  # not visible yet: the tail check tries again
            statuses = await self._events.statuses(channel, [e.seq for e in page])
            fresh = [e for e in page if e.seq > state.delivered]
            packets = [
                RoomPacket(
                    e.seq, _event_packet(e, statuses.get(e.seq, {}).get("status", "pending"))
                )
                for e in fresh
            ]
            for packet in packets:
                state.held.pop(packet.seq, None)
            if packets:
                state.delivered = packets[-1].seq
                self.stats.gaps_filled += len(packets)
                self._local.deliver(channel, packets)

    async def _tail_checks(self) -> None:
        while True:
            await asyncio.sleep(self._tail_s)
            try:
                heads = await self._events.heads()
            except Exception:
                log.warning("reading the channels' heads failed", exc_info=True)
                continue
            self._catch_up(heads)

    def _catch_up(self, heads: Mapping[str, int]) -> None:
        for channel, top in heads.items():
            state = self._state(channel)
            if top <= state.delivered:
                continue
            if not self._local.wants(channel):
                state.delivered = top
                continue
            if state.filling is None:
                state.filling = asyncio.get_running_loop().create_task(
                    self._tail(channel, state, top)
                )

    async def _tail(self, channel: str, state: _Channel, top: int) -> None:
        try:
            # Redis may still bring them: give it the grace period first.
            await asyncio.sleep(self._grace)
            await self._from_store(channel, state, top)
            self._release(channel, state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("catching %s up from the store failed", channel, exc_info=True)
        finally:
            state.filling = None
        if state.held:
            state.filling = asyncio.get_running_loop().create_task(self._fill(channel, state))

    # -- Redis -----------------------------------------------------------------------------

    def _publish(self, channel: str, packets: Sequence[RoomPacket]) -> None:
        bodies = [p.packet.sio.encode("utf-8") for p in packets]
        index = b" ".join(
            b"%d %d" % (p.seq, len(body)) for p, body in zip(packets, bodies, strict=True)
        )
        head = b"|".join((_PACKETS, self.process, b"%d" % self._clock(), index))
        self._outbox.put_nowait((PREFIX + channel, b"|".join((head, b"".join(bodies)))))

    async def _publisher(self) -> None:
        while True:
            first = await self._outbox.get()
            batch = [first]
            while not self._outbox.empty() and len(batch) < 512:
                batch.append(self._outbox.get_nowait())
            redis = self._redis
            if redis is None:
                continue
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    for name, body in batch:
                        pipe.publish(name, body)
                    await pipe.execute()
                self.stats.published += len(batch)
            except (RedisError, OSError) as exc:
                # Subscribers elsewhere notice the gap and read the store.
                self.stats.publish_failures += len(batch)
                log.warning("publishing %d packet(s) to Redis failed: %s", len(batch), exc)

    async def _subscriber(self) -> None:
        delay = 0.1
        while True:
            redis = self._redis
            assert redis is not None
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PREFIX + "*")
                await pubsub.subscribe(CONTROL)
                if not self.stats.redis_up:
                    log.info("Redis is back: fan-out resumes (gaps are read from the store)")
                self.stats.redis_up = True
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._received(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.stats.redis_up:
                    log.warning("Redis subscription lost (%s): reconnecting", exc)
                self.stats.redis_up = False
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)

    def _received(self, message: Mapping[str, Any]) -> None:
        name, data = message.get("channel"), message.get("data")
        if not isinstance(name, bytes) or not isinstance(data, bytes):
            return
        if message.get("type") == "message" and name == CONTROL.encode():
            self._control(data)
            return
        if message.get("type") != "pmessage":
            return
        kind, process, stamp, index, bodies = data.split(b"|", 4)
        if process == self.process or kind != _PACKETS:
            return  # ours (delivered here already), or of a format this build does not read
        channel = name[len(PREFIX) :].decode("utf-8")
        numbers = [int(n) for n in index.split()]
        events: list[RoomPacket] = []
        at = 0
        for k in range(0, len(numbers), 2):
            seq, size = numbers[k], numbers[k + 1]
            packet = RoomPacket(seq, _outgoing(bodies[at : at + size]))
            at += size
            self.stats.received += 1
            if seq < 0:
                self._local.deliver(channel, [packet])
            else:
                events.append(packet)
        if events:
            self.stats.lag_ms = float(max(0, self._clock() - int(stamp)))
            self._arrive(channel, events)

    def _control(self, data: bytes) -> None:
        kind, process, body = data.split(b"|", 2)
        if process == self.process:
            return
        if kind == b"k":
            self._local.kick(Kick(**orjson.loads(body)))
            return
        if kind != b"i" or self._authorizer is None:
            return
        what = orjson.loads(body)
        asyncio.get_running_loop().create_task(self._apply(what.get("f"), what.get("c")))

    async def _apply(self, fingerprint: str | None, channel: str | None) -> None:
        assert self._authorizer is not None
        self._relayed.append((fingerprint, channel))
        try:
            await self._authorizer.invalidate(fingerprint=fingerprint, channel=channel)
        except Exception:
            log.exception("applying another gateway's access invalidation failed")


def safe_url(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _creds = head.partition("://")
    return f"{scheme}://***@{tail}"


__all__ = ["PREFIX", "EventSource", "FanOutStats", "RedisFanOut"]
