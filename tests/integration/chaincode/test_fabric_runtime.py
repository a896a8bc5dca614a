"""The chaincode runtime's corrections, proven on the real network (marked ``fabric``).

- (a) an event set by a contract reaches a client through the peer's Gateway
  ``ChaincodeEvents`` service;
- (b) 8 concurrent clients x 50 calls, submitted and evaluated through the same
  chaincode server, all succeed (the shim alone lost some: see FABRIC-NOTES);
- (d) the role attribute of a Fabric CA enrolment certificate is read on-chain
  (an admin may register a channel, a member may not).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.ledger.errors import EndorseError
from gateway.ledger.gateway import Gateway
from network.profile import NetworkProfile
from tests.integration.chaincode.cc_fabric_support import (
    CHAINCODE,
    CHAINCODE_PATH,
    connect,
    rfc3339,
)

pytestmark = pytest.mark.fabric

CLIENTS = 8
CALLS = 50


@pytest.fixture(scope="module")
def anchorline_cc(deploy_chaincode: Callable[[str, Path], None]) -> str:
    deploy_chaincode(CHAINCODE, CHAINCODE_PATH)
    return CHAINCODE


@pytest.fixture(scope="module")
def org1_admin(fabric_network: NetworkProfile, enroll_identity: Callable[..., Path]) -> Path:
    return enroll_identity(fabric_network, "Org1", f"cc-admin-{uuid.uuid4().hex[:6]}", "admin")


@pytest.fixture
async def admin_gw(
    fabric_network: NetworkProfile, org1_admin: Path, anchorline_cc: str
) -> AsyncIterator[Gateway]:
    gw = connect(fabric_network, org1_admin, "Org1")
    yield gw
    await gw.close()


async def test_an_event_reaches_a_client(admin_gw: Gateway, fabric_network: NetworkProfile) -> None:
    network = admin_gw.network(fabric_network.channel)
    contract = network.contract(CHAINCODE, "access")
    channel = f"ev-{uuid.uuid4().hex[:8]}"
    commit = await contract.submit_async("RegisterChannel", channel)
    status = await commit.status(timeout=30)
    assert status.successful, status.code_name
    async with network.chaincode_events(CHAINCODE, start_block=status.block_number) as stream:
        event = await asyncio.wait_for(stream.__anext__(), 15)
    assert event.transaction_id == commit.transaction_id
    assert event.event_name == "ChannelRegistered"
    payload = json.loads(event.payload)
    assert payload["channel"] == channel and payload["owner_msp"] == "Org1MSP"
    assert payload["tx_id"] == commit.transaction_id


async def test_a_member_role_read_from_the_certificate_is_refused_admin_work(
    fabric_network: NetworkProfile, enroll_identity: Callable[..., Path], anchorline_cc: str
) -> None:
    member_dir = enroll_identity(fabric_network, "Org1", f"cc-m-{uuid.uuid4().hex[:6]}", "member")
    gw = connect(fabric_network, member_dir, "Org1")
    try:
        contract = gw.network(fabric_network.channel).contract(CHAINCODE, "access")
        with pytest.raises(EndorseError) as caught:
            await contract.submit("RegisterChannel", f"m-{uuid.uuid4().hex[:8]}")
        assert caught.value.chaincode_message is not None
        assert caught.value.chaincode_message.endswith(
            "forbidden: only an admin (certificate attribute anchorline.role=admin) may "
            "register a channel; the creator's role is member"
        )
    finally:
        await gw.close()


async def test_eight_concurrent_clients_times_fifty_calls_lose_nothing(
    fabric_network: NetworkProfile, org1_admin: Path, anchorline_cc: str
) -> None:
    channel = f"load-{uuid.uuid4().hex[:8]}"
    gateways = [connect(fabric_network, org1_admin, "Org1") for _ in range(CLIENTS)]
    try:
        first = gateways[0].network(fabric_network.channel).contract(CHAINCODE, "access")
        await first.submit("RegisterChannel", channel, timeout=30)
        expires = rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))

        async def client(index: int, gw: Gateway) -> list[str]:
            contract = gw.network(fabric_network.channel).contract(CHAINCODE, "access")
            outcomes = []
            for call in range(CALLS):
                subject = {"kind": "msp", "value": f"Load{index}x{call}MSP"}
                grant = json.dumps({"channel": channel, "subject": subject, "expires_at": expires})
                try:
                    if call % 2 == 0:
                        await contract.submit("GrantAccess", grant, timeout=30)
                    else:
                        answer = await contract.evaluate(
                            "CheckAccess", channel, f"Load{index}x{call - 1}MSP", "", timeout=10
                        )
                        assert json.loads(answer)["allowed"] is True
                    outcomes.append("ok")
                except Exception as exc:  # counted, then reported below
                    outcomes.append(f"{type(exc).__name__}: {exc}")
            return outcomes

        started = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(client(i, gw) for i, gw in enumerate(gateways))), 300
        )
        elapsed = time.perf_counter() - started
        failures = [o for r in results for o in r if o != "ok"]
        assert not failures, f"{len(failures)} of {CLIENTS * CALLS} calls failed: {failures[:3]}"
        listed = json.loads(await first.evaluate("ListGrants", channel))
        assert len(listed["grants"]) == CLIENTS * CALLS // 2
        print(f"{CLIENTS}x{CALLS} calls (half submits) in {elapsed:.1f}s")
    finally:
        for gw in gateways:
            await gw.close()
