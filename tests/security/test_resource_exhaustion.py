"""Threat: one member's event or traffic denies the gateway to the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from gateway.context import CONTEXT
from gateway.events.canonical import canonical_json_reference
from gateway.events.model import NewEvent, SignedEvent
from gateway.identity.signing import sign_message
from tests.integration.gateway.support import Identities
from tests.security.support import CHANNEL, RawSocket, arena, assert_unharmed


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
    import base64

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
    from tests.security.support import drain

    return await drain(member, quiet_s=0.2)
