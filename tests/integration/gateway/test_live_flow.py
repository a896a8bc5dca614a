"""The gateway end to end over loopback, with identities from the built-in CA,
on SQLite and on a real PostgreSQL: login, join, emit, receive, reconnect and
catch up, duplicates, refusals at join and at login."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.client import GatewayRefused, MemberClient, sign_event
from gateway.context import CONTEXT
from tests.integration.gateway.support import Identities, make_settings, running_gateway

RULES = "vip-*=member@Org1MSP,admin;*=member,admin,auditor"


def _client(url: str, msp: Path, msp_id: str) -> MemberClient:
    return MemberClient.from_msp(url, msp, msp_id)


async def test_login_join_emit_receive_duplicate(
    tmp_path: Path, database_url: str, identities: Identities
) -> None:
    settings = make_settings(tmp_path, database_url, authz_rules=RULES)
    async with running_gateway(settings, identities.ca) as gw:
        alice = _client(gw.url, identities.alice, "Org1MSP")
        bob = _client(gw.url, identities.bob, "Org2MSP")
        audrey = _client(gw.url, identities.audrey, "Org3MSP")
        try:
            session = await alice.login()
            assert session.role == "member" and session.msp_id == "Org1MSP"
            for c in (alice, bob, audrey):
                await c.connect()
                await c.join("board-1")
            ack = await alice.emit("board-1", "bid", {"amount": 10}, event_id="bid-1")
            assert (ack.seq, ack.status) == (1, "pending")
            for receiver in (bob, audrey):
                name, event = await receiver.next_event()
                assert name == "event"
                assert event["id"] == "bid-1" and event["seq"] == 1
                assert event["payload"] == {"amount": 10}
                assert event["msp_id"] == "Org1MSP" and event["status"] == "pending"
            # Resending the very same signed event: acknowledged as a duplicate, stored once.
            signed = sign_event(alice.signer, channel="board-1", type="bid", payload={"a": 1})
            first = await alice.emit_signed(signed)
            again = await alice.emit_signed(signed)
            assert first.status == "pending" and first.seq == 2
            assert again.status == "duplicate" and again.seq == 2 and again.ok
            ctx = gw.app[CONTEXT]
            assert await ctx.events.count() == 2
            # An auditor may read but not emit.
            refused = await audrey.emit("board-1", "bid", {"amount": 1})
            assert refused.error is not None and refused.error["code"] == "AL1511"
            # REST sees the same log.
            page = await bob.get("/events/board-1?after=0")
            assert [e["seq"] for e in page["events"]] == [1, 2]
            one = await bob.get("/events/board-1/2")
            assert one["id"] == signed["id"] and one["status"] == "pending"
        finally:
            for c in (alice, bob, audrey):
                await c.close()


async def test_member_without_access_is_refused_at_join(
    tmp_path: Path, database_url: str, identities: Identities
) -> None:
    settings = make_settings(tmp_path, database_url, authz_rules=RULES)
    async with running_gateway(settings, identities.ca) as gw:
        alice = _client(gw.url, identities.alice, "Org1MSP")
        bob = _client(gw.url, identities.bob, "Org2MSP")
        try:
            for c in (alice, bob):
                await c.connect()
            assert (await alice.join("vip-gold"))["joined"] is True
            with pytest.raises(GatewayRefused) as info:
                await bob.join("vip-gold")
            assert info.value.remote_code == "AL1511"
            # Not joined, so emitting there is refused too, and nothing is stored.
            ack = await bob.emit("vip-gold", "bid", {"amount": 1})
            assert ack.error is not None and ack.error["code"] == "AL1604"
            assert await gw.app[CONTEXT].events.count() == 0
        finally:
            await alice.close()
            await bob.close()


async def test_revoked_certificate_is_refused_at_login(
    tmp_path: Path, database_url: str, identities: Identities
) -> None:
    settings = make_settings(tmp_path, database_url)
    async with running_gateway(settings, identities.ca) as gw:
        mallory = _client(gw.url, identities.mallory, "Org2MSP")
        try:
            with pytest.raises(GatewayRefused) as info:
                await mallory.login()
            assert info.value.remote_code == "AL1206"
            assert "revoked" in info.value.message
        finally:
            await mallory.close()


async def test_reconnect_catches_up_in_order(
    tmp_path: Path, database_url: str, identities: Identities
) -> None:
    settings = make_settings(tmp_path, database_url)
    async with running_gateway(settings, identities.ca) as gw:
        alice = _client(gw.url, identities.alice, "Org1MSP")
        bob = _client(gw.url, identities.bob, "Org2MSP")
        try:
            await alice.connect()
            await bob.connect()
            await alice.join("board")
            await bob.join("board")
            await alice.emit("board", "note", {"n": 0})
            assert (await bob.next_event())[1]["seq"] == 1
            # Bob's connection drops; Alice keeps emitting.
            hub = gw.app[CONTEXT].hub
            bob_conn = next(c for c in hub.connections.values() if c.principal.msp_id == "Org2MSP")
            assert bob_conn.transport is not None
            bob_conn.transport.abort()
            for n in range(1, 21):
                ack = await alice.emit("board", "note", {"n": n})
                assert ack.seq == n + 1
            await bob.wait_resumed(timeout=15)
            seqs = []
            while len(seqs) < 20:
                name, event = await bob.next_event()
                if name == "event":
                    seqs.append(event["seq"])
            assert seqs == list(range(2, 22))
            assert bob.reconnects == 1 and bob.last_seq["board"] == 21
            # A fresh join with `after` gets exactly the missed tail, in order.
            carol = _client(gw.url, identities.carol, "Org1MSP")
            try:
                await carol.connect()
                joined = await carol.join("board", after=18)
                assert joined["last_seq"] == 21
                got = [(await carol.next_event())[1]["seq"] for _ in range(3)]
                assert got == [19, 20, 21]
            finally:
                await carol.close()
        finally:
            await alice.close()
            await bob.close()


async def test_connect_refused_without_or_with_bad_token(
    tmp_path: Path, identities: Identities
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}")
    async with running_gateway(settings, identities.ca) as gw:
        alice = _client(gw.url, identities.alice, "Org1MSP")
        try:
            await alice.login()
            assert alice.session is not None
            good = alice.session
            alice.session = type(good)(**{**good.__dict__, "token": ""})
            with pytest.raises(GatewayRefused) as info:
                await alice.connect()
            assert info.value.remote_code == "AL1506"
            alice.session = type(good)(**{**good.__dict__, "token": good.token[:-4] + "AAAA"})
            with pytest.raises(GatewayRefused) as info:
                await alice.connect()
            assert info.value.remote_code == "AL1507"
        finally:
            await alice.close()


async def test_session_expiry_disconnects_unless_refreshed(
    tmp_path: Path, identities: Identities
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", session_ttl_s=2)
    async with running_gateway(settings, identities.ca) as gw:
        alice = _client(gw.url, identities.alice, "Org1MSP")
        bob = _client(gw.url, identities.bob, "Org2MSP")
        try:
            await alice.connect()
            await bob.connect()
            await asyncio.sleep(1.0)
            await alice.refresh()  # Alice refreshes, Bob does not.
            name, data = await bob.next_event(timeout=5)
            assert (name, data) == ("session_expired", {"reason": "expired"})
            await asyncio.sleep(0.5)
            hub = gw.app[CONTEXT].hub
            assert [c.principal.msp_id for c in hub.connections.values()] == ["Org1MSP"]
        finally:
            await alice.close()
            await bob.close()


async def test_revocation_of_grant_kicks_member_from_room(
    tmp_path: Path, identities: Identities
) -> None:
    from gateway.auth.authorizer import Action, Decision
    from gateway.auth.principal import Principal

    class Grants:
        def __init__(self) -> None:
            self.granted = {"vip-x"}

        async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
            if channel.startswith("vip-"):
                return Decision.ALLOW if channel in self.granted else Decision.DENY
            return Decision.ABSTAIN

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}")
    async with running_gateway(settings, identities.ca) as gw:
        grants = Grants()
        ctx = gw.app[CONTEXT]
        ctx.authorizer.add_policy(grants)
        bob = _client(gw.url, identities.bob, "Org2MSP")
        try:
            await bob.connect()
            await bob.join("vip-x")
            grants.granted.clear()
            await ctx.authorizer.invalidate(fingerprint=bob.session.fingerprint)  # type: ignore[union-attr]
            name, data = await bob.next_event(timeout=5)
            assert name == "kicked" and data["channel"] == "vip-x"
            assert "vip-x" not in ctx.hub.rooms
        finally:
            await bob.close()
