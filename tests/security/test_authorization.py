"""Threat: a member reads or writes a channel it may not, or emits without joining."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.client import MemberClient
from gateway.client.errors import GatewayRefused
from tests.integration.gateway.support import Identities
from tests.security.support import CHANNEL, arena, assert_unharmed

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
