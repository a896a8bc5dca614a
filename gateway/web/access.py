"""The HTTP access log and request ids (see :mod:`gateway.logs`).

The outermost middleware: it names the request (``X-Request-ID`` in and
out), runs everything else inside that log context, and writes one
``anchorline.access`` record when the response is done, with the client
address the proxy middleware settled (``request.remote`` of the request the
handlers saw).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.logs import log_context, new_request_id, record_access

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Where the proxy middleware leaves the client address for the access log.
CLIENT_ADDRESS: web.RequestKey[str] = web.RequestKey("anchorline_client_address", str)


@web.middleware
async def access_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    rid = new_request_id(request.headers.get("X-Request-ID"))
    started = time.perf_counter()
    with log_context(request_id=rid, session_id=None, connection_id=None):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["X-Request-ID"] = rid
            _record(request, exc.status, started, exc.content_length)
            raise
        except BaseException:
            _record(request, 500, started, None)
            raise
        if not response.prepared:
            response.headers["X-Request-ID"] = rid
        _record(request, response.status, started, response.content_length)
        return response


def _record(request: web.Request, status: int, started: float, size: int | None) -> None:
    client = request.get(CLIENT_ADDRESS) or request.remote
    record_access(request.method, request.path, status, started, client, size)


__all__ = ["CLIENT_ADDRESS", "access_middleware"]
