"""A receiver that stops reading is disconnected with a reason, never buffered without
bound, and later resumes from its last seq with nothing missed (real sockets, loopback)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.client import MemberClient
from gateway.context import CONTEXT
from scripts.bench.rawsocket import RawSocketIO
from tests.integration.gateway.support import issue_identities, make_settings, running_gateway

pytestmark = pytest.mark.load

LIMIT = 64 * 1024
MAX_EVENTS = 4000  # bound on the load, whatever happens


async def _token(url: str, msp: Path, msp_id: str) -> str:
    client = MemberClient.from_msp(url, msp, msp_id)
    try:
        return (await client.login()).token
    finally:
        await client.close()


async def test_slow_receiver_is_disconnected_with_a_reason_and_resumes(tmp_path: Path) -> None:
    ids = issue_identities(tmp_path / "ca")
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'e.db'}",
        client_buffer_limit_bytes=LIMIT,
        slow_consumer_grace_ms=20000,
        # Admission's latency rules off: on a shared machine they refuse some of the
        # bursts below, and this test is about the receiver, not the gateway's load.
        admission_max_queue_wait_ms=0,
        admission_max_loop_lag_ms=0,
        # Nor the emit budgets: the sender sends thousands of events as fast as it can.
        emit_identity_per_s=0.0,
        emit_connection_per_s=0.0,
    )
    async with running_gateway(settings, ids.ca) as gw:
        metrics = gw.app[CONTEXT].metrics
        token = await _token(gw.url, ids.bob, "Org2MSP")
        raw = await RawSocketIO.connect(gw.url, token)
        raw.emit("join", {"channel": "slow"}, ack_id=1)
        _, joined = await raw.until_ack(1)
        assert joined["joined"] is True
        # From here the raw receiver reads nothing.
        alice = MemberClient.from_msp(gw.url, ids.alice, "Org1MSP")
        await alice.connect()
        await alice.join("slow")
        note = "x" * 1500
        sent = 0
        last_seq = 0
        deadline = time.monotonic() + 60
        while metrics.slow_consumer_disconnects == 0 and sent < MAX_EVENTS:
            assert time.monotonic() < deadline, "the slow receiver was never disconnected"
            acks = await asyncio.gather(
                *(alice.emit("slow", "bid", {"n": sent + i, "note": note}) for i in range(20))
            )
            sent += 20
            assert all(a.ok for a in acks), [a.error for a in acks if not a.ok][:1]
            last_seq = max(last_seq, *(a.seq or 0 for a in acks))
        assert metrics.slow_consumer_disconnects == 1, f"no disconnect after {sent} events"
        # The gateway holds at most the bound (plus one commit's packets) for it; the
        # kernel buffers on both sides hold the rest of what it was sent.
        assert sent * 1500 > 4 * LIMIT
        # Events after the disconnect: the receiver must get them on resume.
        for i in range(30):
            ack = await alice.emit("slow", "bid", {"n": sent + i, "note": "after"})
            assert ack.ok
            last_seq = max(last_seq, ack.seq or 0)
        await alice.close()

        # The receiver reads again: what was buffered, then the reason, then the close.
        packets = await raw.packets(timeout=10)
        raw.close()
        seen = [body[1]["seq"] for kind, body in packets if kind == "event" and body[0] == "event"]
        reasons = [body[1] for kind, body in packets if kind == "event" and body[0] != "event"]
        assert reasons and reasons[-1]["code"] == "AL1005", reasons
        assert [body[0] for kind, body in packets if kind == "event"][-1] == "slow_consumer"
        assert packets[-1] == ("close", 1013)
        assert seen == list(range(1, len(seen) + 1)), "received out of order or with a gap"
        last = seen[-1] if seen else 0
        assert last < last_seq

        # Reconnect and resume from the last seq received: nothing missed, nothing twice.
        again = await RawSocketIO.connect(gw.url, token, rcvbuf=1 << 20)
        again.emit("resume", {"channels": {"slow": last}}, ack_id=2)
        caught_up, resumed = await again.until_ack(2)
        again.close()
        assert resumed["channels"]["slow"]["joined"] is True
        assert [e["seq"] for e in caught_up] == list(range(last + 1, last_seq + 1))
