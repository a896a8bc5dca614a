"""The trust path's HTTP side: proofs, checkpoints, consistency, anchoring status.

``install(app)`` (called by the app factory) adds the routes and a
``cleanup_ctx`` entry that connects the trust path to the ledger, starts the
:class:`~gateway.anchoring.service.AnchoringService` after the store is
migrated, plugs it into the pipeline (committed events, admission) and the
hub (status pushes), and stops it before the pipeline stops. Tests and tools
may set :data:`ANCHORING_CONNECT` on the app before it starts to choose the
ledger connection.

Routes (reads need a session allowed to read the channel, like the event reads):

- ``GET /events/{channel}/{seq}/proof`` — ``anchorline.event-proof/1`` JSON.
- ``GET /channels/{channel}/checkpoint`` — the C2SP signed checkpoint (text/plain);
  ``?format=json`` adds the verifier key.
- ``GET /channels/{channel}/consistency?from=&to=`` — RFC 9162 consistency proof.
- ``GET /anchoring/status`` and ``GET /anchoring/metrics`` — backlog and progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from gateway.anchoring.checkpoint import EcdsaNoteSigner
from gateway.anchoring.connect import Connection, open_anchoring
from gateway.anchoring.errors import AnchoringUnavailable
from gateway.anchoring.evidence import Evidence
from gateway.anchoring.leader import AnchorLeader
from gateway.anchoring.lease import Lease
from gateway.anchoring.outbox import BatchStore
from gateway.anchoring.service import AnchoringService
from gateway.cluster import is_shared
from gateway.config import Settings
from gateway.errors import InvalidInput
from gateway.events.pipeline import Committed
from gateway.store.events import NewEvent
from gateway.tasks import cancel_and_wait
from gateway.web.cluster import ANCHOR_LEADER
from gateway.web.routes import _int_param, _json, _readable_channel
from gateway.web.state import CONTEXT

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AnchoringRuntime:
    service: AnchoringService
    evidence: Evidence
    connection: Connection
    # Several gateways: the task reading the channels' heads from the shared store.
    heads: asyncio.Task[None] | None = None


ANCHORING: web.AppKey[AnchoringRuntime] = web.AppKey("anchorline_anchoring", AnchoringRuntime)
ANCHORING_CONNECT: web.AppKey[Callable[[Settings], Connection]] = web.AppKey(
    "anchorline_anchoring_connect",
    Callable[[Settings], Connection],  # type: ignore[arg-type]
)

routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """Add the trust path's routes and its start/stop to ``app``."""
    app.add_routes(routes)
    app.cleanup_ctx.append(_anchoring)


def runtime(app: web.Application) -> AnchoringRuntime:
    found = app.get(ANCHORING)
    if found is None:
        leader = app.get(ANCHOR_LEADER)
        if leader is not None:
            if isinstance(leader.active, AnchoringRuntime):
                return leader.active
            raise AnchoringUnavailable(
                "this gateway does not hold the anchor lease now: another gateway of the "
                "same store anchors (ask it, or retry: a balancer spreads requests)"
            )
        raise AnchoringUnavailable(
            "this gateway runs without the trust path (anchoring.enabled is off)"
        )
    return found


def _build(app: web.Application, connection: Connection, store: BatchStore) -> AnchoringRuntime:
    ctx = app[CONTEXT]
    settings = ctx.settings
    identity = connection.identity
    service = AnchoringService(
        settings.anchoring,
        store=store,
        events=ctx.events,
        ledger=connection.ledger,
        identity=identity,
        publisher=ctx.hub,
    )
    evidence = Evidence(
        store,
        ctx.events,
        fabric_channel=connection.ledger.fabric_channel,
        chaincode=connection.ledger.chaincode,
        note_signer=EcdsaNoteSigner(
            settings.anchoring.checkpoint_origin.replace(" ", "_") or "anchorline",
            identity.identity.public_key,
            identity.signer,
        ),
        origin_prefix=settings.anchoring.checkpoint_origin,
    )
    return AnchoringRuntime(service, evidence, connection)


async def _anchoring(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CONTEXT]
    settings = ctx.settings
    if not settings.anchoring.enabled:
        yield
        return
    if is_shared(ctx.engine):
        async with _leased(app):
            yield
        return
    connect = app.get(ANCHORING_CONNECT, open_anchoring)
    connection = connect(settings)
    built = _build(app, connection, BatchStore(ctx.engine))
    service = built.service
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
        connection.ledger.fabric_channel,
        connection.ledger.chaincode,
    )
    try:
        yield
    finally:
        await service.stop()
        await connection.close()


@contextlib.asynccontextmanager
async def _leased(app: web.Application) -> AsyncIterator[None]:
    """The trust path on the anchor lease's holder (see gateway.anchoring.leader)."""
    ctx = app[CONTEXT]
    settings = ctx.settings
    anchoring = settings.anchoring
    connect = app.get(ANCHORING_CONNECT, open_anchoring)
    lease = Lease(ctx.engine, ttl_ms=anchoring.lease_ttl_ms)
    heads_period_s = max(0.02, anchoring.batch_max_ms / 2000.0)

    async def start() -> AnchoringRuntime:
        connection = connect(settings)
        try:
            built = _build(app, connection, BatchStore(ctx.engine, fence=lease.fence))
            await built.service.start()
        except BaseException:
            await connection.close()
            raise
        built.heads = asyncio.create_task(
            built.service.follow_heads(ctx.events.heads, heads_period_s), name="anchoring-heads"
        )
        return built

    async def stop(built: AnchoringRuntime) -> None:
        await cancel_and_wait(built.heads)
        await built.service.stop()
        await built.connection.close()

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


def _seq(request: web.Request) -> int:
    raw = request.match_info["seq"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("seq must be a positive integer")
    return int(raw)


@routes.get("/events/{channel}/{seq}/proof")
async def get_proof(request: web.Request) -> web.Response:
    _, channel = await _readable_channel(request)
    proof = await runtime(request.app).evidence.event_proof(channel, _seq(request))
    return _json(proof.to_json())


@routes.get("/channels/{channel}/checkpoint")
async def get_checkpoint(request: web.Request) -> web.Response:
    _, channel = await _readable_channel(request)
    evidence = runtime(request.app).evidence
    signed = await evidence.checkpoint(channel)
    if request.query.get("format") == "json":
        return _json(
            {
                "channel": channel,
                "origin": signed.origin,
                "size": signed.size,
                "root": signed.root.hex(),
                "checkpoint": signed.note,
                "verifier_key": evidence.verifier_key(channel),
            }
        )
    return web.Response(text=signed.note, content_type="text/plain", charset="utf-8")


@routes.get("/channels/{channel}/consistency")
async def get_consistency(request: web.Request) -> web.Response:
    _, channel = await _readable_channel(request)
    if "from" not in request.query or "to" not in request.query:
        raise InvalidInput("give both sizes: ?from=<older size>&to=<newer size>")
    size1 = _int_param(request, "from", 0, 1, 2**62)
    size2 = _int_param(request, "to", 0, 1, 2**62)
    body = await runtime(request.app).evidence.consistency(channel, size1, size2)
    return _json(body)


@routes.get("/anchoring/status")
async def get_status(request: web.Request) -> web.Response:
    return _json(runtime(request.app).service.status())


@routes.get("/anchoring/metrics")
async def get_anchoring_metrics(request: web.Request) -> web.Response:
    text = runtime(request.app).service.metrics_text()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
