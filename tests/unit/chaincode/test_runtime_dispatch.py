"""Routing, argument checks, results, errors and events through ``dispatch``; defect (e)."""

from __future__ import annotations

import json

import pytest
from fabric_chaincode_python.fabric_contract_api.contractapi.transaction_context import (
    TransactionContext,
)
from fabric_chaincode_python.fabric_contract_api.internal.contract_function import (
    ContractFunction,
)

from chaincode.runtime import (
    BadInput,
    Context,
    Contract,
    ContractChaincode,
    query,
    transaction,
)
from tests.unit.chaincode.ccfakes import FakeLedger, issue, make_ca


class Notes(Contract):
    name = "notes"

    @transaction("Put")
    async def put(self, ctx, key: str, text: str) -> dict:  # ctx deliberately unannotated
        if not key:
            raise BadInput("key must not be empty")
        await ctx.put_json(ctx.key("note", key), {"text": text, "at": ctx.tx_time_iso})
        ctx.emit("NotePut", {"key": key, "by": ctx.identity.msp_id})
        return {"key": key}

    @query("Get")
    async def get(self, ctx: Context, key: str) -> dict | None:
        return await ctx.get_json(ctx.key("note", key))

    @query("List")
    async def list_notes(self, ctx, prefix: str = "") -> list:
        return [k for k, _ in [(key, v) async for key, v in ctx.scan("note")]]

    @query
    def Echo(self, ctx, text: str) -> str:  # plain function, bare decorator
        return text

    @query("Raw")
    def raw(self, ctx) -> bytes:
        return b"\x00\x01"

    @transaction("Twice")
    async def twice(self, ctx) -> None:
        ctx.emit("A", {})
        ctx.emit("B", {})

    @transaction("Boom")
    async def boom(self, ctx, secret: str) -> None:
        raise KeyError(secret)

    @transaction("Small", max_arg_bytes=8)
    async def small(self, ctx, value: str) -> str:
        return value

    def helper(self) -> None:
        """Not decorated: never callable from a transaction."""


class Other(Contract):
    name = "other"

    @query("Get")
    async def get(self, ctx) -> str:
        return "other"


@pytest.fixture
def alice():
    return issue(make_ca("Org1"), "Org1MSP", "alice")


@pytest.fixture
def ledger():
    return FakeLedger([Notes, Other])


async def test_an_unannotated_ctx_is_the_context_not_an_argument(ledger, alice):
    result = await ledger.call(alice, "notes:Put", "k1", "hello")
    assert result.ok, result.message
    assert result.json() == {"key": "k1"}
    stored = (await ledger.call(alice, "notes:Get", "k1")).json()
    assert stored == {"text": "hello", "at": "2026-11-25T12:00:00.000000Z"}


def test_the_shim_takes_an_unannotated_ctx_as_an_argument():
    # The defect corrected by our Contract base: the shim counts ctx as a parameter.
    def put(ctx, key: str) -> None: ...

    fn = ContractFunction.from_callable(put, 1, TransactionContext)
    assert fn.params.context is None
    assert len(fn.params.fields) == 2


async def test_a_bare_name_goes_to_the_first_contract(ledger, alice):
    assert (await ledger.call(alice, "Echo", "hi")).payload == b"hi"
    assert (await ledger.call(alice, "other:Get")).payload == b"other"


