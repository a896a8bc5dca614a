"""Threat: one member's event or traffic denies the gateway to the others."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import GatewaySettings
from gateway.context import CONTEXT
from gateway.events.canonical import canonical_json_reference
from gateway.events.model import NewEvent, SignedEvent
from gateway.events.signed import sign_event
from gateway.identity.msp import load_msp
from gateway.identity.signing import sign_message
from tests.integration.gateway.support import Identities
from tests.security.support import (
    CHANNEL,
    LATENCY_FACTOR,
    LATENCY_FLOOR_S,
    RawSocket,
    arena,
    assert_unharmed,
    drain,
)


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def _signed_deep(signer: Any, event_id: str, levels: int) -> dict[str, Any]:
    """A genuinely signed event nested ``levels`` deep (the client library refuses to)."""
    body = {
        "id": event_id,
        "channel": CHANNEL,
        "type": "bid",
        "payload": _deep(levels),
        "client_ts": 1,
    }
    canonical = canonical_json_reference(body)
    signature = base64.b64encode(sign_message(signer, canonical)).decode()
    return {**body, "signature": signature}


async def test_a_poisoned_254_deep_event_is_refused_at_intake(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        assert a.attacker.session is not None
        event = _signed_deep(a.attacker.signer, "poison", 254)
        assert len(json.dumps(event["payload"], separators=(",", ":"))) == 509
        raw = RawSocket(a.url, a.attacker.session.token)
        try:
            await raw.open()
            await raw.call("join", json.dumps({"channel": CHANNEL}))
            ack = await raw.call("event", json.dumps(event))
            assert ack["error"]["code"] == "AL1017", ack
            # One level within the limit is fine (the record is level 1, its payload 2).
            ok = _signed_deep(a.attacker.signer, "fine", 31)
            ack = await raw.call("event", json.dumps(ok))
            assert ack.get("status") == "pending", ack
        finally:
            await raw.close()
        a.stored += 1
        seen = await a.witness.next_event()
        assert seen[0] == "event" and seen[1]["id"] == "fine"
        await assert_unharmed(a)


async def test_a_bad_stored_row_does_not_deny_the_channel_to_others(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        # As if an older gateway had stored it: straight into the store, past the intake.
        body = {
            "id": "old-poison",
            "channel": CHANNEL,
            "type": "bid",
            "payload": _deep(254),
            "client_ts": 1,
        }
        canonical = canonical_json_reference(body)
        bad = SignedEvent("old-poison", CHANNEL, "bid", body["payload"], 1, b"\x30\x00", canonical)
        ctx = a.gw.app[CONTEXT]
        [result] = await ctx.events.append([NewEvent(bad, "ab" * 32, "Org2MSP", 1)])
        bad_seq = result.stored.seq
        a.stored += 1  # it is in the store; it must just not break anything
        await a.witness_emit()  # one good event after it
        headers = {"Authorization": f"Bearer {a.witness.session.token}"}  # type: ignore[union-attr]
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{a.url}/events/{CHANNEL}?after=0&limit=1000") as r:
                assert r.status == 200, await r.text()
                page = await r.json()
            seqs = [e["seq"] for e in page["events"]]
            assert bad_seq not in seqs and max(seqs) == bad_seq + 1
            async with http.get(f"{a.url}/events/{CHANNEL}/{bad_seq}") as r:
                assert (r.status, (await r.json())["code"]) == (422, "AL1609")
            async with http.get(f"{a.url}/events/{CHANNEL}/{bad_seq + 1}") as r:
                assert r.status == 200
        # A join with catch-up from 0 gets every other event, past the bad one.
        fresh = a.attacker
        await fresh.leave(CHANNEL)
        await _drain_all(fresh)
        joined = await fresh.join(CHANNEL, after=0)
        assert joined["last_seq"] == bad_seq + 1
        got = [d["seq"] for name, d in await _drain_all(fresh) if name == "event"]
        assert got == [s for s in range(1, bad_seq + 2) if s != bad_seq]
        await assert_unharmed(a)


async def _drain_all(member: Any) -> list[tuple[str, Any]]:
    return await drain(member, quiet_s=0.2)


FLOOD = 20_000


@pytest.mark.load
async def test_an_emit_flood_is_bounded_and_the_others_keep_their_latency(
    tmp_path: Path, identities: Identities
) -> None:
    """One identity sends 20,000 events as fast as it can (from its own process);
    another member emits 50/s meanwhile. The flood is refused beyond its budget
    (AL1610) and, while it overloads the gateway, as the heaviest identity (AL1607);
    the other member is never refused (admission is fair between identities)."""
    # The default budgets: what an operator who set none gets.
    defaults = GatewaySettings()
    rate, burst = defaults.emit_identity_per_s, defaults.emit_identity_burst
    # Signed before the gateway runs: signing 20,000 events holds this process's loop
    # (the gateway's too) for seconds, and admission would rightly refuse the witness
    # for that lag, which is not the flood's doing.
    attacker = load_msp(identities.bob, "Org2MSP", require_key=True).signer()
    frames = tmp_path / "flood.txt"
    frames.write_text(
        "\n".join(
            json.dumps(sign_event(attacker, channel=CHANNEL, type="bid", payload={"n": k}))
            for k in range(FLOOD)
        )
    )
    async with arena(
        tmp_path, identities, emit_identity_per_s=rate, emit_identity_burst=burst
    ) as a:
        assert a.attacker.session is not None
        # The witness works in another channel: it shares the gateway, not the
        # flood's broadcasts (this test process would spend its loop parsing them);
        # for the same reason the attacker's client here leaves the flooded channel
        # (the flood comes from its own process, which receives them).
        await a.witness.leave(CHANNEL)
        await a.witness.join("quiet")
        await a.attacker.leave(CHANNEL)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("flood_client.py")),
            a.url,
            a.attacker.session.token,
            str(frames),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        witness_latency: list[float] = []
        metrics = a.gw.app[CONTEXT].metrics
        admission = a.gw.app[CONTEXT].pipeline.admission
        before = metrics.events_accepted

        async def witness() -> None:
            # Measured while the flood runs: from its first stored event to its end.
            # (Alone on a busy machine, a member may be refused for the loop's lag
            # like any single identity; beside a flooder, it must not be.)
            for _ in range(3000):  # bounded: 30 s for the flood client to start
                if metrics.events_accepted > before or proc.returncode is not None:
                    break
                await asyncio.sleep(0.01)
            while proc.returncode is None:
                witness_latency.append(await a.witness_emit("quiet"))
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(witness())
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 180)
        finally:
            if proc.returncode is None:
                proc.kill()
        await watcher
        assert proc.returncode == 0, err.decode()[-2000:]
        result = json.loads(out.decode().strip().splitlines()[-1])
        accepted, refused, elapsed = result["accepted"], result["refused"], result["elapsed_s"]
        assert accepted + refused == FLOOD
        # AL1610 beyond the budget; AL1607 while the flood overloads the gateway. (How
        # much of each depends on the machine: a slow one may never reach the budget.)
        assert result["codes"] and set(result["codes"]) <= {"AL1610", "AL1607"}
        assert result["retry_after_min"] > 0
        # The budget: at most a burst, then the rate, for as long as the flood lasted.
        assert 0 < accepted <= burst + rate * elapsed + 50
        a.stored += accepted
        witness_latency.sort()
        p99 = witness_latency[max(0, int(len(witness_latency) * 0.99) - 1)]
        print(
            f"\nflood: {accepted} accepted, {refused} refused {result['by_code']} in "
            f"{elapsed:.2f}s; "
            f"witness {len(witness_latency)} events, ack p50 "
            f"{statistics.median(witness_latency) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {witness_latency[-1] * 1000:.1f} ms (baseline {a.baseline_s * 1000:.1f} ms), "
            f"witness refused as Overloaded then served: {a.overloaded}; admission refused "
            f"{admission.refused}, spared {admission.spared}"
        )
        assert len(witness_latency) >= 10
        # The defect this closes: the flood got the other member refused as well.
        assert a.overloaded == 0, f"the witness was refused {a.overloaded} times (AL1607)"
        # A guard against starvation (seconds), not a benchmark: the CI machine is shared.
        # Served, the witness's acks still wait behind the flood's commits (tens of ms
        # each on a busy core; p99 0.2-0.5 s measured at load average 3-7, 2 cores): the
        # figures are the closing note's, this only catches a witness left waiting.
        assert p99 <= max(LATENCY_FACTOR * 5 * a.baseline_s, 1.0), p99
        await a.witness.join(CHANNEL)
        await drain(a.witness, quiet_s=0.2)
        assert await a.count() == a.stored
        async with aiohttp.ClientSession() as http, http.get(a.url + "/healthz") as health:
            assert health.status == 200
        latency = await a.witness_emit()
        assert latency <= max(LATENCY_FACTOR * a.baseline_s, LATENCY_FLOOR_S)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


SLOW = 200


@pytest.mark.load
async def test_slow_loris_connections_do_not_starve_the_others(
    tmp_path: Path, identities: Identities
) -> None:
    """200 loopback connections trickling an HTTP request one byte at a time."""
    async with arena(tmp_path, identities) as a:
        port = int(a.url.rsplit(":", 1)[1])
        fds_before = _open_fds()
        writers: list[asyncio.StreamWriter] = []
        for _ in range(SLOW):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            writers.append(writer)
        latencies: list[float] = []
        deadline = time.perf_counter() + 3.0
        while time.perf_counter() < deadline:  # bounded: three seconds of trickling
            for w in writers:
                if not w.is_closing():
                    w.write(b"a")
            latencies.append(await a.witness_emit())
            await asyncio.sleep(0.05)
        latencies.sort()
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        print(
            f"\nslow-loris: {SLOW} connections, witness p99 {p99 * 1000:.1f} ms "
            f"over {len(latencies)} events"
        )
        assert p99 <= max(LATENCY_FACTOR * a.baseline_s, LATENCY_FLOOR_S)
        for w in writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        await asyncio.sleep(0.2)
        assert _open_fds() <= fds_before + 5
        await assert_unharmed(a)


CHURN = 1000


@pytest.mark.load
async def test_connection_churn_returns_fds_and_memory_to_baseline(
    tmp_path: Path, identities: Identities
) -> None:
    """1,000 Socket.IO connects and disconnects (10 at a time) over loopback."""
    async with arena(tmp_path, identities) as a:
        assert a.attacker.session is not None
        token = a.attacker.session.token
        hub = a.gw.app[CONTEXT].hub

        async def one() -> None:
            raw = RawSocket(a.url, token)
            try:
                assert (await raw.open()).startswith("40{")
            finally:
                await raw.close()

        async def churn(count: int) -> None:
            sem = asyncio.Semaphore(10)

            async def limited() -> None:
                async with sem:
                    await one()

            await asyncio.wait_for(asyncio.gather(*(limited() for _ in range(count))), 120)

        await churn(50)  # warm-up: first-use allocations are not a leak
        await asyncio.sleep(0.3)
        gc.collect()
        fds_before, rss_before, conns_before = _open_fds(), _rss_mib(), len(hub.connections)
        started = time.perf_counter()
        await churn(CHURN)
        elapsed = time.perf_counter() - started
        for _ in range(50):  # the server side of the last closes lands shortly after
            if len(hub.connections) == conns_before:
                break
            await asyncio.sleep(0.05)
        gc.collect()
        fds_after, rss_after = _open_fds(), _rss_mib()
        print(
            f"\nchurn: {CHURN} connects/disconnects in {elapsed:.1f}s; fds {fds_before} -> "
            f"{fds_after}; RSS {rss_before:.1f} -> {rss_after:.1f} MiB; hub connections "
            f"{conns_before} -> {len(hub.connections)}"
        )
        assert len(hub.connections) == conns_before
        assert fds_after <= fds_before + 5
        assert rss_after <= rss_before + 20
        await assert_unharmed(a)


def _auction_opening(signer: Any, auction_id: str) -> dict[str, Any]:
    payload = {
        "auction_id": auction_id,
        "item": "lamp",
        "reserve": 1,
        "closes_at": time.time_ns() // 1_000_000 + 600_000,
        "premium": False,
    }
    return sign_event(signer, channel=f"auction-{auction_id}", type="auction.open", payload=payload)


async def test_rest_emits_spend_the_same_identity_budget_as_socket_emits(
    tmp_path: Path, identities: Identities
) -> None:
    """Events created over REST (an auction's opening) and emitted over Socket.IO
    share one budget per identity; beyond it REST answers 429 AL1610 with
    ``retry_after`` (ms) and a ``Retry-After`` header, and stores nothing."""
    # Bursts of 12 (the witness's baseline takes 10 of its own); the refill is too slow
    # (one every 20 s) to matter during the test.
    async with arena(tmp_path, identities, emit_identity_per_s=0.05, emit_identity_burst=12) as a:
        assert a.attacker.session is not None
        headers = {"Authorization": f"Bearer {a.attacker.session.token}"}
        await a.attacker.join("spend")
        async with aiohttp.ClientSession(headers=headers) as http:

            async def open_auction(auction_id: str) -> tuple[int, dict[str, Any], str | None]:
                body = _auction_opening(a.attacker.signer, auction_id)
                async with http.post(f"{a.url}/marketplace/auctions", json=body) as r:
                    return r.status, await r.json(), r.headers.get("Retry-After")

            for k in range(6):  # half of the budget over REST ...
                status, body, _ = await open_auction(f"a{k}")
                assert status == 201, body
            for k in range(6):  # ... the other half over the socket
                ack = await a.attacker.emit("spend", "bid", {"n": k})
                assert ack.status == "pending", ack
            a.stored += 12  # the attacker's, in channels the witness does not read

            status, body, retry_header = await open_auction("over")
            assert status == 429, body
            assert body["code"] == "AL1610"
            retry_ms = body["details"]["retry_after"]
            assert isinstance(retry_ms, int) and retry_ms > 1000
            assert retry_header is not None and int(retry_header) == -(-retry_ms // 1000)
            ack = await a.attacker.emit("spend", "bid", {"n": "over"})
            assert (ack.error or {}).get("code") == "AL1610", ack

            async with http.get(f"{a.url}/marketplace/auctions") as r:
                listed = {x["auction_id"] for x in (await r.json())["auctions"]}
            assert listed == {f"a{k}" for k in range(6)}, listed
        await drain(a.attacker)
        await assert_unharmed(a)
