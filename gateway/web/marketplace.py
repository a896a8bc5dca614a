"""The marketplace's HTTP side and the web page.

``install(app)`` (one line in the app factory) adds the routes below and the
static page. The :class:`~gateway.marketplace.service.MarketplaceService`
itself is built and started by the app factory (:mod:`gateway.app`), which
puts it in the :data:`~gateway.context.MARKETPLACE` slot these routes read.

Routes (all but the page and ``/marketplace/info`` need ``Authorization: Bearer``):

- ``POST /marketplace/auctions`` — body: the seller's signed ``auction.open`` event.
- ``GET /marketplace/auctions``, ``GET /marketplace/auctions/{id}`` — state and bids.
- ``GET /marketplace/settlements?state=&party=me&after=&limit=`` — settlements (auctions
  closed with a winner) by auction id, from the database; see
  :meth:`~gateway.marketplace.service.MarketplaceService.settlements`.
- ``POST /marketplace/auctions/{id}/settlement`` ``{action: propose|accept|settle}``
  — the settlement transaction prepared for the caller to sign.
- ``POST /ledger/prepare`` ``{function, args}`` — any offered access or settlement
  function prepared for the caller (e.g. ``access:GrantAccess`` by an org admin).
- ``POST /ledger/transactions/{tx_id}/endorse`` ``{signature}`` — signature over the
  proposal digest; answers the transaction to sign.
- ``POST /ledger/transactions/{tx_id}/submit`` ``{signature}`` — signature over the
  transaction digest; answers ``{tx_id, block_number, valid, result}`` after the commit.
- ``GET /`` and ``/static/…`` — the page (gateway/web/static/); ``/lib/anchorline/…`` and
  ``/lib/socket.io/…`` — the JS client package it imports (clients/js).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.context import CONTEXT, MARKETPLACE
from gateway.errors import InvalidInput
from gateway.marketplace.errors import InvalidQuery, LedgerNotReady
from gateway.marketplace.prepared import decode_signature
from gateway.marketplace.service import MAX_LISTING, MarketplaceService
from gateway.web.routes import _body, _json, _principal

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page imports the JS client package and socket.io-client's ESM build from the
# repository's clients/js (node_modules installed by scripts/setup), when present.
JS_CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "js"
PAGE_LIBRARIES = {
    "/lib/anchorline/": JS_CLIENT_DIR / "src",
    "/lib/socket.io/": JS_CLIENT_DIR / "node_modules" / "socket.io-client" / "dist",
}


routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """Add the marketplace routes and the page to ``app``."""
    app.add_routes(routes)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR, append_version=False)
    for prefix, folder in PAGE_LIBRARIES.items():
        if folder.is_dir():
            app.router.add_static(prefix, folder, append_version=False)


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
    return _json({"auctions": [service.auction_json(a) for a in service.auctions.values()]})


@routes.get("/marketplace/auctions/{auction_id}")
async def get_auction(request: web.Request) -> web.Response:
    await _principal(request)
    service = _service(request)
    auction = service.get(request.match_info["auction_id"])
    body: dict[str, Any] = service.auction_json(auction)
    body["bid_list"] = [b.to_json() for b in auction.bids]
    return _json(body)


@routes.get("/marketplace/settlements")
async def get_settlements(request: web.Request) -> web.Response:
    principal = await _principal(request)
    service = _service(request)
    query = request.query
    party = query.get("party")
    if party not in (None, "me", "any"):
        raise InvalidQuery("party must be 'me' (settlements you are buyer or seller of) or 'any'")
    raw_limit = query.get("limit", "100")
    if not raw_limit.isascii() or not raw_limit.isdigit() or len(raw_limit) > 4:
        raise InvalidQuery(f"limit must be an integer between 1 and {MAX_LISTING}")
    return _json(
        await service.settlements(
            principal,
            state=query.get("state"),
            mine=party == "me",
            after=query.get("after"),
            limit=int(raw_limit),
        )
    )


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
    creator = await service.creator(principal)
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
