"""Schemathesis against the served OpenAPI document: no 5xx, every refusal is {code, message}.

The gateway runs with the trust path and the marketplace on the embedded ledger, so
every documented route answers for real; each case is sent without a token and with
a member's session token (but logout, which would end that session), so the fuzz
reaches the handlers behind the authentication too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from gateway.app import create_app
from gateway.client import MemberClient
from gateway.context import CONTEXT
from gateway.web.openapi import openapi_document
from tests.integration.gateway.support import issue_identities, make_settings

schema = schemathesis.openapi.from_dict(openapi_document())


class ServerThread:
    """The gateway on a loopback port, served by its own event loop in a thread."""

    def __init__(self, home: Path) -> None:
        self.ids = issue_identities(home / "ca")
        # The latency rules of admission are off: the fuzzer's thread holds the GIL the
        # gateway's loop needs, so a loop-lag refusal (AL1607, 503) would measure the
        # fuzzer: an event-creating route asks admission before its intake checks.
        settings = make_settings(
            home,
            f"sqlite:///{home / 'e.db'}",
            anchoring=True,
            admission_max_loop_lag_ms=0,
            admission_max_queue_wait_ms=0,
        )
        settings = dataclasses.replace(
            settings, ledger=dataclasses.replace(settings.ledger, kind="embedded")
        )
        self.app = create_app(settings, verifier=self.ids.ca.trust_store())
        self.token = ""
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
        member = MemberClient.from_msp(self.url, self.ids.alice, "Org1MSP")
        try:
            self.token = (await member.login()).token
        finally:
            await member.close()
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
    authenticated = {"Authorization": f"Bearer {gateway.token}"}
    tries: list[dict[str, str] | None] = [None]
    if case.path != "/auth/logout":
        tries.append(authenticated)
    for headers in tries:
        response = case.call(base_url=gateway.url, headers=headers)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            body = response.json()
            assert body["code"].startswith("AL") and body["message"]
    assert gateway.stored_events() == 0


def test_the_fuzz_session_token_is_accepted(gateway: ServerThread) -> None:
    # The authenticated half of the fuzz means something only while its token works.
    request = urllib.request.Request(
        f"{gateway.url}/marketplace/settlements",
        headers={"Authorization": f"Bearer {gateway.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
