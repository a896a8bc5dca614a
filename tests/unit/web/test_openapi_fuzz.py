"""Schemathesis against the served OpenAPI document: no 5xx, every refusal is {code, message}."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from gateway.app import create_app
from gateway.context import CONTEXT
from gateway.web.openapi import openapi_document
from tests.integration.gateway.support import issue_identities, make_settings

schema = schemathesis.openapi.from_dict(openapi_document())


class ServerThread:
    """The gateway on a loopback port, served by its own event loop in a thread."""

    def __init__(self, home: Path) -> None:
        ids = issue_identities(home / "ca")
        self.app = create_app(
            make_settings(home, f"sqlite:///{home / 'e.db'}"), verifier=ids.ca.trust_store()
        )
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(30), "gateway did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def stored_events(self) -> int:
        future = asyncio.run_coroutine_threadsafe(self.app[CONTEXT].events.count(), self.loop)
        return future.result(10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("gw")) as server:
        yield server


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors(case: schemathesis.Case, gateway: ServerThread) -> None:
    response = case.call(base_url=gateway.url)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["code"].startswith("AL") and body["message"]
    assert gateway.stored_events() == 0
