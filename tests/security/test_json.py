"""Threat: JSON that different parsers read differently, sent to every entry point.

Proof files are covered in test_proofs.py; Socket.IO events in
test_event_integrity.py and below.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.integration.gateway.support import Identities
from tests.security.support import arena, assert_unharmed

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
