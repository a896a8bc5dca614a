"""Structured logs: JSON lines with request, connection and session ids, and the access
log, from a running gateway; the plain format for a terminal."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.client import MemberClient
from gateway.identity.ca import EmbeddedCA
from gateway.logs import ContextFilter, JsonFormatter, PlainFormatter, log_context
from tests.integration.gateway.support import make_settings, running_gateway


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged under ``gateway`` and ``anchorline``, as the json format writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    loggers = [logging.getLogger("gateway"), logging.getLogger("anchorline")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield out
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


def _records(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines() if line]


async def test_json_logs_carry_request_connection_and_session_ids(
    tmp_path: Path, json_lines: io.StringIO
) -> None:
    ca = EmbeddedCA(tmp_path / "ca")
    alice_msp = ca.enroll("Org1", "alice", "member")
    settings = make_settings(tmp_path / "gw", f"sqlite:///{tmp_path / 'events.db'}")
    async with running_gateway(settings, ca) as gw:
        alice = MemberClient.from_msp(gw.url, alice_msp, "Org1MSP")
        try:
            session = await alice.login()
            await alice.get("/events/lobby?after=0")
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    gw.url + "/healthz", headers={"X-Request-ID": "trace-42"}
                ) as response:
                    assert response.headers["X-Request-ID"] == "trace-42"
                async with http.get(gw.url + "/no-such-page") as response:
                    assert response.status == 404
                    generated = response.headers["X-Request-ID"]
            await alice.connect()
            await alice.join("lobby")
        finally:
            await alice.close()
    records = _records(json_lines)
    access = [r for r in records if r["logger"] == "anchorline.access"]
    by_path = {(r["method"], r["path"]): r for r in access}
    read = by_path[("GET", "/events/lobby")]
    assert read["status"] == 200 and read["session_id"] == session.session_id
    assert read["client"] == "127.0.0.1" and read["duration_ms"] >= 0
    assert len(read["request_id"]) == 16
    assert by_path[("GET", "/healthz")]["request_id"] == "trace-42"
    missing = by_path[("GET", "/no-such-page")]
    assert missing["status"] == 404 and missing["request_id"] == generated
    assert by_path[("POST", "/auth/session")]["status"] == 200
    connected = next(r for r in records if r["message"].startswith("connected member"))
    assert connected["session_id"] == session.session_id and connected["connection_id"]
    assert connected["fingerprint"] == session.fingerprint
    assert any(
        r["message"] == "disconnected" and r["connection_id"] == connected["connection_id"]
        for r in records
    )


def test_plain_format_keeps_the_terminal_line_and_appends_ids() -> None:
    record = logging.LogRecord("gateway.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.client = "10.0.0.1"
    with log_context(request_id="r1"):
        ContextFilter().filter(record)
    line = PlainFormatter().format(record)
    assert line.endswith("INFO gateway.x: hello you request_id=r1 client=10.0.0.1")
    body = orjson.loads(JsonFormatter().format(record))
    assert body["message"] == "hello you" and body["request_id"] == "r1"
    assert body["client"] == "10.0.0.1" and "session_id" not in body
