"""CRLs that exist only in the channel configuration: read from config blocks as a Fabric
peer delivers them, handed to the trust store, and applied by the CRL watcher exactly
as a folder CRL is (the member's tokens refused, the identity listeners told).

The peer is a small in-memory Deliver service serving real ``common.Block`` protos;
the channel configuration is the embedded ledger's genesis config, updated with
``network.channel.with_revocation_list`` as ``anchorline network revoke`` does; the
CRL is the built-in CA's. The real peer is exercised by the ``fabric`` test."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2, transaction_pb2

from gateway.auth import errors as auth_errors
from gateway.auth.challenges import ChallengeService
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.revocation import RevocationWatcher
from gateway.auth.sessions import SessionService, SessionTokens
from gateway.auth.tokens import TokenSigner
from gateway.identity import errors as id_errors
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore, load_certificate
from gateway.ledger.config_watch import ChannelConfigWatch
from gateway.ledger.embedded.blocks import genesis_envelope
from gateway.ledger.endpoints import Failover
from gateway.ledger.protocol.config import config_of, last_config_number, revocation_lists
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate
from network.channel import with_revocation_list
from tests.unit.auth.test_login import DOMAIN, Clock, Env, member
from tests.unit.ledger.ledger_fakes import make_identity


def _block(number: int, envelope: bytes, last_config: int) -> common_pb2.Block:
    signatures = common_pb2.Metadata(
        value=common_pb2.OrdererBlockMetadata(
            last_config=common_pb2.LastConfig(index=last_config)
        ).SerializeToString()
    )
    return common_pb2.Block(
        header=common_pb2.BlockHeader(number=number),
        data=common_pb2.BlockData(data=[envelope]),
        metadata=common_pb2.BlockMetadata(
            metadata=[signatures.SerializeToString(), b"", b"", b"", b""]
        ),
    )


def _config_envelope(config: configtx_pb2.Config) -> bytes:
    header = common_pb2.ChannelHeader(type=common_pb2.CONFIG, channel_id="ch")
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()),
        data=configtx_pb2.ConfigEnvelope(config=config).SerializeToString(),
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


def _endorser_envelope() -> bytes:
    header = common_pb2.ChannelHeader(type=common_pb2.ENDORSER_TRANSACTION, channel_id="ch")
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()), data=b"tx"
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


class DeliverPeer:
    """The channel's blocks behind Fabric's Deliver (full blocks) and DeliverFiltered."""

    endpoint = "peer0.org1:7051"

    def __init__(self, blocks: list[common_pb2.Block]) -> None:
        self.blocks = blocks
        self._grew = asyncio.Event()
        self.full_reads: list[int] = []

    def append(self, block: common_pb2.Block) -> None:
        self.blocks.append(block)
        self._grew.set()

    @staticmethod
    def _start(envelope: common_pb2.Envelope, newest: int) -> tuple[int, int]:
        seek = ab_pb2.SeekInfo.FromString(common_pb2.Payload.FromString(envelope.payload).data)

        def at(position: ab_pb2.SeekPosition) -> int:
            kind = position.WhichOneof("Type")
            return newest if kind == "newest" else int(position.specified.number)

        return at(seek.start), at(seek.stop)

    async def deliver_blocks(self, envelope: common_pb2.Envelope) -> AsyncIterator[Any]:
        start, stop = self._start(envelope, len(self.blocks) - 1)
        for number in range(start, min(stop, len(self.blocks) - 1) + 1):
            self.full_reads.append(number)
            yield events_pb2.DeliverResponse(block=self.blocks[number])
        yield events_pb2.DeliverResponse(status=common_pb2.SUCCESS)

    async def deliver_filtered(self, envelope: common_pb2.Envelope) -> AsyncIterator[Any]:
        number, _ = self._start(envelope, len(self.blocks) - 1)
        while True:
            while number < len(self.blocks):
                yield events_pb2.DeliverResponse(filtered_block=self._filtered(number))
                number += 1
            self._grew.clear()
            await self._grew.wait()

    def _filtered(self, number: int) -> events_pb2.FilteredBlock:
        envelope = common_pb2.Envelope.FromString(self.blocks[number].data.data[0])
        payload = common_pb2.Payload.FromString(envelope.payload)
        kind = common_pb2.ChannelHeader.FromString(payload.header.channel_header).type
        return events_pb2.FilteredBlock(
            channel_id="ch",
            number=number,
            filtered_transactions=[
                events_pb2.FilteredTransaction(type=kind, tx_validation_code=transaction_pb2.VALID)
            ],
        )

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedCA:
    ca = EmbeddedCA(tmp_path_factory.mktemp("ca"))
    ca.enroll("Org1", "alice", "member")
    ca.enroll("Org2", "rita", "member")
    return ca


@pytest.fixture(scope="module")
def rita_crl(ca: EmbeddedCA) -> bytes:
    """Org2's CRL listing rita, taken out of the CA's folder: it will live only in the
    channel configuration."""
    path = ca.revoke("Org2", "rita")
    crl = path.read_bytes()
    path.unlink()
    return crl


def _channel_config(ca: EmbeddedCA) -> configtx_pb2.Config:
    roots = {
        ca.msp_id(o): [
            c.public_bytes(serialization.Encoding.PEM)
            for c in ca.trust_store().root_certificates(ca.msp_id(o))
        ]
        for o in ("Org1", "Org2")
    }
    genesis = _block(0, genesis_envelope("ch", roots), 0)
    config = config_of(genesis)
    assert config is not None
    return config


def _trust_without_crls(ca: EmbeddedCA, where: Path) -> TrustStore:
    dirs = {}
    for org in ("Org1", "Org2"):
        folder = where / org
        shutil.copytree(ca.org_msp_dir(org), folder, ignore=shutil.ignore_patterns("crls"))
        dirs[ca.msp_id(org)] = folder
    return TrustStore.from_msp_dirs(dirs)


async def _until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_config_blocks_name_the_last_config_and_carry_each_orgs_crls(
    ca: EmbeddedCA, rita_crl: bytes
) -> None:
    config = _channel_config(ca)
    assert revocation_lists(config) == {"Org1MSP": [], "Org2MSP": []}
    updated = with_revocation_list(config, "Org2MSP", [rita_crl])
    block = _block(7, _config_envelope(updated), 7)
    assert last_config_number(block) == 7
    read = config_of(block)
    assert read is not None
    assert revocation_lists(read) == {"Org1MSP": [], "Org2MSP": [rita_crl]}
    other = _block(8, _endorser_envelope(), 7)
    assert config_of(other) is None
    assert last_config_number(other) == 7


def test_channel_crls_are_honoured_beside_the_folders_and_replaced_by_the_next_set(
    ca: EmbeddedCA, rita_crl: bytes, tmp_path: Path
) -> None:
    trust = _trust_without_crls(ca, tmp_path)
    rita = load_certificate(
        (ca.identity_dir("Org2", "rita") / "signcerts" / "cert.pem").read_bytes()
    )
    trust.verify(rita)
    generation = trust.refresh_crls()
    assert trust.set_channel_crls("Org2MSP", [rita_crl])
    assert trust.refresh_crls() == generation + 1
    with pytest.raises(id_errors.CertificateRevoked):
        trust.verify(rita)
    assert not trust.set_channel_crls("Org2MSP", [rita_crl])  # the same list: no change
    assert not trust.set_channel_crls("Org9MSP", [rita_crl])  # not trusted here
    # A folder re-read keeps the channel's CRLs.
    trust.reload()
    with pytest.raises(id_errors.CertificateRevoked):
        trust.verify(rita)
    with pytest.raises(id_errors.MspFolderError):
        trust.set_channel_crls("Org2MSP", [b"not a CRL"])
    with pytest.raises(id_errors.CertificateRevoked):
        trust.verify(rita)
    assert trust.set_channel_crls("Org2MSP", [])
    trust.verify(rita)


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[AuthRepository]:
    engine = create_engine(f"sqlite:///{tmp_path / 'auth.db'}", "NORMAL")
    await migrate(engine)
    yield AuthRepository(engine)
    await engine.dispose()


def _service(repo: AuthRepository, trust: TrustStore, clock: Clock) -> SessionService:
    return SessionService(
        repo=repo,
        challenges=ChallengeService(repo, DOMAIN, 60, clock),
        verifier=trust,
        signer=TokenSigner(b"k" * 32),
        session_ttl_s=900,
        refresh_ttl_s=3600,
        per_identity=RateLimiter(1000, "certificate", clock),
        per_address=RateLimiter(1000, "address", clock),
        clock=clock,
    )


async def test_a_crl_published_into_the_channel_ends_the_members_sessions(
    ca: EmbeddedCA, rita_crl: bytes, tmp_path: Path, repo: AuthRepository
) -> None:
    trust = _trust_without_crls(ca, tmp_path / "msps")
    clock = Clock()
    clock.now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    env = Env(_service(repo, trust, clock), clock, repo)
    told: list[tuple[str, str]] = []
    env.service.on_identity_revoked(lambda fp, message: told.append((fp, message)))

    async def login(org: str, name: str) -> object:
        return await env.login(member(ca, org, name))

    rita, alice = await login("Org2", "rita"), await login("Org1", "alice")
    assert isinstance(rita, SessionTokens) and isinstance(alice, SessionTokens)

    config = _channel_config(ca)
    peer = DeliverPeer([_block(0, _config_envelope(config), 0), _block(1, _endorser_envelope(), 0)])
    identity, key = make_identity()
    watch = ChannelConfigWatch(Failover([peer]), "ch", identity.serialize(), key)  # type: ignore[list-item]
    watcher = RevocationWatcher(trust, env.service)
    watcher.follow_channel(watch)
    watch.start()
    try:
        await _until(lambda: watch.version == 1, "the current configuration read")
        # The newest block named block 0 as the config in force: read in full, with it.
        assert peer.full_reads == [1, 0]
        assert watcher.check() == []
        assert watcher.check() == []

        updated = with_revocation_list(config, "Org2MSP", [rita_crl])
        peer.append(_block(2, _config_envelope(updated), 2))
        peer.append(_block(3, _endorser_envelope(), 2))
        await _until(lambda: watch.version == 2, "the new configuration read")
        assert watch.config_block == 2
        assert watcher.check() == [rita.fingerprint]
        assert told and told[0][0] == rita.fingerprint and "revoked" in told[0][1]
        with pytest.raises(auth_errors.SessionRevoked):
            await env.service.authenticate(rita.token)
        with pytest.raises(auth_errors.SessionRevoked):
            await env.service.refresh(rita.refresh_token, "10.0.0.1")
        with pytest.raises(id_errors.CertificateRevoked):
            await login("Org2", "rita")
        assert (await env.service.authenticate(alice.token)).fingerprint == alice.fingerprint
        assert watcher.check() == []  # nothing new
    finally:
        await watch.close()
