"""Anchorline's chaincode runtime: a small correcting layer over fabric-chaincode-python 2.5.4.

Write a contract
----------------
::

    from chaincode.runtime import Context, Contract, BadInput, query, transaction

    class Notes(Contract):
        name = "notes"                       # functions are called "notes:Put", "notes:Get"

        @transaction("Put")                  # submit: may write state
        async def put(self, ctx: Context, key: str, text: str) -> dict:
            if not key:
                raise BadInput("key must not be empty")
            await ctx.put_json(ctx.key("note", key), {"text": text, "at": ctx.tx_time_iso})
            ctx.emit("NotePut", {"key": key})  # one chaincode event per transaction
            return {"key": key}

        @query("Get")                        # evaluate: read only
        async def get(self, ctx, key: str) -> dict | None:   # ctx needs no annotation
            return await ctx.get_json(ctx.key("note", key))

    CONTRACTS = [Notes]

- The first parameter after ``self`` is always the :class:`Context`; the rest are
  the transaction's arguments, as ``str``. Wrong argument counts and arguments
  over ``max_arg_bytes`` (64 KiB by default) are refused before the function runs.
- Return ``dict``/``list``/numbers (sent as compact key-sorted JSON), ``str``
  (UTF-8), ``bytes`` (as is) or ``None`` (empty payload).
- Refuse with :class:`ChaincodeError` (or ``BadInput``, ``NotFound``,
  ``Conflict``, ``Forbidden``, ``Expired``): the client gets status 500 and
  ``"<reason>: <message>"``. Any other exception answers
  ``"internal: <function> failed (<type>)"`` and is logged with its traceback.
- Time comes from ``ctx.tx_time`` (the proposal timestamp), never the wall clock.
- The creator is ``ctx.identity``: ``msp_id``, ``fingerprint`` (hex SHA-256 of
  the certificate DER), ``role`` and ``get_attribute(name)`` from the Fabric CA
  attribute extension.
- ``org.hyperledger.fabric:GetMetadata`` lists every contract and function.

Run it as a chaincode server (chaincode-as-a-service)
-----------------------------------------------------
``python -m chaincode.runtime <python.module.path>`` serves the module's
module-level ``CONTRACTS`` list. Environment: ``CHAINCODE_SERVER_ADDRESS``
(``host:port``), ``CHAINCODE_ID`` (the package id), ``CHAINCODE_TLS_DISABLED``
(default ``true``), ``CHAINCODE_TLS_KEY`` / ``CHAINCODE_TLS_CERT`` (PEM file
paths, needed when TLS is on), ``CHAINCODE_CLIENT_CA_CERT`` (PEM file path;
when set, peers must present a client certificate signed by it),
``CHAINCODE_LOG_LEVEL`` (default ``INFO``). Logs go to stderr, without payloads.
It stops cleanly on SIGTERM; exit code 2 means a configuration error (one line
says which).

Run it in-process (the embedded ledger)
---------------------------------------
``await dispatch(CONTRACTS, stub)`` runs one transaction and returns a
``peer.Response`` protobuf (``status``, ``payload``, ``message``). ``stub`` is
any object with the methods of ``fabric_shim.interfaces.ChaincodeStubInterface``
that the contracts use: ``get_function_and_parameters()`` -> ``(str, [str])``,
``get_txid()``, ``get_channel_id()``, ``get_tx_timestamp()`` (protobuf
``Timestamp`` or aware ``datetime``), ``get_creator()`` (``{"mspid", "idBytes"}``
dict, ``SerializedIdentity`` or its bytes; ``idBytes`` is the PEM certificate),
coroutines ``get_state(key) -> bytes`` (empty/None when absent),
``put_state(key, bytes)``, ``delete_state(key)``,
``get_state_by_partial_composite_key(object_type, [attrs])`` -> async iterator of
objects with ``.key`` (str) and ``.value`` (bytes), optionally with ``aclose()``,
and ``set_event(name, payload_bytes)``. The event a transaction sets is on the
stub: the caller puts it in the transaction (last one set, only when
``status`` < 400). Composite keys are Fabric's (``"\\x00type\\x00attr\\x00"``).
:class:`ContractChaincode` is the same thing as a reusable object with
``init(stub)``/``invoke(stub)``.

Defects of fabric-chaincode-python 2.5.4 corrected here
-------------------------------------------------------
(a) events never reach the peer -> :mod:`~chaincode.runtime.peer_stream` puts the
event on the COMPLETED message; (b) concurrent stream writes lose messages ->
:class:`~chaincode.runtime.peer_stream.SerialisedWriter`; (c) TLS environment
ignored -> :mod:`~chaincode.runtime.server`; (d) ``get_attribute`` always None ->
:mod:`~chaincode.runtime.identity`; (e) unannotated ``ctx`` taken as an argument
-> :mod:`~chaincode.runtime.contract` (the first parameter is the context);
(f) DEBUG root logger and payload logging -> :mod:`~chaincode.runtime._shim` and
:mod:`~chaincode.runtime.logs`.
"""

from __future__ import annotations

from chaincode.runtime.context import Context, canonical_json, composite_key
from chaincode.runtime.contract import Contract, query, transaction
from chaincode.runtime.dispatch import ContractChaincode, dispatch
from chaincode.runtime.errors import (
    BadInput,
    ChaincodeError,
    Conflict,
    Expired,
    Forbidden,
    NotFound,
)
from chaincode.runtime.identity import ClientIdentity

__all__ = [
    "BadInput",
    "ChaincodeError",
    "ClientIdentity",
    "Conflict",
    "Context",
    "Contract",
    "ContractChaincode",
    "Expired",
    "Forbidden",
    "NotFound",
    "canonical_json",
    "composite_key",
    "dispatch",
    "query",
    "transaction",
]
