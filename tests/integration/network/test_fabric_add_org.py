"""`network add-org` on the session network, with a gateway running throughout.

Org4 joins the channel while the gateway serves Org1-3; without a restart, the
gateway then trusts Org4's members (it watches the connection profile), one of
them logs in and emits events that get anchored, and Org1's auditor verifies one
with `anchorline verify` against the ledger.

Where it runs in a session, and why: after Org4 joins, endorsement takes peers
of 3 of the 4 orgs, so a test that names exactly two endorsing orgs
(tests/integration/ledger/test_fabric_client.py) cannot pass afterwards. This
folder sorts after every other folder with Fabric tests, so in a full run the
session network has three orgs for them, and this file sorts before the other
session-network tests of its folder, which then run on the four-org channel and
show the rest still works once an org was added. Run a subset in the same order
(this folder last).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.client import GatewayRefused, MemberClient
from gateway.context import ANCHORING_CONNECT
from network import nodes
from network.errors import OrgExists
from network.probe import probe_for
from network.profile import NetworkProfile
from tests.conftest import FabricSession
from tests.integration.anchoring.support import emit_many, fabric_world, wait_finalized

pytestmark = pytest.mark.fabric
REPO = Path(__file__).resolve().parents[3]


@contextlib.asynccontextmanager
async def _gateway(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _login_when_trusted(client: MemberClient, within: float) -> float:
    """Log in, retrying while the gateway does not trust the org yet; seconds it took."""
    started = time.monotonic()
    while True:
        try:
            await client.login()
            return time.monotonic() - started
        except GatewayRefused:
            if time.monotonic() - started > within:
                raise
            await asyncio.sleep(0.1)


def _verify_cli(
    proof_file: Path, msp: Path, profile: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    """`anchorline verify` as an auditor runs it: its own identity, its own org's peer."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli.main",
            "verify",
            str(proof_file),
            "--msp",
            str(msp),
            "--peer",
            str(profile),
        ],
        cwd=REPO,
        env={**os.environ, "ANCHORLINE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_add_org4_its_member_anchors_and_org1_auditor_verifies(
    tmp_path: Path,
    fabric_session: FabricSession,
    enroll_identity: Callable[..., Path],
    deploy_chaincode: Callable[[str, Path], None],
    testcc: str,
) -> None:
    network = fabric_session.network
    deploy_chaincode("anchorline", REPO / "chaincode")
    profile = fabric_session.profile
    world = fabric_world(tmp_path, profile, enroll_identity, uuid.uuid4().hex[:8])
    # The gateway's trust comes from the settings (the profile), as in production, so
    # that it can grow while the gateway runs.
    settings = dataclasses.replace(
        world.settings,
        ledger=dataclasses.replace(world.settings.ledger, kind="fabric"),
        anchoring=dataclasses.replace(world.settings.anchoring, profile=str(world.profile_path)),
    )
    app = create_app(settings)
    app[ANCHORING_CONNECT] = lambda _s: world.connection()
    channel = f"org4-{uuid.uuid4().hex[:8]}"
    async with _gateway(app) as url:
        started = time.monotonic()
        added = await asyncio.to_thread(network.add_org, "Org4")
        seconds = time.monotonic() - started
        print(f"add-org Org4: {seconds:.1f} s (steps: see logs/network.log)")
        assert (added.name, added.msp_id, added.peer) == ("Org4", "Org4MSP", "peer0.org4")
        assert {"ca.org4", "peer0.org4", "cc.testcc.peer0.org4"} <= set(added.started)

        grown = network.profile()
        assert [o.msp_id for o in grown.orgs] == ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]
        member = enroll_identity(grown, "Org4", f"dora-{uuid.uuid4().hex[:6]}", "member")
        dora = MemberClient.from_msp(url, member, "Org4MSP")
        try:
            waited = await _login_when_trusted(dora, within=5)
            print(f"Org4 member logged in {waited:.2f} s after add-org returned")
            await dora.connect()
            await dora.join(channel)
            seqs = await emit_many([dora], channel, 20)
            assert sorted(seqs) == list(range(1, 21))
            await wait_finalized(app, channel, 20, timeout=60)
            doc = await dora.get(f"/events/{channel}/7/proof")
        finally:
            await dora.close()

    # Org1's auditor, with its own identity against its own org's peer.
    auditor = enroll_identity(grown, "Org1", f"audit1-{uuid.uuid4().hex[:6]}", "auditor")
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(doc))
    run = await asyncio.to_thread(
        _verify_cli, proof_file, auditor, world.profile_path, settings.home
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED: every check holds (fabric ledger as Org1MSP)" in run.stdout


def test_org4_is_a_full_member_of_the_network(
    fabric_session: FabricSession, enroll_identity: Callable[..., Path], testcc: str
) -> None:
    network = fabric_session.network
    if "Org4" not in [o.name for o in network.topology.peer_orgs]:
        pytest.skip("needs test_add_org4_its_member_anchors_and_org1_auditor_verifies first")
    profile: NetworkProfile = network.profile()
    # The new peer has every block, and `status` lists its processes.
    rows = {r.name: r for r in network.status()}
    assert rows["peer0.org4"].healthy and rows["ca.org4"].healthy
    assert rows["cc.testcc.peer0.org4"].pid is not None
    heights = [nodes.height(p.ops_port, network.topology.channel) for p in network.topology.peers]
    assert heights[-1] is not None and heights[-1] >= min(h or 0 for h in heights[:-1]) - 1
    # Writes now need peers of 3 of the 4 orgs; an Org4 member's creator is Org4MSP.
    member = enroll_identity(profile, "Org4", f"erin-{uuid.uuid4().hex[:6]}", "member")
    with probe_for(profile, "Org4", member) as erin:
        committed = erin.submit(testcc, ["Put", "k-org4", "v"])
        assert len(set(committed.endorsing_msps)) == 3, committed.endorsing_msps
        assert json.loads(erin.evaluate(testcc, ["Creator"]))["msp_id"] == "Org4MSP"
    with probe_for(profile, "Org1") as org1:
        assert org1.evaluate(testcc, ["Get", "k-org4"]) == b"v"
    # Adding it again is refused with its code, and changes nothing.
    before = network.layout.state_file.read_text()
    with pytest.raises(OrgExists, match="already part of the network") as again:
        network.add_org("Org4")
    assert again.value.code == "AL1114"
    assert network.layout.state_file.read_text() == before
