"""The hub's fan-out, acks, catch-up ordering and disconnections, with recording transports."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app import create_app
from gateway.auth.principal import Principal
from gateway.context import CONTEXT, GatewayContext
from gateway.events.admission import Admission, AdmissionLimits
from gateway.events.budget import EmitBudget
from gateway.events.canonical import canonical_json
from gateway.identity.ca import EmbeddedCA
from gateway.store.engine import migrate
from gateway.stream.frames import IncomingEvent, Outgoing
from gateway.stream.hub import Connection, Hub
from tests.integration.gateway.support import make_settings


class RecordingTransport:
    """Stands in for a socket: records frames, reports a chosen backlog."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.backlog = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.frames.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def payloads(self) -> list[str]:
        """Every frame's text; one write may carry several frames."""
        out: list[str] = []
        for data in self.frames:
            i = 0
            while i < len(data):
                assert data[i] == 0x81  # final text frame, no compression bit
                n, i = data[i + 1] & 0x7F, i + 2
                if n == 126:
                    n, i = struct.unpack("!H", data[i : i + 2])[0], i + 2
                elif n == 127:
                    n, i = struct.unpack("!Q", data[i : i + 8])[0], i + 8
                out.append(data[i : i + n].decode())
                i += n
        return out

    def packets(self) -> list[Any]:
        """Decoded Socket.IO packets: ("event", name, data) or ("ack", id, data)."""
        out: list[Any] = []
        for payload in self.payloads():
            assert payload[0] == "4"
            if payload[1] == "2":
                name, data = orjson.loads(payload[2:])
                out.append(("event", name, data))
            else:
                i = 2
                while payload[i].isdigit():
                    i += 1
                out.append(("ack", int(payload[2:i]), orjson.loads(payload[i:])[0]))
        return out


class Peer:
    def __init__(self, hub: Hub, name: str, role: str = "member", expires_ms: int = 2**62) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        principal = Principal(
            f"s-{name}", f"fp-{name}", "Org1MSP", role, expires_ms, self.key.public_key()
        )
        self.conn = Connection(name, name, principal, "127.0.0.1", self._fallback)
        self.transport = RecordingTransport()
        self.conn.transport = self.transport  # type: ignore[assignment]
        hub.connections[name] = self.conn
        self.hub = hub
        self.acks = 0

    @staticmethod
    def _fallback(conn: Connection, out: Outgoing) -> int:
        raise AssertionError("a WebSocket connection must not use the fallback")

    def event(self, channel: str, event_id: str, payload: Any = 1) -> dict[str, Any]:
        body = {"id": event_id, "channel": channel, "type": "t", "payload": payload, "client_ts": 1}
        sig = self.key.sign(canonical_json(body), ec.ECDSA(hashes.SHA256()))
        return {**body, "signature": base64.b64encode(sig).decode()}

    def emit(self, raw: Any, ack: bool = True) -> int | None:
        self.acks += 1
        ack_id = self.acks if ack else None
        self.hub.dispatch(
            self.conn.eio_sid, IncomingEvent("event", [raw], ack_id), time.perf_counter()
        )
        return ack_id


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[GatewayContext]:
    # The loop-lag and queue-wait rules off: on a shared machine a late tick, or a
    # signature worker's slow round trip, would refuse these tests' emits (admission
    # has its own tests).
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'e.db'}",
        client_buffer_limit_bytes=1000,
        admission_max_loop_lag_ms=0,
        admission_max_queue_wait_ms=0,
    )
    app = create_app(settings, verifier=EmbeddedCA(tmp_path / "ca").trust_store())
    context = app[CONTEXT]
    await migrate(context.engine)
    await context.pipeline.start()
    closed: list[tuple[str, bool]] = []

    async def closer(conn: Connection, abort: bool) -> None:
        closed.append((conn.sid, abort))

    context.hub.set_closer(closer)
    context.hub.closed = closed  # type: ignore[attr-defined]
    yield context
    await context.hub.close()
    await context.pipeline.stop()
    await context.engine.dispose()


