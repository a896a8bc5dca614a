"""The trust path's HTTP side: proofs, checkpoints, consistency, anchoring status.

``install(app)`` (called by the app factory) adds the routes. The trust path
itself is started by the app factory (:mod:`gateway.app`), which puts it in
the :data:`~gateway.context.ANCHORING` slot these routes read.

Routes (reads need a session allowed to read the channel, like the event reads):

- ``GET /events/{channel}/{seq}/proof`` — ``anchorline.event-proof/1`` JSON.
- ``GET /channels/{channel}/checkpoint`` — the C2SP signed checkpoint (text/plain);
  ``?format=json`` adds the verifier key.
- ``GET /channels/{channel}/consistency?from=&to=`` — RFC 9162 consistency proof.
- ``GET /anchoring/status`` and ``GET /anchoring/metrics`` — backlog and progress.
- ``GET /gateway/keys`` — the gateway's key history (``anchorline.gateway-keys/1``).
"""

from __future__ import annotations

from aiohttp import web

from gateway.anchoring.errors import AnchoringUnavailable
from gateway.anchoring.keyhistory import load_history
from gateway.context import ANCHORING, AnchoringRuntime
from gateway.errors import InvalidInput
from gateway.web.cluster import ANCHOR_LEADER
from gateway.web.routes import _int_param, _json, _readable_channel

routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """Add the trust path's routes to ``app``."""
    app.add_routes(routes)


def runtime(app: web.Application) -> AnchoringRuntime:
    found = app.get(ANCHORING)
    if found is None:
        leader = app.get(ANCHOR_LEADER)
        if leader is not None:
            if isinstance(leader.active, AnchoringRuntime):
                return leader.active
            raise AnchoringUnavailable(
                "this gateway does not hold the anchor lease now: another gateway of the "
                "same store anchors (retry: the balancer sends the request elsewhere)"
            )
        raise AnchoringUnavailable(
            "this gateway runs without the trust path (anchoring.enabled is off)"
        )
    return found


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


@routes.get("/gateway/keys")
async def get_gateway_keys(request: web.Request) -> web.Response:
    history = await load_history(runtime(request.app).service.store)
    return _json(history.to_json())
