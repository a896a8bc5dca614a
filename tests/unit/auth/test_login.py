"""Login refusals, one by one, against the built-in CA's identities and a real SQLite store."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID

from gateway.auth import errors as auth_errors
from gateway.auth.challenges import ChallengeService
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.sessions import SessionService
from gateway.auth.tokens import TokenSigner
from gateway.identity import errors as id_errors
from gateway.identity.ca import EmbeddedCA
from gateway.identity.msp import load_msp
from gateway.identity.signing import P256_ORDER, sign_message
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate

DOMAIN = "gw.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


class Member:
    """An identity's PEM certificate and a way to sign with its key."""

    def __init__(self, msp: Path, msp_id: str) -> None:
        folder = load_msp(msp, msp_id, require_key=True)
        self.pem = folder.identity.certificate.public_bytes(serialization.Encoding.PEM).decode()
        self.signer = folder.signer()

    def sign(self, message: str) -> str:
        return base64.b64encode(sign_message(self.signer, message.encode())).decode()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedCA:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    ca.enroll("Org1", "alice", "member")
    ca.enroll("Org2", "bob", "member")
    ca.enroll("Org1", "peer0", "peer")
    ca.enroll("Org2", "mallory", "member")
    ca.revoke("Org2", "mallory")
    now = dt.datetime.now(dt.UTC)
    ca.enroll(
        "Org1",
        "old",
        "member",
        valid_from=now - dt.timedelta(days=10),
        valid_until=now - dt.timedelta(days=1),
    )
    return ca


def member(ca: EmbeddedCA, org: str, name: str) -> Member:
    return Member(ca.identity_dir(org, name), ca.msp_id(org))


class Env:
    def __init__(self, service: SessionService, clock: Clock, repo: AuthRepository) -> None:
        self.service = service
        self.clock = clock
        self.repo = repo

    async def login(self, who: Member, address: str = "10.0.0.1") -> object:
        _, message, _ = await self.service.challenge(who.pem, address)
        return await self.service.login(who.pem, message, who.sign(message), address)


def build(
    repo: AuthRepository,
    ca: EmbeddedCA,
    clock: Clock,
    *,
    domain: str = DOMAIN,
    per_identity: int = 1000,
    per_address: int = 1000,
) -> SessionService:
    return SessionService(
        repo=repo,
        challenges=ChallengeService(repo, domain, 60, clock),
        verifier=ca.trust_store(),
        signer=TokenSigner(b"k" * 32),
        session_ttl_s=900,
        refresh_ttl_s=3600,
        per_identity=RateLimiter(per_identity, "certificate", clock),
        per_address=RateLimiter(per_address, "address", clock),
        clock=clock,
    )


@pytest.fixture
async def env(tmp_path: Path, ca: EmbeddedCA) -> AsyncIterator[Env]:
    engine = create_engine(f"sqlite:///{tmp_path / 'auth.db'}", "NORMAL")
    await migrate(engine)
    repo = AuthRepository(engine)
    clock = Clock()
    clock.now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    yield Env(build(repo, ca, clock), clock, repo)
    await engine.dispose()


async def test_login_opens_a_session_with_role_and_msp(env: Env, ca: EmbeddedCA) -> None:
    tokens = await env.login(member(ca, "Org1", "alice"))
    assert tokens.role == "member" and tokens.msp_id == "Org1MSP"  # type: ignore[attr-defined]
    principal = await env.service.authenticate(tokens.token)  # type: ignore[attr-defined]
    assert principal.fingerprint == tokens.fingerprint  # type: ignore[attr-defined]
    assert principal.expires_ms == env.clock.now + 900_000


async def test_challenge_is_bound_to_domain_and_certificate(env: Env, ca: EmbeddedCA) -> None:
    alice = member(ca, "Org1", "alice")
    _, message, expires = await env.service.challenge(alice.pem, "a")
    body = orjson.loads(message)
    assert body["domain"] == DOMAIN and body["purpose"] == "anchorline-login"
    from gateway.identity.certificates import fingerprint, load_certificate

    assert body["fingerprint"] == fingerprint(load_certificate(alice.pem))
    assert expires == env.clock.now + 60_000


async def test_a_high_s_challenge_signature_logs_in(env: Env, ca: EmbeddedCA) -> None:
    # Browsers' WebCrypto signs high-S about half the time: login accepts both forms.
    alice = member(ca, "Org1", "alice")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    r, s = decode_dss_signature(sign_message(alice.signer, message.encode()))
    high = base64.b64encode(encode_dss_signature(r, P256_ORDER - s)).decode()
    tokens = await env.service.login(alice.pem, message, high, "a")
    assert tokens.msp_id == "Org1MSP"


