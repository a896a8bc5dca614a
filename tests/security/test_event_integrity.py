"""Threat: an event that claims another signer, or a payload changed after signing."""

from __future__ import annotations

from pathlib import Path

from gateway.events.signed import sign_event
from tests.integration.gateway.support import Identities
from tests.security.support import CHANNEL, arena, assert_unharmed


async def test_a_changed_payload_or_anothers_signature_is_refused(
    tmp_path: Path, identities: Identities
) -> None:
    async with arena(tmp_path, identities) as a:
        signed = sign_event(a.attacker.signer, channel=CHANNEL, type="bid", payload={"amount": 1})
        changed = {**signed, "payload": {"amount": 999}}
        ack = await a.attacker.emit_signed(changed)
        assert ack.error is not None and ack.error["code"] == "AL1603"
        # Alice's genuine event, sent on Bob's session: it does not verify as his.
        hers = sign_event(a.witness.signer, channel=CHANNEL, type="bid", payload={"amount": 2})
        ack = await a.attacker.emit_signed(hers)
        assert ack.error is not None and ack.error["code"] == "AL1603"
        # An extra field beside the signed ones.
        ack = await a.attacker.emit_signed({**signed, "signer": "ab" * 32})
        assert ack.error is not None and ack.error["code"] == "AL1601"
        await assert_unharmed(a)
