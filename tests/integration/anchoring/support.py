"""Helpers of the trust-path integration tests: a gateway with its trust path on a ledger
the test holds, member clients, and waiting for statuses."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from gateway.anchoring.ledger import FabricAnchorLedger
from gateway.client.member import MemberClient
from gateway.config import Settings, load_settings
from gateway.context import ANCHORING, ANCHORING_CONNECT, CONTEXT, AnchoringRuntime
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.identity.msp import load_msp
from gateway.ledger.connection import LedgerConnection
from gateway.ledger.embedded import EmbeddedLedger, EmbeddedTransport, config_from_settings
from gateway.ledger.embedded_client import embedded_gateway
from gateway.ledger.gateway import Gateway
from gateway.ledger.transport import GatewayTransport
from gateway.store.models import event_statuses, events
from tests.integration.gateway.support import RunningGateway
from tests.integration.gateway.support import running_gateway as serve_gateway


def anchoring_settings(home: Path, **anchoring: Any) -> Settings:
    """Settings for a test gateway in ``home`` (this process's environment ignored)."""
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    gateway = dataclasses.replace(
        base.gateway, database_url=f"sqlite:///{home / 'events.db'}", sqlite_synchronous="NORMAL"
    )
    fields = {"batch_max_events": 500, "batch_max_ms": 50, "retry_max_ms": 500, **anchoring}
    # The anchor, settlement and access contracts (chaincode/anchorline.py).
    ledger = dataclasses.replace(base.ledger, embedded_contracts="chaincode.anchorline:CONTRACTS")
    return dataclasses.replace(
        base,
        gateway=gateway,
        ledger=ledger,
        anchoring=dataclasses.replace(base.anchoring, **fields),
    )


@dataclasses.dataclass
class EmbeddedWorld:
    """An embedded ledger, its CA and identities: members of Org1/Org2, an Org3 auditor."""

    settings: Settings
    ledger: EmbeddedLedger
    ca: EmbeddedCA
    gateway_msp: Path
    members: list[tuple[Path, str]]
    auditor: Path

    def trust(self) -> TrustStore:
        return self.ca.trust_store()

    def connection(
        self, wrap: Callable[[GatewayTransport], GatewayTransport] | None = None
    ) -> LedgerConnection:
        """The gateway's ledger connection (Org1 identity; the trust path reads back
        through Org2, the first other org); ``wrap`` may put a fault in front of each
        peer's transport."""
        folder = load_msp(self.gateway_msp, "Org1MSP", require_key=True)
        order = sorted(self.ledger.peers, key=lambda m: m != "Org1MSP")
        transports: list[GatewayTransport] = [EmbeddedTransport(self.ledger, m) for m in order]
        if wrap is not None:
            transports = [wrap(t) for t in transports]
        gw = Gateway(folder.identity, transports, signer=folder.signer())
        return LedgerConnection(
            kind="embedded",
            channel=self.settings.network.channel,
            chaincode=self.settings.network.chaincode_name,
            gateway=gw,
            identity=folder.identity,
            signer=folder.signer(),
            msp_ids=self.ledger.msp_ids(),
            trust=self.ledger.trust,
            close=gw.close,
            resolve_org=self.ledger.ca.msp_id,
        )

    def auditor_ledger(self) -> FabricAnchorLedger:
        gw = embedded_gateway(self.ledger, self.auditor, org="Org3")
        return FabricAnchorLedger(
            gw,
            fabric_channel=self.settings.network.channel,
            chaincode=self.settings.network.chaincode_name,
        )


def open_world(home: Path, members: int = 3, **anchoring: Any) -> EmbeddedWorld:
    settings = anchoring_settings(home, **anchoring)
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    ledger = EmbeddedLedger.open(config_from_settings(settings))
    orgs = ("Org1", "Org2")

    def ident(org: str, name: str, role: str) -> Path:
        try:
            return ca.identity_dir(org, name)
        except Exception:
            return ca.enroll(org, name, role)

    return EmbeddedWorld(
        settings=settings,
        ledger=ledger,
        ca=ca,
        gateway_msp=ident("Org1", "anchorline-gateway", "admin"),
        members=[
            (ident(orgs[i % 2], f"member{i}", "member"), f"{orgs[i % 2]}MSP")
            for i in range(members)
        ],
        auditor=ident("Org3", "audrey", "auditor"),
    )


@dataclasses.dataclass
class Running(RunningGateway):
    @property
    def anchoring(self) -> AnchoringRuntime:
        return self.app[ANCHORING]


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, trust: TrustStore, connect: Callable[[Settings], LedgerConnection]
) -> AsyncIterator[Running]:
    def wire(app: web.Application) -> None:
        app[ANCHORING_CONNECT] = connect

    async with serve_gateway(settings, trust, configure=wire) as served:
        yield Running(served.url, served.app, served.runner)


