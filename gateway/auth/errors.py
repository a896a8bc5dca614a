"""Errors of the auth package (codes AL15xx).

Every login refusal is its own type so a client can tell a replayed challenge
from an expired one; the message names the reason and nothing about the
gateway's internals.
"""

from __future__ import annotations

from gateway.errors import AnchorlineError


class AuthError(AnchorlineError):
    """Base of the auth package's errors: the caller is not (yet) authenticated."""

    code = "AL1500"
    http_status = 401


class ChallengeUnknown(AuthError):
    """The challenge was never issued by this gateway (or was purged long ago)."""

    code = "AL1501"


class ChallengeExpired(AuthError):
    """The challenge's short validity ended before it was answered."""

    code = "AL1502"


class ChallengeReplayed(AuthError):
    """The challenge was already answered once; each one is single-use."""

    code = "AL1503"


class ChallengeForeign(AuthError):
    """The challenge was issued for another domain or another certificate."""

    code = "AL1504"


class BadSignature(AuthError):
    """The signature does not verify against the presented certificate."""

    code = "AL1505"


class TokenMissing(AuthError):
    """No session token was presented."""

    code = "AL1506"


class TokenInvalid(AuthError):
    """The token is malformed, forged or of the wrong kind."""

    code = "AL1507"


class TokenExpired(AuthError):
    """The token's lifetime ended; refresh it or log in again."""

    code = "AL1508"


class SessionRevoked(AuthError):
    """The session behind the token was ended (logout or revocation)."""

    code = "AL1509"


class RateLimited(AuthError):
    """Too many attempts from this identity or address; retry later."""

    code = "AL1510"
    http_status = 429


class AccessDenied(AuthError):
    """The identity is authenticated but not allowed to do this."""

    code = "AL1511"
    http_status = 403


class UnsupportedKey(AuthError):
    """The certificate's public key is not an elliptic-curve key."""

    code = "AL1512"


class MissingRole(AuthError):
    """The certificate carries no ``anchorline.role`` attribute."""

    code = "AL1513"