async def test_replayed_challenge_is_refused(env: Env, ca: EmbeddedCA) -> None:
    alice = member(ca, "Org1", "alice")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    signature = alice.sign(message)
    await env.service.login(alice.pem, message, signature, "a")
    with pytest.raises(auth_errors.ChallengeReplayed):
        await env.service.login(alice.pem, message, signature, "a")


async def test_expired_challenge_is_refused(env: Env, ca: EmbeddedCA) -> None:
    alice = member(ca, "Org1", "alice")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    env.clock.now += 61_000
    with pytest.raises(auth_errors.ChallengeExpired):
        await env.service.login(alice.pem, message, alice.sign(message), "a")


async def test_unknown_challenge_is_refused(env: Env, ca: EmbeddedCA) -> None:
    alice = member(ca, "Org1", "alice")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    forged = orjson.loads(message)
    forged["nonce"] = "never-issued"
    text = orjson.dumps(forged, option=orjson.OPT_SORT_KEYS).decode()
    with pytest.raises(auth_errors.ChallengeUnknown):
        await env.service.login(alice.pem, text, alice.sign(text), "a")
    with pytest.raises(auth_errors.ChallengeUnknown):
        await env.service.login(alice.pem, "not json", alice.sign("x" * 10), "a")


async def test_challenge_of_another_domain_is_refused(env: Env, ca: EmbeddedCA) -> None:
    other = build(env.repo, ca, env.clock, domain="elsewhere.test")
    alice = member(ca, "Org1", "alice")
    _, message, _ = await other.challenge(alice.pem, "a")
    with pytest.raises(auth_errors.ChallengeForeign, match="another domain"):
        await env.service.login(alice.pem, message, alice.sign(message), "a")


async def test_challenge_of_another_certificate_is_refused(env: Env, ca: EmbeddedCA) -> None:
    alice, bob = member(ca, "Org1", "alice"), member(ca, "Org2", "bob")
    _, message, _ = await env.service.challenge(bob.pem, "a")
    with pytest.raises(auth_errors.ChallengeForeign, match="another certificate"):
        await env.service.login(alice.pem, message, alice.sign(message), "a")


async def test_altered_challenge_is_refused(env: Env, ca: EmbeddedCA) -> None:
    alice = member(ca, "Org1", "alice")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    altered = orjson.loads(message)
    altered["expires_at"] += 10_000_000
    text = orjson.dumps(altered, option=orjson.OPT_SORT_KEYS).decode()
    with pytest.raises(auth_errors.ChallengeForeign, match="altered"):
        await env.service.login(alice.pem, text, alice.sign(text), "a")


async def test_bad_signature_is_refused(env: Env, ca: EmbeddedCA) -> None:
    alice, bob = member(ca, "Org1", "alice"), member(ca, "Org2", "bob")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    with pytest.raises(auth_errors.BadSignature):
        await env.service.login(alice.pem, message, bob.sign(message), "a")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    with pytest.raises(auth_errors.BadSignature):
        await env.service.login(alice.pem, message, "!!not base64!!", "a")


async def test_certificate_of_an_unknown_ca_is_refused(env: Env, tmp_path: Path) -> None:
    stranger_ca = EmbeddedCA(tmp_path / "other-ca")
    stranger = Member(stranger_ca.enroll("Org9", "eve", "member"), "Org9MSP")
    with pytest.raises(id_errors.UnknownCertificateAuthority):
        await env.login(stranger)


async def test_expired_certificate_is_refused(env: Env, ca: EmbeddedCA) -> None:
    with pytest.raises(id_errors.CertificateExpired):
        await env.login(member(ca, "Org1", "old"))


async def test_revoked_certificate_is_refused(env: Env, ca: EmbeddedCA) -> None:
    with pytest.raises(id_errors.CertificateRevoked):
        await env.login(member(ca, "Org2", "mallory"))


async def test_certificate_without_role_is_refused(env: Env, ca: EmbeddedCA) -> None:
    with pytest.raises(auth_errors.MissingRole):
        await env.login(member(ca, "Org1", "peer0"))


async def test_certificate_without_digital_signature_usage_is_refused(
    env: Env, ca: EmbeddedCA, tmp_path: Path
) -> None:
    ca_dir = ca.org_dir("Org1") / "ca"
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca-cert.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nosig")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    _, message, _ = await env.service.challenge(pem, "a")
    signature = base64.b64encode(key.sign(message.encode(), ec.ECDSA(hashes.SHA256()))).decode()
    with pytest.raises(id_errors.NoDigitalSignatureUsage):
        await env.service.login(pem, message, signature, "a")


