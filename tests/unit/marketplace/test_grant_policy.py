"""The on-chain grant policy: premium channels follow CheckAccess; others get no opinion."""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.authorizer import Action, Decision
from gateway.auth.principal import Principal
from gateway.ledger.errors import EvaluateError, LedgerUnavailable
from gateway.marketplace.access import OnChainGrantPolicy


class FakeContract:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, ...]] = []

    async def evaluate(self, function: str, *args: str, **_: Any) -> bytes:
        self.calls.append((function, *args))
        if isinstance(self.answer, Exception):
            raise self.answer
        return json.dumps(self.answer).encode()


def _who(role: str = "member") -> Principal:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return Principal("s1", "f" * 64, "Org2MSP", role, 0, key)


def _policy(answer: Any) -> tuple[OnChainGrantPolicy, FakeContract]:
    contract = FakeContract(answer)
    return OnChainGrantPolicy(contract, "premium-*", frozenset({"member"})), contract  # type: ignore[arg-type]


async def test_ordinary_channels_are_left_to_the_other_policies() -> None:
    policy, contract = _policy({"allowed": True})
    assert await policy.decide(_who(), "auction-1", Action.READ) is Decision.ABSTAIN
    assert contract.calls == []


async def test_a_live_grant_allows_and_asks_with_msp_and_fingerprint() -> None:
    policy, contract = _policy({"allowed": True, "reason": "grant"})
    assert await policy.decide(_who(), "premium-x", Action.READ) is Decision.ALLOW
    assert contract.calls == [("CheckAccess", "premium-x", "Org2MSP", "f" * 64)]
    assert await policy.decide(_who(), "premium-x", Action.WRITE) is Decision.ALLOW


async def test_no_grant_unregistered_or_unreachable_ledger_denies() -> None:
    for answer in (
        {"allowed": False, "reason": "no_grant"},
        EvaluateError("chaincode response 500, not_found: channel premium-x is not registered"),
        LedgerUnavailable("no peer could be reached"),
    ):
        policy, _ = _policy(answer)
        assert await policy.decide(_who(), "premium-x", Action.READ) is Decision.DENY


async def test_an_auditor_with_a_grant_reads_but_does_not_emit() -> None:
    policy, _ = _policy({"allowed": True})
    assert await policy.decide(_who("auditor"), "premium-x", Action.READ) is Decision.ALLOW
    assert await policy.decide(_who("auditor"), "premium-x", Action.WRITE) is Decision.DENY
