"""The per-transaction context handed to every contract function.

:class:`Context` wraps whatever stub runs the transaction (the peer-side stub
of a chaincode server, or the embedded ledger's stub) and gives contracts the
few things they need, deterministically across endorsers:

- ``ctx.stub``: the stub itself (``fabric_shim.interfaces.ChaincodeStubInterface``);
- ``ctx.identity``: the creator (:class:`~chaincode.runtime.identity.ClientIdentity`),
  parsed lazily from the signed proposal;
- ``ctx.tx_id``, ``ctx.channel_id``;
- ``ctx.tx_time``: the proposal's timestamp as an aware UTC datetime (the same on
  every endorser; contracts never read the wall clock), ``ctx.tx_time_iso``;
- ``ctx.key(object_type, *attrs)``: a Fabric composite key;
- ``get_json`` / ``put_json`` / ``delete`` / ``scan`` over state;
- ``ctx.emit(name, payload)``: the transaction's chaincode event (JSON payload).
  Fabric carries one event per transaction; a second ``emit`` raises.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

from chaincode.runtime._shim import transaction_context
from chaincode.runtime.errors import ChaincodeError
from chaincode.runtime.identity import ClientIdentity

#: Fabric's composite key namespace and separator.
COMPOSITE_NS = "\x00"
COMPOSITE_SEP = "\x00"
#: The largest code point: ``prefix + MAX_RUNE`` ends a range over a key prefix.
MAX_RUNE = "\U0010ffff"


def canonical_json(value: Any) -> bytes:
    """Compact, key-sorted JSON: the same bytes on every endorser."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def composite_key(object_type: str, *attributes: str) -> str:
    """A Fabric composite key, byte-identical to the Go shim's ``CreateCompositeKey``."""
    parts = (object_type, *attributes)
    for part in parts:
        if not isinstance(part, str) or not part:
            raise ChaincodeError("internal", "composite key parts must be non-empty strings")
        if COMPOSITE_SEP in part or MAX_RUNE in part:
            raise ChaincodeError("internal", "composite key parts may not hold U+0000 or U+10FFFF")
    return COMPOSITE_NS + "".join(p + COMPOSITE_SEP for p in parts)


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """Inverse of :func:`composite_key`."""
    if not key.startswith(COMPOSITE_NS):
        raise ValueError("not a composite key")
    parts = key[1:].split(COMPOSITE_SEP)[:-1]
    return parts[0], parts[1:]


def timestamp_to_datetime(ts: Any) -> dt.datetime:
    """An aware UTC datetime from a protobuf ``Timestamp`` or a datetime."""
    if isinstance(ts, dt.datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    if ts is None or not hasattr(ts, "seconds"):
        raise ChaincodeError("bad_input", "the transaction carries no timestamp")
    base = dt.datetime.fromtimestamp(int(ts.seconds), tz=dt.UTC)
    return base + dt.timedelta(microseconds=int(getattr(ts, "nanos", 0)) // 1000)


def format_time(value: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``: sortable as text."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Context(transaction_context.TransactionContext):  # type: ignore[misc]
    """One transaction's view of the ledger and of its creator."""

    def __init__(self, stub: Any) -> None:
        super().__init__()
        self.set_stub(stub)
        self._identity: ClientIdentity | None = None
        self._event_set = False

    # -- what the contract API expects -------------------------------------------------

    def get_client_identity(self) -> ClientIdentity:
        return self.identity

    # -- transaction facts --------------------------------------------------------------

    @property
    def stub(self) -> Any:
        return self.get_stub()

    @property
    def identity(self) -> ClientIdentity:
        if self._identity is None:
            self._identity = ClientIdentity(self.stub)
            self.set_client_identity(self._identity)
        return self._identity

    @property
    def tx_id(self) -> str:
        return str(self.stub.get_txid())

    @property
    def channel_id(self) -> str:
        return str(self.stub.get_channel_id())

    @property
    def tx_time(self) -> dt.datetime:
        return timestamp_to_datetime(self.stub.get_tx_timestamp())

    @property
    def tx_time_iso(self) -> str:
        return format_time(self.tx_time)

    # -- state ---------------------------------------------------------------------------

    @staticmethod
    def key(object_type: str, *attributes: str) -> str:
        return composite_key(object_type, *attributes)

    async def get_json(self, key: str) -> Any | None:
        """The JSON value stored at ``key``, or None when there is none."""
        raw = await self.stub.get_state(key)
        if not raw:
            return None
        return json.loads(bytes(raw))

    async def put_json(self, key: str, value: Any) -> None:
        await self.stub.put_state(key, canonical_json(value))

    async def delete(self, key: str) -> None:
        await self.stub.delete_state(key)

    async def scan(self, object_type: str, *attributes: str) -> AsyncIterator[tuple[str, Any]]:
        """``(key, JSON value)`` for every key under a partial composite key, in key order."""
        iterator = await self.stub.get_state_by_partial_composite_key(object_type, list(attributes))
        try:
            async for kv in iterator:
                value = bytes(kv.value)
                yield kv.key, (json.loads(value) if value else None)
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    # -- events --------------------------------------------------------------------------

    def emit(self, name: str, payload: Any) -> None:
        """Set this transaction's chaincode event (payload serialised as canonical JSON)."""
        if self._event_set:
            raise ChaincodeError("internal", "a transaction can carry only one chaincode event")
        self._event_set = True
        self.stub.set_event(name, canonical_json(payload))
