"""GrpcTransport over a real loopback gRPC server (no Fabric): results, errors, deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import chaincode_event_pb2, proposal_response_pb2

from gateway.ledger.connection import endpoints_from_profile
from gateway.ledger.endpoints import Endpoint, Failover
from gateway.ledger.grpc_transport import GrpcTransport
from gateway.ledger.rpc_status import STATUS_DETAILS_KEY, encode_error_details
from gateway.ledger.transport import PeerErrorDetail, RpcError, StatusCode
from network.profile import NetworkProfile, OrdererProfile, OrgProfile


class Servicer(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    async def Evaluate(self, request: Any, context: Any) -> Any:
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(
                status=200, payload=request.transaction_id.encode()
            )
        )

    async def Endorse(self, request: Any, context: Any) -> Any:
        details = (PeerErrorDetail("127.0.0.1:1", "Org1MSP", "chaincode response 500, nope"),)
        await context.abort(
            grpc.StatusCode.ABORTED,
            "failed to endorse transaction, see attached details for more info",
            trailing_metadata=(
                (STATUS_DETAILS_KEY, encode_error_details(StatusCode.ABORTED, "x", details)),
            ),
        )

    async def CommitStatus(self, request: Any, context: Any) -> Any:
        await asyncio.sleep(10)  # a lost transaction: the peer never answers

    async def ChaincodeEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for block in (3, 4):
            event = chaincode_event_pb2.ChaincodeEvent(tx_id=f"t{block}", event_name="put")
            yield gateway_pb2.ChaincodeEventsResponse(events=[event], block_number=block)


@pytest.fixture
async def server_address() -> AsyncIterator[str]:
    server = grpc.aio.server()
    gateway_pb2_grpc.add_GatewayServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_calls_results_errors_and_deadlines(server_address: str) -> None:
    transport = GrpcTransport(Endpoint(server_address, "Org1MSP"))
    try:
        response = await transport.evaluate(
            gateway_pb2.EvaluateRequest(transaction_id="abc"), timeout=5
        )
        assert response.result.payload == b"abc"

        with pytest.raises(RpcError) as caught:
            await transport.endorse(gateway_pb2.EndorseRequest(), timeout=5)
        assert caught.value.status == StatusCode.ABORTED
        assert caught.value.details[0].message == "chaincode response 500, nope"
        assert caught.value.endpoint == server_address

        with pytest.raises(RpcError) as caught:
            await transport.commit_status(gateway_pb2.SignedCommitStatusRequest(), timeout=0.2)
        assert caught.value.status == StatusCode.DEADLINE_EXCEEDED

        blocks = [
            r.block_number
            async for r in transport.chaincode_events(
                gateway_pb2.SignedChaincodeEventsRequest(), timeout=5
            )
        ]
        assert blocks == [3, 4]
    finally:
        await transport.close()


async def test_unreachable_peer_is_unavailable_and_failover_moves_on(server_address: str) -> None:
    # A port nothing listens on (bound and closed again).
    probe = grpc.aio.server()
    dead_port = probe.add_insecure_port("127.0.0.1:0")
    await probe.start()
    await probe.stop(None)
    dead = GrpcTransport(Endpoint(f"127.0.0.1:{dead_port}", "Org1MSP"))
    live = GrpcTransport(Endpoint(server_address, "Org2MSP"))
    failover = Failover([dead, live])
    try:
        with pytest.raises(RpcError) as caught:
            await dead.evaluate(gateway_pb2.EvaluateRequest(), timeout=2)
        assert caught.value.status == StatusCode.UNAVAILABLE
        response = await failover.call(
            lambda t: t.evaluate(gateway_pb2.EvaluateRequest(transaction_id="z"), timeout=2)
        )
        assert response.result.payload == b"z"
        assert failover.candidates()[0] is live
    finally:
        await failover.close()


def test_endpoints_from_profile_put_own_org_first(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"PEM")

    def org(n: int) -> OrgProfile:
        return OrgProfile(
            name=f"Org{n}",
            msp_id=f"Org{n}MSP",
            peer_address=f"127.0.0.1:{7000 + n}",
            peer_tls_ca=ca,
            peer_host_override=f"peer0.org{n}",
            peer_ops_address="",
            admin_msp_dir=tmp_path,
            msp_ca_certs=(ca,),
            crl_path=None,
            ca_url="",
        )

    profile = NetworkProfile("ch", (org(1), org(2), org(3)), (OrdererProfile("o1", "a", ca, "b"),))
    endpoints = endpoints_from_profile(profile, "Org2MSP")
    assert [e.msp_id for e in endpoints] == ["Org2MSP", "Org1MSP", "Org3MSP"]
    assert endpoints[0].tls_root_certs == b"PEM"
    assert endpoints[0].server_name_override == "peer0.org2"