async def test_garbage_certificate_is_refused_without_parser_details(env: Env) -> None:
    with pytest.raises(id_errors.CertificateParseError) as info:
        await env.service.challenge("-----BEGIN CERTIFICATE-----\nAAAA\n", "a")
    assert "ParseError" not in info.value.message
    with pytest.raises(id_errors.CertificateParseError):
        await env.service.challenge(12345, "a")


async def test_rate_limits_per_identity_and_per_address(env: Env, ca: EmbeddedCA) -> None:
    limited = build(env.repo, ca, env.clock, per_identity=3, per_address=5)
    alice, bob = member(ca, "Org1", "alice"), member(ca, "Org2", "bob")
    for _ in range(3):
        await limited.challenge(alice.pem, "10.0.0.1")
    with pytest.raises(auth_errors.RateLimited) as info:
        await limited.challenge(alice.pem, "10.0.0.2")
    assert info.value.http_status == 429 and info.value.details["retry_after_s"] >= 1
    # Another identity from the same address still has address budget left...
    await limited.challenge(bob.pem, "10.0.0.1")
    await limited.challenge(bob.pem, "10.0.0.1")
    # ...until the address budget (5) is spent.
    with pytest.raises(auth_errors.RateLimited, match="address"):
        await limited.challenge(bob.pem, "10.0.0.1")
    env.clock.now += 60_000  # the buckets refill
    await limited.challenge(alice.pem, "10.0.0.1")


async def test_refresh_rotates_and_is_single_use(env: Env, ca: EmbeddedCA) -> None:
    tokens = await env.login(member(ca, "Org1", "alice"))
    env.clock.now += 1000
    fresh = await env.service.refresh(tokens.refresh_token, "a")  # type: ignore[attr-defined]
    assert fresh.session_id == tokens.session_id  # type: ignore[attr-defined]
    assert fresh.expires_ms == env.clock.now + 900_000
    with pytest.raises(auth_errors.TokenInvalid):
        await env.service.refresh(tokens.refresh_token, "a")  # type: ignore[attr-defined]
    with pytest.raises(auth_errors.TokenInvalid):
        await env.service.refresh("garbage", "a")


async def test_tokens_refused_when_missing_forged_expired_or_revoked(
    env: Env, ca: EmbeddedCA
) -> None:
    tokens = await env.login(member(ca, "Org1", "alice"))
    token: str = tokens.token  # type: ignore[attr-defined]
    with pytest.raises(auth_errors.TokenMissing):
        await env.service.authenticate(None)
    with pytest.raises(auth_errors.TokenInvalid):
        await env.service.authenticate(token[:-3] + "abc")
    with pytest.raises(auth_errors.TokenInvalid):
        await env.service.authenticate("al1.x")
    other_key = TokenSigner(b"z" * 32)
    claims = TokenSigner(b"k" * 32).check(token, env.clock.now)
    with pytest.raises(auth_errors.TokenInvalid, match="forged"):
        await env.service.authenticate(other_key.issue(claims))
    env.clock.now += 900_001
    with pytest.raises(auth_errors.TokenExpired):
        await env.service.authenticate(token)
    env.clock.now -= 900_001
    await env.service.revoke(tokens.session_id)  # type: ignore[attr-defined]
    with pytest.raises(auth_errors.SessionRevoked):
        await env.service.authenticate(token)
    with pytest.raises(auth_errors.SessionRevoked):
        await env.service.refresh(tokens.refresh_token, "a")  # type: ignore[attr-defined]


async def test_revoked_certificate_cannot_refresh(env: Env, tmp_path: Path) -> None:
    ca = EmbeddedCA(tmp_path / "ca2")
    ca.enroll("Org1", "dave", "member")
    service = build(env.repo, ca, env.clock)
    dave = Member(ca.identity_dir("Org1", "dave"), "Org1MSP")
    _, message, _ = await service.challenge(dave.pem, "a")
    tokens = await service.login(dave.pem, message, dave.sign(message), "a")
    ca.revoke("Org1", "dave")
    # The CRL dates the revocation by the wall clock; the frozen clock is moved to it,
    # or a second boundary crossed since the fixture would put the revocation "later".
    env.clock.now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    with pytest.raises(id_errors.CertificateRevoked):
        await service.refresh(tokens.refresh_token, "a")
    with pytest.raises(auth_errors.SessionRevoked):
        await service.authenticate(tokens.token)


async def test_expired_challenges_are_purged(env: Env, ca: EmbeddedCA) -> None:
    alice = member(ca, "Org1", "alice")
    _, message, _ = await env.service.challenge(alice.pem, "a")
    assert await env.service.purge_challenges() == 0  # still valid
    env.clock.now += 60_000 + 60_001
    assert await env.service.purge_challenges() == 1
    with pytest.raises(auth_errors.ChallengeUnknown):
        await env.service.login(alice.pem, message, alice.sign(message), "a")