async def test_ack_after_commit_and_broadcast_to_others_only(ctx: GatewayContext) -> None:
    hub = ctx.hub
    alice, bob, carol = Peer(hub, "alice"), Peer(hub, "bob"), Peer(hub, "carol")
    for p in (alice, bob):
        await hub._join(p.conn, "c", None)
    ack_id = alice.emit(alice.event("c", "e1"))
    assert alice.transport.frames == []  # nothing before the commit
    await ctx.hub.drain()
    assert alice.transport.packets() == [
        ("ack", ack_id, {"id": "e1", "seq": 1, "status": "pending"})
    ]
    [(_, name, data)] = bob.transport.packets()
    assert name == "event" and data["seq"] == 1 and data["signer"] == "fp-alice"
    assert carol.transport.frames == []  # not in the room
    assert ctx.metrics.deliveries == 1 and ctx.metrics.events_accepted == 1


async def test_refusals_store_nothing(ctx: GatewayContext) -> None:
    hub = ctx.hub
    alice, mallory = Peer(hub, "alice"), Peer(hub, "mallory")
    await hub._join(alice.conn, "c", None)
    await hub._join(mallory.conn, "c", None)
    forged = mallory.event("c", "f1")  # signed by mallory's key, sent on alice's session
    cases = [
        (alice.event("other", "x1"), "AL1604"),
        (forged, "AL1603"),
        ({**alice.event("c", "x2"), "payload": ["x" * 1000] * 20}, "AL1602"),
        ({**alice.event("c", "x4"), "payload": "x" * 9000}, "AL1020"),
        ("not an object", "AL1601"),
        ({**alice.event("c", "x3"), "type": ""}, "AL1601"),
    ]
    for raw, code in cases:
        ack_id = alice.emit(raw)
        await ctx.hub.drain()  # a bad signature is known once its check is done
        kind, got_id, body = alice.transport.packets()[-1]
        assert (kind, got_id, body["error"]["code"]) == ("ack", ack_id, code)
    alice.emit(forged, ack=False)  # without an ack id the refusal is an "error" event
    await ctx.hub.drain()
    assert alice.transport.packets()[-1][:2] == ("event", "error")
    await ctx.hub.drain()
    assert await ctx.events.count() == 0
    assert ctx.metrics.events_rejected["AL1603"] == 2


async def test_catch_up_and_live_events_arrive_once_and_in_order(ctx: GatewayContext) -> None:
    hub = ctx.hub
    alice, bob = Peer(hub, "alice"), Peer(hub, "bob")
    await hub._join(alice.conn, "c", None)
    for i in range(30):
        alice.emit(alice.event("c", f"old{i}"))
    await ctx.hub.drain()
    # Bob joins from seq 5 while Alice keeps emitting.
    # catchup_page is 7 here: the catch-up takes several pages.
    join = asyncio.create_task(hub._join(bob.conn, "c", 5))
    for i in range(40):
        alice.emit(alice.event("c", f"new{i}"))
        await asyncio.sleep(0)
    result = await join
    await ctx.hub.drain()
    seqs = [d["seq"] for kind, name, d in bob.transport.packets() if kind == "event"]
    assert seqs == list(range(6, 71))
    assert result["last_seq"] >= 30


async def test_slow_consumer_is_dropped(ctx: GatewayContext) -> None:
    hub = ctx.hub
    alice, slow = Peer(hub, "alice"), Peer(hub, "slow")
    await hub._join(alice.conn, "c", None)
    await hub._join(slow.conn, "c", None)
    slow.transport.backlog = 5000
    alice.emit(alice.event("c", "e1"))
    await ctx.hub.drain()
    await asyncio.sleep(0)
    assert hub.closed == [("slow", True)]  # type: ignore[attr-defined]
    assert ctx.metrics.slow_consumer_disconnects == 1


async def test_expired_sessions_are_told_and_closed(ctx: GatewayContext) -> None:
    hub = ctx.hub
    Peer(hub, "fresh")
    stale = Peer(hub, "stale", expires_ms=1)
    assert hub.expire_sessions() == 1
    await asyncio.sleep(0)
    assert stale.transport.packets() == [("event", "session_expired", {"reason": "expired"})]
    assert hub.closed == [("stale", False)]  # type: ignore[attr-defined]


async def test_invalidation_kicks_members_who_lost_access(ctx: GatewayContext) -> None:
    from gateway.auth.authorizer import Action, Decision

    class Toggle:
        allow = True

        async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
            return Decision.ALLOW if self.allow else Decision.DENY

    toggle = Toggle()
    ctx.authorizer.add_policy(toggle)
    hub = ctx.hub
    bob = Peer(hub, "bob")
    await hub._join(bob.conn, "premium", None)
    toggle.allow = False
    await ctx.authorizer.invalidate(fingerprint="fp-bob")
    assert "premium" not in hub.rooms and "premium" not in bob.conn.channels
    [(_, name, data)] = bob.transport.packets()
    assert name == "kicked" and data["channel"] == "premium" and data["code"] == "AL1511"


