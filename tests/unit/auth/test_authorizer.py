"""Channel authorization: configured rules, caching with TTL, invalidation."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.authorizer import Action, Authorizer, ConfigPolicy, Decision
from gateway.auth.principal import Principal
from gateway.errors import ConfigError

_KEY = ec.generate_private_key(ec.SECP256R1()).public_key()


def who(role: str, msp: str, fp: str = "f1") -> Principal:
    return Principal("s", fp, msp, role, 0, _KEY)


RULES = "premium-*=member@Org1MSP,admin;audit=auditor;*=member,admin,auditor"


@pytest.mark.parametrize(
    ("principal", "channel", "action", "expected"),
    [
        (who("member", "Org1MSP"), "premium-gold", Action.READ, Decision.ALLOW),
        (who("member", "Org2MSP"), "premium-gold", Action.READ, Decision.DENY),
        (who("admin", "Org3MSP"), "premium-gold", Action.WRITE, Decision.ALLOW),
        (who("auditor", "Org3MSP"), "audit", Action.READ, Decision.ALLOW),
        (who("member", "Org1MSP"), "audit", Action.READ, Decision.DENY),
        (who("auditor", "Org3MSP"), "auction-1", Action.READ, Decision.ALLOW),
        (who("auditor", "Org3MSP"), "auction-1", Action.WRITE, Decision.DENY),
        (who("member", "Org2MSP"), "auction-1", Action.WRITE, Decision.ALLOW),
        (who("peer", "Org2MSP"), "auction-1", Action.READ, Decision.DENY),
    ],
)
async def test_config_rules(
    principal: Principal, channel: str, action: Action, expected: Decision
) -> None:
    assert await ConfigPolicy(RULES, "member,admin").decide(principal, channel, action) is expected


async def test_unmatched_channel_abstains_and_no_opinion_denies() -> None:
    policy = ConfigPolicy("news=member", "member")
    assert await policy.decide(who("member", "O"), "other", Action.READ) is Decision.ABSTAIN
    assert not await Authorizer([policy], 30).allowed(who("member", "O"), "other", Action.READ)


def test_malformed_rules_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ConfigPolicy("no-equals-sign", "member")


class Counting:
    def __init__(self) -> None:
        self.calls = 0
        self.allow = True

    async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
        self.calls += 1
        return Decision.ALLOW if self.allow else Decision.DENY


async def test_answers_are_cached_for_the_ttl() -> None:
    now = [0]
    policy = Counting()
    authorizer = Authorizer([policy], ttl_s=10, clock=lambda: now[0])
    p = who("member", "O")
    assert await authorizer.allowed(p, "c", Action.READ)
    assert await authorizer.allowed(p, "c", Action.READ)
    assert policy.calls == 1
    policy.allow = False
    now[0] = 9_999
    assert await authorizer.allowed(p, "c", Action.READ)  # still cached
    now[0] = 10_001
    assert not await authorizer.allowed(p, "c", Action.READ)
    assert policy.calls == 2


async def test_invalidation_drops_the_cache_at_once_and_tells_listeners() -> None:
    policy = Counting()
    authorizer = Authorizer([policy], ttl_s=3600, clock=lambda: 0)
    alice, bob = who("member", "O", "alice"), who("member", "O", "bob")
    await authorizer.allowed(alice, "c", Action.READ)
    await authorizer.allowed(bob, "c", Action.READ)
    heard: list[tuple[str | None, str | None]] = []

    async def listener(fp: str | None, channel: str | None) -> None:
        heard.append((fp, channel))

    authorizer.on_invalidate(listener)
    policy.allow = False
    await authorizer.invalidate(fingerprint="alice")
    assert heard == [("alice", None)]
    assert not await authorizer.allowed(alice, "c", Action.READ)
    assert await authorizer.allowed(bob, "c", Action.READ)  # bob's answer is still cached


async def test_a_plugged_policy_goes_first() -> None:
    authorizer = Authorizer([ConfigPolicy("*=member", "member")], 30)
    deny = Counting()
    deny.allow = False
    authorizer.add_policy(deny)
    assert not await authorizer.allowed(who("member", "O"), "c", Action.READ)
