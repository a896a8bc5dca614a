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
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway import cluster
from gateway.anchoring.batcher import GatewayIdentity
from gateway.anchoring.checkpoint import EcdsaNoteSigner
from gateway.anchoring.evidence import Evidence
from gateway.anchoring.leader import AnchorLeader
from gateway.anchoring.lease import Lease
from gateway.anchoring.ledger import trust_path_ledger
from gateway.anchoring.outbox import BatchStore
from gateway.anchoring.service import AnchoringService
from gateway.auth.authorizer import Authorizer, ConfigPolicy
from gateway.auth.challenges import ChallengeService
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.revocation import (
    MspSource,
    RevocationSource,
    RevocationWatcher,
    SessionEndFollower,
)
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
from gateway.events.admission import Admission, AdmissionLimits
from gateway.events.budget import EmitBudget
from gateway.events.intake import IntakeLimits
from gateway.events.metrics import GatewayMetrics
from gateway.events.model import NewEvent
from gateway.events.pipeline import Committed, EventPipeline
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.ledger.config_watch import ChannelConfigWatch
from gateway.ledger.connection import LedgerConnection, ledger_kind, open_ledger, profile_path
from gateway.ledger.connection_profile import load_profile
from gateway.marketplace.ledger import handle_from_anchoring
from gateway.marketplace.service import MarketplaceService
from gateway.store.auctions import AuctionRepository
from gateway.store.auth import AuthRepository
from gateway.store.engine import create_engine, migrate
from gateway.store.events import EventRepository
from gateway.store.trust import EventStatusRepository
from gateway.stream import sio
from gateway.stream.hub import Hub
from gateway.stream.redis_fanout import RedisFanOut
from gateway.tasks import cancel_and_wait
from gateway.web.access import access_middleware
from gateway.web.cluster import ANCHOR_LEADER, PROCESS
from gateway.web.cluster import install as install_cluster
from gateway.web.errors import error_middleware
from gateway.web.marketplace import install as install_marketplace
from gateway.web.proofs import install as install_anchoring
from gateway.web.proxies import TrustedProxies, forwarded_middleware
from gateway.web.routes import routes

log = logging.getLogger(__name__)

SOCKET_SERVER: web.AppKey[sio.GatewaySocketServer] = web.AppKey(
    "anchorline_socket_server", sio.GatewaySocketServer
)
#: The CRL watcher (absent when the verifier's CRLs cannot change or polling is off).
REVOCATION: web.AppKey[RevocationWatcher] = web.AppKey("anchorline_revocation", RevocationWatcher)


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
    profile = load_profile(profile_file)
    dirs: dict[str, Path] = {}
    for org in profile.orgs:
        if org.msp_dir is None:
            raise ConfigError(
                f"{profile_file} predates org MSP folders: run `anchorline network up` again, "
                "or set gateway.trust_msp_dirs"
            )
        dirs[org.msp_id] = org.msp_dir
    return TrustStore.from_msp_dirs(dirs)


