"""Every route the gateway app registers is in the OpenAPI document, so the REST fuzz
(test_openapi_fuzz.py) covers it; and the document names no route the app lacks."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.web.openapi import openapi_document
from tests.integration.gateway.support import issue_identities, make_settings

# Not REST: the Socket.IO transport (its protocol: gateway.stream.hub, docs) and the
# page's static files.
NOT_IN_THE_DOCUMENT = {"/socket.io/", "/static", "/lib/anchorline", "/lib/socket.io"}
# aiohttp answers HEAD for every GET and OPTIONS for CORS preflight by itself.
IMPLIED = {"HEAD", "OPTIONS"}


def registered(app: web.Application) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        if path in NOT_IN_THE_DOCUMENT or route.method in IMPLIED:
            continue
        found.add((route.method.lower(), path))
    return found


def documented() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def _app(tmp_path: Path) -> web.Application:
    ids = issue_identities(tmp_path / "ca")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", anchoring=True)
    return create_app(settings, verifier=ids.ca.trust_store())


def test_every_registered_route_is_in_the_openapi_document(tmp_path: Path) -> None:
    missing = registered(_app(tmp_path)) - documented()
    assert not missing, f"routes missing from gateway/web/openapi.py: {sorted(missing)}"


def test_the_document_describes_no_route_the_app_lacks(tmp_path: Path) -> None:
    extra = documented() - registered(_app(tmp_path))
    assert not extra, f"documented but not registered: {sorted(extra)}"


def test_the_checker_sees_a_route_added_to_the_app(tmp_path: Path) -> None:
    app = _app(tmp_path)

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/not/documented/{x}", handler)
    assert ("get", "/not/documented/{x}") in registered(app) - documented()
