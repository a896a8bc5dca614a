"""One scenario suite, two ledgers: the embedded one always, real Fabric when installed.

The ``ledger`` fixture is parametrised: ``embedded`` (a fresh embedded ledger per
test, in a temporary folder) and ``fabric`` (marked ``fabric``: the session's
native network with the test chaincode deployed; skipped with the reason when
no Fabric install is found). Each test gets a :class:`LedgerUnderTest` and uses
only what it offers, so every assertion holds on both ledgers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fabric_protos.common import common_pb2

from gateway.identity.ca import EmbeddedCA
from gateway.ledger.gateway import Gateway
from gateway.ledger.transport import GatewayTransport

CHANNEL_EMBEDDED = "anchorline"


@dataclasses.dataclass
class LedgerUnderTest:
    kind: str
    channel: str
    chaincode: str
    orgs: tuple[str, ...]  # org names: Org1, Org2, Org3
    msp_ids: tuple[str, ...]
    enroll: Callable[[str, str, str], Path]
    revoke: Callable[[str, str], None]
    gateway: Callable[[Path, str], Gateway]
    transport: Callable[[str], GatewayTransport]
    # The channel's blocks as stored (the embedded store, or a Fabric peer's block file).
    blocks: Callable[[], list[common_pb2.Block]]
    # Embedded only: the block height, to show that refused input wrote nothing.
    height: Callable[[], int] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def member(self, org: str = "Org1", role: str = "member") -> Path:
        return self.enroll(org, self.unique("user"), role)


@pytest.fixture
def foreign_identity(tmp_path: Path) -> Path:
    """A member MSP folder for "Org1MSP" issued by a CA that no channel trusts."""
    return EmbeddedCA(tmp_path / "foreign-ca").enroll("Org1", "mallory", "member")


async def _embedded(tmp_path: Path) -> AsyncIterator[LedgerUnderTest]:
    from gateway.ledger.embedded import EmbeddedConfig, EmbeddedLedger, EmbeddedTransport
    from gateway.ledger.embedded_client import embedded_gateway

    ledger = EmbeddedLedger.open(
        EmbeddedConfig(
            root=tmp_path / "embedded",
            chaincodes={"testcc": "tests.chaincode.testcc:CONTRACTS"},
            batch_timeout_s=0.02,
        )
    )
    gateways: list[Gateway] = []

    def gateway(msp_dir: Path, org: str) -> Gateway:
        gw = embedded_gateway(ledger, msp_dir, org=org)
        gateways.append(gw)
        return gw

    def revoke(org: str, name: str) -> None:
        ledger.ca.revoke(org, name)

    try:
        yield LedgerUnderTest(
            kind="embedded",
            channel=ledger.config.channel,
            chaincode="testcc",
            orgs=ledger.config.orgs,
            msp_ids=tuple(ledger.peers),
            enroll=ledger.ca.enroll,
            revoke=revoke,
            gateway=gateway,
            transport=lambda msp_id: EmbeddedTransport(ledger, msp_id),
            blocks=lambda: list(ledger.store.blocks()),
            height=lambda: ledger.height,
            extra={"ledger": ledger},
        )
    finally:
        for gw in gateways:
            await gw.close()
        await ledger.close()


_FABRIC_READY: list[bool] = []


class _Reader:
    """Fabric's blkstorage encoding: varints and length-prefixed byte strings."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.data[self.offset]
            self.offset += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def raw(self) -> bytes:
        length = self.varint()
        chunk = self.data[self.offset : self.offset + length]
        if len(chunk) != length:
            raise IndexError("truncated")
        self.offset += length
        return chunk


def _fabric_blocks(root: Path, channel: str) -> list[common_pb2.Block]:
    """The blocks in a node's first block file (``common/ledger/blkstorage``'s own layout)."""
    # A peer's (under ledgersData/): orderers' blocks carry no transaction filter.
    files = sorted(
        p for p in root.rglob(f"chains/{channel}/blockfile_000000") if "ledgersData" in p.parts
    )
    assert files, f"no peer block file for channel {channel} under {root}"
    outer = _Reader(files[0].read_bytes())
    blocks = []
    while outer.offset < len(outer.data):
        try:
            inner = _Reader(outer.raw())
        except IndexError:  # a block still being written
            break
        block = common_pb2.Block()
        block.header.number = inner.varint()
        block.header.data_hash = inner.raw()
        block.header.previous_hash = inner.raw()
        block.data.data.extend(inner.raw() for _ in range(inner.varint()))
        block.metadata.metadata.extend(inner.raw() for _ in range(inner.varint()))
        blocks.append(block)
    return blocks


async def _wait_until_evaluable(profile: Any, chaincode: str, msp_dir: Path) -> None:
    """Right after a deployment a peer's gateway may not list the chaincode yet (≈ 1 s)."""
    from gateway.ledger.connection import from_profile
    from gateway.ledger.errors import EvaluateError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    async with from_profile(profile, msp_dir, org="Org1") as gw:
        contract = gw.network(profile.channel).contract(chaincode)
        for org in profile.orgs:
            while True:
                try:
                    await contract.evaluate("Get", "readiness-probe", target_orgs=[org.msp_id])
                except EvaluateError as exc:
                    if exc.chaincode_message is not None or loop.time() > deadline:
                        break  # the chaincode answered (not_found): the peer is ready
                    await asyncio.sleep(0.25)
                    continue
                break


async def _fabric(request: pytest.FixtureRequest) -> AsyncIterator[LedgerUnderTest]:
    from gateway.ledger.connection import endpoints_from_profile, from_profile
    from gateway.ledger.grpc_transport import GrpcTransport

    profile = request.getfixturevalue("fabric_network")
    chaincode = request.getfixturevalue("testcc")
    enroll = request.getfixturevalue("enroll_identity")
    session = request.getfixturevalue("fabric_session")
    opened: list[Gateway] = []
    transports: list[GrpcTransport] = []

    def gateway(msp_dir: Path, org: str) -> Gateway:
        gw = from_profile(profile, msp_dir, org=org)
        opened.append(gw)
        return gw

    def transport(msp_id: str) -> GatewayTransport:
        endpoint = next(e for e in endpoints_from_profile(profile, msp_id) if e.msp_id == msp_id)
        t = GrpcTransport(endpoint)
        transports.append(t)
        return t

    def revoke(org: str, name: str) -> None:
        session.network.revoke(org, name)

    if not _FABRIC_READY:
        await _wait_until_evaluable(profile, chaincode, enroll(profile, "Org1", "probe", "member"))
        _FABRIC_READY.append(True)
    try:
        yield LedgerUnderTest(
            kind="fabric",
            channel=profile.channel,
            chaincode=chaincode,
            orgs=tuple(o.name for o in profile.orgs),
            msp_ids=tuple(o.msp_id for o in profile.orgs),
            enroll=lambda org, name, role: enroll(profile, org, name, role),
            revoke=revoke,
            gateway=gateway,
            transport=transport,
            blocks=lambda: _fabric_blocks(session.network.layout.root, profile.channel),
            extra={"profile": profile},
        )
    finally:
        for gw in opened:
            await gw.close()
        for t in transports:
            await t.close()


@pytest.fixture(params=["embedded", pytest.param("fabric", marks=pytest.mark.fabric)])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerUnderTest]:
    if request.param == "embedded":
        async for item in _embedded(tmp_path):
            yield item
    else:
        async for item in _fabric(request):
            yield item