async def test_results_are_encoded_by_type(ledger, alice):
    assert (await ledger.call(alice, "notes:Raw")).payload == b"\x00\x01"
    assert (await ledger.call(alice, "notes:Get", "none")).payload == b""
    await ledger.call(alice, "notes:Put", "b", "x")
    await ledger.call(alice, "notes:Put", "a", "x")
    listed = await ledger.call(alice, "notes:List")
    assert listed.payload == b'["\\u0000note\\u0000a\\u0000","\\u0000note\\u0000b\\u0000"]'


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        ("notes:Nope", [], "bad_input: unknown function 'notes:Nope'; known: "),
        ("nope:Get", [], "bad_input: unknown function 'nope:Get'"),
        ("", [], "bad_input: no function name in the transaction"),
        (
            "notes:Put",
            ["k"],
            "bad_input: notes:Put takes 2 argument(s), got 1: usage notes:Put(key, text)",
        ),
        ("notes:Put", ["k", "t", "x"], "bad_input: notes:Put takes 2 argument(s), got 3"),
        ("notes:List", ["a", "b"], "bad_input: notes:List takes 0 to 1 argument(s), got 2"),
        (
            "notes:Small",
            ["123456789"],
            "bad_input: argument value of notes:Small is 9 bytes; the limit is 8",
        ),
        ("notes:Put", ["", "t"], "bad_input: key must not be empty"),
        ("x" * 200, [], "bad_input: function name is too long"),
    ],
)
async def test_bad_calls_are_refused_with_a_message_and_write_nothing(
    ledger, alice, function, args, expected
):
    result = await ledger.call(alice, function, *args)
    assert result.status == 500
    assert result.message.startswith(expected)
    assert result.writes == {}
    assert result.event is None
    assert ledger.state == {}


async def test_an_unexpected_exception_is_internal_and_hides_its_text(ledger, alice, caplog):
    result = await ledger.call(alice, "notes:Boom", "s3cr3t")
    assert result.message == "internal: notes:Boom failed (KeyError)"
    assert "s3cr3t" not in result.message
    assert any("notes:Boom failed" in r.getMessage() for r in caplog.records)


async def test_the_event_is_put_on_the_stub_as_json(ledger, alice):
    result = await ledger.call(alice, "notes:Put", "k", "v")
    assert result.event == ("NotePut", {"key": "k", "by": "Org1MSP"})


async def test_a_second_event_in_one_transaction_is_refused(ledger, alice):
    result = await ledger.call(alice, "notes:Twice")
    assert result.message == "internal: a transaction can carry only one chaincode event"


async def test_metadata_lists_every_function(ledger, alice):
    meta = (await ledger.call(alice, "org.hyperledger.fabric:GetMetadata")).json()
    notes = {f["name"]: f for f in meta["contracts"]["notes"]["functions"]}
    assert set(notes) == {"Put", "Get", "List", "Echo", "Raw", "Twice", "Boom", "Small"}
    assert notes["Put"]["kind"] == "submit" and notes["Get"]["kind"] == "evaluate"
    assert notes["Put"]["arguments"] == ["key", "text"]
    assert meta["default"] == "notes"
    assert "helper" not in json.dumps(meta)


async def test_init_without_a_function_succeeds():
    class _Stub:
        def get_function_and_parameters(self):
            raise Exception("no function name provided in transaction payload")

    response = await ContractChaincode([Notes]).init(_Stub())
    assert response.status == 200


def test_duplicate_and_empty_contracts_are_rejected_at_build_time():
    class Nameless(Contract):
        @query
        def x(self, ctx) -> None: ...

    class Empty(Contract):
        name = "empty"

    with pytest.raises(TypeError, match="must set a contract name"):
        ContractChaincode([Nameless])
    with pytest.raises(TypeError, match="publishes no functions"):
        ContractChaincode([Empty])
    with pytest.raises(TypeError, match="defined twice"):
        ContractChaincode([Notes, Notes])
    with pytest.raises(TypeError, match=r"not a chaincode\.runtime\.Contract"):
        ContractChaincode([object])


async def test_non_utf8_arguments_are_refused():
    class _BadStub:
        def get_function_and_parameters(self):
            return "notes:Get", [b"\xff".decode()]  # what the shim's stub does with bad bytes

        def get_txid(self):
            return "t"

    response = await ContractChaincode([Notes]).invoke(_BadStub())
    assert response.message == "bad_input: arguments must be UTF-8 text"
