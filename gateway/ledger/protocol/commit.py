"""Commit status messages (pure functions).

- :func:`build_commit_status_request` — serialized ``gateway.CommitStatusRequest``.
- :func:`validation_code_name` — Fabric's name for a ``TxValidationCode``
  (``VALID``, ``MVCC_READ_CONFLICT``, …).
"""

from __future__ import annotations

from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2


def build_commit_status_request(transaction_id: str, channel_id: str, identity: bytes) -> bytes:
    """A serialized ``gateway.CommitStatusRequest``; ``identity`` is the requester's creator."""
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=transaction_id, channel_id=channel_id, identity=identity
    )
    return bytes(request.SerializeToString())


def validation_code_name(code: int) -> str:
    """Fabric's name for a transaction validation code, e.g. ``MVCC_READ_CONFLICT``."""
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"UNKNOWN_VALIDATION_CODE_{code}"
