"""Commit status: request bytes, validation code names, status → error."""

from __future__ import annotations

import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2

from gateway.ledger.commit import Status
from gateway.ledger.errors import CommitError
from gateway.ledger.protocol.commit import build_commit_status_request, validation_code_name


def test_request_fields() -> None:
    data = build_commit_status_request("tx1", "ch", b"creator")
    request = gateway_pb2.CommitStatusRequest.FromString(data)
    assert (request.transaction_id, request.channel_id, request.identity) == (
        "tx1",
        "ch",
        b"creator",
    )


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (transaction_pb2.VALID, "VALID"),
        (transaction_pb2.MVCC_READ_CONFLICT, "MVCC_READ_CONFLICT"),
        (transaction_pb2.ENDORSEMENT_POLICY_FAILURE, "ENDORSEMENT_POLICY_FAILURE"),
        (transaction_pb2.DUPLICATE_TXID, "DUPLICATE_TXID"),
        (9999, "UNKNOWN_VALIDATION_CODE_9999"),
    ],
)
def test_validation_code_names(code: int, name: str) -> None:
    assert validation_code_name(code) == name


def test_valid_status_does_not_raise() -> None:
    status = Status("tx", transaction_pb2.VALID, 7)
    assert status.successful
    status.raise_for_status()


def test_invalid_status_raises_with_code_name_block_and_tx() -> None:
    status = Status("tx9", transaction_pb2.MVCC_READ_CONFLICT, 12)
    with pytest.raises(CommitError) as caught:
        status.raise_for_status()
    err = caught.value
    assert (err.validation_code_name, err.block_number, err.transaction_id) == (
        "MVCC_READ_CONFLICT",
        12,
        "tx9",
    )
    assert err.code == "AL1305"
    assert "retry" in err.message
    assert err.to_dict()["details"]["validation_code"] == transaction_pb2.MVCC_READ_CONFLICT
