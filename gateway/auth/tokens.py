"""Session tokens: HMAC-SHA256 signed claims with an expiry and a session id.

Format: ``al1.<base64url(JSON claims)>.<base64url(HMAC)>``. Checking one is
a hash and a JSON parse, with no database round trip, so Socket.IO connects
and REST reads stay cheap; revocation is handled by the session service.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
from typing import Final

import orjson

from gateway.auth.errors import TokenExpired, TokenInvalid, TokenMissing

_PREFIX: Final = "al1"
_MAX_TOKEN_CHARS: Final = 2048


@dataclasses.dataclass(frozen=True, slots=True)
class TokenClaims:
    """What an access token states; all times in Unix milliseconds."""

    session_id: str
    fingerprint: str
    msp_id: str
    role: str
    issued_ms: int
    expires_ms: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks access tokens with one secret key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("token secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()

    def issue(self, claims: TokenClaims) -> str:
        body = orjson.dumps(
            {
                "sid": claims.session_id,
                "sub": claims.fingerprint,
                "msp": claims.msp_id,
                "role": claims.role,
                "iat": claims.issued_ms,
                "exp": claims.expires_ms,
            }
        )
        encoded = _b64(body)
        mac = _b64(self._mac(f"{_PREFIX}.{encoded}".encode("ascii")))
        return f"{_PREFIX}.{encoded}.{mac}"

    def check(self, token: object, now_ms: int) -> TokenClaims:
        """The claims of a genuine, unexpired token.

        Raises :class:`TokenMissing`, :class:`TokenInvalid` (malformed or forged)
        or :class:`TokenExpired`.
        """
        if token is None or token == "":
            raise TokenMissing("no session token: log in first and pass the token")
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
            raise TokenInvalid("session token is malformed")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise TokenInvalid("session token is malformed")
        try:
            mac = _unb64(parts[2])
        except (binascii.Error, ValueError):
            raise TokenInvalid("session token is malformed") from None
        expected = self._mac(f"{parts[0]}.{parts[1]}".encode("ascii", "replace"))
        if not hmac.compare_digest(mac, expected):
            raise TokenInvalid(
                "session token signature is not valid (forged or from another gateway)"
            )
        try:
            data = orjson.loads(_unb64(parts[1]))
            claims = TokenClaims(
                session_id=str(data["sid"]),
                fingerprint=str(data["sub"]),
                msp_id=str(data["msp"]),
                role=str(data["role"]),
                issued_ms=int(data["iat"]),
                expires_ms=int(data["exp"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise TokenInvalid("session token is malformed") from None
        if now_ms >= claims.expires_ms:
            raise TokenExpired("session token expired: refresh it or log in again")
        return claims
