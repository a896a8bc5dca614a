"""``google.rpc.Status`` details as a Fabric peer's Gateway service sends them.

A failed Gateway call carries, in the ``grpc-status-details-bin`` trailer, a
``google.rpc.Status`` whose details are ``gateway.ErrorDetail`` messages: one
per peer or orderer that failed, with its own message. The ``google.rpc``
bindings are not installed here, so the one message needed is declared
below (the wire format is all that matters).

- :func:`decode_error_details` — trailer bytes → ``PeerErrorDetail`` tuple.
- :func:`encode_error_details` — the inverse, for a server (the embedded
  ledger served over gRPC) that wants to answer like a peer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fabric_protos.gateway import gateway_pb2
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from gateway.ledger.transport import PeerErrorDetail, StatusCode

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _status_class() -> Any:  # the descriptor API is untyped in the stubs
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)  # type: ignore[no-untyped-call]
    pool.Add(any_file)  # type: ignore[no-untyped-call]
    status_file = descriptor_pb2.FileDescriptorProto(
        name="anchorline/google_rpc_status.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    message = status_file.message_type.add(name="Status")
    field = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="code", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    message.field.add(name="message", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(
        name="details",
        number=3,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    pool.Add(status_file)  # type: ignore[no-untyped-call]
    descriptor = pool.FindMessageTypeByName("google.rpc.Status")  # type: ignore[no-untyped-call]
    return message_factory.GetMessageClass(descriptor)


_Status = _status_class()


def decode_error_details(data: bytes) -> tuple[PeerErrorDetail, ...]:
    """The ``gateway.ErrorDetail`` entries of a serialized ``google.rpc.Status``.

    Bytes that are not a status, and details of other types, are ignored:
    the details only add to the call's own status and message.
    """
    status = _Status()
    try:
        status.ParseFromString(data)
    except DecodeError:
        return ()
    found: list[PeerErrorDetail] = []
    for item in status.details:
        if not item.type_url.endswith("/" + gateway_pb2.ErrorDetail.DESCRIPTOR.full_name):
            continue
        detail = gateway_pb2.ErrorDetail()
        try:
            detail.ParseFromString(item.value)
        except DecodeError:
            continue
        found.append(PeerErrorDetail(detail.address, detail.msp_id, detail.message))
    return tuple(found)


def encode_error_details(
    code: StatusCode, message: str, details: Sequence[PeerErrorDetail]
) -> bytes:
    """A serialized ``google.rpc.Status`` carrying ``gateway.ErrorDetail`` entries."""
    status = _Status(code=int(code), message=message)
    for d in details:
        detail = gateway_pb2.ErrorDetail(address=d.address, msp_id=d.msp_id, message=d.message)
        status.details.add(
            type_url="type.googleapis.com/" + gateway_pb2.ErrorDetail.DESCRIPTOR.full_name,
            value=detail.SerializeToString(),
        )
    return bytes(status.SerializeToString())
