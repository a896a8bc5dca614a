"""Threat: someone logs in as a member they are not (forged, replayed, foreign challenges)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp

from gateway.client import MemberClient
from gateway.identity.signing import sign_message
from tests.integration.gateway.support import Identities
from tests.security.support import Arena, arena, assert_unharmed


async def _post(a: Arena, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(a.url + path, json=body) as r:
        return r.status, await r.json()


async def _challenge(a: Arena, member: MemberClient) -> str:
    status, body = await _post(a, "/auth/challenge", {"certificate": member.certificate_pem})
    assert status == 200, body
    return str(body["challenge"])


def _signed(member: MemberClient, message: str) -> str:
    return base64.b64encode(sign_message(member.signer, message.encode())).decode()


async def test_replayed_forged_and_foreign_challenges_are_refused(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        alice, bob = a.witness, a.attacker
        message = await _challenge(a, alice)
        good = {"certificate": alice.certificate_pem, "challenge": message}
        # Bob signs Alice's challenge with his own key: not her signature.
        status, body = await _post(a, "/auth/session", {**good, "signature": _signed(bob, message)})
        assert (status, body["code"]) == (401, "AL1505")
        # Bob presents his own certificate with Alice's challenge: bound to her certificate.
        foreign = {"certificate": bob.certificate_pem, "challenge": message}
        status, body = await _post(
            a, "/auth/session", {**foreign, "signature": _signed(bob, message)}
        )
        assert status == 401 and body["code"] in ("AL1504", "AL1503"), body
        # A challenge nobody was given.
        made_up = message[:-4] + "AAAA"
        status, body = await _post(
            a, "/auth/session", {**good, "challenge": made_up, "signature": _signed(alice, made_up)}
        )
        assert status == 401 and body["code"] in ("AL1501", "AL1504"), body
        # Used once by its owner, then replayed.
        fresh = await _challenge(a, alice)
        login = {
            "certificate": alice.certificate_pem,
            "challenge": fresh,
            "signature": _signed(alice, fresh),
        }
        assert (await _post(a, "/auth/session", login))[0] == 200
        status, body = await _post(a, "/auth/session", login)
        assert (status, body["code"]) == (401, "AL1503")
        await assert_unharmed(a)


async def test_a_revoked_certificate_cannot_log_in(tmp_path: Path, identities: Identities) -> None:
    async with arena(tmp_path, identities) as a:
        mallory = MemberClient.from_msp(a.url, identities.mallory, "Org2MSP")
        message = await _challenge(a, mallory)
        login = {
            "certificate": mallory.certificate_pem,
            "challenge": message,
            "signature": _signed(mallory, message),
        }
        status, body = await _post(a, "/auth/session", login)
        assert (status, body["code"]) == (401, "AL1206"), body
        await mallory.close()
        await assert_unharmed(a)


async def test_a_tampered_token_is_refused_on_rest_and_socket(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        assert a.attacker.session is not None
        token = a.attacker.session.token
        head, body_part, mac = token.split(".")
        # Claim another identity in the token body, keep the MAC.
        tampered = (
            f"{head}.{body_part[:-2]}{'A' if body_part[-2] != 'A' else 'B'}{body_part[-1]}.{mac}"
        )
        async with (
            aiohttp.ClientSession() as http,
            http.get(a.url + "/events/sec", headers={"Authorization": f"Bearer {tampered}"}) as r,
        ):
            assert r.status == 401 and (await r.json())["code"] == "AL1507"
        from tests.security.support import RawSocket

        raw = RawSocket(a.url, tampered)
        try:
            answer = await raw.open()
            assert answer.startswith("44") and "AL1507" in answer, answer
        finally:
            await raw.close()
        await assert_unharmed(a)
