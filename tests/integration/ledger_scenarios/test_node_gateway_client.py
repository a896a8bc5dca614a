"""The official Node client (`@hyperledger/fabric-gateway`) on both ledgers.

The embedded ledger is served over gRPC on loopback for it (plain text); the
Fabric peer is reached over TLS. The Node client must see the same thing from both.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import LedgerUnderTest

HERE = Path(__file__).parent
NODE_DIR = Path.home() / ".cache" / "anchorline" / "fabric-gateway-node"
NODE_MODULES = NODE_DIR / "node_modules"
INSTALL = (
    f"mkdir -p {NODE_DIR} && cp {HERE / 'node' / 'package.json'} {NODE_DIR}/ && "
    f"npm install --prefix {NODE_DIR} --no-audit --no-fund"
)


def _node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / "@hyperledger" / "fabric-gateway").is_dir():
        pytest.skip(f"@hyperledger/fabric-gateway is not installed; run: {INSTALL}")
    return node


async def _run_node(node: str, config: dict[str, Any], work: Path) -> dict[str, Any]:
    path = work / "node.json"
    path.write_text(json.dumps({**config, "node_modules": str(NODE_MODULES)}))
    process = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "node" / "fabric_gateway_client.mjs"),
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def test_official_node_client_submits_evaluates_and_streams(
    ledger: LedgerUnderTest, tmp_path: Path
) -> None:
    node = _node_or_skip()
    msp = ledger.member()
    (key_file,) = (msp / "keystore").iterdir()
    state_key = ledger.unique("node")
    config: dict[str, Any] = {
        "msp_id": "Org1MSP",
        "cert": str(msp / "signcerts" / "cert.pem"),
        "key_file": str(key_file),
        "channel": ledger.channel,
        "chaincode": ledger.chaincode,
        "state_key": state_key,
    }
    if ledger.kind == "embedded":
        from gateway.ledger.embedded.server import GatewayServer

        server = GatewayServer(ledger.extra["ledger"], "Org1MSP")
        await server.start()
        try:
            seen = await _run_node(node, {**config, "address": server.address}, tmp_path)
        finally:
            await server.stop()
    else:
        org = ledger.extra["profile"].org("Org1")
        config.update(
            address=org.peer_address,
            tls_ca=str(org.peer_tls_ca),
            server_name=org.peer_host_override or None,
        )
        seen = await _run_node(node, config, tmp_path)
    assert "error" not in seen, seen["error"]
    assert seen["submit"]["ok"] is True and seen["submit"]["code"] == 0
    assert seen["evaluate"] == "from-node"
    # Refused by the chaincode at endorsement: EndorseError with the peer's detail.
    assert seen["fail"]["name"] == "EndorseError"
    assert seen["fail"]["code"] == 10  # ABORTED
    assert seen["fail"]["details"] == ["chaincode response 500, bad_input: node says no"]
    assert seen["evaluate_fail"]["code"] == 2  # UNKNOWN
    assert "chaincode response 500, bad_input: node evaluate" in seen["evaluate_fail"]["message"]
    assert seen["event"] == {
        "tx": seen["submit"]["tx"],
        "name": "put",
        "block": seen["submit"]["block"],
        "payload": {"key": state_key, "value": "from-node"},
    }
