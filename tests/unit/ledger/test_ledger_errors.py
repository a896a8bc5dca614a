"""Error mapping: gRPC status and Fabric's details → typed errors with the chaincode's message."""

from __future__ import annotations

import grpc
import pytest

from gateway.ledger.client import map_rpc_error
from gateway.ledger.errors import (
    CommitStatusError,
    EndorseError,
    EvaluateError,
    EventStreamError,
    LedgerError,
    LedgerPermissionDenied,
    LedgerTimeout,
    LedgerUnavailable,
    SubmitError,
    chaincode_error,
)
from gateway.ledger.grpc_transport import _rpc_error
from gateway.ledger.rpc_status import (
    STATUS_DETAILS_KEY,
    decode_error_details,
    encode_error_details,
)
from gateway.ledger.transport import PeerErrorDetail, RpcError, StatusCode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chaincode response 500, asset 7 is locked", (500, "asset 7 is locked")),
        (
            "evaluate call to endorser returned error: chaincode response 500, no such key: k",
            (500, "no such key: k"),
        ),
        ("chaincode response 400, line one\nline two", (400, "line one\nline two")),
        ("failed to endorse transaction, see attached details for more info", None),
        ("", None),
    ],
)
def test_chaincode_message_extraction(text: str, expected: tuple[int, str] | None) -> None:
    assert chaincode_error(text) == expected


@pytest.mark.parametrize(
    ("status", "stage", "kind"),
    [
        (StatusCode.DEADLINE_EXCEEDED, EndorseError, LedgerTimeout),
        (StatusCode.UNAVAILABLE, SubmitError, LedgerUnavailable),
        (StatusCode.PERMISSION_DENIED, EvaluateError, LedgerPermissionDenied),
        (StatusCode.DEADLINE_EXCEEDED, CommitStatusError, LedgerTimeout),
        (StatusCode.UNAVAILABLE, EventStreamError, LedgerUnavailable),
        (StatusCode.ABORTED, EndorseError, EndorseError),
        (StatusCode.UNKNOWN, EvaluateError, EvaluateError),
        (StatusCode.ABORTED, SubmitError, SubmitError),
        (StatusCode.NOT_FOUND, CommitStatusError, CommitStatusError),
        (StatusCode.ABORTED, EventStreamError, EventStreamError),
    ],
)
def test_status_maps_to_type_with_transaction_id(
    status: StatusCode, stage: type[LedgerError], kind: type[LedgerError]
) -> None:
    err = map_rpc_error(RpcError(status, "boom", endpoint="127.0.0.1:7051"), stage, "tx42")
    # One except per stage catches it; the kind of failure keeps its own code.
    assert isinstance(err, stage)
    assert isinstance(err, kind)
    assert err.code == kind.code
    assert err.transaction_id == "tx42"
    assert err.stage == stage.stage
    assert err.details["stage"] == stage.stage
    assert err.status == status.name
    assert "tx42" in err.message and "127.0.0.1:7051" in err.message


def test_each_stage_kind_is_caught_by_no_other_stage() -> None:
    stages = (EvaluateError, EndorseError, SubmitError, CommitStatusError, EventStreamError)
    for stage in stages:
        for status in (StatusCode.DEADLINE_EXCEEDED, StatusCode.UNAVAILABLE, StatusCode.ABORTED):
            err = map_rpc_error(RpcError(status, "boom"), stage)
            assert [s for s in stages if isinstance(err, s)] == [stage]


def test_endorse_error_from_fabric_details_surfaces_chaincode_message() -> None:
    details = (
        PeerErrorDetail("127.0.0.1:7051", "Org1MSP", "chaincode response 500, insufficient funds"),
        PeerErrorDetail("127.0.0.1:9051", "Org2MSP", "chaincode response 500, insufficient funds"),
    )
    rpc = RpcError(
        StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
        details,
    )
    err = map_rpc_error(rpc, EndorseError, "tx1")
    assert isinstance(err, EndorseError)
    assert err.chaincode_message == "insufficient funds"
    assert err.peer_details == details
    assert "chaincode error: insufficient funds" in err.message
    assert [p["msp_id"] for p in err.to_dict()["details"]["peers"]] == ["Org1MSP", "Org2MSP"]


def test_non_chaincode_endorse_failure_lists_each_peer() -> None:
    rpc = RpcError(
        StatusCode.ABORTED,
        "failed to collect enough transaction endorsements",
        (PeerErrorDetail("p1:7051", "Org1MSP", "access denied"),),
    )
    err = map_rpc_error(rpc, EndorseError, "tx1")
    assert isinstance(err, EndorseError)
    assert err.chaincode_message is None
    assert "Org1MSP p1:7051: access denied" in err.message


def test_status_details_round_trip() -> None:
    details = (PeerErrorDetail("a:1", "Org1MSP", "m1"), PeerErrorDetail("b:2", "Org2MSP", "m2"))
    data = encode_error_details(StatusCode.ABORTED, "x", details)
    assert decode_error_details(data) == details
    assert decode_error_details(b"\xff\xff\xff") == ()


def test_grpc_exception_becomes_rpc_error_with_details() -> None:
    details = (PeerErrorDetail("a:1", "Org1MSP", "chaincode response 500, nope"),)
    trailing = grpc.aio.Metadata(
        (STATUS_DETAILS_KEY, encode_error_details(StatusCode.ABORTED, "failed", details))
    )
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode.ABORTED, grpc.aio.Metadata(), trailing, details="failed to endorse"
    )
    rpc = _rpc_error(exc, "127.0.0.1:7051")
    assert rpc.status == StatusCode.ABORTED
    assert rpc.message == "failed to endorse"
    assert rpc.details == details
    assert rpc.endpoint == "127.0.0.1:7051"
