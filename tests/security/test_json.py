"""Threat: JSON that different parsers read differently, sent to every entry point.

Proof files are covered in test_proofs.py; Socket.IO events in
test_event_integrity.py and below.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.integration.gateway.support import Identities
from tests.security.support import RawSocket, arena, assert_unharmed

HOSTILE_BODIES = [
    (b'{"certificate": "a", "certificate": "b"}', "AL1013"),
    (b'{"refresh_token": NaN}', "AL1014"),
    (b'{"refresh_token": 1e400}', "AL1014"),
    (b'{"refresh_token": 9007199254740993}', "AL1015"),
    (b'{"refresh_token": "\\ud800"}', "AL1016"),
    (b'{"refresh_token": "\xff"}', "AL1012"),
    (b"[" * 50_000, "AL1017"),
    (b'{"refresh_token": "x"', "AL1011"),
]


@pytest.mark.parametrize("path", ["/auth/challenge", "/auth/session", "/auth/refresh"])
async def test_rest_bodies_are_read_strictly(
    tmp_path: Path, identities: Identities, path: str
) -> None:
    async with arena(tmp_path, identities) as a, aiohttp.ClientSession() as http:
        for body, code in HOSTILE_BODIES:
            headers = {"Content-Type": "application/json"}
            async with http.post(a.url + path, data=body, headers=headers) as r:
                answer = await r.json()
                assert (r.status, answer["code"]) == (400, code), (body[:40], answer)
        await assert_unharmed(a)


def _event_with(member_raw_json: str) -> str:
    """An emit whose event object is ``member_raw_json`` written as is."""
    return member_raw_json


WIRE_CASES = [
    # Each is refused before its signature is even looked at.
    (
        '{"id":"d1","channel":"sec","type":"bid","payload":{"amount":1,"amount":999},'
        '"client_ts":1,"signature":"MEUCIQ=="}',
        "AL1013",
    ),
    (
        '{"id":"d2","channel":"sec","channel":"other","type":"bid","payload":1,'
        '"client_ts":1,"signature":"MEUCIQ=="}',
        "AL1013",
    ),
    (
        '{"id":"n1","channel":"sec","type":"bid","payload":NaN,"client_ts":1,"signature":"x"}',
        "AL1014",
    ),
    (
        '{"id":"n2","channel":"sec","type":"bid","payload":Infinity,"client_ts":1,"signature":"x"}',
        "AL1014",
    ),
    (
        '{"id":"n3","channel":"sec","type":"bid","payload":-Infinity,"client_ts":1,"signature":"x"}',
        "AL1014",
    ),
    (
        '{"id":"n4","channel":"sec","type":"bid","payload":1e400,"client_ts":1,"signature":"x"}',
        "AL1014",
    ),
    (
        '{"id":"n5","channel":"sec","type":"bid","payload":12345678901234567890,'
        '"client_ts":1,"signature":"x"}',
        "AL1015",
    ),
    (
        '{"id":"s1","channel":"sec","type":"bid","payload":"\\ud800","client_ts":1,"signature":"x"}',
        "AL1016",
    ),
    (
        '{"id":"s2","channel":"sec","type":"bid","payload":{"\\udc00":1},"client_ts":1,'
        '"signature":"x"}',
        "AL1016",
    ),
    (
        '{"id":"t1","channel":"sec","type":"bid","payload":'
        + "[" * 40
        + "]" * 40
        + ',"client_ts":1,"signature":"x"}',
        "AL1017",
    ),
    (
        '{"id":"b1","channel":"sec","type":"bid","payload":"' + "x" * 9000 + '","client_ts":1,'
        '"signature":"x"}',
        "AL1020",
    ),
    (
        '{"id":"b2","channel":"sec","type":"bid","payload":'
        + json.dumps(["x" * 8000] * 9)
        + ',"client_ts":1,"signature":"x"}',
        "AL1018",
    ),
]


async def test_socketio_events_with_ambiguous_json_get_an_error_ack(
    tmp_path: Path, identities: Identities
) -> None:
    # Admission's latency rules off: an emit passes them before its JSON is read, and
    # on a busy machine a late loop tick would answer AL1607 instead of the JSON's code.
    async with arena(
        tmp_path, identities, admission_max_loop_lag_ms=0, admission_max_queue_wait_ms=0
    ) as a:
        assert a.attacker.session is not None
        raw = RawSocket(a.url, a.attacker.session.token)
        try:
            assert (await raw.open()).startswith("40{")
            joined = await raw.call("join", '{"channel":"sec"}')
            assert joined["joined"] is True
            for event_json, code in WIRE_CASES:
                ack = await raw.call("event", _event_with(event_json), timeout=5)
                assert ack["error"]["code"] == code, (event_json[:60], ack)
            # Still connected and answered after all of it.
            assert (await raw.call("join", '{"channel":"sec"}'))["joined"] is True
        finally:
            await raw.close()
        await assert_unharmed(a)


async def test_a_connect_payload_with_a_duplicate_token_key_is_refused_with_its_code(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        assert a.attacker.session is not None
        token = a.attacker.session.token
        raw = RawSocket(a.url, token)
        try:
            assert raw.ws is None
            raw.ws = await raw.http.ws_connect(raw.url)
            assert (await raw.ws.receive_str(timeout=5)).startswith("0{")
            await raw.ws.send_str('40{"token":"forged","token":' + json.dumps(token) + "}")
            answer = await raw.text()
            assert answer.startswith("44") and "AL1013" in answer, answer
        finally:
            await raw.close()
        await assert_unharmed(a)