async def test_a_commit_leaves_in_one_write_per_recipient(ctx: GatewayContext) -> None:
    hub = ctx.hub
    alice, bob, carol = Peer(hub, "alice"), Peer(hub, "bob"), Peer(hub, "carol")
    for p in (alice, bob, carol):
        await hub._join(p.conn, "c", None)
    for i in range(3):
        alice.emit(alice.event("c", f"a{i}"))
    carol.emit(carol.event("c", "c0"))
    await ctx.hub.drain()  # one commit: the writer was idle while they queued
    assert ctx.metrics.commits == 1
    # Alice: her three acks in one write, then Carol's event only.
    assert len(alice.transport.frames) == 2
    assert [p[0] for p in alice.transport.packets()] == ["ack", "ack", "ack", "event"]
    assert alice.transport.packets()[-1][2]["id"] == "c0"
    # Bob: all four events, in seq order, in one write.
    assert len(bob.transport.frames) == 1
    assert [d["seq"] for _, _, d in bob.transport.packets()] == [1, 2, 3, 4]
    # Carol: her ack, then Alice's three events.
    assert [d.get("id") for _, _, d in carol.transport.packets()] == ["c0", "a0", "a1", "a2"]
    assert ctx.metrics.deliveries == 1 + 4 + 3  # events only; acks are not deliveries


async def _worker_up(hub: Hub, peer: Peer) -> None:
    """Start the hub's signature worker (a batch of two starts it) and wait until it is up."""
    await hub._join(peer.conn, "warm", None)
    for i in range(2):
        peer.emit(peer.event("warm", f"warm{i}"))
    for _ in range(3000):
        await asyncio.sleep(0.01)
        if hub.verifier._worker is not None:
            await hub.drain()
            return
    pytest.fail("the signature worker did not start within 30 s")


async def test_emits_checked_on_the_worker_keep_their_order_and_codes(
    ctx: GatewayContext,
) -> None:
    hub = ctx.hub
    alice, carol = Peer(hub, "alice"), Peer(hub, "carol")
    for p in (alice, carol):
        await hub._join(p.conn, "c", None)
    await _worker_up(hub, alice)
    before = (hub.verifier.offloaded_events, len(alice.transport.packets()))
    forged = carol.event("c", "a1")  # carol's signature on alice's session
    alice.emit(alice.event("c", "a0"))
    alice.emit(forged)
    alice.emit(alice.event("c", "a2"))
    carol.emit(carol.event("c", "c0"))
    await hub.drain()
    assert hub.verifier.offloaded_events - before[0] == 4  # one batch, on the worker
    acks = [d for kind, _, d in alice.transport.packets()[before[1] :] if kind == "ack"]
    assert [(a["id"], a.get("seq"), a.get("error", {}).get("code")) for a in acks] == [
        ("a1", None, "AL1603"),  # refused once checked, before the commit's acks
        ("a0", 1, None),
        ("a2", 2, None),
    ]
    # Committed in the order they were read: carol's after alice's.
    assert [e.id for e in await ctx.events.after("c", 0, 10)] == ["a0", "a2", "c0"]


async def test_an_emit_of_a_connection_closed_during_its_check_is_not_stored(
    ctx: GatewayContext,
) -> None:
    hub = ctx.hub
    alice = Peer(hub, "alice")
    await hub._join(alice.conn, "c", None)
    await _worker_up(hub, alice)
    stored = await ctx.events.count()
    for i in range(3):
        alice.emit(alice.event("c", f"k{i}"))
    alice.conn.closed = True  # kicked (revoked) before the worker answered
    await hub.drain()
    assert await ctx.events.count() == stored


def _text(raw: Any, ack_id: int) -> str:
    return f"2{ack_id}" + orjson.dumps(["event", raw]).decode()


