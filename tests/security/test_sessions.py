"""Threat: an ended session comes back (after a logout, a revocation, a restart)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from gateway.client import MemberClient
from gateway.context import CONTEXT
from tests.integration.gateway.support import (
    Identities,
    RunningGateway,
    make_settings,
    running_gateway,
)
from tests.security.support import RawSocket


@contextlib.asynccontextmanager
async def _gateway(tmp_path: Path, ids: Identities, secret: str) -> AsyncIterator[RunningGateway]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'events.db'}", token_secret=secret)
    async with running_gateway(settings, ids.ca) as gw:
        yield gw


async def _rest(gw: RunningGateway, token: str) -> tuple[int, str | None]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.url + "/events/sec", headers=headers) as r,
    ):
        body = await r.json()
        return r.status, body.get("code") if isinstance(body, dict) else None


async def _socket(gw: RunningGateway, token: str) -> str:
    raw = RawSocket(gw.url, token)
    try:
        return await raw.open()
    finally:
        await raw.close()


async def _login(gw: RunningGateway, msp: Path, msp_id: str) -> MemberClient:
    client = MemberClient.from_msp(gw.url, msp, msp_id)
    await client.login()
    return client


async def test_logged_out_and_revoked_sessions_stay_ended_after_a_restart(
    tmp_path: Path, identities: Identities
) -> None:
    secret = secrets.token_hex(32)
    eve_msp = identities.ca.enroll("Org2", f"eve-{secrets.token_hex(4)}", "member")
    async with _gateway(tmp_path, identities, secret) as gw:
        alice = await _login(gw, identities.alice, "Org1MSP")
        bob = await _login(gw, identities.bob, "Org2MSP")
        carol = await _login(gw, identities.carol, "Org1MSP")
        eve = await _login(gw, eve_msp, "Org2MSP")
        tokens = {
            m: c.session.token  # type: ignore[union-attr]
            for m, c in {"alice": alice, "bob": bob, "carol": carol, "eve": eve}.items()
        }
        await alice._post("/auth/logout", {}, tokens["alice"])
        await gw.app[CONTEXT].sessions.revoke(bob.session.session_id)  # type: ignore[union-attr]
        for member in ("alice", "bob"):
            assert await _rest(gw, tokens[member]) == (401, "AL1509")
        assert (await _rest(gw, tokens["carol"]))[0] == 200
        assert (await _rest(gw, tokens["eve"]))[0] == 200
        for c in (alice, bob, carol, eve):
            await c.close()
    # Eve's certificate is revoked while the gateway is down.
    identities.ca.revoke("Org2", eve_msp.parent.name)

    async with _gateway(tmp_path, identities, secret) as gw:
        for member in ("alice", "bob"):
            assert await _rest(gw, tokens[member]) == (401, "AL1509"), member
            answer = await _socket(gw, tokens[member])
            assert answer.startswith("44") and "AL1509" in answer, answer
        status, code = await _rest(gw, tokens["eve"])
        assert (status, code) == (401, "AL1206"), code
        answer = await _socket(gw, tokens["eve"])
        assert answer.startswith("44") and "AL1509" in answer, answer  # ended for good now
        # A session nobody ended survives the restart (the point of a shared token secret).
        assert (await _rest(gw, tokens["carol"]))[0] == 200
        assert (await _socket(gw, tokens["carol"])).startswith("40{")
