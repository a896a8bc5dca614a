"""The marketplace's HTTP side and the web page.

``install(app)`` (one line in the app factory, after the trust path's
``install``) adds the routes below, the static page, and a ``cleanup_ctx``
entry that starts the :class:`~gateway.marketplace.service.MarketplaceService`
on the trust path's ledger connection (or without a ledger when the trust
path is off: auctions still run, settlement and premium rooms do not).

Routes (all but the page and ``/marketplace/info`` need ``Authorization: Bearer``):

- ``POST /marketplace/auctions`` — body: the seller's signed ``auction.open`` event.
- ``GET /marketplace/auctions``, ``GET /marketplace/auctions/{id}`` — state and bids.
- ``POST /marketplace/auctions/{id}/settlement`` ``{action: propose|accept|settle}``
  — the settlement transaction prepared for the caller to sign.
- ``POST /ledger/prepare`` ``{function, args}`` — any offered access or settlement
  function prepared for the caller (e.g. ``access:GrantAccess`` by an org admin).
- ``POST /ledger/transactions/{tx_id}/endorse`` ``{signature}`` — signature over the
  proposal digest; answers the transaction to sign.
- ``POST /ledger/transactions/{tx_id}/submit`` ``{signature}`` — signature over the
  transaction digest; answers ``{tx_id, block_number, valid, result}`` after the commit.
- ``GET /`` and ``/static/…`` — the page (gateway/web/static/).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.errors import InvalidInput
from gateway.marketplace.errors import LedgerNotReady
from gateway.marketplace.ledger import handle_from_anchoring
from gateway.marketplace.prepared import decode_signature
from gateway.marketplace.service import MarketplaceService
from gateway.web.routes import _body, _json, _principal
from gateway.web.state import CONTEXT

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


class MarketplaceSlot:
    """Filled when the app starts (an app's state cannot change once it runs)."""

    service: MarketplaceService | None = None


MARKETPLACE: web.AppKey[MarketplaceSlot] = web.AppKey("anchorline_marketplace", MarketplaceSlot)
routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """Add the marketplace routes, the page and the service's start/stop to ``app``."""
    app[MARKETPLACE] = MarketplaceSlot()
    app.add_routes(routes)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.cleanup_ctx.append(_marketplace)


async def _marketplace(app: web.Application) -> AsyncIterator[None]:
    from gateway.web.proofs import ANCHORING

    ctx = app[CONTEXT]
    runtime = app.get(ANCHORING)
    ledger = handle_from_anchoring(runtime.connection, owns=False) if runtime else None
    service = MarketplaceService(
        ctx,
        ledger=ledger,
        evidence=runtime.evidence if runtime else None,
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


def _service(request: web.Request) -> MarketplaceService:
    slot = request.app.get(MARKETPLACE)
    service = slot.service if slot is not None else None
    if service is None:
        raise LedgerNotReady("the marketplace is not running on this gateway")
    return service


@routes.get("/")
async def get_page(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        raise web.HTTPNotFound(reason="the web page is not installed")
    return web.FileResponse(index)


@routes.get("/marketplace/info")
async def get_info(request: web.Request) -> web.Response:
    service = _service(request)
    ledger = service.ledger
    return _json(
        {
            "ledger": request.app[CONTEXT].ledger,
            "fabric_channel": ledger.channel if ledger else None,
            "chaincode": ledger.chaincode if ledger else None,
            "gateway_msp": ledger.identity.msp_id if ledger else None,
            "settlement": ledger is not None,
        }
    )


@routes.post("/marketplace/auctions")
async def post_auction(request: web.Request) -> web.Response:
    principal = await _principal(request)
    service = _service(request)
    body = await _body(request)
    return _json(await service.open_auction(principal, body), status=201)


@routes.get("/marketplace/auctions")
async def get_auctions(request: web.Request) -> web.Response:
    await _principal(request)
    service = _service(request)
    return _json({"auctions": [a.to_json() for a in service.auctions.values()]})


@routes.get("/marketplace/auctions/{auction_id}")
async def get_auction(request: web.Request) -> web.Response:
    await _principal(request)
    auction = _service(request).get(request.match_info["auction_id"])
    body: dict[str, Any] = auction.to_json()
    body["bid_list"] = [b.to_json() for b in auction.bids]
    return _json(body)


@routes.post("/marketplace/auctions/{auction_id}/settlement")
async def post_settlement(request: web.Request) -> web.Response:
    principal = await _principal(request)
    body = await _body(request)
    action = body.get("action")
    if not isinstance(action, str):
        raise InvalidInput("send {action: propose | accept | settle}")
    prepared = await _service(request).prepare_settlement(
        principal,
        request.match_info["auction_id"],
        action,
        any_party=body.get("any_party") is True,
    )
    return _json(prepared)


@routes.post("/ledger/prepare")
async def post_prepare(request: web.Request) -> web.Response:
    principal = await _principal(request)
    service = _service(request)
    body = await _body(request)
    function, args = body.get("function"), body.get("args", [])
    if not isinstance(function, str) or not isinstance(args, list):
        raise InvalidInput("send {function: 'contract:Function', args: [text, ...]}")
    if not all(isinstance(a, str) for a in args) or len(args) > 8:
        raise InvalidInput("args must be at most 8 strings")
    if service.prepared is None:
        raise LedgerNotReady("this gateway runs without a ledger")
    creator = await service._creator(principal)
    return _json(service.prepared.prepare(creator, function, args))


async def _signed_step(request: web.Request, step: str) -> web.Response:
    principal = await _principal(request)
    service = _service(request)
    if service.prepared is None:
        raise LedgerNotReady("this gateway runs without a ledger")
    body = await _body(request)
    signature = decode_signature(body.get("signature"))
    tx_id = request.match_info["tx_id"]
    if step == "endorse":
        answer = await service.prepared.endorse(tx_id, principal.fingerprint, signature)
    else:
        answer = await service.prepared.submit(tx_id, principal.fingerprint, signature)
    return _json(answer)


@routes.post("/ledger/transactions/{tx_id}/endorse")
async def post_endorse(request: web.Request) -> web.Response:
    return await _signed_step(request, "endorse")


@routes.post("/ledger/transactions/{tx_id}/submit")
async def post_submit(request: web.Request) -> web.Response:
    return await _signed_step(request, "submit")
