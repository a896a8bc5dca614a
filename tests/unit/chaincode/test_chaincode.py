"""The whole chaincode: every function refuses bad calls before touching state."""

from __future__ import annotations

import pytest

from chaincode.anchorline import CONTRACTS
from chaincode.runtime import ContractChaincode
from tests.unit.chaincode.ccfakes import FakeLedger, issue, make_ca

ROUTES = sorted(ContractChaincode(CONTRACTS).routes.values(), key=lambda r: r.qualified_name)
EXPECTED = {
    "anchor:AnchorBatch",
    "anchor:GetBatch",
    "anchor:GetHead",
    "anchor:ListBatches",
    "anchor:VerifyInclusion",
    "settlement:Propose",
    "settlement:Accept",
    "settlement:Settle",
    "settlement:Cancel",
    "settlement:Expire",
    "settlement:GetSettlement",
    "access:RegisterChannel",
    "access:GrantAccess",
    "access:RevokeAccess",
    "access:CheckAccess",
    "access:ListGrants",
    "access:GetChannel",
}


@pytest.fixture(scope="module")
def admin():
    return issue(make_ca("Org1"), "Org1MSP", "admin", role="admin")


def test_the_chaincode_publishes_the_documented_functions():
    assert {r.qualified_name for r in ROUTES} == EXPECTED
    kinds = {r.qualified_name: r.spec.kind for r in ROUTES}
    assert kinds["anchor:AnchorBatch"] == "submit" and kinds["anchor:VerifyInclusion"] == "evaluate"
    assert all(r.doc for r in ROUTES)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.qualified_name)
async def test_wrong_argument_counts_are_refused_without_writes(route, admin):
    ledger = FakeLedger(CONTRACTS)
    for count in {0, route.required - 1, len(route.params) + 1} - {route.required}:
        if count < 0:
            continue
        result = await ledger.call(admin, route.qualified_name, *(["x"] * count))
        assert result.message.startswith(f"bad_input: {route.qualified_name} takes "), (
            result.message
        )
        assert result.writes == {} and ledger.state == {}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.qualified_name)
async def test_oversized_arguments_are_refused_without_writes(route, admin):
    ledger = FakeLedger(CONTRACTS)
    args = ["a"] * len(route.params)
    args[0] = "a" * (route.spec.max_arg_bytes + 1)
    result = await ledger.call(admin, route.qualified_name, *args)
    assert result.message.startswith(f"bad_input: argument {route.params[0]} of "), result.message
    assert result.writes == {}


@pytest.mark.parametrize(
    "name", ["anchor:Nope", "Nope", "ledger:AnchorBatch", "anchor:anchor_batch"]
)
async def test_unknown_functions_are_refused(name, admin):
    ledger = FakeLedger(CONTRACTS)
    result = await ledger.call(admin, name)
    assert result.message.startswith("bad_input: unknown function"), result.message


async def test_a_bare_function_name_goes_to_the_anchor_contract(admin):
    result = await FakeLedger(CONTRACTS).call(admin, "GetHead", "c1")
    assert result.message == "not_found: channel c1 has no anchored batch"


async def test_the_module_entry_point_loads_the_chaincode():
    from chaincode.runtime.__main__ import load_contracts

    assert load_contracts("chaincode.anchorline") == CONTRACTS
