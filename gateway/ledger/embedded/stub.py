"""The chaincode stub of the embedded ledger: runs a contract and records its read/write set.

:class:`SimulationStub` implements what Anchorline's contracts use of
``fabric_shim.interfaces.ChaincodeStubInterface`` (same method names and
shapes as fabric-chaincode-python's stub: state calls are coroutines, range
queries return async iterators of ``queryresult.KV``), with Fabric's
simulation semantics:

- reads see committed state only (a transaction does not read its own writes);
- every read records the key's committed version, every range scan records
  the keys it returned (``RangeQueryInfo``), so validation can detect MVCC
  and phantom conflicts;
- an empty start key of a plain range means ``"\\x01"`` (composite keys,
  which start with ``"\\x00"``, are excluded), as in Fabric's shim;
- paginated queries are allowed only in read-only transactions, and a
  transaction that ran one may not write (Fabric's tx simulator rules);
- one chaincode event per transaction (a second ``set_event`` replaces it);
- rich queries answer "ExecuteQuery not supported for leveldb", as a
  LevelDB peer does; private data, history and chaincode-to-chaincode calls
  are not supported and raise with a message naming the call.

:meth:`SimulationStub.results` gives the ``TxReadWriteSet`` bytes (reads
and writes sorted by key, as Fabric's rwset builder does) and
:meth:`SimulationStub.event` the ``ChaincodeEvent``, if any.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2, chaincode_shim_pb2, proposal_pb2
from google.protobuf import timestamp_pb2

from gateway.ledger.embedded.store import BlockStore, Version

COMPOSITE_NS = "\x00"
MIN_RUNE = "\x00"
MAX_RUNE = "\U0010ffff"
EMPTY_KEY_SUBSTITUTE = "\x01"
# Range scans read the state this many keys at a time.
_SCAN_CHUNK = 256


class StubError(Exception):
    """A stub call the peer would refuse (the message is what the peer says)."""


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise StubError(f"key must be a string, got {type(key).__name__}")
    if key == "":
        raise StubError("key must not be an empty string")


def _check_attribute(value: str) -> None:
    if not isinstance(value, str):
        raise StubError("composite key attributes must be strings")
    if MIN_RUNE in value or MAX_RUNE in value:
        raise StubError(
            f"input contains unicode {'U+0000' if MIN_RUNE in value else 'U+10FFFF'} "
            "starting at position, which is not allowed in a composite key"
        )


class _RangeRecord:
    """One range scan: what it covered and the keys it returned (for phantom checks)."""

    def __init__(self, start: str, end: str) -> None:
        self.start = start
        self.end = end
        self.reads: list[tuple[str, Version]] = []
        self.exhausted = False

    def to_proto(self) -> kv_rwset_pb2.RangeQueryInfo:
        info = kv_rwset_pb2.RangeQueryInfo(
            start_key=self.start, end_key=self.end, itr_exhausted=self.exhausted
        )
        for key, (block, tx) in self.reads:
            info.raw_reads.kv_reads.add(
                key=key, version=kv_rwset_pb2.Version(block_num=block, tx_num=tx)
            )
        return info


class StateIterator:
    """Async iterator over ``queryresult.KV`` for a key range; records what it returns."""

    def __init__(
        self,
        store: BlockStore,
        namespace: str,
        record: _RangeRecord,
        *,
        limit: int | None = None,
    ) -> None:
        self._store = store
        self._ns = namespace
        self._record = record
        self._next_start = record.start
        self._buffer: list[tuple[str, bytes, Version]] = []
        self._done = False
        self._limit = limit
        self._count = 0
        #: For paginated scans: the key the next page starts at ("" when none).
        self.bookmark = ""

    def __aiter__(self) -> StateIterator:
        return self

    async def __anext__(self) -> kv_query_result_pb2.KV:
        if self._limit is not None and self._count >= self._limit:
            await self.aclose()
            raise StopAsyncIteration
        if not self._buffer and not self._done:
            chunk = self._store.scan(
                self._ns, self._next_start, self._record.end, limit=_SCAN_CHUNK
            )
            if len(chunk) < _SCAN_CHUNK:
                self._done = True
            if chunk:
                self._next_start = chunk[-1][0] + MIN_RUNE
            self._buffer = chunk
        if not self._buffer:
            self._record.exhausted = True
            raise StopAsyncIteration
        key, value, version = self._buffer.pop(0)
        self._record.reads.append((key, version))
        self._count += 1
        if self._limit is not None and self._count >= self._limit:
            # Peek one further key: it is where the next page starts.
            after = self._store.scan(self._ns, key + MIN_RUNE, self._record.end, limit=1)
            self.bookmark = after[0][0] if after else ""
            if not after:
                self._record.exhausted = True
        return kv_query_result_pb2.KV(namespace=self._ns, key=key, value=value)

    async def aclose(self) -> None:
        """Stop early; safe to call more than once."""
        self._buffer = []
        self._done = True

    @property
    def metadata(self) -> chaincode_shim_pb2.QueryResponseMetadata:
        """``fetched_records_count`` and ``bookmark`` of a paginated scan."""
        return chaincode_shim_pb2.QueryResponseMetadata(
            fetched_records_count=self._count, bookmark=self.bookmark
        )


class SimulationStub:
    """One transaction's stub over committed state; see the module docstring."""

    def __init__(
        self,
        store: BlockStore,
        *,
        namespace: str,
        channel_id: str,
        tx_id: str,
        args: Sequence[bytes],
        creator_msp_id: str,
        creator_id_bytes: bytes,
        timestamp: timestamp_pb2.Timestamp,
        transient: Mapping[str, bytes],
        signed_proposal: proposal_pb2.SignedProposal,
    ) -> None:
        self._store = store
        self.namespace = namespace
        self.channel_id = channel_id
        self.tx_id = tx_id
        self._args = [bytes(a) for a in args]
        self.creator = {"mspid": creator_msp_id, "idBytes": creator_id_bytes}
        self.tx_timestamp = timestamp
        self._transient = dict(transient)
        self._signed_proposal = signed_proposal
        self._reads: dict[str, Version | None] = {}
        self._writes: dict[str, bytes | None] = {}
        self._ranges: list[_RangeRecord] = []
        self._event: chaincode_event_pb2.ChaincodeEvent | None = None
        self._paginated = False

    # -- transaction facts ----------------------------------------------------------------

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        args = [a.decode() for a in self._args]
        if not args:
            raise StubError("no function name provided in transaction payload")
        return args[0], args[1:]

    def get_args(self) -> list[bytes]:
        return list(self._args)

    def get_string_args(self) -> list[str]:
        return [a.decode() for a in self._args]

    def get_txid(self) -> str:
        return self.tx_id

    def get_channel_id(self) -> str:
        return self.channel_id

    def get_creator(self) -> dict[str, Any]:
        return dict(self.creator)

    def get_transient(self) -> dict[str, bytes]:
        return dict(self._transient)

    def get_tx_timestamp(self) -> timestamp_pb2.Timestamp:
        return self.tx_timestamp

    def get_signed_proposal(self) -> proposal_pb2.SignedProposal:
        return self._signed_proposal

    # -- state ----------------------------------------------------------------------------

    async def get_state(self, key: str) -> bytes:
        _check_key(key)
        found = self._store.get(self.namespace, key)
        if key not in self._reads:
            self._reads[key] = None if found is None else found[1]
        return b"" if found is None else found[0]

    async def put_state(self, key: str, value: bytes | str) -> None:
        _check_key(key)
        self._check_write()
        if isinstance(value, str):
            value = value.encode()
        self._writes[key] = bytes(value)

    async def delete_state(self, key: str) -> None:
        _check_key(key)
        self._check_write()
        self._writes[key] = None

    def _check_write(self) -> None:
        if self._paginated:
            raise StubError(
                f"txid [{self.tx_id}]: unsuppored transaction. Transaction has already "
                "performed a paginated query. Writes are not allowed"
            )

    def _range(self, start: str, end: str, *, limit: int | None = None) -> StateIterator:
        record = _RangeRecord(start, end)
        self._ranges.append(record)
        return StateIterator(self._store, self.namespace, record, limit=limit)

    async def get_state_by_range(self, start_key: str, end_key: str) -> StateIterator:
        return self._range(start_key or EMPTY_KEY_SUBSTITUTE, end_key)

    async def get_state_by_range_with_pagination(
        self, start_key: str, end_key: str, page_size: int, bookmark: str = ""
    ) -> StateIterator:
        self._start_paginated()
        start = bookmark or start_key or EMPTY_KEY_SUBSTITUTE
        return self._range(start, end_key, limit=max(int(page_size), 1))

    def _start_paginated(self) -> None:
        if self._writes:
            raise StubError(
                f"txid [{self.tx_id}]: unsuppored transaction. Paginated queries are "
                "supported only in a read-only transaction"
            )
        self._paginated = True

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str:
        _check_attribute(object_type)
        if not object_type:
            raise StubError("object type must not be empty")
        key = COMPOSITE_NS + object_type + MIN_RUNE
        for attribute in attributes:
            _check_attribute(attribute)
            key += attribute + MIN_RUNE
        return key

    def split_composite_key(self, composite_key: str) -> tuple[str, list[str]]:
        if not composite_key.startswith(COMPOSITE_NS):
            raise StubError("not a composite key")
        parts = composite_key[1:].split(MIN_RUNE)[:-1]
        return parts[0], parts[1:]

    async def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> StateIterator:
        prefix = self.create_composite_key(object_type, attributes)
        return self._range(prefix, prefix + MAX_RUNE)

    async def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> StateIterator:
        prefix = self.create_composite_key(object_type, attributes)
        self._start_paginated()
        return self._range(bookmark or prefix, prefix + MAX_RUNE, limit=max(int(page_size), 1))

    async def get_query_result(self, query: str) -> AsyncIterator[Any]:
        raise StubError("ExecuteQuery not supported for leveldb")

    async def get_query_result_with_pagination(
        self, query: str, page_size: int, bookmark: str = ""
    ) -> AsyncIterator[Any]:
        raise StubError("ExecuteQuery not supported for leveldb")

    async def get_history_for_key(self, key: str) -> AsyncIterator[Any]:
        raise StubError("history queries are not supported by the embedded ledger")

    async def invoke_chaincode(
        self, chaincode_name: str, args: Sequence[Any], channel: str = ""
    ) -> Any:
        raise StubError("chaincode-to-chaincode calls are not supported by the embedded ledger")

    def _unsupported(self, name: str) -> StubError:
        return StubError(f"{name} is not supported by the embedded ledger")

    async def get_private_data(self, collection: str, key: str) -> bytes:
        raise self._unsupported("private data")

    async def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        raise self._unsupported("private data")

    async def delete_private_data(self, collection: str, key: str) -> None:
        raise self._unsupported("private data")

    async def set_state_validation_parameter(self, key: str, ep: bytes) -> None:
        raise self._unsupported("key-level endorsement")

    async def get_state_validation_parameter(self, key: str) -> bytes:
        raise self._unsupported("key-level endorsement")

    # -- events ---------------------------------------------------------------------------

    def set_event(self, name: str, payload: bytes | str | None) -> None:
        if not isinstance(name, str) or not name:
            raise StubError("event name can not be empty string")
        if isinstance(payload, str):
            payload = payload.encode()
        self._event = chaincode_event_pb2.ChaincodeEvent(
            chaincode_id=self.namespace,
            tx_id=self.tx_id,
            event_name=name,
            payload=bytes(payload or b""),
        )

    # -- results --------------------------------------------------------------------------

    def event(self) -> chaincode_event_pb2.ChaincodeEvent | None:
        return self._event

    def results(self) -> bytes:
        """The ``rwset.TxReadWriteSet`` bytes of this simulation."""
        kv = kv_rwset_pb2.KVRWSet()
        for key in sorted(self._reads):
            read = kv.reads.add(key=key)
            version = self._reads[key]
            if version is not None:
                read.version.block_num, read.version.tx_num = version
        kv.range_queries_info.extend(r.to_proto() for r in self._ranges)
        for key in sorted(self._writes):
            value = self._writes[key]
            kv.writes.add(key=key, is_delete=value is None, value=value or b"")
        txrw = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
        if kv.reads or kv.writes or kv.range_queries_info:
            txrw.ns_rwset.add(namespace=self.namespace, rwset=kv.SerializeToString())
        return bytes(txrw.SerializeToString())
