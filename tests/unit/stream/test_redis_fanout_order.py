"""The Redis fan-out's ordering, without Redis: whatever order and losses the broker
brings, a room gets each seq once and in order, gaps filled from the store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.events.model import StoredEvent
from gateway.stream.fanout import Kick, RoomPacket
from gateway.stream.frames import event_packet_raw
from gateway.stream.redis_fanout import RedisFanOut


class Room:
    """Stands in for LocalFanOut: records what reaches the room."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.packets: list[RoomPacket] = []
        self.present = True
        self.kicks: list[Kick] = []

    def kick(self, kick: Kick) -> None:
        self.kicks.append(kick)

    def wants(self, channel: str) -> bool:
        return self.present

    def deliver(self, channel: str, packets: Sequence[RoomPacket]) -> None:
        self.seqs.extend(p.seq for p in packets)
        self.packets.extend(packets)


class Store:
    def __init__(self, top: int) -> None:
        self.top = top
        self.reads = 0

    async def heads(self) -> dict[str, int]:
        return {"c": self.top}

    async def after(self, channel: str, after_seq: int, limit: int) -> list[StoredEvent]:
        self.reads += 1
        return [_event(s) for s in range(after_seq + 1, min(self.top, after_seq + limit) + 1)]

    async def statuses(self, channel: str, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        return {}


def _event(seq: int) -> StoredEvent:
    return StoredEvent(
        channel="c", seq=seq, id=f"e{seq}", type="t", payload=seq, client_ts=1,
        signer="f" * 64, msp_id="Org1MSP", signature=b"s", canonical=b"{}", received_at_ms=1,
    )  # fmt: skip


def _packet(seq: int) -> RoomPacket:
    return RoomPacket(seq, event_packet_raw("event", orjson.dumps(_event(seq).to_wire())))


def _published(sender: RedisFanOut, packets: Sequence[RoomPacket]) -> dict[str, Any]:
    """What ``sender`` publishes for ``packets``, as the other processes receive it."""
    sender.deliver("c", packets)
    name, data = sender._outbox.get_nowait()
    assert sender._outbox.empty()  # one message for all of them
    return {"type": "pmessage", "channel": name.encode(), "data": data}


def _sender() -> RedisFanOut:
    """Another process's fan-out, with nobody in its room (it only publishes)."""
    room = Room()
    room.present = False
    return _fanout(room, Store(0))


def _message(fanout: RedisFanOut, seq: int, process: bytes = b"other") -> dict[str, Any]:
    sender = _sender()
    sender.process = process
    return _published(sender, [_packet(seq)])


def _fanout(room: Room, store: Store) -> RedisFanOut:
    fanout = RedisFanOut(room, url="redis://unused", events=store, gap_grace_s=0.01)  # type: ignore[arg-type]
    fanout._channels["c"] = type(fanout._state("c"))(store.top)
    return fanout


async def test_reordered_and_repeated_messages_are_delivered_once_in_order() -> None:
    room, store = Room(), Store(0)
    fanout = _fanout(room, store)
    for seq in (1, 3, 2, 2, 1, 4):
        fanout._received(_message(fanout, seq))
    assert room.seqs == [1, 2, 3, 4]
    assert fanout.stats.copies_dropped == 2
    assert store.reads == 0


async def test_a_lost_message_is_read_from_the_store_before_the_later_ones() -> None:
    room, store = Room(), Store(0)
    fanout = _fanout(room, store)
    store.top = 5
    for seq in (1, 2, 4, 5):  # 3 never comes
        fanout._received(_message(fanout, seq))
    assert room.seqs == [1, 2]
    await asyncio.sleep(0.1)
    assert room.seqs == [1, 2, 3, 4, 5]
    assert fanout.stats.gaps_filled == 1
    fanout._received(_message(fanout, 3))  # late copy
    assert room.seqs == [1, 2, 3, 4, 5]


async def test_a_lost_last_message_is_caught_up_by_the_tail_check() -> None:
    room, store = Room(), Store(2)
    fanout = _fanout(room, store)
    store.top = 4  # 3 and 4 stored; Redis brought neither
    fanout._catch_up(await store.heads())
    await asyncio.sleep(0.1)
    assert room.seqs == [3, 4]


async def test_own_messages_coming_back_are_ignored() -> None:
    room, store = Room(), Store(0)
    fanout = _fanout(room, store)
    fanout._received(_message(fanout, 1, process=fanout.process))
    assert room.seqs == [] and fanout.stats.received == 0


async def test_an_access_invalidation_reaches_the_other_process_once() -> None:
    from gateway.auth.authorizer import Authorizer, ConfigPolicy

    here, there = (
        Authorizer([ConfigPolicy("*=member", "member")], 30),
        Authorizer([ConfigPolicy("*=member", "member")], 30),
    )
    kicked: list[tuple[str | None, str | None]] = []

    async def hub(fingerprint: str | None, channel: str | None) -> None:
        kicked.append((fingerprint, channel))

    there.on_invalidate(hub)
    a, b = _fanout(Room(), Store(0)), _fanout(Room(), Store(0))
    a.relay_invalidations(here)
    b.relay_invalidations(there)
    await here.invalidate(fingerprint="f1", channel="c")
    name, body = a._outbox.get_nowait()
    b._received({"type": "message", "channel": name.encode(), "data": body})
    await asyncio.sleep(0.01)
    assert kicked == [("f1", "c")]
    assert b._outbox.empty()  # applied, not published back


async def test_a_kick_ends_connections_here_and_on_the_other_process() -> None:
    here, there = Room(), Room()
    a, b = _fanout(here, Store(0)), _fanout(there, Store(0))
    kick = Kick("certificate_revoked", "AL1509", "revoked", fingerprint="f1")
    a.kick(kick)
    name, body = a._outbox.get_nowait()
    b._received({"type": "message", "channel": name.encode(), "data": body})
    assert here.kicks == [kick] and there.kicks == [kick]
    assert b._outbox.empty()


async def test_a_commit_travels_as_one_message_and_arrives_whole_and_in_order() -> None:
    room = Room()
    fanout = _fanout(room, Store(0))
    status = RoomPacket(-1, event_packet_raw("status", b'{"seq":1,"status":"confirmed"}'))
    message = _published(_sender(), [_packet(1), _packet(2), status, _packet(3)])
    fanout._received(message)
    assert room.seqs == [-1, 1, 2, 3]  # the status at once, the events in sequence
    assert fanout.stats.received == 4
    texts = [p.packet.sio for p in room.packets]
    assert texts[1:] == [_packet(s).packet.sio for s in (1, 2, 3)]


async def test_a_gap_not_yet_in_the_store_is_asked_again_without_holding_the_loop() -> None:
    room, store = Room(), Store(0)  # 1 is not visible in the store yet
    fanout = _fanout(room, store)
    fanout._received(_message(fanout, 2))
    await asyncio.sleep(0.1)  # a fill that spun would never let this sleep end
    assert room.seqs == [] and 2 <= store.reads <= 20
    store.top = 2
    await asyncio.sleep(0.1)
    assert room.seqs == [1, 2]
