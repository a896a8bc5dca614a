"""REST surface: health, metrics, OpenAPI, JSON errors, event reads, and fuzzing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.client import sign_event
from gateway.context import CONTEXT
from gateway.identity.msp import load_msp
from gateway.identity.signing import sign_message
from gateway.web.routes import routes
from tests.integration.gateway.support import Identities, make_settings


@pytest.fixture
async def client(
    tmp_path: Path, database_url: str, identities: Identities
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = make_settings(
        tmp_path, database_url, authz_rules="vip-*=admin;*=member,admin,auditor"
    )
    app = create_app(settings, verifier=identities.ca.trust_store(), ledger="embedded")
    async with TestClient(TestServer(app)) as c:
        yield c


async def login(client: TestClient[Any, Any], msp: Path, msp_id: str) -> str:
    folder = load_msp(msp, msp_id, require_key=True)
    pem = folder.identity.certificate.public_bytes(serialization.Encoding.PEM).decode()
    r = await client.post("/auth/challenge", json={"certificate": pem})
    assert r.status == 200
    message = (await r.json())["challenge"]
    signature = base64.b64encode(sign_message(folder.signer(), message.encode())).decode()
    r = await client.post(
        "/auth/session", json={"certificate": pem, "challenge": message, "signature": signature}
    )
    assert r.status == 200, await r.text()
    return str((await r.json())["token"])


async def test_health_names_ledger_and_database(
    client: TestClient[Any, Any], database_url: str
) -> None:
    body = await (await client.get("/healthz")).json()
    assert body["status"] == "ok" and body["ledger"] == "embedded"
    assert body["database"] == database_url.split(":")[0]


async def test_openapi_covers_every_route(client: TestClient[Any, Any]) -> None:
    # The whole app's routes (marketplace, trust path) are checked in test_openapi_routes.py.
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    served = {(r.method.lower(), r.path) for r in routes if hasattr(r, "path")}  # type: ignore[attr-defined]
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served <= documented


async def test_metrics_are_prometheus_text(client: TestClient[Any, Any]) -> None:
    r = await client.get("/metrics")
    text = await r.text()
    assert r.content_type == "text/plain"
    for name in (
        "anchorline_connected_clients",
        "anchorline_events_accepted_total",
        "anchorline_ack_latency_seconds_bucket",
        "anchorline_commit_queue_depth",
        'anchorline_admission_refused_total{rule="wait"} 0',
        "anchorline_admission_spared_total 0",
    ):
        assert name in text


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("get", "/nope", None, 404, "AL1002"),
        ("put", "/healthz", None, 405, "AL1002"),
        ("post", "/auth/challenge", b"{not json", 400, "AL1011"),
        ("post", "/auth/challenge", b'{"certificate": "x", "certificate": "y"}', 400, "AL1013"),
        ("post", "/auth/challenge", b"[1,2]", 400, "AL1002"),
        ("post", "/auth/challenge", b'{"certificate": "x"}', 400, "AL1201"),
        ("post", "/auth/session", b'{"certificate": 1}', 401, "AL1500"),
        ("post", "/auth/refresh", b'{"refresh_token": "a.b"}', 401, "AL1507"),
        ("get", "/events/c1", None, 401, "AL1506"),
        ("post", "/auth/logout", None, 401, "AL1506"),
    ],
)
async def test_errors_are_json_with_a_code(
    client: TestClient[Any, Any], method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    r = await getattr(client, method)(path, data=body)
    assert r.status == status
    payload = await r.json()
    assert payload["code"] == code and payload["message"]


async def test_event_reads_need_a_token_and_access(
    client: TestClient[Any, Any], identities: Identities
) -> None:
    token = await login(client, identities.alice, "Org1MSP")
    headers = {"Authorization": f"Bearer {token}"}
    ctx = client.app[CONTEXT]  # type: ignore[index]
    from gateway.events.model import parse_event
    from gateway.store.events import NewEvent

    signer = load_msp(identities.alice, "Org1MSP", require_key=True).signer()
    for i in range(3):
        raw = sign_event(signer, channel="c1", type="t", payload={"i": i})
        await ctx.events.append([NewEvent(parse_event(raw, 16384), "fp", "Org1MSP", 1)])
    page = await (await client.get("/events/c1?after=1&limit=1", headers=headers)).json()
    assert [e["seq"] for e in page["events"]] == [2] and page["more"] is True
    one = await (await client.get("/events/c1/3", headers=headers)).json()
    assert one["payload"] == {"i": 2} and one["status"] == "pending"
    assert (await client.get("/events/c1/9", headers=headers)).status == 404
    denied = await client.get("/events/vip-x", headers=headers)
    assert denied.status == 403 and (await denied.json())["code"] == "AL1511"
    bad = await client.get("/events/c1?after=-1", headers=headers)
    assert bad.status == 400
    assert (await client.post("/auth/logout", headers=headers)).status == 204
    gone = await client.get("/events/c1", headers=headers)
    assert (await gone.json())["code"] == "AL1509"


_text = st.text(max_size=40)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/auth/challenge", "/auth/session", "/auth/refresh", "/auth/logout"]),
    body=st.one_of(
        st.binary(max_size=200),
        _json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "certificate": _json_values,
                "challenge": _json_values,
                "signature": _json_values,
                "refresh_token": _json_values,
            }
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
async def test_fuzz_auth_endpoints_never_500(
    client: TestClient[Any, Any], path: str, body: bytes
) -> None:
    r = await client.post(path, data=body)
    assert r.status < 500, await r.text()
    if r.status >= 400:
        assert (await r.json())["code"].startswith("AL")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    channel=st.text(min_size=1, max_size=70).filter(
        lambda s: "/" not in s and s not in (".", "..")
    ),
    query=st.dictionaries(
        st.sampled_from(["after", "limit", "x"]), st.text(max_size=25), max_size=3
    ),
    seq=st.one_of(st.none(), st.text(min_size=1, max_size=25).filter(lambda s: "/" not in s)),
    token=st.sampled_from(["", "Bearer al1.a.b", "Basic x", "Bearer "]),
)
async def test_fuzz_event_reads_never_500(
    client: TestClient[Any, Any], channel: str, query: dict[str, str], seq: str | None, token: str
) -> None:
    from urllib.parse import quote

    path = f"/events/{quote(channel, safe='')}" + (f"/{quote(seq, safe='')}" if seq else "")
    r = await client.get(path, params=query, headers={"Authorization": token} if token else {})
    assert r.status < 500, await r.text()
    assert (await r.json())["code"].startswith("AL")
    assert await client.app[CONTEXT].events.count() == 0  # type: ignore[index]
