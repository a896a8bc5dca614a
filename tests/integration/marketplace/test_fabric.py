"""The marketplace scenario end to end on the real native Fabric network (marked ``fabric``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.scenario import Cast, Plan, run_scenario
from gateway.config import load_settings
from gateway.identity.certificates import TrustStore
from gateway.ledger.connection import from_profile
from network.profile import NetworkProfile
from tests.integration.gateway.support import running_gateway

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.fabric


async def test_marketplace_end_to_end_on_fabric(
    tmp_path: Path,
    fabric_network: NetworkProfile,
    deploy_chaincode: Callable[[str, Path], None],
    enroll_identity: Callable[[NetworkProfile, str, str, str], Path],
) -> None:
    profile = fabric_network
    assert profile.network_dir is not None
    base = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    deploy_chaincode(base.network.chaincode_name, REPO / "chaincode")
    tag = tmp_path.name[-6:].replace("_", "")

    def member(org: str, name: str, role: str) -> tuple[Path, str]:
        return enroll_identity(profile, org, f"{name}{tag}", role), profile.org(org).msp_id

    cast = Cast(
        seller=member("Org1", "seller", "member"),
        bidders={
            "bidder2": member("Org2", "bidder", "member"),
            "bidder3": member("Org3", "bidder", "member"),
        },
        admin=member("Org1", "admin", "admin"),
        auditor=member("Org3", "auditor", "auditor"),
    )
    org_msps = {o.msp_id: Path(o.admin_msp_dir).parents[2] / "msp" for o in profile.orgs}
    settings = dataclasses.replace(
        base,
        ledger=dataclasses.replace(
            base.ledger, kind="fabric", msp_dir=str(profile.org("Org1").admin_msp_dir)
        ),
        gateway=dataclasses.replace(
            base.gateway,
            database_url=f"sqlite:///{tmp_path / 'events.db'}",
            sqlite_synchronous="NORMAL",
        ),
        anchoring=dataclasses.replace(
            base.anchoring,
            batch_max_ms=50,
            profile=str(profile.network_dir / "profile.json"),
        ),
    )
    trust = TrustStore.from_msp_dirs(org_msps)
    # The auditor reads the ledger with its own identity through its own org's peer.
    reader = from_profile(profile, cast.auditor[0], org="Org3")

    async def inspect(function: str, arg: str) -> dict[str, Any]:
        contract, _, name = function.partition(":")
        net = reader.network(profile.channel)
        raw = await net.contract(settings.network.chaincode_name, contract).evaluate(name, arg)
        value: dict[str, Any] = json.loads(raw)
        return value

    try:
        async with running_gateway(settings, trust) as gw:
            outcome = await run_scenario(
                gw.url,
                cast,
                trust,
                plan=Plan(
                    auction_s=4.0, script=[("bidder2", 100), ("bidder3", 150), ("bidder2", 120)]
                ),
                inspect=inspect,
            )
    finally:
        await reader.close()

    assert outcome.refusals["foreign_key"].startswith("AL16"), outcome.refusals
    assert outcome.refusals["after_close"].startswith("AL15"), outcome.refusals
    assert "forbidden" in outcome.refusals["non_party_accept"], outcome.refusals
    assert outcome.refusals["premium_without_grant"].startswith("AL15")
    assert [e["state"] for e in outcome.settlement_events] == ["Proposed", "Accepted", "Settled"]
    record = outcome.settlement_record
    assert record is not None
    assert record["state"] == "Settled"
    buyer, seller = outcome.party_fingerprints["buyer"], outcome.party_fingerprints["seller"]
    assert [s["by"]["fingerprint"] for s in record["history"]] == [buyer, seller, buyer]
    assert [s["tx_id"] for s in record["history"]] == [
        e["tx_id"] for e in outcome.settlement_events
    ]
    print(
        f"revoke tx {outcome.revoke_round_trip_s * 1000:.0f} ms; kicked "
        f"{outcome.kick_latency_s * 1000:+.0f} ms after the commit was known"
    )
    assert outcome.kick_latency_s < 1.0, outcome.kick_latency_s
    assert (outcome.winner, outcome.winning_amount) == ("bidder3", 150)
    assert outcome.verdict.ok, outcome.verdict.summary()