async def test_an_emit_behind_a_read_backlog_is_refused_before_its_parse(
    ctx: GatewayContext,
) -> None:
    hub = ctx.hub
    alice = Peer(hub, "alice")
    await hub._join(alice.conn, "c", None)
    limit = ctx.settings.gateway.admission_max_read_backlog
    # A burst read at once, on a gateway that keeps up: served.
    hub.dispatch_text("alice", _text(alice.event("c", "burst"), 6), time.perf_counter(), limit)
    await hub.drain()
    # Behind (the loop runs late): the read backlog's excess is refused unparsed.
    admission = ctx.pipeline.admission
    admission._limits = dataclasses.replace(admission.limits, max_loop_lag_ms=30)
    admission._lag_s = 0.5
    hub.dispatch_text("alice", _text(alice.event("c", "late"), 7), time.perf_counter(), limit)
    hub.dispatch_text("alice", _text("not even an event", 8), time.perf_counter(), limit)
    admission._lag_s = 0.0
    hub.dispatch_text("alice", _text(alice.event("c", "now"), 9), time.perf_counter(), limit - 1)
    await hub.drain()
    acks = {i: d for kind, i, d in alice.transport.packets() if kind == "ack"}
    assert acks[6] == {"id": "burst", "seq": 1, "status": "pending"}
    assert acks[7]["id"] == "late" and acks[7]["error"]["code"] == "AL1607"
    assert acks[7]["error"]["retry_after"] == ctx.settings.gateway.admission_retry_after_ms
    assert acks[8] == {"id": None, "error": acks[7]["error"]}  # refused unread, not parsed
    assert acks[9] == {"id": "now", "seq": 2, "status": "pending"}
    assert hub.shed == 2 and ctx.metrics.events_rejected["AL1607"] == 2
    assert [e.id for e in await ctx.events.after("c", 0, 10)] == ["burst", "now"]


async def test_an_emit_admission_refuses_is_answered_before_its_parse(
    ctx: GatewayContext,
) -> None:
    hub = ctx.hub
    alice = Peer(hub, "alice")
    await hub._join(alice.conn, "c", None)
    # An admission whose queue bound is 0 refuses every event.
    closed = Admission(AdmissionLimits(queue_limit=0, max_queue_wait_ms=0, max_loop_lag_ms=0))
    ctx.pipeline._admission_policy = closed
    hub.dispatch_text("alice", _text(alice.event("c", "e1"), 3), time.perf_counter())
    await asyncio.sleep(0)
    [(kind, ack_id, body)] = alice.transport.packets()
    assert (kind, ack_id, body["id"], body["error"]["code"]) == ("ack", 3, "e1", "AL1607")
    assert body["error"]["retry_after"] >= 100 and hub.shed == 1
    assert closed.refused["queue"] == 1


async def test_an_emit_over_its_budget_leaves_the_socket_unread_for_its_retry_after(
    ctx: GatewayContext,
) -> None:
    hub = ctx.hub
    alice = Peer(hub, "alice")
    await hub._join(alice.conn, "c", None)
    hub._connection_budget = EmitBudget(rate_per_s=4.0, burst=1, what="connection")
    assert hub.dispatch_text("alice", _text(alice.event("c", "e1"), 1), time.perf_counter()) == 0
    hold = hub.dispatch_text("alice", _text(alice.event("c", "e2"), 2), time.perf_counter())
    await asyncio.sleep(0)
    refusal = [body for kind, _, body in alice.transport.packets() if kind == "ack"][-1]
    assert refusal["error"]["code"] == "AL1610"
    # The 250 ms until the next token, the wait the sender was told.
    assert 0.2 < hold <= 0.25 and hold == refusal["error"]["retry_after"] / 1000
    # A budget slower than the ping timeout holds the socket one second at most.
    hub._connection_budget = EmitBudget(rate_per_s=0.01, burst=1, what="connection")
    hub.dispatch_text("alice", _text(alice.event("c", "e3"), 3), time.perf_counter())
    assert hub.dispatch_text("alice", _text(alice.event("c", "e4"), 4), time.perf_counter()) == 1.0
    # Overloaded holds nothing: a sender within its budget waits for nobody's excess.
    hub._connection_budget = EmitBudget(rate_per_s=0.0, burst=1, what="connection")
    ctx.pipeline._admission_policy = Admission(
        AdmissionLimits(queue_limit=0, max_queue_wait_ms=0, max_loop_lag_ms=0)
    )
    assert hub.dispatch_text("alice", _text(alice.event("c", "e5"), 5), time.perf_counter()) == 0