class _ProfileMsps:
    """The org MSP folders a network profile lists; re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def stamp(self) -> object:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def folders(self) -> dict[str, Path]:
        profile = load_profile(self._path)
        return {o.msp_id: o.msp_dir for o in profile.orgs if o.msp_dir is not None}


class _EmbeddedCaMsps:
    """The org MSP folders of the built-in CA; an org appears when its CA is created."""

    def __init__(self, ca: EmbeddedCA) -> None:
        self._ca = ca

    def stamp(self) -> object:
        return tuple(self._ca.orgs()) if self._ca.root.is_dir() else ()

    def folders(self) -> dict[str, Path]:
        return {self._ca.msp_id(o): self._ca.org_msp_dir(o) for o in self._ca.orgs()}


def msp_source_from_settings(settings: Settings) -> MspSource | None:
    """Where new orgs appear while the gateway runs: the network profile on Fabric, the
    built-in CA on the embedded ledger; None with ``gateway.trust_msp_dirs`` (a fixed
    list)."""
    if settings.gateway.trust_msp_dirs.strip():
        return None
    if ledger_kind(settings) == "fabric":
        return _ProfileMsps(profile_path(settings))
    return _EmbeddedCaMsps(EmbeddedCA(settings.embedded_dir / "ca"))


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
    # New orgs are picked up live only from the trust the settings describe.
    msps = msp_source_from_settings(settings) if verifier is None else None
    if verifier is None:
        verifier = trust_store_from_settings(settings)
    sessions = SessionService(
        repo=auth,
        challenges=ChallengeService(auth, gs.domain, gs.challenge_ttl_s, clock),
        verifier=verifier,
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
        events,
        max_batch=gs.commit_max_batch,
        queue_limit=gs.commit_queue_limit,
        metrics=metrics,
        admission=Admission(AdmissionLimits.from_settings(gs)),
        identity_budget=EmitBudget(gs.emit_identity_per_s, gs.emit_identity_burst, "identity"),
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
    proxies = TrustedProxies(gs.trusted_proxies)
    # The client address is settled first, so the rate limits and logs key on it.
    middlewares: list[Middleware] = [access_middleware] if gs.access_log else []
    if proxies:
        middlewares.append(forwarded_middleware(proxies))
    app = web.Application(middlewares=[*middlewares, error_middleware], client_max_size=256 * 1024)
    app[CONTEXT] = context
    if isinstance(verifier, RevocationSource) and gs.crl_poll_ms > 0:
        app[REVOCATION] = RevocationWatcher(verifier, sessions, gs.crl_poll_ms / 1000, msps=msps)
    server = sio.GatewaySocketServer(hub, gs)
    app[SOCKET_SERVER] = server
    sio.attach(app, server)
    app.add_routes(routes)
    install_cluster(app)
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
    gs = ctx.settings.gateway

    async def _migrate() -> None:
        await migrate(ctx.engine)

    # The engine is disposed and the writer closed even when joining the store fails.
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(ctx.engine.dispose)
        stack.push_async_callback(ctx.events.close)
        await stack.enter_async_context(
            cluster.membership(
                ctx.engine,
                ctx.sessions,
                token_secret_configured=bool(gs.token_secret),
                prepare=_migrate if gs.migrate_on_start else None,
                ends=SessionEndFollower(ctx.auth, ctx.sessions),
            )
        )
        fanout = ctx.hub.fanout
        if isinstance(fanout, RedisFanOut):
            await fanout.start()
            stack.push_async_callback(fanout.stop)
            app[PROCESS].probes.append(fanout.probe)
            fanout.relay_invalidations(ctx.authorizer)
        await ctx.pipeline.start()
        expiry = asyncio.create_task(ctx.hub.run_expiry(), name="session-expiry")
        watcher = app.get(REVOCATION)
        if watcher is not None and ledger_kind(ctx.settings) == "fabric":
            await _follow_channel_config(app, watcher, stack)
        crl_watch = (
            asyncio.create_task(watcher.run(), name="crl-watcher") if watcher is not None else None
        )
        log.info("gateway ready: ledger=%s database=%s", ctx.ledger, ctx.engine.dialect.name)
        try:
            yield
        finally:
            if crl_watch is not None:
                await cancel_and_wait(crl_watch)
            await cancel_and_wait(expiry)
            await sio.shutdown(app[SOCKET_SERVER])
            await ctx.hub.close()
            await ctx.pipeline.stop()


async def _follow_channel_config(
    app: web.Application, watcher: RevocationWatcher, stack: contextlib.AsyncExitStack
) -> None:
    """Feed the channel configuration's CRLs (Fabric) to the CRL watcher, over a ledger
    connection of this process's own: every process follows the channel itself, as it
    reads the MSP folders itself; ``stack`` closes both."""
    connect = app.get(ANCHORING_CONNECT, open_ledger)
    connection = connect(app[CONTEXT].settings)
    stack.push_async_callback(connection.close)
    watch = ChannelConfigWatch(
        connection.gateway.client.failover,
        connection.channel,
        connection.gateway.client.creator,
        connection.signer,
    )
    watch.start()
    stack.push_async_callback(watch.close)
    watcher.follow_channel(watch)


async def _anchoring(app: web.Application) -> AsyncIterator[None]:
    """Connect the trust path to the ledger, start the anchoring service after the store
    is migrated, plug it into the pipeline (committed events, admission) and the hub
    (status pushes); stop it before the pipeline stops."""
    ctx = app[CONTEXT]
    settings = ctx.settings
    if not settings.anchoring.enabled:
        yield
        return
    if cluster.is_shared(ctx.engine):
        async with _leased(app):
            yield
        return
    connect = app.get(ANCHORING_CONNECT, open_ledger)
    connection = connect(settings)
    try:
        built = _trust_path(app, connection, BatchStore(ctx.engine))
    except BaseException:
        await connection.close()
        raise
    service, ledger = built.service, built.ledger
    ctx.pipeline.add_listener(service.on_committed)
    ctx.pipeline.add_admission_check(service.admit)
    try:
        await service.start()
    except BaseException:
        await connection.close()
        raise
    app[ANCHORING] = built
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


def _trust_path(
    app: web.Application, connection: LedgerConnection, store: BatchStore
) -> AnchoringRuntime:
    """The trust path's objects over ``connection`` and ``store`` (not started)."""
    ctx = app[CONTEXT]
    settings = ctx.settings
    ledger = trust_path_ledger(
        connection, settings.anchoring, call_timeout_s=settings.ledger.submit_timeout_s
    )
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
    return AnchoringRuntime(service, evidence, connection, ledger)


