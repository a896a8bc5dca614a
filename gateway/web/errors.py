"""Error middleware: every failure leaves as JSON ``{code, message}``, never a traceback."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.auth.errors import AuthError, RateLimited
from gateway.errors import AnchorlineError
from gateway.events.errors import EmitRateLimited, Overloaded
from gateway.identity.errors import CertificateRejected

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {404: "AL1002", 405: "AL1002", 413: "AL1602"}


def error_response(exc: AnchorlineError) -> web.Response:
    response = web.json_response(exc.to_dict(), status=exc.http_status)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.details.get("retry_after_s", 60))
    elif isinstance(exc, EmitRateLimited | Overloaded):
        # details.retry_after is in milliseconds (as on Socket.IO); the header has seconds.
        retry_ms = exc.details.get("retry_after")
        if isinstance(retry_ms, int):
            response.headers["Retry-After"] = str(max(1, math.ceil(retry_ms / 1000)))
    if isinstance(exc, AuthError | CertificateRejected) and exc.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="anchorline"'
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AnchorlineError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "AL1002" if exc.status < 500 else "AL1000")
        return web.json_response(
            {"code": code, "message": exc.reason or "request refused"}, status=exc.status
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            {"code": "AL1000", "message": "internal error; see the gateway log"}, status=500
        )
