"""A gateway configured only from a standard Fabric connection profile (the SDKs' YAML,
as a consortium would hand it to a new member) plus MSP folders: it trusts the
members, anchors their events on the native network, and an auditor of another
org verifies a proof on the ledger through the same profile."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from gateway.anchoring.audit import verify_on_ledger
from gateway.anchoring.ledger import auditor_ledger
from gateway.anchoring.proof import verify_offline
from gateway.app import create_app
from gateway.config import load_settings
from gateway.context import ANCHORING
from gateway.ledger.connection import open_ledger
from gateway.ledger.connection_profile import to_connection_profile
from gateway.ledger.profile import NetworkProfile
from tests.integration.anchoring.support import clients, emit_many, wait_finalized

pytestmark = pytest.mark.fabric
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def anchorline_cc(deploy_chaincode: Callable[[str, Path], None]) -> str:
    deploy_chaincode("anchorline", REPO / "chaincode")
    return "anchorline"


async def test_a_gateway_from_a_standard_connection_profile_anchors_and_verifies(
    tmp_path: Path,
    fabric_network: NetworkProfile,
    enroll_identity: Callable[..., Path],
    anchorline_cc: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    gateway_msp = enroll_identity(fabric_network, "Org1", f"gw-{tag}", "admin")
    members = [
        (enroll_identity(fabric_network, "Org1", f"m1-{tag}", "member"), "Org1MSP"),
        (enroll_identity(fabric_network, "Org2", f"m2-{tag}", "member"), "Org2MSP"),
    ]
    auditor = enroll_identity(fabric_network, "Org3", f"audit-{tag}", "auditor")
    # What a consortium hands over: the SDK format, TLS roots inline, MSP folders by path.
    standard = to_connection_profile(fabric_network, "a-consortium")
    profile_file = tmp_path / "connection-org1.yaml"
    profile_file.write_text(yaml.safe_dump(standard, sort_keys=False))
    home = tmp_path / "home"  # no network/profile.json here: only the file above
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    settings = dataclasses.replace(
        base,
        ledger=dataclasses.replace(base.ledger, kind="fabric", msp_dir=str(gateway_msp)),
        gateway=dataclasses.replace(
            base.gateway, database_url=f"sqlite:///{tmp_path / 'events.db'}"
        ),
        anchoring=dataclasses.replace(
            base.anchoring, profile=str(profile_file), batch_max_ms=100, reader_org="Org2"
        ),
    )
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    channel = f"market-{tag}"
    try:
        async with clients(f"http://127.0.0.1:{port}", members, channel) as joined:
            seqs = await emit_many(joined, channel, 20, window=8)
            assert sorted(seqs) == list(range(1, 21))
            await wait_finalized(app, channel, 20, timeout=90)
            runtime = app[ANCHORING]
            assert runtime.connection.kind == "fabric"
            proof = await runtime.evidence.event_proof(channel, 7)
        # The auditor: its own identity, its own org's peer, from the same profile.
        connection = open_ledger(settings, peer=str(profile_file), msp_dir=auditor)
        verdict = verify_offline(proof, connection.trust, gateway_msp="Org1MSP")
        assert verdict.ok, verdict.summary()
        audit = auditor_ledger(connection)
        try:
            checks = await verify_on_ledger(proof, audit)
            assert all(c.ok for c in checks), [c for c in checks if not c.ok]
        finally:
            await audit.close()
    finally:
        await runner.cleanup()