@contextlib.asynccontextmanager
async def _leased(app: web.Application) -> AsyncIterator[None]:
    """Several gateways on one PostgreSQL: the trust path runs on the anchor lease's
    holder only, over an outbox fenced by the lease (see gateway.anchoring.leader), and
    learns of the events other processes commit from the channels' heads."""
    ctx = app[CONTEXT]
    settings = ctx.settings
    anchoring = settings.anchoring
    connect = app.get(ANCHORING_CONNECT, open_ledger)
    lease = Lease(ctx.engine, ttl_ms=anchoring.lease_ttl_ms)
    heads_period_s = max(0.02, anchoring.batch_max_ms / 2000.0)
    heads: dict[int, asyncio.Task[None]] = {}

    async def start() -> AnchoringRuntime:
        connection = connect(settings)
        try:
            built = _trust_path(app, connection, BatchStore(ctx.engine, fence=lease.fence))
            await built.service.start()
        except BaseException:
            await connection.close()
            raise
        heads[id(built)] = asyncio.create_task(
            built.service.follow_heads(ctx.events.heads, heads_period_s), name="anchoring-heads"
        )
        return built

    async def stop(built: AnchoringRuntime) -> None:
        began = time.monotonic()
        await cancel_and_wait(heads.pop(id(built), None))
        await built.service.stop()
        stopped = time.monotonic()
        await built.connection.close()
        log.info(
            "trust path stopped: service in %.0f ms, ledger connection in %.0f ms",
            (stopped - began) * 1000,
            (time.monotonic() - stopped) * 1000,
        )

    leader: AnchorLeader[AnchoringRuntime] = AnchorLeader(
        lease,
        start=start,
        stop=stop,
        renew_ms=anchoring.lease_renew_ms,
        retry_ms=anchoring.lease_retry_ms,
    )

    def committed(items: Sequence[Committed]) -> None:
        if leader.active is not None:
            leader.active.service.on_committed(items)

    def admit(item: NewEvent) -> None:
        if leader.active is not None:
            leader.active.service.admit(item)

    ctx.pipeline.add_listener(committed)
    ctx.pipeline.add_admission_check(admit)
    app[ANCHOR_LEADER] = leader
    leader.start()
    try:
        yield
    finally:
        await leader.stop()


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
