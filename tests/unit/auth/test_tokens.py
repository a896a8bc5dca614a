"""Session tokens and the token-bucket rate limiter."""

from __future__ import annotations

import pytest

from gateway.auth.errors import RateLimited, TokenExpired, TokenInvalid, TokenMissing
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.tokens import TokenClaims, TokenSigner

CLAIMS = TokenClaims("sid", "fp", "Org1MSP", "member", 1000, 2000)


def test_round_trip_and_expiry() -> None:
    signer = TokenSigner(b"s" * 32)
    token = signer.issue(CLAIMS)
    assert signer.check(token, 1999) == CLAIMS
    with pytest.raises(TokenExpired):
        signer.check(token, 2000)


@pytest.mark.parametrize("bad", ["al1", "al2.a.b", "al1.a.b", "al1.!!.??", "x" * 3000, 42, ["al1"]])
def test_malformed_tokens(bad: object) -> None:
    with pytest.raises(TokenInvalid):
        TokenSigner(b"s" * 32).check(bad, 0)


def test_missing_token() -> None:
    with pytest.raises(TokenMissing):
        TokenSigner(b"s" * 32).check("", 0)


def test_tampered_claims_are_refused() -> None:
    signer = TokenSigner(b"s" * 32)
    head, _body, mac = signer.issue(CLAIMS).split(".")
    other = (
        TokenSigner(b"s" * 32)
        .issue(TokenClaims("sid", "fp", "Org1MSP", "admin", 1000, 2000))
        .split(".")[1]
    )
    with pytest.raises(TokenInvalid):
        signer.check(f"{head}.{other}.{mac}", 0)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenSigner(b"short")


def test_rate_limiter_refills() -> None:
    now = [0]
    limiter = RateLimiter(2, "address", clock=lambda: now[0])
    limiter.hit("a")
    limiter.hit("a")
    with pytest.raises(RateLimited) as info:
        limiter.hit("a")
    assert info.value.details["retry_after_s"] == 30
    limiter.hit("b")
    now[0] = 30_000
    limiter.hit("a")
