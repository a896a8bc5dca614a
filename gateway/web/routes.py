"""REST routes: login, event reads, health, metrics and the OpenAPI document.

Handlers parse input, call the domain, and return JSON; every refusal is an
:class:`~gateway.errors.AnchorlineError` turned into ``{code, message}`` by
the error middleware.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway import strict_json
from gateway.auth.authorizer import Action
from gateway.auth.errors import AccessDenied, AuthError, TokenMissing
from gateway.auth.principal import Principal
from gateway.auth.sessions import SessionTokens
from gateway.context import CONTEXT, GatewayContext
from gateway.errors import AnchorlineError, InvalidInput
from gateway.events.errors import EventNotFound
from gateway.events.model import check_servable, servable, valid_channel
from gateway.identity.errors import CertificateRejected, IdentityError
from gateway.logs import bind_session
from gateway.strict_json import JsonLimits
from gateway.web import cluster
from gateway.web import metrics as metrics_text
from gateway.web.openapi import openapi_document

routes = web.RouteTableDef()
_MAX_LIMIT = 1000


def _ctx(request: web.Request) -> GatewayContext:
    return request.app[CONTEXT]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# Request bodies are read by the one strict reader (duplicate keys, NaN, big
# integers, lone surrogates refused with their codes). They hold certificates,
# signatures and signed transactions, never deep values.
_BODY_LIMITS = JsonLimits(max_depth=8, max_bytes=256 * 1024, max_keys=256, max_string=128 * 1024)


async def _body(request: web.Request) -> dict[str, Any]:
    data = strict_json.loads(await request.read(), _BODY_LIMITS)
    if not isinstance(data, dict):
        raise InvalidInput("request body must be a JSON object")
    return data


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


def _tokens_body(tokens: SessionTokens) -> dict[str, Any]:
    return {
        "session_id": tokens.session_id,
        "token": tokens.token,
        "expires_at": tokens.expires_ms,
        "refresh_token": tokens.refresh_token,
        "refresh_expires_at": tokens.refresh_expires_ms,
        "identity": {
            "fingerprint": tokens.fingerprint,
            "msp_id": tokens.msp_id,
            "role": tokens.role,
        },
    }


def _count_refusal(ctx: GatewayContext, exc: AnchorlineError) -> None:
    if isinstance(exc, AuthError | IdentityError):
        ctx.metrics.refuse_login(exc.code)


@routes.post("/auth/challenge")
async def post_challenge(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    data = await _body(request)
    try:
        nonce, message, expires = await ctx.sessions.challenge(
            data.get("certificate"), _address(request)
        )
    except AnchorlineError as exc:
        _count_refusal(ctx, exc)
        raise
    return _json(
        {
            "nonce": nonce,
            "challenge": message,
            "expires_at": expires,
            "domain": ctx.settings.gateway.domain,
        }
    )


@routes.post("/auth/session")
async def post_session(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    data = await _body(request)
    try:
        tokens = await ctx.sessions.login(
            data.get("certificate"), data.get("challenge"), data.get("signature"), _address(request)
        )
    except (AuthError, CertificateRejected) as exc:
        _count_refusal(ctx, exc)
        raise
    except IdentityError as exc:
        # An unparseable certificate at this step is still a failed login: 401.
        _count_refusal(ctx, exc)
        raise AuthError(f"certificate refused: {exc.message}") from None
    ctx.metrics.logins += 1
    return _json(_tokens_body(tokens))


@routes.post("/auth/refresh")
async def post_refresh(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    data = await _body(request)
    tokens = await ctx.sessions.refresh(data.get("refresh_token"), _address(request))
    return _json(_tokens_body(tokens))


async def _principal(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise TokenMissing("no session token: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token:
        raise TokenMissing("send the session token as 'Authorization: Bearer <token>'")
    principal = await _ctx(request).sessions.authenticate(token.strip())
    bind_session(principal.session_id)  # the request's logs and access record name it
    return principal


@routes.post("/auth/logout")
async def post_logout(request: web.Request) -> web.Response:
    principal = await _principal(request)
    await _ctx(request).sessions.revoke(principal.session_id)
    return web.Response(status=204)


async def _readable_channel(request: web.Request) -> tuple[GatewayContext, str]:
    ctx = _ctx(request)
    principal = await _principal(request)
    channel = request.match_info["channel"]
    if not valid_channel(channel):
        raise InvalidInput("channel must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if not await ctx.authorizer.allowed(principal, channel, Action.READ):
        raise AccessDenied(f"{principal.role} of {principal.msp_id} may not read {channel!r}")
    return ctx, channel


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(f"{name} must be an integer between {lo} and {hi}")
    value = int(raw)
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be an integer between {lo} and {hi}")
    return value


@routes.get("/events/{channel}")
async def get_events(request: web.Request) -> web.Response:
    ctx, channel = await _readable_channel(request)
    after = _int_param(request, "after", 0, 0, 2**62)
    limit = _int_param(request, "limit", 100, 1, _MAX_LIMIT)
    page = await ctx.events.after(channel, after, limit)
    statuses = await ctx.events.statuses(channel, [e.seq for e in page])
    # next_after and more follow the stored page: a bad row is skipped, not a stop.
    items = [e.to_wire(statuses.get(e.seq, {}).get("status", "pending")) for e in servable(page)]
    return _json(
        {
            "channel": channel,
            "events": items,
            "next_after": page[-1].seq if page else after,
            "more": len(page) == limit,
        }
    )


@routes.get("/events/{channel}/{seq}")
async def get_event(request: web.Request) -> web.Response:
    ctx, channel = await _readable_channel(request)
    raw = request.match_info["seq"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("seq must be a positive integer")
    seq = int(raw)
    event = await ctx.events.get(channel, seq)
    if event is None:
        raise EventNotFound(f"channel {channel!r} has no event with seq {seq}")
    check_servable(event)
    status = (await ctx.events.statuses(channel, [seq])).get(seq, {})
    body = event.to_wire(status.get("status", "pending"))
    body["tx_id"] = status.get("tx_id")
    body["block_number"] = status.get("block_number")
    return _json(body)


@routes.get("/healthz")
async def get_health(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    status, process = cluster.health(request.app)
    return _json(
        {
            "status": "ok" if status == 200 else "draining",
            "ledger": ctx.ledger,
            "database": ctx.engine.dialect.name,
            "connected_clients": ctx.metrics.connected_clients,
            "commit_queue_depth": ctx.pipeline.depth,
            **process,
        },
        status,
    )


@routes.get("/metrics")
async def get_metrics(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    ctx.metrics.commit_queue_depth = ctx.pipeline.depth
    text = metrics_text.render(
        ctx.metrics, rooms=len(ctx.hub.rooms), admission=ctx.pipeline.admission
    )
    text += "\n".join(cluster.metrics_lines(request.app)) + "\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


@routes.get("/openapi.json")
async def get_openapi(request: web.Request) -> web.Response:
    return _json(openapi_document())
