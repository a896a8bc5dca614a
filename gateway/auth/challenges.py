"""Login challenges: single-use nonces bound to this gateway's domain and one certificate.

The member signs the exact ``message`` string it received (ECDSA-SHA256,
DER, base64). The message is the RFC 8785 JSON of
``{purpose, domain, nonce, fingerprint, issued_at, expires_at}``, so a
signature made for another gateway or another certificate cannot be reused.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Final

import orjson

from gateway.auth.errors import (
    ChallengeExpired,
    ChallengeForeign,
    ChallengeReplayed,
    ChallengeUnknown,
)
from gateway.clock import Clock, now_ms
from gateway.events.canonical import canonical_json
from gateway.store.auth import AuthRepository, ChallengeRow

PURPOSE: Final = "anchorline-login"
_MAX_MESSAGE_CHARS: Final = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Challenge:
    """What ``POST /auth/challenge`` returns."""

    nonce: str
    message: str
    expires_ms: int


def challenge_message(row: ChallengeRow) -> str:
    """The exact text a member signs for ``row``."""
    body = {
        "purpose": PURPOSE,
        "domain": row.domain,
        "nonce": row.nonce,
        "fingerprint": row.fingerprint,
        "issued_at": row.issued_ms,
        "expires_at": row.expires_ms,
    }
    return canonical_json(body).decode("utf-8")


class ChallengeService:
    """Issues challenges and redeems them exactly once."""

    def __init__(
        self, repo: AuthRepository, domain: str, ttl_s: int, clock: Clock = now_ms
    ) -> None:
        self._repo = repo
        self._domain = domain
        self._ttl_ms = ttl_s * 1000
        self._clock = clock

    async def issue(self, fingerprint: str, address: str) -> Challenge:
        now = self._clock()
        row = ChallengeRow(
            nonce=secrets.token_urlsafe(32),
            fingerprint=fingerprint,
            domain=self._domain,
            issued_ms=now,
            expires_ms=now + self._ttl_ms,
        )
        await self._repo.add_challenge(row, address)
        return Challenge(row.nonce, challenge_message(row), row.expires_ms)

    async def redeem(self, message: object, fingerprint: str) -> ChallengeRow:
        """Consume the challenge ``message`` for the certificate ``fingerprint``.

        Raises :class:`ChallengeForeign` (another domain, another certificate,
        or an altered message), :class:`ChallengeUnknown`,
        :class:`ChallengeReplayed` or :class:`ChallengeExpired`.
        """
        if not isinstance(message, str) or len(message) > _MAX_MESSAGE_CHARS:
            raise ChallengeUnknown("challenge is missing or malformed: request a new one")
        try:
            parsed: Any = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise ChallengeUnknown("challenge is malformed: request a new one") from None
        if not isinstance(parsed, dict) or parsed.get("purpose") != PURPOSE:
            raise ChallengeUnknown("challenge is malformed: request a new one")
        if parsed.get("domain") != self._domain:
            raise ChallengeForeign(
                "challenge was issued for another domain, not this gateway: request one here"
            )
        nonce = parsed.get("nonce")
        if not isinstance(nonce, str) or len(nonce) > 64:
            raise ChallengeUnknown("challenge is malformed: request a new one")
        now = self._clock()
        # Consuming first makes the challenge single-use even when the answer fails.
        row, first_use = await self._repo.consume_challenge(nonce, now)
        if row is None:
            raise ChallengeUnknown("challenge was not issued by this gateway: request a new one")
        if challenge_message(row) != message:
            raise ChallengeForeign("challenge text was altered: sign it exactly as received")
        if not first_use:
            raise ChallengeReplayed("challenge was already used: request a new one")
        if now > row.expires_ms:
            raise ChallengeExpired("challenge expired: request a new one and answer it sooner")
        if row.fingerprint != fingerprint:
            raise ChallengeForeign("challenge was issued for another certificate")
        return row
