"""Routing a transaction to a contract function, for any stub.

:class:`ContractChaincode` implements the shim's ``Chaincode`` interface
(``init``/``invoke``, coroutines taking a stub) over a list of
:class:`~chaincode.runtime.contract.Contract` classes. It uses only the stub
methods of ``fabric_shim.interfaces.ChaincodeStubInterface``, so the embedded
ledger runs the same contracts through :func:`dispatch` with its own stub.

Function names are ``"<contract>:<Function>"``; a bare name goes to the first
contract. ``org.hyperledger.fabric:GetMetadata`` answers a JSON description of
every contract and function. The response is a ``peer.Response`` protobuf:
status 200 with the function's result as payload (``bytes`` as is, ``str`` as
UTF-8, anything else as compact key-sorted JSON, ``None`` as empty), or status
500 with ``"<reason>: <message>"`` (see :mod:`chaincode.runtime.errors`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from fabric_protos.peer import proposal_response_pb2

from chaincode.runtime._shim import interfaces
from chaincode.runtime.context import Context, canonical_json
from chaincode.runtime.contract import Contract, Route
from chaincode.runtime.errors import ChaincodeError

log = logging.getLogger("chaincode.runtime")

OK = 200
ERROR = 500
METADATA_FUNCTION = "org.hyperledger.fabric:GetMetadata"
#: Ceiling on the function name, so an absurd name never reaches a log or a message.
MAX_FUNCTION_NAME = 128


def success(payload: bytes) -> Any:
    return proposal_response_pb2.Response(status=OK, payload=payload)


def failure(message: str) -> Any:
    return proposal_response_pb2.Response(status=ERROR, message=message)


def _encode_result(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return canonical_json(value)


def _instantiate(contracts: Iterable[type[Contract] | Contract]) -> list[Contract]:
    out: list[Contract] = []
    for item in contracts:
        instance = item() if isinstance(item, type) else item
        if not isinstance(instance, Contract):
            raise TypeError(f"{item!r} is not a chaincode.runtime.Contract")
        out.append(instance)
    if not out:
        raise TypeError("a chaincode needs at least one contract")
    return out


class ContractChaincode(interfaces.Chaincode):  # type: ignore[misc]
    """A chaincode made of contracts; ``init``/``invoke`` accept any stub."""

    def __init__(self, contracts: Iterable[type[Contract] | Contract]) -> None:
        self.contracts = _instantiate(contracts)
        self.routes: dict[str, Route] = {}
        for contract in self.contracts:
            for route in contract.routes():
                if route.qualified_name in self.routes:
                    raise TypeError(f"{route.qualified_name} is defined twice")
                self.routes[route.qualified_name] = route
        self.default_contract = self.contracts[0].name

    def metadata(self) -> dict[str, Any]:
        """Every contract and function with its arguments and kind (submit/evaluate)."""
        contracts: dict[str, Any] = {}
        for route in self.routes.values():
            entry = contracts.setdefault(route.contract, {"name": route.contract, "functions": []})
            entry["functions"].append(
                {
                    "name": route.spec.name,
                    "kind": route.spec.kind,
                    "arguments": list(route.params),
                    "required": route.required,
                    "summary": route.doc.split("\n", 1)[0],
                }
            )
        return {"contracts": contracts, "default": self.default_contract}

    async def init(self, stub: Any) -> Any:
        """An init with no function succeeds; with one it is an ordinary invoke."""
        try:
            function, _ = stub.get_function_and_parameters()
        except Exception:
            function = ""
        if not function:
            return success(b"")
        return await self.invoke(stub)

    async def invoke(self, stub: Any) -> Any:
        started = time.perf_counter()
        name = "?"
        try:
            function, params = self._read_call(stub)
            if function == METADATA_FUNCTION:
                return success(canonical_json(self.metadata()))
            route = self._route(function)
            name = route.qualified_name
            self._check_arguments(route, params)
            result = route.function(Context(stub), *params)
            if inspect.isawaitable(result):
                result = await result
            response = success(_encode_result(result))
        except ChaincodeError as exc:
            response = failure(str(exc))
        except Exception as exc:
            # A bug: log it whole here, but answer without its text (it may hold state).
            log.exception("chaincode function %s failed", name)
            response = failure(f"internal: {name} failed ({type(exc).__name__})")
        log.debug(
            "tx %s %s status=%d %.1fms",
            _safe_txid(stub),
            name,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response

    # -- internals -------------------------------------------------------------------

    @staticmethod
    def _read_call(stub: Any) -> tuple[str, list[str]]:
        try:
            function, params = stub.get_function_and_parameters()
        except UnicodeDecodeError as exc:
            raise ChaincodeError("bad_input", "arguments must be UTF-8 text") from exc
        except Exception as exc:
            raise ChaincodeError("bad_input", "no function name in the transaction") from exc
        if not function:
            raise ChaincodeError("bad_input", "no function name in the transaction")
        return str(function), [p.decode() if isinstance(p, bytes) else str(p) for p in params]

    def _route(self, function: str) -> Route:
        if len(function) > MAX_FUNCTION_NAME:
            raise ChaincodeError("bad_input", "function name is too long")
        qualified = function if ":" in function else f"{self.default_contract}:{function}"
        route = self.routes.get(qualified)
        if route is None:
            known = ", ".join(sorted(self.routes))
            raise ChaincodeError("bad_input", f"unknown function {qualified!r}; known: {known}")
        return route

    @staticmethod
    def _check_arguments(route: Route, params: Sequence[str]) -> None:
        if not route.required <= len(params) <= len(route.params):
            expected = (
                str(route.required)
                if route.required == len(route.params)
                else f"{route.required} to {len(route.params)}"
            )
            raise ChaincodeError(
                "bad_input",
                f"{route.qualified_name} takes {expected} argument(s), got {len(params)}: "
                f"usage {route.usage()}",
            )
        for index, value in enumerate(params):
            size = len(value.encode())
            if size > route.spec.max_arg_bytes:
                raise ChaincodeError(
                    "bad_input",
                    f"argument {route.params[index]} of {route.qualified_name} is {size} bytes; "
                    f"the limit is {route.spec.max_arg_bytes}",
                )


def _safe_txid(stub: Any) -> str:
    try:
        return str(stub.get_txid())[:16]
    except Exception:
        return "?"


# The cached value keeps the contracts alive, so their ids cannot be reused by others.
_CACHE: dict[tuple[int, ...], tuple[tuple[Any, ...], ContractChaincode]] = {}


async def dispatch(contracts: Sequence[type[Contract] | Contract], stub: Any) -> Any:
    """Run one transaction (``stub``'s function and arguments) against ``contracts``.

    Returns the ``peer.Response``. Events set by the contract are on ``stub``
    (through its ``set_event``); the caller carries them with the result.
    The chaincode built for a given list of contracts is cached.
    """
    key = tuple(id(c) for c in contracts)
    cached = _CACHE.get(key)
    if cached is None:
        cached = (tuple(contracts), ContractChaincode(contracts))
        _CACHE[key] = cached
    return await cached[1].invoke(stub)
