"""Login, session tokens, refresh and revocation.

``login`` checks, in order: rate limits, the challenge (domain, known,
unused, unexpired, bound to this certificate), the certificate (chain to a
trusted MSP CA, validity, digitalSignature key usage, CRL, role attribute),
then the signature over the challenge. Each refusal is its own error type.

Revocation is live: :meth:`SessionService.check_revocations` re-checks every
identity this process has served against the verifier's current CRLs (the
:class:`~gateway.auth.revocation.RevocationWatcher` calls it when a CRL
changes, in a folder or in the channel configuration); a revoked identity's
tokens and refresh tokens are refused from then on and the identity
listeners (the hub, which kicks its connections) are told. ``authenticate``
checks that set, a dictionary lookup, on every call.

A session ended by another process (a logout, a failed re-check) reaches
this one through :meth:`SessionService.end_elsewhere`: from the fan-out's
kick (Redis, the fast path) or from the
:class:`~gateway.auth.revocation.SessionEndFollower` reading the store's
``session_ends`` (the truth); whichever comes first ends it here, the other
is a no-op.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.challenges import ChallengeService
from gateway.auth.errors import (
    BadSignature,
    MissingRole,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
    UnsupportedKey,
)
from gateway.auth.principal import Principal
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.tokens import TokenClaims, TokenSigner
from gateway.clock import Clock, now_ms
from gateway.errors import AnchorlineError
from gateway.events.signature import decode_signature
from gateway.identity.certificates import VerifiedIdentity, fingerprint, load_certificate
from gateway.identity.errors import CertificateParseError, CertificateRevoked
from gateway.identity.signing import verify
from gateway.store.auth import AuthRepository, SessionRow

log = logging.getLogger(__name__)

# Sessions remembered as alive in the store before the set starts over.
_MAX_LIVE = 200_000


class IdentityVerifier(Protocol):
    """What login needs from a trust store (``gateway.identity.certificates.TrustStore``)."""

    def verify(
        self, cert: x509.Certificate, *, at: dt.datetime | None = None
    ) -> VerifiedIdentity: ...


@dataclasses.dataclass(frozen=True, slots=True)
class SessionTokens:
    """What a successful login or refresh returns."""

    session_id: str
    token: str
    expires_ms: int
    refresh_token: str
    refresh_expires_ms: int
    fingerprint: str
    msp_id: str
    role: str


def _public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        # Parsed lazily: a damaged key, or one of a type cryptography does not know.
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UnsupportedKey("the certificate's key is not an elliptic-curve key")
    return key


def _load_cert(pem: object) -> x509.Certificate:
    """Parse the presented certificate; the error says what to send, not parser internals."""
    try:
        return load_certificate(pem if isinstance(pem, str) else "")
    except CertificateParseError:
        raise CertificateParseError(
            "certificate must be one X.509 certificate in PEM form (the MSP's signcerts file)"
        ) from None


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SessionService:
    """Turns answered challenges into sessions and tokens into principals."""

    def __init__(
        self,
        *,
        repo: AuthRepository,
        challenges: ChallengeService,
        verifier: IdentityVerifier,
        signer: TokenSigner,
        session_ttl_s: int,
        refresh_ttl_s: int,
        per_identity: RateLimiter,
        per_address: RateLimiter,
        clock: Clock = now_ms,
    ) -> None:
        self._repo = repo
        self._challenges = challenges
        self._verifier = verifier
        self._signer = signer
        self._ttl_ms = session_ttl_s * 1000
        self._refresh_ttl_ms = refresh_ttl_s * 1000
        self._per_identity = per_identity
        self._per_address = per_address
        self._clock = clock
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        # Certificates of the identities this process has served: what a CRL change
        # is checked against. Keyed by fingerprint, like _keys.
        self._certs: dict[str, x509.Certificate] = {}
        self._revoked: set[str] = set()
        # Fingerprint -> why, for identities whose certificate was found revoked.
        self._revoked_identities: dict[str, str] = {}
        # Sessions ended, and sessions this process has seen alive in the store. The
        # store is the truth: a token's session is looked up once per process, so a
        # logout or a revocation survives a restart (issue 19 item 8).
        self._live: set[str] = set()
        self._revocation_listeners: list[Callable[[str, bool], None]] = []
        self._identity_listeners: list[Callable[[str, str], None]] = []

    # -- login ------------------------------------------------------------------------

    async def challenge(self, certificate_pem: object, address: str) -> tuple[str, str, int]:
        """Issue a challenge for the presented certificate: ``(nonce, message, expires_ms)``."""
        self._per_address.hit(address)
        cert = _load_cert(certificate_pem)
        fp = fingerprint(cert)
        self._per_identity.hit(fp)
        issued = await self._challenges.issue(fp, address)
        return issued.nonce, issued.message, issued.expires_ms

    async def login(
        self, certificate_pem: object, message: object, signature_b64: object, address: str
    ) -> SessionTokens:
        """Check the answered challenge and open a session."""
        self._per_address.hit(address)
        cert = _load_cert(certificate_pem)
        fp = fingerprint(cert)
        self._per_identity.hit(fp)
        await self._challenges.redeem(message, fp)
        now = self._clock()
        identity = self._verifier.verify(cert, at=dt.datetime.fromtimestamp(now / 1000, dt.UTC))
        key = _public_key(cert)
        if not identity.role:
            raise MissingRole("the certificate has no anchorline.role attribute")
        signature = decode_signature(signature_b64) if isinstance(signature_b64, str) else None
        assert isinstance(message, str)
        if signature is None or not verify(
            key, message.encode("utf-8"), signature, require_low_s=False
        ):
            raise BadSignature("the challenge signature does not verify against this certificate")
        await self._repo.record_identity(
            fingerprint=fp,
            msp_id=identity.msp_id,
            role=identity.role,
            subject=identity.subject,
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            not_after_ms=int(identity.not_after.timestamp() * 1000),
            now_ms=now,
        )
        self._keys[fp] = key
        self._certs[fp] = cert
        # A certificate that verifies now is not (or no longer) on a CRL.
        self._revoked_identities.pop(fp, None)
        session_id = secrets.token_urlsafe(18)
        refresh_secret = secrets.token_urlsafe(32)
        cert_end = int(identity.not_after.timestamp() * 1000)
        row = SessionRow(
            id=session_id,
            fingerprint=fp,
            msp_id=identity.msp_id,
            role=identity.role,
            expires_ms=min(now + self._ttl_ms, cert_end),
            refresh_hash=_hash_secret(refresh_secret),
            refresh_expires_ms=min(now + self._refresh_ttl_ms, cert_end),
            revoked_ms=None,
        )
        await self._repo.create_session(row, address, now)
        self._remember_live(session_id)
        return self._tokens(row, refresh_secret, now)

    def _tokens(self, row: SessionRow, refresh_secret: str, now: int) -> SessionTokens:
        token = self._signer.issue(
            TokenClaims(row.id, row.fingerprint, row.msp_id, row.role, now, row.expires_ms)
        )
        return SessionTokens(
            session_id=row.id,
            token=token,
            expires_ms=row.expires_ms,
            refresh_token=f"{row.id}.{refresh_secret}",
            refresh_expires_ms=row.refresh_expires_ms,
            fingerprint=row.fingerprint,
            msp_id=row.msp_id,
            role=row.role,
        )

    # -- refresh and revocation ---------------------------------------------------------

    async def refresh(self, refresh_token: object, address: str) -> SessionTokens:
        """A new access token and a new refresh token; the old refresh token stops working.

        The certificate is checked again, so a revoked member cannot refresh.
        """
        self._per_address.hit(address)
        if not isinstance(refresh_token, str) or "." not in refresh_token:
            raise TokenInvalid("refresh token is malformed")
        session_id, _, secret = refresh_token.partition(".")
        row = await self._repo.get_session(session_id[:64])
        if row is None or not hmac.compare_digest(row.refresh_hash, _hash_secret(secret)):
            raise TokenInvalid("refresh token is not valid (unknown or already used)")
        if row.revoked_ms is not None:
            raise SessionRevoked("session was ended: log in again")
        self._refuse_revoked_identity(row.fingerprint)
        now = self._clock()
        if now >= row.refresh_expires_ms:
            raise TokenExpired("refresh token expired: log in again")
        pem = await self._repo.certificate_of(row.fingerprint)
        if pem is None:
            raise TokenInvalid("refresh token is not valid (unknown identity)")
        try:
            self._verifier.verify(
                load_certificate(pem), at=dt.datetime.fromtimestamp(now / 1000, dt.UTC)
            )
        except Exception:
            await self.revoke(row.id)
            raise
        new_secret = secrets.token_urlsafe(32)
        expires = min(now + self._ttl_ms, row.refresh_expires_ms)
        if not await self._repo.rotate_refresh(
            row.id, row.refresh_hash, _hash_secret(new_secret), expires
        ):
            raise TokenInvalid("refresh token is not valid (already used)")
        fresh = dataclasses.replace(row, expires_ms=expires, refresh_hash=_hash_secret(new_secret))
        return self._tokens(fresh, new_secret, now)

    async def revoke(self, session_id: str) -> None:
        """End a session now: its tokens stop working here at once, the end is written
        to the store (where the other processes follow it) and listeners are told with
        ``here=True``."""
        self._revoked.add(session_id)
        self._live.discard(session_id)
        await self._repo.revoke_session(session_id, self._clock())
        for listener in self._revocation_listeners:
            listener(session_id, True)

    def end_elsewhere(self, session_id: str, *, notify: bool) -> bool:
        """A session another process ended: refuse its tokens and refresh tokens here
        from now on. With ``notify`` the revocation listeners are told (``here=False``);
        the fan-out's kick, which ends the connections itself, passes False.

        Returns False when this process knew of the end already (nothing done).
        """
        if session_id in self._revoked:
            return False
        self._revoked.add(session_id)
        self._live.discard(session_id)
        if notify:
            for listener in self._revocation_listeners:
                listener(session_id, False)
        return True

    def use_signer(self, signer: TokenSigner) -> None:
        """Issue and check tokens with ``signer`` from now on (the shared key, read at
        start-up before the gateway serves)."""
        self._signer = signer

    async def purge_challenges(self) -> int:
        """Forget challenges that expired over a minute ago; returns how many."""
        return await self._repo.purge_challenges(self._clock() - 60_000)

    def on_revocation(self, listener: Callable[[str, bool], None]) -> None:
        """Call ``listener(session_id, here)`` whenever a session ends: ``here`` is True
        when this process ended it (a logout here), False when another one did and this
        process learned it from the store."""
        self._revocation_listeners.append(listener)

    def on_identity_revoked(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(fingerprint, message)`` when an identity's certificate is found
        revoked: every session of that identity has ended."""
        self._identity_listeners.append(listener)

    def identity_revoked(self, fingerprint: str) -> bool:
        """Whether this process found ``fingerprint``'s certificate revoked."""
        return fingerprint in self._revoked_identities

    def check_revocations(self) -> list[str]:
        """Re-check every identity served here against the verifier's CRLs as they are
        now; returns the fingerprints newly found revoked (their listeners were told).

        Cheap: the chains are cached by the verifier, so this is a CRL lookup per
        identity. Other refusals (an expired certificate) are left to the session
        expiry, which a certificate's end bounds already.
        """
        found: list[str] = []
        when = dt.datetime.fromtimestamp(self._clock() / 1000, dt.UTC)
        for fp, cert in list(self._certs.items()):
            if fp in self._revoked_identities:
                continue
            try:
                self._verifier.verify(cert, at=when)
            except CertificateRevoked as exc:
                self._mark_revoked(fp, exc.message)
                found.append(fp)
            except Exception:  # noqa: S112 - not a revocation: the session expiry decides
                continue
        return found

    def _mark_revoked(self, fingerprint: str, reason: str) -> None:
        self._revoked_identities[fingerprint] = reason
        message = "the certificate was revoked: " + reason
        for listener in self._identity_listeners:
            listener(fingerprint, message)

    def _refuse_revoked_identity(self, fingerprint: str) -> None:
        reason = self._revoked_identities.get(fingerprint)
        if reason is not None:
            raise SessionRevoked(f"session was ended because the certificate was revoked: {reason}")

    # -- authentication ------------------------------------------------------------------

    def _remember_live(self, session_id: str) -> None:
        if len(self._live) >= _MAX_LIVE:
            self._live.clear()  # only costs a lookup per session again
        self._live.add(session_id)

    async def _check_stored_session(self, session_id: str, fp: str) -> None:
        """First sight of a session in this process (a restart, another gateway's login):
        the store says whether it was ended, and the certificate is checked again."""
        row = await self._repo.get_session(session_id)
        if row is None or row.fingerprint != fp:
            raise TokenInvalid("session token names an unknown session")
        if row.revoked_ms is not None:
            self._revoked.add(session_id)
            raise SessionRevoked("session was ended: log in again")
        pem = await self._repo.certificate_of(fp)
        if pem is None:
            raise TokenInvalid("session token names an unknown identity")
        try:
            self._verifier.verify(
                load_certificate(pem), at=dt.datetime.fromtimestamp(self._clock() / 1000, dt.UTC)
            )
        except AnchorlineError:
            # Revoked (CRL) or expired since the login: end the session for good.
            await self.revoke(session_id)
            raise
        self._remember_live(session_id)

    async def authenticate(self, token: object) -> Principal:
        """The principal behind an access token; raises an :class:`AuthError` subclass."""
        claims = self._signer.check(token, self._clock())
        if claims.session_id in self._revoked:
            raise SessionRevoked("session was ended: log in again")
        self._refuse_revoked_identity(claims.fingerprint)
        if claims.session_id not in self._live:
            await self._check_stored_session(claims.session_id, claims.fingerprint)
        key = self._keys.get(claims.fingerprint)
        if key is None:
            # First use in this process of a session opened elsewhere: check the
            # certificate's revocation once; the watcher keeps it checked afterwards.
            pem = await self._repo.certificate_of(claims.fingerprint)
            if pem is None:
                raise TokenInvalid("session token names an unknown identity")
            cert = load_certificate(pem)
            loaded = _public_key(cert)
            try:
                self._verifier.verify(
                    cert, at=dt.datetime.fromtimestamp(self._clock() / 1000, dt.UTC)
                )
            except CertificateRevoked as exc:
                self._revoked_identities[claims.fingerprint] = exc.message
                self._refuse_revoked_identity(claims.fingerprint)
            self._certs[claims.fingerprint] = cert
            key = self._keys[claims.fingerprint] = loaded
        return Principal(
            session_id=claims.session_id,
            fingerprint=claims.fingerprint,
            msp_id=claims.msp_id,
            role=claims.role,
            expires_ms=claims.expires_ms,
            public_key=key,
        )
