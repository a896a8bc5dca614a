"""The aiohttp application factory of the gateway.

``create_app(settings)`` builds every long-lived object and wires them:
store → pipeline → hub → Socket.IO adapter → routes, then the marketplace on
the trust path's ledger connection. Database connections, the commit writer,
the expiry loop and the marketplace are opened and closed in the app's
``cleanup_ctx``; nothing lives in module globals. The objects are kept in a
:class:`~gateway.context.GatewayContext` for the HTTP routes; domain services
get only the collaborators they use.

Seams for the other paths: ``context.hub`` is the
:class:`~gateway.events.publisher.StatusPublisher` the trust path pushes
status changes through; ``context.pipeline.add_listener`` hands it every
committed event; ``context.statuses`` stores statuses;
``context.authorizer.add_policy`` plugs on-chain grants in front of the
configured rules and ``context.authorizer.invalidate`` applies a revocation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.anchoring.batcher import GatewayIdentity
from gateway.anchoring.checkpoint import EcdsaNoteSigner
from gateway.anchoring.evidence import Evidence
from gateway.anchoring.ledger import trust_path_ledger
from gateway.anchoring.outbox import BatchStore
from gateway.anchoring.service import AnchoringService
from gateway.auth.authorizer import Authorizer, ConfigPolicy
from gateway.auth.challenges import ChallengeService
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.sessions import IdentityVerifier, SessionService
from gateway.auth.tokens import TokenSigner
from gateway.clock import Clock, now_ms
from gateway.config import Settings
from gateway.context import (
    ANCHORING,
    ANCHORING_CONNECT,
    CONTEXT,
    MARKETPLACE,
    AnchoringRuntime,
    GatewayContext,
    MarketplaceSlot,
)
from gateway.errors import ConfigError
from gateway.events.intake import IntakeLimits
from gateway.events.metrics import GatewayMetrics
from gateway.events.pipeline import EventPipeline
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.ledger.connection import ledger_kind, open_ledger, profile_path
from gateway.ledger.profile import NetworkProfile
from gateway.marketplace.ledger import handle_from_anchoring
from gateway.marketplace.service import MarketplaceService
from gateway.store.auctions import AuctionRepository
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository
from gateway.store.trust import EventStatusRepository
from gateway.stream import sio
from gateway.stream.hub import Hub
from gateway.tasks import cancel_and_wait
from gateway.web.errors import error_middleware
from gateway.web.marketplace import install as install_marketplace
from gateway.web.proofs import install as install_anchoring
from gateway.web.routes import routes

log = logging.getLogger(__name__)

SOCKET_SERVER: web.AppKey[sio.GatewaySocketServer] = web.AppKey(
    "anchorline_socket_server", sio.GatewaySocketServer
)


def database_url(settings: Settings) -> str:
    """The configured URL, or the SQLite file under the state folder."""
    return settings.gateway.database_url or f"sqlite:///{settings.home / 'gateway' / 'events.db'}"


def trust_store_from_settings(settings: Settings) -> TrustStore:
    """MSPs from ``gateway.trust_msp_dirs`` (``MSPID=folder`` entries); by default the
    MSP folders of the Fabric network's orgs, or the embedded CA's on that ledger."""
    spec = settings.gateway.trust_msp_dirs.strip()
    if not spec:
        if ledger_kind(settings) == "fabric":
            return _network_trust_store(profile_path(settings))
        return EmbeddedCA(settings.embedded_dir / "ca").trust_store()
    dirs: dict[str, Path] = {}
    for entry in filter(None, (e.strip() for e in spec.split(os.pathsep))):
        msp_id, sep, folder = entry.partition("=")
        if not sep or not msp_id or not folder:
            raise ConfigError(
                f"gateway.trust_msp_dirs: {entry!r} is not MSPID=folder "
                f"(entries separated by {os.pathsep!r})"
            )
        dirs[msp_id] = Path(folder).expanduser()
    return TrustStore.from_msp_dirs(dirs)


def _network_trust_store(profile_file: Path) -> TrustStore:
    if not profile_file.is_file():
        raise ConfigError(
            f"no network profile at {profile_file}: run `anchorline network up`, or set "
            "gateway.trust_msp_dirs"
        )
    profile = NetworkProfile.load(profile_file)
    dirs: dict[str, Path] = {}
    for org in profile.orgs:
        if org.msp_dir is None:
            raise ConfigError(
                f"{profile_file} predates org MSP folders: run `anchorline network up` again, "
                "or set gateway.trust_msp_dirs"
            )
        dirs[org.msp_id] = org.msp_dir
    return TrustStore.from_msp_dirs(dirs)


def _token_secret(settings: Settings) -> bytes:
    raw = settings.gateway.token_secret
    if not raw:
        return secrets.token_bytes(32)
    try:
        secret = bytes.fromhex(raw)
    except ValueError:
        raise ConfigError("gateway.token_secret must be hex (at least 32 hex digits)") from None
    if len(secret) < 16:
        raise ConfigError("gateway.token_secret must be at least 16 bytes (32 hex digits)")
    return secret


def create_app(
    settings: Settings,
    *,
    verifier: IdentityVerifier | None = None,
    ledger: str | None = None,
    clock: Clock = now_ms,
) -> web.Application:
    """A ready-to-run gateway application.

    ``verifier`` defaults to :func:`trust_store_from_settings`; ``ledger`` is
    the name ``/healthz`` reports (default: ``settings.ledger.kind``).
    """
    gs = settings.gateway
    engine = create_engine(database_url(settings), gs.sqlite_synchronous)
    metrics = GatewayMetrics()
    events = EventRepository(engine, gs.sqlite_synchronous)
    auth = AuthRepository(engine)
    sessions = SessionService(
        repo=auth,
        challenges=ChallengeService(auth, gs.domain, gs.challenge_ttl_s, clock),
        verifier=verifier if verifier is not None else trust_store_from_settings(settings),
        signer=TokenSigner(_token_secret(settings)),
        session_ttl_s=gs.session_ttl_s,
        refresh_ttl_s=gs.refresh_ttl_s,
        per_identity=RateLimiter(gs.rate_limit_identity_per_min, "certificate", clock),
        per_address=RateLimiter(gs.rate_limit_address_per_min, "address", clock),
        clock=clock,
    )
    authorizer = Authorizer(
        [ConfigPolicy(gs.authz_rules, gs.authz_emit_roles)], gs.authz_cache_ttl_s, clock
    )
    pipeline = EventPipeline(
        events, max_batch=gs.commit_max_batch, queue_limit=gs.commit_queue_limit, metrics=metrics
    )
    limits = IntakeLimits.from_settings(gs)
    hub = Hub(
        settings=gs,
        sessions=sessions,
        authorizer=authorizer,
        pipeline=pipeline,
        events=events,
        metrics=metrics,
        limits=limits,
        clock=clock,
    )
    context = GatewayContext(
        settings=settings,
        ledger=ledger or settings.ledger.kind,
        engine=engine,
        events=events,
        auth=auth,
        statuses=EventStatusRepository(engine),
        sessions=sessions,
        authorizer=authorizer,
        pipeline=pipeline,
        hub=hub,
        metrics=metrics,
        limits=limits,
    )
    app = web.Application(middlewares=[error_middleware], client_max_size=256 * 1024)
    app[CONTEXT] = context
    server = sio.GatewaySocketServer(hub, gs)
    app[SOCKET_SERVER] = server
    sio.attach(app, server)
    app.add_routes(routes)
    app.cleanup_ctx.append(_resources)
    # The trust path (batching, anchoring, proofs) starts after _resources, stops before
    # it; the marketplace, on the trust path's ledger connection, after the trust path.
    install_anchoring(app)
    app.cleanup_ctx.append(_anchoring)
    install_marketplace(app)
    app[MARKETPLACE] = MarketplaceSlot()
    app.cleanup_ctx.append(_marketplace)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CONTEXT]
    if ctx.settings.gateway.migrate_on_start:
        await migrate(ctx.engine)
    await ctx.pipeline.start()
    expiry = asyncio.create_task(ctx.hub.run_expiry(), name="session-expiry")
    log.info("gateway ready: ledger=%s database=%s", ctx.ledger, ctx.engine.dialect.name)
    try:
        yield
    finally:
        await cancel_and_wait(expiry)
        await sio.shutdown(app[SOCKET_SERVER])
        await ctx.hub.close()
        await ctx.pipeline.stop()
        await ctx.events.close()
        await ctx.engine.dispose()


async def _anchoring(app: web.Application) -> AsyncIterator[None]:
    """Connect the trust path to the ledger, start the anchoring service after the store
    is migrated, plug it into the pipeline (committed events, admission) and the hub
    (status pushes); stop it before the pipeline stops."""
    ctx = app[CONTEXT]
    settings = ctx.settings
    if not settings.anchoring.enabled:
        yield
        return
    connect = app.get(ANCHORING_CONNECT, open_ledger)
    connection = connect(settings)
    try:
        ledger = trust_path_ledger(
            connection, settings.anchoring, call_timeout_s=settings.ledger.submit_timeout_s
        )
    except BaseException:
        await connection.close()
        raise
    store = BatchStore(ctx.engine)
    identity = GatewayIdentity(connection.identity, connection.signer)
    service = AnchoringService(
        settings.anchoring,
        store=store,
        events=ctx.events,
        ledger=ledger,
        identity=identity,
        publisher=ctx.hub,
    )
    evidence = Evidence(
        store,
        ctx.events,
        fabric_channel=ledger.fabric_channel,
        chaincode=ledger.chaincode,
        note_signer=EcdsaNoteSigner(
            settings.anchoring.checkpoint_origin.replace(" ", "_") or "anchorline",
            identity.identity.public_key,
            identity.signer,
        ),
        origin_prefix=settings.anchoring.checkpoint_origin,
    )
    ctx.pipeline.add_listener(service.on_committed)
    ctx.pipeline.add_admission_check(service.admit)
    try:
        await service.start()
    except BaseException:
        await connection.close()
        raise
    app[ANCHORING] = AnchoringRuntime(service, evidence, connection, ledger)
    log.info(
        "trust path running: ledger=%s channel=%s chaincode=%s",
        connection.kind,
        ledger.fabric_channel,
        ledger.chaincode,
    )
    try:
        yield
    finally:
        await service.stop()
        await connection.close()


async def _marketplace(app: web.Application) -> AsyncIterator[None]:
    """The marketplace on the trust path's ledger connection (or without a ledger when
    the trust path is off: auctions still run, settlement and premium rooms do not)."""
    ctx = app[CONTEXT]
    runtime = app.get(ANCHORING)
    ledger = handle_from_anchoring(runtime.connection, owns=False) if runtime else None
    service = MarketplaceService(
        authorizer=ctx.authorizer,
        pipeline=ctx.pipeline,
        events=ctx.events,
        identities=ctx.auth,
        store=AuctionRepository(ctx.engine),
        limits=ctx.limits,
        ledger=ledger,
        evidence=runtime.evidence if runtime else None,
        emit_roles=frozenset(
            r.strip() for r in ctx.settings.gateway.authz_emit_roles.split(",") if r.strip()
        ),
        premium_pattern="premium-*",
    )
    await service.start()
    app[MARKETPLACE].service = service
    log.info("marketplace running (ledger: %s)", ledger.kind if ledger else "none")
    try:
        yield
    finally:
        app[MARKETPLACE].service = None
        await service.stop()
