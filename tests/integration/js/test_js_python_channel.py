"""A JS member and a Python member in one channel on one gateway.

Each receives the other's events; the JS member loses its connection while the Python
member emits and catches up on resume; each verifies a proof of the other's event.
The JS side is ``clients/js/tools/peer.mjs``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.anchoring.proof import EventProof, verify_offline
from gateway.client import MemberClient
from gateway.identity.certificates import TrustStore
from tests.integration.js.corpus import wait_finalized
from tests.integration.js.support import JS_DIR, js_gateway, node_ready, run_node

pytestmark = pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))


async def _next_of(py: MemberClient, type_: str, timeout: float = 30) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        name, data = await py.next_event(timeout=max(0.1, deadline - loop.time()))
        if name == "event" and data.get("type") == type_:
            return dict(data)


async def _python_side(py: MemberClient, channel: str) -> dict:
    hello = await _next_of(py, "js.hello")
    for i in range(3):
        assert (await py.emit(channel, "py.bid", {"amount": 10 + i, "note": "grüße"})).ok
    # The JS member drops its connection after the third bid and waits for these two.
    await asyncio.sleep(0.3)
    away = [await py.emit(channel, "py.while-away", {"i": i}) for i in range(2)]
    assert all(a.ok for a in away)
    after = await _next_of(py, "js.after-resume", timeout=60)
    await _next_of(py, "js.done", timeout=90)
    return {"hello": hello, "after": after}


async def _keep_refreshing(py: MemberClient) -> None:
    # The Python client refreshes only around reconnects; this test's sessions are short.
    while True:
        await asyncio.sleep(1.5)
        await py.refresh()


@pytest.mark.parametrize("sessions", ["default", "token-refresh", "expired-relogin"])
async def test_js_and_python_members_share_a_channel(tmp_path: Path, sessions: str) -> None:
    channel = "mixed"
    # With short sessions, tokens live 4 s and the JS member stays 6 s after its resume:
    # it must refresh its token (over REST, then the socket's `refresh`) to stay on, or,
    # when it does not refresh, log in again after the gateway ends the session.
    short_sessions = sessions != "default"
    ttl = 4 if short_sessions else None
    async with js_gateway(tmp_path / "home", session_ttl_s=ttl) as g:
        py = MemberClient.from_msp(g.url, g.members["py"], g.msp_ids["py"])
        await py.login()
        await py.connect()
        await py.join(channel)
        env = {**g.env(), "CHANNEL": channel, "SEQ_FILE": str(tmp_path / "seqs.json")}
        if sessions == "token-refresh":
            env |= {"REFRESH_MARGIN_MS": "2000", "STAY_MS": "6000"}
        elif sessions == "expired-relogin":
            env |= {"REFRESH_MARGIN_MS": "-100000", "STAY_MS": "6000"}
        js_task = asyncio.create_task(run_node(JS_DIR / "tools" / "peer.mjs", env, timeout=150))
        keep_py = asyncio.create_task(_keep_refreshing(py)) if short_sessions else None
        try:
            seen = await _python_side(py, channel)
            js = await js_task
        finally:
            if keep_py is not None:
                keep_py.cancel()
        if sessions == "token-refresh":
            assert js["refreshed"] >= 2 and js["session_expired"] == 0, js
        if sessions == "expired-relogin":
            # session_expired, a new login, a reconnect and a second resume.
            assert js["refreshed"] == 0 and js["session_expired"] >= 1, js
        expected_reconnects = 1 if sessions != "expired-relogin" else js["session_expired"] + 1

        # Each received the other's events.
        js_types = [t for _, t in js["received"]]
        assert js_types.count("py.bid") == 3 and js_types.count("py.while-away") == 2, js
        assert seen["hello"]["seq"] == js["hello_seq"]
        assert seen["after"]["seq"] == js["after_seq"]
        # Catch-up after the drop: every seq once, in order, and the watermark persisted.
        seqs = [s for s, _ in js["received"]]
        assert seqs == sorted(set(seqs)), seqs
        assert js["reconnects"] == expected_reconnects == js["resumed"], js
        assert js["left_refusal"] == "AL1604", js
        assert js["stored_seq"] == js["last_seq"] >= js["after_seq"]
        assert js["last_before_resume"] < min(s for s, t in js["received"] if t == "py.while-away")
        assert js["final_status"] == "finalized"
        # The JS member verified a proof of a Python event.
        assert js["verdict"]["ok"], js["verdict"]
        # And the Python side verifies the JS member's event.
        await wait_finalized(py, channel, js["hello_seq"])
        proof = EventProof.from_json(await py.get(f"/events/{channel}/{js['hello_seq']}/proof"))
        verdict = verify_offline(proof, TrustStore.from_msp_dirs(g.org_msps()))
        assert verdict.ok, verdict.summary()
        assert proof.event.msp_id == g.msp_ids["js"]
        assert not js["errors"], js
        await py.close()
