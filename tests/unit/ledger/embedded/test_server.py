"""The embedded ledger over gRPC on loopback, through the project's own gRPC transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.identity.msp import load_msp
from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from gateway.ledger.embedded.server import GatewayServer
from gateway.ledger.endpoints import Endpoint
from gateway.ledger.errors import EndorseError, EvaluateError
from gateway.ledger.gateway import Gateway
from gateway.ledger.grpc_transport import GrpcTransport

from .kv_contract import CONTRACTS


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedLedger, list[GatewayServer]]]:
    ledger = EmbeddedLedger.open(
        EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, batch_timeout_s=0.01)
    )
    servers = [GatewayServer(ledger, msp_id) for msp_id in ledger.peers]
    for server in servers:
        await server.start()
    yield ledger, servers
    for server in servers:
        await server.stop()
    await ledger.close()


async def test_client_over_grpc(served: tuple[EmbeddedLedger, list[GatewayServer]]) -> None:
    ledger, servers = served
    assert all(s.address.startswith("127.0.0.1:") for s in servers)
    msp = load_msp(ledger.ca.enroll("Org1", "alice", "member"), "Org1MSP", require_key=True)
    transports = [
        GrpcTransport(Endpoint(s.address, m)) for s, m in zip(servers, ledger.peers, strict=True)
    ]
    async with Gateway(msp.identity, transports, signer=msp.signer()) as gw:
        network = gw.network("anchorline")
        contract = network.contract("kv")
        result = await contract.submit("Emit", "changed", "7")
        assert result.block_number >= 1
        assert await contract.evaluate("Get", "event-7") == b"7"
        # Peer error details travel in the gRPC trailer, as Fabric sends them.
        commit = await contract.submit_async("Put", "solo", "x", endorsing_orgs=["Org2MSP"])
        assert (await commit.status()).code_name == "ENDORSEMENT_POLICY_FAILURE"
        with pytest.raises(EvaluateError) as evaluated:
            await contract.evaluate("RichQuery")
        assert evaluated.value.status == "UNKNOWN"
        assert evaluated.value.chaincode_status == 500
        foreign = load_msp(ledger.ca.enroll("Org2", "bob", "member"), "Org2MSP", require_key=True)
        # Bob's certificate presented as Org1's: the peer cannot place it.
        from gateway.identity.msp import identity_from_pem

        impostor = identity_from_pem("Org1MSP", foreign.identity.certificate_pem)
        async with Gateway(
            impostor,
            [GrpcTransport(Endpoint(servers[0].address, "Org1MSP"))],
            signer=foreign.signer(),
        ) as bad:
            with pytest.raises(EndorseError) as endorsed:
                await bad.network("anchorline").contract("kv").submit("Put", "k", "v")
        assert endorsed.value.status == "ABORTED"
        assert [d.msp_id for d in endorsed.value.peer_details] == ["Org1MSP"]
        assert "creator org unknown" in endorsed.value.peer_details[0].message
        events = network.chaincode_events("kv", start_block=result.block_number)
        async with asyncio.timeout(10):
            first = await events.__anext__()
        await events.aclose()
        assert (first.transaction_id, first.event_name) == (result.transaction_id, "changed")


REPO = Path(__file__).resolve().parents[4]
_REMOTE_CLIENT = """
import asyncio, sys
from pathlib import Path
from gateway.identity.msp import load_msp
from gateway.ledger.embedded.server import served_endpoints
from gateway.ledger.endpoints import Endpoint
from gateway.ledger.gateway import Gateway
from gateway.ledger.grpc_transport import GrpcTransport

async def main():
    root, msp_dir = Path(sys.argv[1]), Path(sys.argv[2])
    endpoints = served_endpoints(root)
    folder = load_msp(msp_dir, "Org1MSP", require_key=True)
    transports = [GrpcTransport(Endpoint(a, m)) for m, a in sorted(endpoints.items())]
    async with Gateway(folder.identity, transports, signer=folder.signer()) as gw:
        contract = gw.network("anchorline").contract("kv")
        result = await contract.submit("Put", "from-other-process", "yes")
        print(result.block_number, (await contract.evaluate("Get", "from-other-process")).decode())

asyncio.run(main())
"""


async def test_a_second_process_reaches_the_served_ledger(tmp_path: Path) -> None:
    import os
    import sys

    from gateway.ledger.embedded.server import ENDPOINTS_FILE, ServedLedger, served_endpoints

    ledger = EmbeddedLedger.open(
        EmbeddedConfig(root=tmp_path / "led", chaincodes={"kv": CONTRACTS}, batch_timeout_s=0.01)
    )
    served = ServedLedger(ledger)
    try:
        endpoints = await served.start()
        assert served_endpoints(ledger.root) == endpoints
        assert set(endpoints) == {"Org1MSP", "Org2MSP", "Org3MSP"}
        msp_dir = ledger.ca.enroll("Org1", "remote", "member")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _REMOTE_CLIENT,
            str(ledger.root),
            str(msp_dir),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            cwd=REPO,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()[-2000:]
        block, value = stdout.decode().split()
        assert value == "yes"
        assert ledger.store.get("kv", "from-other-process") == (b"yes", (int(block), 0))
    finally:
        await served.stop()
        await ledger.close()
    assert not (ledger.root / ENDPOINTS_FILE).exists()
    assert served_endpoints(ledger.root) is None


def test_stale_endpoints_file_is_ignored(tmp_path: Path) -> None:
    import json

    from gateway.ledger.embedded.server import ENDPOINTS_FILE, served_endpoints

    (tmp_path / ENDPOINTS_FILE).write_text(
        json.dumps({"pid": 2**22 + 12345, "endpoints": {"Org1MSP": "127.0.0.1:1"}})
    )
    assert served_endpoints(tmp_path) is None
    (tmp_path / ENDPOINTS_FILE).write_text("not json")
    assert served_endpoints(tmp_path) is None


async def test_embedded_session_and_served_gateway(tmp_path: Path) -> None:
    from gateway.config import load_settings
    from gateway.ledger.embedded.errors import LedgerClosed
    from gateway.ledger.embedded_client import embedded_session, served_gateway

    settings = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    with pytest.raises(LedgerClosed, match="no process serves"):
        served_gateway(settings, tmp_path, org="Org1")
    async with embedded_session(settings) as ledger:
        msp_dir = ledger.ca.enroll("Org1", "alice", "member")
        async with served_gateway(settings, msp_dir, org="Org1") as gw:
            contract = gw.network(settings.network.channel).contract(
                settings.network.chaincode_name
            )
            metadata = await contract.evaluate("org.hyperledger.fabric:GetMetadata")
        assert b"anchor" in metadata
    with pytest.raises(LedgerClosed):
        served_gateway(settings, msp_dir, org="Org1")
