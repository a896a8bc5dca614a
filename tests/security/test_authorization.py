"""Threat: a member reads or writes a channel it may not, or emits without joining."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.client import MemberClient
from gateway.client.errors import GatewayRefused
from gateway.events.signed import sign_event
from tests.integration.gateway.support import Identities
from tests.security.support import CHANNEL, arena, assert_unharmed, drain

# Org1 alone reads "org1-*"; everybody reads the rest; auditors never emit.
RULES = "org1-*=member@Org1MSP,admin@Org1MSP;*=member,admin,auditor"


async def test_a_member_of_another_org_cannot_join_or_read_a_private_channel(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities, authz_rules=RULES) as a:
        await a.witness.join("org1-deals")
        ack = await a.witness.emit("org1-deals", "bid", {"amount": 5})
        assert ack.status == "pending"
        a.stored += 1
        with pytest.raises(GatewayRefused) as refused:
            await a.attacker.join("org1-deals", after=0)
        assert refused.value.remote_code == "AL1511"
        with pytest.raises(GatewayRefused) as refused:
            await a.attacker.get("/events/org1-deals?after=0")
        assert refused.value.remote_code == "AL1511"
        with pytest.raises(GatewayRefused) as refused:
            await a.attacker.get(f"/events/org1-deals/{ack.seq}")
        assert refused.value.remote_code == "AL1511"
        await assert_unharmed(a)


async def test_emitting_without_joining_or_as_an_auditor_is_refused(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        ack = await a.attacker.emit("elsewhere", "bid", {"amount": 1})
        assert ack.error is not None and ack.error["code"] == "AL1604"
        auditor = MemberClient.from_msp(a.url, identities.audrey, "Org3MSP")
        try:
            await auditor.login()
            await auditor.connect()
            await auditor.join(CHANNEL)
            ack = await auditor.emit(CHANNEL, "bid", {"amount": 1})
            assert ack.error is not None and ack.error["code"] == "AL1511"
        finally:
            await auditor.close()
        await assert_unharmed(a)


async def test_no_member_can_preempt_or_probe_anothers_event_ids(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities, authz_rules=RULES) as a:
        alice, bob = a.witness, a.attacker
        # Alice's event in a channel Bob cannot read.
        await alice.join("org1-deals")
        ack = await alice.emit("org1-deals", "bid", {"amount": 5}, event_id="deal-1")
        assert ack.status == "pending"
        a.stored += 1
        # Bob asks about that id: refused for the channel, nothing about the event.
        hers = sign_event(
            bob.signer, channel="org1-deals", type="bid", payload={}, event_id="deal-1"
        )
        probe = await bob.emit_signed(hers)
        assert probe.error is not None and probe.error["code"] == "AL1604" and probe.seq is None
        # In his own channel the same id is simply his own new event.
        own = await bob.emit(CHANNEL, "bid", {"amount": 5}, event_id="deal-1")
        assert own.status == "pending"
        a.stored += 1
        # Squatting: Bob stores Alice's next record (same id, same content) under his key first.
        record = {"id": "bid-9", "channel": CHANNEL, "type": "bid", "payload": {"amount": 7}}
        squat = sign_event(bob.signer, **_args(record), client_ts=1)
        assert (await bob.emit_signed(squat)).status == "pending"
        a.stored += 1
        genuine = sign_event(alice.signer, **_args(record), client_ts=1)
        ack = await alice.emit_signed(genuine)
        assert ack.status == "pending", ack  # not "duplicate": her event is stored as hers
        a.stored += 1
        stored = await alice.get(f"/events/{CHANNEL}/{ack.seq}")
        assert stored["signer"] == alice.session.fingerprint  # type: ignore[union-attr]
        # Her retry is her duplicate, with her seq.
        again = await alice.emit_signed(genuine)
        assert (again.status, again.seq) == ("duplicate", ack.seq)
        await drain(alice, quiet_s=0.2)
        await assert_unharmed(a)


def _args(record: dict[str, object]) -> dict[str, object]:
    return {
        "channel": record["channel"],
        "type": record["type"],
        "payload": record["payload"],
        "event_id": record["id"],
    }