@contextlib.asynccontextmanager
async def clients(
    url: str, members: Sequence[tuple[Path, str]], channel: str
) -> AsyncIterator[list[MemberClient]]:
    out = []
    try:
        for msp_dir, msp_id in members:
            client = MemberClient.from_msp(url, msp_dir, msp_id)
            out.append(client)
            await client.login()
            await client.connect()
            await client.join(channel)
        yield out
    finally:
        for client in out:
            await client.close()


async def emit_many(
    members: Sequence[MemberClient], channel: str, count: int, *, window: int = 64
) -> list[int]:
    """Emit ``count`` events spread over ``members`` (each keeps ``window`` in flight),
    each refused as Overloaded retried after its ``retry_after``; returns the
    acknowledged seqs."""
    seqs: list[int] = []
    per = [
        count // len(members) + (1 if i < count % len(members) else 0) for i in range(len(members))
    ]

    async def one(i: int, client: MemberClient) -> None:
        sem = asyncio.Semaphore(window)

        async def single(k: int) -> None:
            async with sem:
                for _ in range(50):
                    ack = await client.emit(channel, "bid", {"n": k, "by": i})
                    if ack.ok or (ack.error or {}).get("code") != "AL1607":
                        break
                    # Overloaded (the clients share the gateway's loop here): nothing
                    # was stored; come back after retry_after, as a client should.
                    await asyncio.sleep((ack.error or {}).get("retry_after", 100) / 1000)
                assert ack.ok, ack.error
                assert ack.seq is not None
                seqs.append(ack.seq)

        await asyncio.gather(*(single(k) for k in range(per[i])))

    await asyncio.gather(*(one(i, c) for i, c in enumerate(members)))
    return seqs


async def status_counts(app: web.Application, channel: str) -> dict[str, int]:
    engine = app[CONTEXT].engine
    async with engine.connect() as conn:
        total = len(
            (await conn.execute(select(events.c.seq).where(events.c.channel == channel))).all()
        )
        rows = (
            await conn.execute(
                select(event_statuses.c.status).where(event_statuses.c.channel == channel)
            )
        ).all()
    counts: dict[str, int] = {"pending": total - len(rows)}
    for (status,) in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


async def wait_finalized(app: web.Application, channel: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = await status_counts(app, channel)
        if counts.get("finalized", 0) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not all {count} events finalized in {timeout}s: {counts}")


@dataclasses.dataclass
class FabricWorld:
    """The session's native network: a gateway identity of Org1, members of Org1/Org2 and
    an Org3 auditor, all enrolled with the orgs' Fabric CAs."""

    settings: Settings
    profile_path: Path
    gateway_msp: Path
    members: list[tuple[Path, str]]
    auditor: Path
    _trust: TrustStore

    def trust(self) -> TrustStore:
        return self._trust

    def connection(self, wrap: object = None) -> LedgerConnection:
        from gateway.ledger.connection import from_profile, trust_from_profile
        from gateway.ledger.profile import NetworkProfile

        profile = NetworkProfile.load(self.profile_path)
        folder = load_msp(self.gateway_msp, "Org1MSP", require_key=True)
        gw = from_profile(profile, self.gateway_msp, org="Org1")
        return LedgerConnection(
            kind="fabric",
            channel=profile.channel,
            chaincode=self.settings.network.chaincode_name,
            gateway=gw,
            identity=folder.identity,
            signer=folder.signer(),
            msp_ids=tuple(o.msp_id for o in profile.orgs),
            trust=trust_from_profile(profile),
            close=gw.close,
            resolve_org=lambda name: profile.org(name).msp_id,
        )

    def auditor_ledger(self) -> FabricAnchorLedger:
        from gateway.anchoring.ledger import auditor_ledger
        from gateway.ledger.connection import open_ledger

        return auditor_ledger(
            open_ledger(self.settings, peer=str(self.profile_path), msp_dir=self.auditor)
        )


def fabric_world(home: Path, profile: Any, enroll: Callable[..., Path], tag: str) -> FabricWorld:
    from gateway.ledger.connection import trust_from_profile

    settings = anchoring_settings(home, batch_max_events=1000, batch_max_ms=100)
    assert profile.network_dir is not None
    profile_path = Path(profile.network_dir) / "profile.json"
    auditor = enroll(profile, "Org3", f"audit-{tag}", "auditor")
    trust = trust_from_profile(profile)
    return FabricWorld(
        settings=settings,
        profile_path=profile_path,
        gateway_msp=enroll(profile, "Org1", f"gw-{tag}", "admin"),
        members=[
            (enroll(profile, org, f"m{i}-{tag}", "member"), f"{org}MSP")
            for i, org in enumerate(("Org1", "Org2", "Org1", "Org2"))
        ],
        auditor=auditor,
        _trust=trust,
    )
