"""The marketplace scenario end to end on the embedded ledger (always runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fabric_protos.common import common_pb2

from gateway.auth.errors import AccessDenied
from gateway.cli.scenario import Cast, Plan, run_scenario
from gateway.context import ANCHORING
from gateway.events.errors import BadEventSignature
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.identity.msp import load_msp, parse_serialized_identity
from gateway.ledger.embedded import EmbeddedTransport
from gateway.ledger.gateway import Gateway
from gateway.ledger.protocol.transaction import parse_envelope
from tests.integration.gateway.support import running_gateway
from tests.integration.marketplace.support import market_settings

# Scripted: the second bid (bidder3, 150) wins; the reserve is below every bid.
PLAN = Plan(script=[("bidder2", 100), ("bidder3", 150), ("bidder2", 120)])
BAD_SIGNATURE = BadEventSignature.code
ACCESS_DENIED = AccessDenied.code


async def test_marketplace_end_to_end_on_embedded_ledger(tmp_path: Path) -> None:
    settings = market_settings(tmp_path, authz_cache_ttl_s=30.0)
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    cast = Cast(
        seller=(ca.enroll("Org1", "seller", "member"), "Org1MSP"),
        bidders={
            "bidder2": (ca.enroll("Org2", "bidder2", "member"), "Org2MSP"),
            "bidder3": (ca.enroll("Org3", "bidder3", "member"), "Org3MSP"),
        },
        admin=(ca.enroll("Org1", "admin1", "admin"), "Org1MSP"),
        auditor=(ca.enroll("Org3", "auditor", "auditor"), "Org3MSP"),
    )
    trust = TrustStore.from_msp_dirs(
        {ca.msp_id(o): ca.org_msp_dir(o) for o in ("Org1", "Org2", "Org3")}
    )
    async with running_gateway(settings, ca) as gw:
        embedded = gw.app[ANCHORING].connection.transports
        ledger = embedded[0]._ledger  # type: ignore[attr-defined]
        auditor = load_msp(cast.auditor[0], "Org3MSP", require_key=True)
        # The auditor reads the ledger with its own identity through its own org's peer.
        own_peer = EmbeddedTransport(ledger, "Org3MSP")
        reader = Gateway(auditor.identity, [own_peer], signer=auditor.signer())

        async def inspect(function: str, arg: str) -> dict[str, Any]:
            contract, _, name = function.partition(":")
            net = reader.network(settings.network.channel)
            raw = await net.contract(settings.network.chaincode_name, contract).evaluate(name, arg)
            value: dict[str, Any] = json.loads(raw)
            return value

        outcome = await run_scenario(gw.url, cast, trust, plan=PLAN, inspect=inspect)

        # bidder3 wins with the second bid; bidder2 watches the settlement, gets the room.
        assert (outcome.winner, outcome.winning_amount) == ("bidder3", 150)
        assert outcome.bids_placed == 3

        # Refusals: foreign key (bad signature), bid after close, non-party accept by chaincode.
        assert outcome.refusals["foreign_key"] == BAD_SIGNATURE, outcome.refusals
        assert outcome.refusals["after_close"] == ACCESS_DENIED, outcome.refusals
        assert "forbidden" in outcome.refusals["non_party_accept"], outcome.refusals
        assert outcome.refusals["premium_without_grant"] == ACCESS_DENIED

        # Proposed → Accepted → Settled, pushed live with tx ids and blocks.
        assert [e["state"] for e in outcome.settlement_events] == [
            "Proposed",
            "Accepted",
            "Settled",
        ]
        assert all(isinstance(e["block_number"], int) for e in outcome.settlement_events)

        # The ledger records buyer and seller, not the gateway, as the creators.
        record = outcome.settlement_record
        assert record is not None
        assert record["state"] == "Settled"
        by = [step["by"]["fingerprint"] for step in record["history"]]
        buyer, seller = outcome.party_fingerprints["buyer"], outcome.party_fingerprints["seller"]
        assert by == [buyer, seller, buyer]
        for step in record["history"]:
            found = ledger.store.transaction(step["tx_id"])
            assert found is not None
            block_number, index, code = found
            assert code == 0
            block = ledger.store.block(block_number)
            envelope = common_pb2.Envelope.FromString(block.data.data[index])
            creator = parse_serialized_identity(parse_envelope(envelope).creator)
            assert creator.fingerprint == step["by"]["fingerprint"]
        gateway_fp = gw.app[ANCHORING].connection.identity.fingerprint
        assert gateway_fp not in by

        # A revoked member left the premium room within a second of the revocation.
        print(
            f"revoke tx {outcome.revoke_round_trip_s * 1000:.0f} ms; kicked "
            f"{outcome.kick_latency_s * 1000:+.0f} ms after the commit was known"
        )
        assert outcome.kick_latency_s < 1.0, outcome.kick_latency_s
        assert outcome.closed_event["payload"]["winner"]["amount"] == 150
        # The auditor verified a bid's proof offline.
        assert outcome.verdict.ok, outcome.verdict.summary()
        await reader.close()
